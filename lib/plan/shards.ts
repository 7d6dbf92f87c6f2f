/**
 * Distributed builds as pure decisions: how many shards, which rows each shard adds, which input
 * files those rows live in, which shard an array task is, what `plan.json` holds and how its
 * content hash is computed, and whether a set of finished shards matches the plan. No I/O and no
 * FAISS: the phase commands (lib/commands/plan_build.ts, add_shard.ts, merge_shards.ts) do that.
 *
 * The temporary folder T of a distributed build:
 *   T/plan.json                  this module's {@link DistributedPlan}, written last by plan_build
 *   T/trained.index              the trained, empty index every shard starts from
 *   T/shards/shard-0003.index    shard 3's vectors, added with their global row numbers as ids
 *   T/shards/shard-0003.ids.parquet  its id-columns mapping (only with id_columns and ids_path)
 *   T/shards/shard-0003.done     {@link ShardDone}: written after the files above, names their checksums
 *   T/merge/part-0000-group-007.index/.done  a two-stage merge's first-stage result ({@link mergeStageGroups})
 *
 * With N output parts (`nb_indices_to_keep`), part p has the rows a local N-part build gives it
 * (lib/plan/parts.ts) and is merged from a contiguous range of shards that split exactly those rows.
 *
 * @example
 * const { shards } = shardLayout([{ start: 0, end: 1_000_000 }], 4); // [{start: 0, end: 250000}, …]
 */
import { createHash } from "node:crypto";
import type { BuildSettings } from "./build_plan.ts";
import { partRanges, type RowRange } from "./parts.ts";

export type { RowRange };

/** Python's distributed build gives each Spark task at most 10M vectors (`ceil(count / 1e7)` tasks). */
export const MAX_VECTORS_PER_SHARD = 10_000_000;

/** Format tag and version of plan.json and of the done markers. */
export const PLAN_FORMAT = "autofaiss-distributed-plan";
export const SHARD_DONE_FORMAT = "autofaiss-shard-done";
/** 2: `parts` (N-part output). */
export const PLAN_VERSION = 2;

/** Names inside the temporary folder. */
export const PLAN_FILE = "plan.json";
export const TRAINED_INDEX_FILE = "trained.index";
export const SHARDS_FOLDER = "shards";
/** First-stage merge results of a two-stage merge ({@link mergeStageGroups}). */
export const MERGE_FOLDER = "merge";
export const MERGE_GROUP_DONE_FORMAT = "autofaiss-merge-group-done";

/** Environment variables that carry an array task's index, in the order they are looked at. */
export const SHARD_ENV_VARS = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"] as const;

/** A failure of a distributed phase the user can act on: the CLI prints its message on one line. */
export class DistributedError extends Error {
  override readonly name = "DistributedError";
}

/**
 * Shards for `count` vectors when `--nb_shards` is not given: enough that each holds at most
 * {@link MAX_VECTORS_PER_SHARD}, at least `nbIndicesToKeep` (each output part merges whole shards),
 * never more than the vectors (an empty shard is an empty index).
 *
 * @example defaultShardCount(25_000_000, 1) === 3; defaultShardCount(1000, 4) === 4
 */
export function defaultShardCount(count: number, nbIndicesToKeep: number): number {
  return Math.max(1, Math.min(count, Math.max(Math.ceil(count / MAX_VECTORS_PER_SHARD), nbIndicesToKeep)));
}

/** Checks a `--nb_shards` the user gave against the data; returns it. */
export function checkShardCount(nbShards: number, count: number, nbIndicesToKeep: number): number {
  if (!Number.isSafeInteger(nbShards) || nbShards < 1) throw new DistributedError(`nb_shards: expected an integer >= 1, got ${nbShards}`);
  if (nbShards > count) throw new DistributedError(`nb_shards: ${nbShards} shards for ${count} vectors would leave empty shards (expected at most ${count})`);
  if (nbShards < nbIndicesToKeep) {
    throw new DistributedError(`nb_shards: ${nbShards} shards cannot make nb_indices_to_keep=${nbIndicesToKeep} parts (expected at least ${nbIndicesToKeep})`);
  }
  return nbShards;
}

/**
 * The shards of a build whose output parts hold `partRows` (in order, touching, from row 0): part p
 * gets the contiguous shard numbers `partShards[p]` (nbShards split among the parts by
 * {@link partRanges}, Python's `_batch_loader` rule), and its rows are split among those shards by
 * the same rule. With one part this is Python's split of all rows into nbShards batches; with N
 * parts every part is the union of whole shards and has exactly the rows of a local N-part build.
 *
 * @example shardLayout([{start: 0, end: 4}, {start: 4, end: 7}], 3)
 *   // shards [0,2) [2,4) [4,7); partShards [0,2) [2,3)
 */
export function shardLayout(partRows: readonly RowRange[], nbShards: number): { shards: RowRange[]; partShards: RowRange[] } {
  const partShards = partRanges(nbShards, partRows.length);
  const shards: RowRange[] = [];
  for (const [p, rows] of partRows.entries()) {
    const k = partShards[p].end - partShards[p].start;
    if (k === 0 || rows.end - rows.start < k) {
      throw new RangeError(`shards: part ${p} (rows [${rows.start}, ${rows.end})) cannot be split into ${k} non-empty shards`);
    }
    for (const r of partRanges(rows.end - rows.start, k)) shards.push({ start: rows.start + r.start, end: rows.start + r.end });
  }
  return { shards, partShards };
}

/**
 * Most inputs one merge reads, as Python's stage-2 merge (a 100-way merge when stage 1 left more
 * than 100 partial indices).
 */
export const MERGE_FANOUT = 100;

/**
 * How a part made of the shard numbers `shards` is merged. At most `fanout` shards: one stage, the
 * shards straight into the part (returns `[shards]`). More: two stages, as Python's stage-2 merge:
 * the shards are split into `fanout` contiguous groups ({@link partRanges}), each merged into an
 * intermediate index, then the intermediates into the part. Either way the merge holds the part
 * being built plus one input, so memory stays bounded by one part.
 *
 * @example mergeStageGroups({start: 0, end: 250}, 100).length === 100 // groups of 3 or 2 shards
 */
export function mergeStageGroups(shards: RowRange, fanout = MERGE_FANOUT): RowRange[] {
  if (!Number.isSafeInteger(fanout) || fanout < 2) throw new RangeError(`shards: merge fan-out must be an integer >= 2, got ${fanout}`);
  const k = shards.end - shards.start;
  if (k <= fanout) return [shards];
  return partRanges(k, fanout).map((r) => ({ start: shards.start + r.start, end: shards.start + r.end }));
}

/** Files of the first-stage merge of group g of part p (two-stage merges only), relative to T. */
export function mergeGroupFiles(part: number, group: number): { index: string; done: string } {
  const base = `${MERGE_FOLDER}/part-${String(part).padStart(4, "0")}-group-${String(group).padStart(3, "0")}`;
  return { index: `${base}.index`, done: `${base}.done` };
}

/** The done marker of a first-stage merge group: written after its index, names its checksum. */
export interface MergeGroupDone {
  format: typeof MERGE_GROUP_DONE_FORMAT;
  planHash: string;
  part: number;
  group: number;
  shards: RowRange;
  ntotal: number;
  index: ShardFile;
}

/** One input file as plan_build saw it. `mtimeMs` is null for remote (http, s3) files. */
export interface PlanInputFile {
  location: string;
  rows: number;
  /** Global row number of its first row. */
  startRow: number;
  /** Bytes; null when unknown (remote). */
  size: number | null;
  mtimeMs: number | null;
}

/**
 * The input files that hold rows `[start, end)` and where that range starts in them: a shard opens
 * only these, so it reads only its rows' files (and their headers).
 *
 * @example filesForRange(files, {start: 150, end: 250}) // { files: [files[1], files[2]], start: 50, end: 150 }
 */
export function filesForRange(files: readonly PlanInputFile[], range: RowRange): { files: PlanInputFile[]; start: number; end: number } {
  const hit = files.filter((f) => f.rows > 0 && f.startRow < range.end && f.startRow + f.rows > range.start);
  if (hit.length === 0) throw new RangeError(`shards: no input file holds rows [${range.start}, ${range.end})`);
  const base = hit[0].startRow;
  return { files: hit, start: range.start - base, end: range.end - base };
}

/** Where a task's shard index came from. */
export interface ShardIndex {
  shard: number;
  /** "--shard" or the environment variable's name */
  source: string;
}

/**
 * The shard an add_shard task runs: `--shard` when given, else the first of
 * {@link SHARD_ENV_VARS} that is set (Slurm job arrays, Kubernetes Indexed Jobs, AWS Batch arrays).
 * Errors name the source and the valid range.
 */
export function resolveShardIndex(flag: number | null, env: Readonly<Record<string, string | undefined>>, nbShards: number): ShardIndex {
  let raw: string;
  let source: string;
  if (flag !== null) {
    raw = String(flag);
    source = "--shard";
  } else {
    const name = SHARD_ENV_VARS.find((v) => env[v] !== undefined && env[v] !== "");
    if (!name) {
      throw new DistributedError(`add_shard: no shard index: pass --shard=i or run as an array task (${SHARD_ENV_VARS.join(", ")} unset)`);
    }
    raw = env[name]!;
    source = name;
  }
  if (!/^\d+$/.test(raw)) throw new DistributedError(`add_shard: ${source}="${raw}" is not a shard index (expected an integer in 0..${nbShards - 1})`);
  const shard = Number(raw);
  if (shard >= nbShards) {
    throw new DistributedError(`add_shard: ${source}=${shard} is outside the plan's shards 0..${nbShards - 1} (nb_shards=${nbShards})`);
  }
  return { shard, source };
}

/**
 * FAISS threads of an add_shard task: its `--nb_cores`, else the CPUs Slurm allocated to the task
 * (`SLURM_CPUS_PER_TASK`, set when the job asked for `--cpus-per-task`: Slurm may place other
 * tasks on the node's other cores, and with TaskPlugin=task/none nothing stops a task from using
 * them), else the plan's nb_cores, else 0 (every core).
 *
 * @example shardThreads(null, { SLURM_CPUS_PER_TASK: "4" }, null) // { threads: 4, source: "SLURM_CPUS_PER_TASK" }
 */
export function shardThreads(
  flag: number | null,
  env: Readonly<Record<string, string | undefined>>,
  planNbCores: number | null,
): { threads: number; source: string } {
  if (flag !== null) return { threads: flag, source: "--nb_cores" };
  const slurm = env.SLURM_CPUS_PER_TASK;
  if (slurm !== undefined && slurm !== "") {
    if (!/^\d+$/.test(slurm) || Number(slurm) < 1) {
      throw new DistributedError(`add_shard: SLURM_CPUS_PER_TASK="${slurm}" is not a CPU count (expected an integer >= 1)`);
    }
    return { threads: Number(slurm), source: "SLURM_CPUS_PER_TASK" };
  }
  if (planNbCores !== null) return { threads: planNbCores, source: "the plan's nb_cores" };
  return { threads: 0, source: "every core" };
}

/** Width of the shard number in file names: 4 digits, more when there are more shards. */
export function shardName(i: number, nbShards: number): string {
  return `shard-${String(i).padStart(Math.max(4, String(nbShards - 1).length), "0")}`;
}

/** The file names of shard i, relative to T. */
export function shardFiles(i: number, nbShards: number): { index: string; ids: string; done: string } {
  const base = `${SHARDS_FOLDER}/${shardName(i, nbShards)}`;
  return { index: `${base}.index`, ids: `${base}.ids.parquet`, done: `${base}.done` };
}

/** What one distributed build is: everything add_shard and merge_shards need, nothing else. */
export interface DistributedPlanBody {
  format: typeof PLAN_FORMAT;
  version: number;
  inputs: {
    fileFormat: string;
    embeddingColumnName: string | null;
    idColumns: string[] | null;
    count: number;
    dimension: number;
    files: PlanInputFile[];
  };
  indexKey: string;
  metricType: "ip" | "l2";
  /** The build_index options, every default filled in. */
  settings: BuildSettings;
  /** The trained index's file in T and its checksum (a shard started from another is refused). */
  trained: { file: string; bytes: number; sha256: string };
  /** Rows per read and per FAISS add call, from the build plan's memory budget. */
  adding: { readBatchRows: number; addCallRows: number };
  shards: RowRange[];
  /** The outputs: one part, or nb_indices_to_keep parts named and split as a local build's. */
  parts: DistributedPart[];
}

/**
 * One output of a distributed build: the paths and rows of the same part of a local build
 * (lib/plan/build_plan.ts), and the shard numbers `[shards.start, shards.end)` merged into it.
 */
export interface DistributedPart {
  indexPath: string;
  indexInfosPath: string;
  rows: RowRange;
  shards: RowRange;
}

export interface DistributedPlan extends DistributedPlanBody {
  /** sha256 of the canonical JSON of the body: names this build in every done marker. */
  hash: string;
}

/** JSON with object keys sorted at every level, so equal plans hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function sha256Hex(bytes: string | Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Adds the content hash to a plan body. */
export function sealPlan(body: DistributedPlanBody): DistributedPlan {
  return { ...body, hash: sha256Hex(canonicalJson(body)) };
}

/** Parses plan.json; the file must carry the format tag, this version and a hash that matches its content. */
export function parsePlan(text: string, where: string): DistributedPlan {
  let plan: DistributedPlan;
  try {
    plan = JSON.parse(text) as DistributedPlan;
  } catch (e) {
    throw new DistributedError(`plan: ${where}: not JSON (${(e as Error).message})`);
  }
  if (plan === null || typeof plan !== "object" || plan.format !== PLAN_FORMAT) {
    throw new DistributedError(`plan: ${where}: format is not "${PLAN_FORMAT}" (not written by plan_build)`);
  }
  if (plan.version !== PLAN_VERSION) throw new DistributedError(`plan: ${where}: version ${plan.version}, expected ${PLAN_VERSION}`);
  const { hash, ...body } = plan;
  const actual = sha256Hex(canonicalJson(body));
  if (hash !== actual) throw new DistributedError(`plan: ${where}: content hash ${hash} does not match its content (${actual}): the file was edited or damaged`);
  return plan;
}

/** A file a shard wrote, as its done marker records it. */
export interface ShardFile {
  /** relative to T */
  name: string;
  bytes: number;
  sha256: string;
}

/** The done marker of a shard: the last thing add_shard writes. */
export interface ShardDone {
  format: typeof SHARD_DONE_FORMAT;
  planHash: string;
  shard: number;
  start: number;
  end: number;
  /** vectors in the shard's index */
  ntotal: number;
  index: ShardFile;
  ids: ShardFile | null;
}

/** Why `done` (read from `where`) is not shard `i` of `plan`, or null when it is. */
export function shardDoneMismatch(done: unknown, plan: DistributedPlan, i: number, where: string): string | null {
  const d = done as Partial<ShardDone> | null;
  if (d === null || typeof d !== "object" || d.format !== SHARD_DONE_FORMAT) return `${where}: not a done marker written by add_shard`;
  if (d.planHash !== plan.hash) {
    return `${where} belongs to another plan (plan hash ${String(d.planHash).slice(0, 12)}…, this plan ${plan.hash.slice(0, 12)}…): run add_shard again for shard ${i}`;
  }
  const r = plan.shards[i];
  if (d.shard !== i || d.start !== r.start || d.end !== r.end) {
    return `${where}: records shard ${d.shard} rows [${d.start}, ${d.end}), the plan has shard ${i} rows [${r.start}, ${r.end})`;
  }
  if (d.ntotal !== r.end - r.start) return `${where}: the shard's index holds ${d.ntotal} vectors, the plan expects ${r.end - r.start}`;
  if ((plan.inputs.idColumns !== null) !== (d.ids != null)) {
    return `${where}: ${d.ids ? "records an ids file the plan has no id_columns for" : "records no ids file, the plan has id_columns"}`;
  }
  return null;
}

/**
 * Checks the names found in T/shards against the plan: every shard done, nothing foreign.
 * Temporary names (a leading dot) are ignored: they belong to tasks that are running or died.
 * Returns the error message naming the missing or foreign shard files, or null.
 */
export function checkShardNames(names: readonly string[], nbShards: number, expectIds: boolean): string | null {
  const expected = new Set<string>();
  for (let i = 0; i < nbShards; i++) {
    const f = shardFiles(i, nbShards);
    expected.add(f.index.slice(SHARDS_FOLDER.length + 1));
    expected.add(f.done.slice(SHARDS_FOLDER.length + 1));
    if (expectIds) expected.add(f.ids.slice(SHARDS_FOLDER.length + 1));
  }
  const visible = names.filter((n) => !n.startsWith("."));
  const foreign = visible.filter((n) => !expected.has(n)).sort();
  if (foreign.length > 0) {
    return `${SHARDS_FOLDER}/${foreign[0]} is not a shard of this plan (nb_shards=${nbShards}: ${shardName(0, nbShards)} … ${shardName(nbShards - 1, nbShards)})`;
  }
  const present = new Set(visible);
  const missing: number[] = [];
  for (let i = 0; i < nbShards; i++) if (!present.has(`${shardName(i, nbShards)}.done`)) missing.push(i);
  if (missing.length > 0) {
    const list = missing.slice(0, 10).join(", ") + (missing.length > 10 ? `, … (${missing.length} in all)` : "");
    return `shards not done: ${list} of ${nbShards} (no ${SHARDS_FOLDER}/${shardName(missing[0], nbShards)}.done); run add_shard for them`;
  }
  return null;
}
