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
 *
 * @example
 * const ranges = shardRanges(1_000_000, 4); // [{start: 0, end: 250000}, …]
 */
import { createHash } from "node:crypto";
import type { BuildSettings } from "./build_plan.ts";

/** Python's distributed build gives each Spark task at most 10M vectors (`ceil(count / 1e7)` tasks). */
export const MAX_VECTORS_PER_SHARD = 10_000_000;

/** Format tag and version of plan.json and of the done markers. */
export const PLAN_FORMAT = "autofaiss-distributed-plan";
export const SHARD_DONE_FORMAT = "autofaiss-shard-done";
export const PLAN_VERSION = 1;

/** Names inside the temporary folder. */
export const PLAN_FILE = "plan.json";
export const TRAINED_INDEX_FILE = "trained.index";
export const SHARDS_FOLDER = "shards";

/** Environment variables that carry an array task's index, in the order they are looked at. */
export const SHARD_ENV_VARS = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"] as const;

/** A failure of a distributed phase the user can act on: the CLI prints its message on one line. */
export class DistributedError extends Error {
  override readonly name = "DistributedError";
}

/** Rows `[start, end)`: the vectors carry the global ids start … end−1. */
export interface RowRange {
  start: number;
  end: number;
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
 * Splits `count` rows into `n` contiguous ranges, the first `count % n` one row larger: Python's
 * `_batch_loader` (`q, r = divmod(count, n)`; range b = `[q·b + min(b, r), q·(b+1) + min(b+1, r))`).
 *
 * @example shardRanges(7, 3) // [{start:0,end:3},{start:3,end:5},{start:5,end:7}]
 */
export function shardRanges(count: number, n: number): RowRange[] {
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`shards: row count must be an integer >= 0, got ${count}`);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`shards: number of shards must be an integer >= 1, got ${n}`);
  const q = Math.floor(count / n);
  const r = count % n;
  return Array.from({ length: n }, (_, b) => ({ start: q * b + Math.min(b, r), end: q * (b + 1) + Math.min(b + 1, r) }));
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

/**
 * Which shards each of `parts` output parts merges: contiguous groups, so part p holds contiguous
 * global ids (the same split as {@link shardRanges} over shard numbers).
 *
 * @example mergeGroups(5, 2) // [[0, 1, 2], [3, 4]]
 */
export function mergeGroups(nbShards: number, parts: number): number[][] {
  return shardRanges(nbShards, parts).map((r) => Array.from({ length: r.end - r.start }, (_, k) => r.start + k));
}
