/**
 * `merge_shards`, phase 3 of a distributed build, on one machine: checks that every shard of the
 * plan is done and belongs to it (a clear error naming the missing or foreign shard), verifies each
 * shard's checksum, then builds the plan's output parts one at a time: a part's shards' inverted
 * lists are merged one at a time into its first shard (FAISS merge_into), the part is tuned,
 * measured and written exactly as a single-machine build does (build_index's own finishing and
 * publishing code, the same names and infos as `--nb_indices_to_keep`), and freed before the next
 * part. Memory: one part plus one input. A part of more than {@link MERGE_FANOUT} shards is merged
 * in two stages (Python's rule): contiguous groups first, each kept in T/merge with a done marker
 * (a re-run reuses them), then the groups. All parts are published as one unit, and T is cleared.
 *
 * After publishing, T keeps only `merged.json` (which outputs this plan became), so a re-run is a
 * no-op; remove T when done with it.
 *
 * @example
 * const r = await mergeShards({ temporaryIndicesFolder: "/nfs/T" });
 * r.index?.free(); // null with N parts (r.infos then holds each part's infos by path)
 */
import { copyFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Index, nativeNonFiniteScan } from "../../ffi/faiss.ts";
import { idsFileName, resetIdsFolder } from "../io/ids.ts";
import { openEmbeddings } from "../io/input.ts";
import {
  checksumFile,
  fetchToLocal,
  isS3,
  listStored,
  publishLocalFile,
  readStoredText,
  removeStored,
  removeStoredTree,
  stagingPathFor,
  storageJoin,
  storedSize,
  writeStoredAtomic,
} from "../io/storage.ts";
import { writeJsonPython } from "../output/python_json.ts";
import { claimOutputs, Publication } from "../output/publish.ts";
import {
  checkShardNames,
  DistributedError,
  type DistributedPart,
  type DistributedPlan,
  filesForRange,
  MERGE_FANOUT,
  MERGE_FOLDER,
  MERGE_GROUP_DONE_FORMAT,
  mergeGroupFiles,
  type MergeGroupDone,
  mergeStageGroups,
  type RowRange,
  type ShardDone,
  shardDoneMismatch,
} from "../plan/shards.ts";
import type { PlannedPart } from "../plan/build_plan.ts";
import { FAST_METRICS_QUERIES } from "../measure/fast_metrics.ts";
import { TUNING_QUERIES } from "../measure/tune_parameters.ts";
import { type BuildReporter, silentReporter } from "../reporter.ts";
import { assertWritable, type BuildIndexResult, commitOutputs, finishIndex, type IndexInfos, writeOutputs } from "./build_index.ts";
import { withFaissThreads } from "./faiss_threads.ts";
import { changedSincePlan, checkTemporaryFolder, folderPaths, planSnapshot, readPlanIn, scratchFolder } from "./shard_folder.ts";

export interface MergeShardsOptions {
  temporaryIndicesFolder: string;
  /** FAISS threads; null/undefined: the plan's nb_cores */
  nbCores?: number | null;
  /** Most inputs of one merge before a part is merged in two stages (default {@link MERGE_FANOUT}; tests lower it). */
  mergeFanout?: number;
  reporter?: BuildReporter;
}

/** What merge_shards records in T once the outputs are published. */
interface MergedMarker {
  planHash: string;
  /** every part's infos by its index path */
  infos: Record<string, IndexInfos>;
}

/** build_index's result (the index with one part; null and the infos by path with N parts), and whether T was merged already. */
export type MergeShardsResult = BuildIndexResult & { alreadyMerged: boolean };

/**
 * Merges, tunes and publishes. Returns the merged index (the caller frees it) and its infos; with N
 * parts, or when T says this plan was merged already, `index: null` and the infos by index path.
 */
export async function mergeShards(options: MergeShardsOptions): Promise<MergeShardsResult> {
  const log = options.reporter ?? silentReporter;
  const t = options.temporaryIndicesFolder;
  checkTemporaryFolder(t);
  const paths = folderPaths(t);
  const mergedText = await readStoredText(paths.merged);
  const plan = await readPlanIn(t);
  if (mergedText !== null) {
    const marker = JSON.parse(mergedText) as MergedMarker;
    // A plan left beside the marker is its own (a merge interrupted while clearing T), unless plan_build wrote a new one.
    if (plan === null || plan.hash === marker.planHash) {
      log.info(`${paths.merged}: plan ${marker.planHash.slice(0, 12)}… was already merged into ${Object.keys(marker.infos).join(", ")}: nothing to do`);
      await clearFolder(t);
      return { index: null, infos: marker.infos, alreadyMerged: true };
    }
  }
  if (plan === null) throw new DistributedError(`merge_shards: ${paths.plan} not found: run plan_build with --temporary_indices_folder=${t} first`);
  const dones = await checkShards(plan, t);
  const changed = changedSincePlan(plan.inputs.files);
  if (changed) throw new DistributedError(changed);
  const fanout = options.mergeFanout ?? MERGE_FANOUT;

  const s = plan.settings;
  const remote = isS3(s.indexPath!);
  if (!remote) {
    assertWritable("index_path", s.indexPath!);
    assertWritable("index_infos_path", s.indexInfosPath!);
    if (plan.inputs.idColumns && s.idsPath) assertWritable("ids_path", s.idsPath);
  }
  const parts: PlannedPart[] = plan.parts.map((p) => ({ indexPath: p.indexPath, indexInfosPath: p.indexInfosPath, rows: p.rows }));
  const single = parts.length === 1;
  // Local outputs: one build per index path, as build_index. S3 has no lock: one merge per plan.
  const releaseLock = remote
    ? () => {}
    : claimOutputs(s.indexPath!, [s.indexPath!, s.indexInfosPath!, ...(s.idsPath ? [s.idsPath] : [])], (m) => log.warning(m));
  const byPath: Record<string, IndexInfos> = {};
  let kept: Index | null = null;
  try {
    await withFaissThreads(options.nbCores ?? s.nbCores ?? 0, async () => {
      const publication = remote ? null : new Publication(s.indexPath!);
      try {
        if (plan.inputs.idColumns && s.idsPath) {
          await log.timed("Gathering the shards' ids files", 1, () =>
            remote ? publishIdsToS3(plan, t, dones) : gatherIds(plan, t, dones, publication!.dir("ids_path", s.idsPath!)));
        }
        for (const [p, part] of plan.parts.entries()) {
          const what = single ? `${plan.shards.length} shards` : `part ${p + 1} of ${parts.length}: shards ${part.shards.start}..${part.shards.end - 1}`;
          const mergeStart = performance.now();
          const merged = await log.timed(`Merging ${what}`, 1, () => mergePart(plan, p, t, dones, fanout, log));
          // The shards were added elsewhere: the merge is this machine's add phase, and the fast
          // metrics get no more time than it took.
          const mergeMs = performance.now() - mergeStart;
          try {
            await using probe = await probeCollection(plan, part.rows);
            const save = (infos: IndexInfos) =>
              remote ? publishPartToS3(merged, infos, plan, parts[p]) : writeOutputs(publication!, merged, parts[p], infos);
            byPath[part.indexPath] = await finishIndex(merged, shape(plan), parts[p], s, probe, log, "", mergeMs, save);
          } catch (e) {
            merged.free();
            throw e;
          }
          // One part in memory at a time; the only part of a single-index build goes to the caller.
          if (single) kept = merged;
          else merged.free();
        }
        if (publication) commitOutputs(publication, s, { parts }, planSnapshot(plan.inputs.files));
      } catch (e) {
        publication?.abort();
        throw e;
      }
    });
  } catch (e) {
    (kept as Index | null)?.free();
    throw e;
  } finally {
    releaseLock();
  }
  const marker: MergedMarker = { planHash: plan.hash, infos: byPath };
  await writeStoredAtomic(paths.merged, JSON.stringify(marker, null, 2) + "\n");
  await clearFolder(t);
  if (single) return { index: kept!, infos: byPath[parts[0].indexPath!], alreadyMerged: false };
  return { index: null, infos: byPath, alreadyMerged: false };
}

/**
 * Tuning and fast metrics read a part's first rows: a collection of only the files that hold them,
 * read with the part's global row numbers.
 */
async function probeCollection(plan: DistributedPlan, rows: RowRange) {
  const probeRows = Math.min(rows.end - rows.start, Math.max(TUNING_QUERIES, FAST_METRICS_QUERIES));
  const sub = filesForRange(plan.inputs.files, { start: rows.start, end: rows.start + probeRows });
  const embs = await openEmbeddings(sub.files.map((f) => f.location), {
    fileFormat: plan.inputs.fileFormat,
    embeddingColumnName: plan.inputs.embeddingColumnName,
    nonFiniteScan: nativeNonFiniteScan(),
  });
  const base = sub.files[0].startRow;
  return {
    read: (start: number, end: number) => embs.read(start - base, end - base),
    [Symbol.asyncDispose]: () => embs.close(),
  };
}

function shape(plan: DistributedPlan) {
  return { dimension: plan.inputs.dimension, indexKey: plan.indexKey };
}

/** Uploads the ids files to S3 (before any part, so a reader that finds a part's infos finds its ids). */
async function publishIdsToS3(plan: DistributedPlan, t: string, dones: readonly ShardDone[]): Promise<void> {
  const s = plan.settings;
  const scratch = scratchFolder();
  try {
    const local = join(scratch.path, "ids");
    await gatherIds(plan, t, dones, local);
    await removeStoredTree(s.idsPath!);
    for (const name of readdirSync(local).sort()) await publishLocalFile(join(local, name), storageJoin(s.idsPath!, name));
  } finally {
    scratch.dispose();
  }
}

/**
 * Uploads one part to S3: the index, then its index_infos.json, so a reader that finds the infos
 * finds a complete index (each object appears whole when its upload completes).
 */
async function publishPartToS3(index: Index, infos: IndexInfos, plan: DistributedPlan, part: PlannedPart): Promise<void> {
  const changed = changedSincePlan(plan.inputs.files);
  if (changed) throw new DistributedError(changed);
  const scratch = scratchFolder();
  try {
    const staged = join(scratch.path, "index");
    index.write(staged);
    await publishLocalFile(staged, part.indexPath!);
    await writeStoredAtomic(part.indexInfosPath!, writeJsonPython(infos));
  } finally {
    scratch.dispose();
  }
}

/** Every shard present, done for this plan, nothing foreign: the done markers, in shard order. */
async function checkShards(plan: DistributedPlan, t: string): Promise<ShardDone[]> {
  const paths = folderPaths(t);
  const n = plan.shards.length;
  const problem = checkShardNames(await listStored(paths.shards), n, plan.inputs.idColumns !== null);
  if (problem) throw new DistributedError(`merge_shards: ${t}: ${problem}`);
  const dones: ShardDone[] = [];
  for (let i = 0; i < n; i++) {
    const f = paths.shard(i, n);
    const text = await readStoredText(f.done);
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(text ?? "null");
    } catch { /* reported below */ }
    const why = shardDoneMismatch(parsed, plan, i, f.doneName);
    if (why) throw new DistributedError(`merge_shards: ${t}: ${why}`);
    dones.push(parsed as ShardDone);
  }
  return dones;
}

/**
 * Part p of the plan, merged from its shards: straight into its first shard when it has at most
 * `fanout` shards, else in two stages ({@link mergeStageGroups}). The part must hold exactly its rows.
 */
async function mergePart(plan: DistributedPlan, p: number, t: string, dones: readonly ShardDone[], fanout: number, log: BuildReporter): Promise<Index> {
  const part = plan.parts[p];
  const groups = mergeStageGroups(part.shards, fanout);
  let merged: Index;
  if (groups.length === 1) merged = await mergeShardRange(plan, part.shards, t, dones, log);
  else {
    log.info(`Part ${p + 1}: ${part.shards.end - part.shards.start} shards > ${fanout}: merging in two stages (${groups.length} groups, then the groups)`);
    const scratch = scratchFolder();
    try {
      const groupDones: MergeGroupDone[] = [];
      for (const [g, shards] of groups.entries()) groupDones.push(await mergeGroup(plan, p, g, shards, t, dones, scratch.path, log));
      merged = await mergeInputs(groups.length, `Part ${p + 1}: merging groups`, log, (g) => readChecked(
        storageJoin(t, mergeGroupFiles(p, g).index), groupDones[g].index, scratch.path, `merge group ${g} of part ${p + 1}`,
      ));
    } finally {
      scratch.dispose();
    }
  }
  const want = part.rows.end - part.rows.start;
  if (merged.ntotal !== want) {
    merged.free();
    throw new DistributedError(`merge_shards: part ${p + 1} holds ${merged.ntotal} vectors after merging, the plan has ${want}`);
  }
  return merged;
}

/** The shards `[shards.start, shards.end)` merged, in order, into the first of them. */
async function mergeShardRange(plan: DistributedPlan, shards: RowRange, t: string, dones: readonly ShardDone[], log: BuildReporter): Promise<Index> {
  const paths = folderPaths(t);
  const n = plan.shards.length;
  const scratch = scratchFolder();
  try {
    return await mergeInputs(shards.end - shards.start, "Merging", log, (k) => {
      const i = shards.start + k;
      return readChecked(paths.shard(i, n).index, dones[i].index, scratch.path, `shard ${i}`, `run add_shard --shard=${i} again`);
    });
  } finally {
    scratch.dispose();
  }
}

/** Reads input 0, then merges inputs 1 … count−1 into it one at a time: memory is the result plus one input. */
async function mergeInputs(count: number, label: string, log: BuildReporter, read: (k: number) => Promise<Index>): Promise<Index> {
  let merged: Index | null = null;
  try {
    const bar = log.progress(label, count, "indices");
    for (let k = 0; k < count; k++) {
      const next = await read(k);
      if (merged === null) merged = next;
      else {
        try {
          merged.mergeFrom(next);
        } finally {
          next.free();
        }
      }
      bar.update(k + 1);
    }
    bar.finish();
    return merged!;
  } catch (e) {
    merged?.free();
    throw e;
  }
}

/**
 * First stage of a two-stage merge: group g of part p, merged from its shards and kept in T/merge
 * (index, then a done marker with its checksum). A group whose marker matches is reused: a merge
 * run again after a crash does not redo it.
 */
async function mergeGroup(
  plan: DistributedPlan,
  p: number,
  g: number,
  shards: RowRange,
  t: string,
  dones: readonly ShardDone[],
  scratch: string,
  log: BuildReporter,
): Promise<MergeGroupDone> {
  const f = mergeGroupFiles(p, g);
  const indexAt = storageJoin(t, f.index);
  const doneAt = storageJoin(t, f.done);
  const want = dones.slice(shards.start, shards.end).reduce((n, d) => n + d.ntotal, 0);
  const previousText = await readStoredText(doneAt);
  if (previousText !== null) {
    const previous = JSON.parse(previousText) as MergeGroupDone;
    if (
      previous.format === MERGE_GROUP_DONE_FORMAT && previous.planHash === plan.hash && previous.part === p && previous.group === g &&
      previous.shards.start === shards.start && previous.shards.end === shards.end && previous.ntotal === want &&
      (await storedSize(indexAt)) === previous.index.bytes
    ) {
      log.info(`${f.done}: shards ${shards.start}..${shards.end - 1} already merged`);
      return previous;
    }
    await removeStored(doneAt);
  }
  const merged = await mergeShardRange(plan, shards, t, dones, log);
  try {
    const staged = stagingPathFor(indexAt, scratch);
    merged.write(staged);
    const sum = await checksumFile(staged);
    await publishLocalFile(staged, indexAt);
    const done: MergeGroupDone = {
      format: MERGE_GROUP_DONE_FORMAT, planHash: plan.hash, part: p, group: g, shards, ntotal: merged.ntotal, index: { name: f.index, ...sum },
    };
    await writeStoredAtomic(doneAt, JSON.stringify(done, null, 2) + "\n");
    return done;
  } finally {
    merged.free();
  }
}

/** An index file of T, refused when its bytes are not the ones its done marker records. */
async function readChecked(location: string, want: { name: string; bytes: number; sha256: string }, scratch: string, what: string, fix = "run merge_shards again"): Promise<Index> {
  const local = await fetchToLocal(location, scratch);
  try {
    const sum = await checksumFile(local.path);
    if (sum.sha256 !== want.sha256 || sum.bytes !== want.bytes) {
      throw new DistributedError(
        `merge_shards: ${want.name}: checksum ${sum.sha256.slice(0, 12)}… (${sum.bytes} bytes) is not the one its done marker records ` +
          `(${want.sha256.slice(0, 12)}…, ${want.bytes} bytes): ${fix}`,
      );
    }
    return Index.read(local.path);
  } finally {
    if (local.temporary) await removeStored(local.path);
  }
}

/**
 * Copies each shard's ids file, checked against its done marker, into `folder` as Python names the
 * file of Spark task i (`part-{i:08d}-{uuid}.parquet`): read in name order, the rows come back in order.
 */
async function gatherIds(plan: DistributedPlan, t: string, dones: readonly ShardDone[], folder: string): Promise<void> {
  const paths = folderPaths(t);
  const n = plan.shards.length;
  await resetIdsFolder(folder);
  const scratch = scratchFolder();
  try {
    for (let i = 0; i < n; i++) {
      const f = paths.shard(i, n);
      const local = await fetchToLocal(f.ids, scratch.path);
      try {
        const sum = await checksumFile(local.path);
        const want = dones[i].ids!;
        if (sum.sha256 !== want.sha256 || sum.bytes !== want.bytes) {
          throw new DistributedError(`merge_shards: ${f.idsName}: checksum ${sum.sha256.slice(0, 12)}… is not the one its done marker records (${want.sha256.slice(0, 12)}…): run add_shard --shard=${i} again`);
        }
        copyFileSync(local.path, join(folder, idsFileName(i)));
      } finally {
        if (local.temporary) await removeStored(local.path);
      }
    }
  } finally {
    scratch.dispose();
  }
}

/** Removes everything in T but merged.json. */
async function clearFolder(t: string): Promise<void> {
  const paths = folderPaths(t);
  await removeStoredTree(paths.shards);
  await removeStoredTree(storageJoin(t, MERGE_FOLDER));
  await removeStored(paths.trained);
  await removeStored(paths.plan);
}
