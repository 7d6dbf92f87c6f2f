/**
 * `merge_shards`, phase 3 of a distributed build, on one machine: checks that every shard of the
 * plan is done and belongs to it (a clear error naming the missing or foreign shard), verifies each
 * shard's checksum, merges the shards' inverted lists one at a time into the first (FAISS
 * merge_into: memory is the merged index plus one shard), then tunes, measures and publishes exactly
 * as a single-machine build does (build_index's own finishing and publishing code), and clears T.
 *
 * After publishing, T keeps only `merged.json` (which outputs this plan became), so a re-run is a
 * no-op; remove T when done with it.
 *
 * @example
 * const { index, infos } = await mergeShards({ temporaryIndicesFolder: "/nfs/T" });
 * index?.free();
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
  storageJoin,
  writeStoredAtomic,
} from "../io/storage.ts";
import { writeJsonPython } from "../output/python_json.ts";
import { Publication } from "../output/publish.ts";
import { checkShardNames, DistributedError, type DistributedPlan, filesForRange, type ShardDone, shardDoneMismatch } from "../plan/shards.ts";
import { FAST_METRICS_QUERIES } from "../measure/fast_metrics.ts";
import { TUNING_QUERIES } from "../measure/tune_parameters.ts";
import { type BuildReporter, silentReporter } from "../reporter.ts";
import { assertWritable, claimOutputs, commitOutputs, finishIndex, type IndexInfos, writeOutputs } from "./build_index.ts";
import { withFaissThreads } from "./faiss_threads.ts";
import { changedSincePlan, checkTemporaryFolder, folderPaths, planSnapshot, readPlanIn, scratchFolder } from "./shard_folder.ts";

export interface MergeShardsOptions {
  temporaryIndicesFolder: string;
  /** FAISS threads; null/undefined: the plan's nb_cores */
  nbCores?: number | null;
  reporter?: BuildReporter;
}

/** What merge_shards records in T once the outputs are published. */
interface MergedMarker {
  planHash: string;
  indexPath: string;
  indexInfosPath: string;
  infos: IndexInfos;
}

/**
 * Merges, tunes and publishes. Returns the merged index (the caller frees it) and its infos, or
 * `index: null` with the recorded infos when T says this plan was merged already.
 */
export async function mergeShards(options: MergeShardsOptions): Promise<{ index: Index | null; infos: IndexInfos; alreadyMerged: boolean }> {
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
      log.info(`${paths.merged}: plan ${marker.planHash.slice(0, 12)}… was already merged into ${marker.indexPath}: nothing to do`);
      await clearFolder(t);
      return { index: null, infos: marker.infos, alreadyMerged: true };
    }
  }
  if (plan === null) throw new DistributedError(`merge_shards: ${paths.plan} not found: run plan_build with --temporary_indices_folder=${t} first`);
  const dones = await checkShards(plan, t);
  const changed = changedSincePlan(plan.inputs.files);
  if (changed) throw new DistributedError(changed);

  const s = plan.settings;
  const remote = isS3(s.indexPath!);
  if (!remote) {
    assertWritable("index_path", s.indexPath!);
    assertWritable("index_infos_path", s.indexInfosPath!);
    if (plan.inputs.idColumns && s.idsPath) assertWritable("ids_path", s.idsPath);
  }
  // Local outputs: one build per index path, as build_index. S3 has no lock: one merge per plan.
  const releaseLock = remote ? () => {} : claimOutputs(s, log);
  let result: { index: Index; infos: IndexInfos };
  try {
    result = await withFaissThreads(options.nbCores ?? s.nbCores ?? 0, async () => {
      const merged = await log.timed(`Merging ${plan.shards.length} shards`, 1, () => mergeAll(plan, t, dones, log));
      const part = { indexPath: s.indexPath, indexInfosPath: s.indexInfosPath, rows: { start: 0, end: plan.inputs.count } };
      if (remote) {
        try {
          await using embs = await probeCollection(plan);
          const infos = await finishIndex(merged, shape(plan), part, s, embs, log, (infos) => publishToS3(merged, infos, plan, t, dones));
          return { index: merged, infos };
        } catch (e) {
          merged.free();
          throw e;
        }
      }
      const publication = new Publication(s.indexPath!);
      try {
        if (plan.inputs.idColumns && s.idsPath) {
          await log.timed("Gathering the shards' ids files", 1, () => gatherIds(plan, t, dones, publication.dir("ids_path", s.idsPath!)));
        }
        await using embs = await probeCollection(plan);
        const infos = await finishIndex(merged, shape(plan), part, s, embs, log, (infos) => writeOutputs(publication, merged, part, infos));
        commitOutputs(publication, s, { parts: [part] }, planSnapshot(plan.inputs.files));
        return { index: merged, infos };
      } catch (e) {
        publication.abort();
        merged.free();
        throw e;
      }
    });
  } finally {
    releaseLock();
  }
  const marker: MergedMarker = { planHash: plan.hash, indexPath: s.indexPath!, indexInfosPath: s.indexInfosPath!, infos: result.infos };
  await writeStoredAtomic(paths.merged, JSON.stringify(marker, null, 2) + "\n");
  await clearFolder(t);
  return { ...result, alreadyMerged: false };
}

/** Tuning and fast metrics read the first rows: a collection of only the files that hold them. */
async function probeCollection(plan: DistributedPlan) {
  const probeRows = Math.min(plan.inputs.count, Math.max(TUNING_QUERIES, FAST_METRICS_QUERIES));
  const sub = filesForRange(plan.inputs.files, { start: 0, end: probeRows });
  return await openEmbeddings(sub.files.map((f) => f.location), {
    fileFormat: plan.inputs.fileFormat,
    embeddingColumnName: plan.inputs.embeddingColumnName,
    nonFiniteScan: nativeNonFiniteScan(),
  });
}

function shape(plan: DistributedPlan) {
  return { vectors: plan.inputs.count, dimension: plan.inputs.dimension, indexKey: plan.indexKey };
}

/**
 * Uploads the outputs to S3: the ids files, then the index, then index_infos.json last, so a reader
 * that finds the infos finds a complete index (each object appears whole when its upload completes).
 */
async function publishToS3(index: Index, infos: IndexInfos, plan: DistributedPlan, t: string, dones: readonly ShardDone[]): Promise<void> {
  const s = plan.settings;
  const changed = changedSincePlan(plan.inputs.files);
  if (changed) throw new DistributedError(changed);
  const scratch = scratchFolder();
  try {
    if (plan.inputs.idColumns && s.idsPath) {
      const local = join(scratch.path, "ids");
      await gatherIds(plan, t, dones, local);
      await removeStoredTree(s.idsPath);
      for (const name of readdirSync(local).sort()) await publishLocalFile(join(local, name), storageJoin(s.idsPath, name));
    }
    const staged = join(scratch.path, "index");
    index.write(staged);
    await publishLocalFile(staged, s.indexPath!);
    await writeStoredAtomic(s.indexInfosPath!, writeJsonPython(infos));
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

/** Reads shard 0, then merges every other shard into it, one at a time, each checked against its marker. */
async function mergeAll(plan: DistributedPlan, t: string, dones: readonly ShardDone[], log: BuildReporter): Promise<Index> {
  const paths = folderPaths(t);
  const n = plan.shards.length;
  const scratch = scratchFolder();
  let merged: Index | null = null;
  try {
    const bar = log.progress("Merging", n, "shards");
    for (let i = 0; i < n; i++) {
      const shard = await readShard(paths.shard(i, n).index, dones[i], i, scratch.path);
      if (merged === null) merged = shard;
      else {
        try {
          merged.mergeFrom(shard);
        } finally {
          shard.free();
        }
      }
      bar.update(i + 1);
    }
    bar.finish();
    if (merged!.ntotal !== plan.inputs.count) {
      throw new DistributedError(`merge_shards: the merged index holds ${merged!.ntotal} vectors, the plan has ${plan.inputs.count}`);
    }
    return merged!;
  } catch (e) {
    merged?.free();
    throw e;
  } finally {
    scratch.dispose();
  }
}

/** One shard's index, refused when its bytes are not the ones its done marker records. */
async function readShard(location: string, done: ShardDone, i: number, scratch: string): Promise<Index> {
  const local = await fetchToLocal(location, scratch);
  try {
    const sum = await checksumFile(local.path);
    if (sum.sha256 !== done.index.sha256 || sum.bytes !== done.index.bytes) {
      throw new DistributedError(
        `merge_shards: ${done.index.name}: checksum ${sum.sha256.slice(0, 12)}… (${sum.bytes} bytes) is not the one its done marker records ` +
          `(${done.index.sha256.slice(0, 12)}…, ${done.index.bytes} bytes): run add_shard --shard=${i} again`,
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
  await removeStored(paths.trained);
  await removeStored(paths.plan);
}
