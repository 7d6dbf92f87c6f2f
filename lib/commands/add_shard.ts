/**
 * `add_shard`, phase 2 of a distributed build: one array task. Reads the plan in T, picks its shard
 * (`--shard`, or SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX / AWS_BATCH_JOB_ARRAY_INDEX), opens only
 * the input files that hold the shard's rows, adds them to a copy of the trained index with their
 * global row numbers as ids, and publishes the shard's index (staged under a hidden name, then
 * renamed or uploaded whole) before its done marker, which records the index's checksum.
 *
 * Safe to retry or duplicate: a shard whose done marker matches the plan and whose index has the
 * recorded size is left alone (no-op); a task killed mid-write leaves only a hidden staging file;
 * two copies of one task publish the same file names, so one copy of the shard remains.
 *
 * @example
 * await addShard({ temporaryIndicesFolder: "/nfs/T", shard: 3 });
 */
import process from "node:process";
import { Index, nativeNonFiniteScan } from "../../ffi/faiss.ts";
import { openEmbeddings } from "../io/input.ts";
import { checksumFile, fetchToLocal, publishLocalFile, readStoredText, removeStored, stagingPathFor, storedSize, writeStoredAtomic } from "../io/storage.ts";
import { idsParquetBytes } from "../io/ids.ts";
import { DistributedError, filesForRange, resolveShardIndex, SHARD_DONE_FORMAT, type ShardDone, shardDoneMismatch, sha256Hex, shardThreads } from "../plan/shards.ts";
import { type BuildReporter, silentReporter } from "../reporter.ts";
import { withFaissThreads } from "./faiss_threads.ts";
import { changedSincePlan, checkTemporaryFolder, folderPaths, requirePlan, scratchFolder } from "./shard_folder.ts";

/** Test hook: add_shard of this shard number SIGKILLs itself after staging its index, before publishing it. */
export const KILL_BEFORE_PUBLISH_ENV = "AUTOFAISS_TEST_KILL_ADD_SHARD_BEFORE_PUBLISH";
/** Test hook: add_shard waits this many milliseconds after staging its index, before publishing it. */
export const PAUSE_BEFORE_PUBLISH_ENV = "AUTOFAISS_TEST_PAUSE_ADD_SHARD_BEFORE_PUBLISH_MS";

export interface AddShardOptions {
  temporaryIndicesFolder: string;
  /** null/undefined: from the environment */
  shard?: number | null;
  /** FAISS threads; null/undefined: SLURM_CPUS_PER_TASK, else the plan's nb_cores ({@link shardThreads}) */
  nbCores?: number | null;
  /** Where array-task and Slurm CPU variables are read (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  reporter?: BuildReporter;
}

/** What one add_shard run did. */
export interface AddShardResult {
  shard: number;
  /** "--shard" or the variable the index came from */
  source: string;
  /** true: the shard was already done, nothing was written */
  skipped: boolean;
  done: ShardDone;
}

export async function addShard(options: AddShardOptions): Promise<AddShardResult> {
  const log = options.reporter ?? silentReporter;
  const t = options.temporaryIndicesFolder;
  checkTemporaryFolder(t);
  const plan = await requirePlan(t, "add_shard");
  const nbShards = plan.shards.length;
  const { shard, source } = resolveShardIndex(options.shard ?? null, options.env ?? process.env, nbShards);
  const range = plan.shards[shard];
  const paths = folderPaths(t);
  const files = paths.shard(shard, nbShards);
  log.info(`Shard ${shard} of ${nbShards} (from ${source}): rows [${range.start}, ${range.end})`);

  const previous = await readStoredText(files.done);
  if (previous !== null) {
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(previous);
    } catch { /* a damaged marker is redone */ }
    const why = shardDoneMismatch(parsed, plan, shard, files.doneName);
    const done = parsed as ShardDone;
    if (why === null && (await storedSize(files.index)) === done.index.bytes) {
      log.info(`Shard ${shard} is already done (${files.doneName}): nothing to do`);
      return { shard, source, skipped: true, done };
    }
    log.warning(`Shard ${shard}: redoing it: ${why ?? `${files.indexName} does not have the ${done.index.bytes} bytes its done marker records`}`);
    // The marker goes first: until the new one is written, the shard is not done.
    await removeStored(files.done);
  }

  const sub = filesForRange(plan.inputs.files, range);
  const changed = changedSincePlan(sub.files);
  if (changed) throw new DistributedError(changed);

  const env = options.env ?? process.env;
  const { threads, source: threadsFrom } = shardThreads(options.nbCores ?? null, env, plan.settings.nbCores ?? null);
  log.info(`Using ${threads === 0 ? "every core" : `${threads} FAISS threads`} (from ${threadsFrom})`);
  return await withFaissThreads(threads, async () => {
    const scratch = scratchFolder();
    let index: Index | undefined;
    try {
      index = await log.timed("-> Reading the trained index", 2, () => readTrainedIndex(paths.trained, plan.trained.sha256, scratch.path));
      const opened = await openEmbeddings(sub.files.map((f) => f.location), {
        fileFormat: plan.inputs.fileFormat,
        embeddingColumnName: plan.inputs.embeddingColumnName,
        nonFiniteScan: nativeNonFiniteScan(),
        ...(plan.inputs.idColumns ? { idColumns: plan.inputs.idColumns } : {}),
      });
      await using embs = opened;
      // The shard's id columns, gathered for one ids file (Python writes one per Spark task).
      const idValues: Record<string, unknown[]> | null = plan.inputs.idColumns ? Object.fromEntries(embs.idColumns.map((c) => [c.name, []])) : null;
      const expectedRows = sub.files.reduce((n, f) => n + f.rows, 0);
      if (embs.count !== expectedRows || embs.dimension !== plan.inputs.dimension) {
        throw new DistributedError(
          `embeddings: ${sub.files.map((f) => f.location).join(", ")} now hold ${embs.count} vectors of dim ${embs.dimension}, ` +
            `plan_build saw ${expectedRows} of dim ${plan.inputs.dimension}; run plan_build again in a new folder`,
        );
      }
      const base = sub.files[0].startRow;
      const d = plan.inputs.dimension;
      const addCallRows = plan.adding.addCallRows;
      const target = index;
      await log.timed(`-> Adding rows [${range.start}, ${range.end}) to shard ${shard}`, 2, async () => {
        const bar = log.progress(`Shard ${shard}`, range.end - range.start, "vectors");
        const ids = new BigInt64Array(Math.max(1, addCallRows));
        for await (const batch of embs.batches(plan.adding.readBatchRows, { start: sub.start, end: sub.end, reuse: true })) {
          // At most addCallRows rows per FAISS call: an OPQ pre-transform copies its whole input.
          for (let i = 0; i < batch.rows; i += addCallRows) {
            const n = Math.min(addCallRows, batch.rows - i);
            const first = base + batch.startId + i;
            for (let j = 0; j < n; j++) ids[j] = BigInt(first + j);
            target.addWithIds(batch.vectors.subarray(i * d, (i + n) * d), ids.subarray(0, n));
            bar.update(first + n - range.start);
          }
          if (idValues) for (const name of Object.keys(idValues)) for (const v of batch.ids?.[name] ?? []) idValues[name].push(v);
        }
        bar.finish();
      });
      if (target.ntotal !== range.end - range.start) {
        throw new DistributedError(`add_shard: shard ${shard} holds ${target.ntotal} vectors after adding, expected ${range.end - range.start}`);
      }

      const done = await log.timed(`-> Publishing ${files.indexName}`, 2, async () => {
        const staged = stagingPathFor(files.index, scratch.path);
        target.write(staged);
        const sum = await checksumFile(staged);
        // Tests kill or cancel the task here: the staged file exists, nothing is published yet.
        const pause = Number(process.env[PAUSE_BEFORE_PUBLISH_ENV] ?? 0);
        if (pause > 0) await new Promise((r) => setTimeout(r, pause));
        if (process.env[KILL_BEFORE_PUBLISH_ENV] === String(shard)) process.kill(process.pid, "SIGKILL");
        await publishLocalFile(staged, files.index);
        let ids: ShardDone["ids"] = null;
        if (idValues) {
          const bytes = idsParquetBytes(files.ids, shard, { rows: range.end - range.start, startId: range.start, ids: idValues }, embs.idColumns);
          await writeStoredAtomic(files.ids, bytes);
          ids = { name: files.idsName, bytes: bytes.byteLength, sha256: sha256Hex(bytes) };
        }
        const marker: ShardDone = {
          format: SHARD_DONE_FORMAT,
          planHash: plan.hash,
          shard,
          start: range.start,
          end: range.end,
          ntotal: target.ntotal,
          index: { name: files.indexName, ...sum },
          ids,
        };
        await writeStoredAtomic(files.done, JSON.stringify(marker, null, 2) + "\n");
        return marker;
      });
      return { shard, source, skipped: false, done };
    } finally {
      index?.free();
      scratch.dispose();
    }
  });
}

/** The trained index of T, refused when it is not the one the plan names. */
export async function readTrainedIndex(location: string, sha256: string, scratch: string): Promise<Index> {
  const local = await fetchToLocal(location, scratch);
  try {
    const sum = await checksumFile(local.path);
    if (sum.sha256 !== sha256) {
      throw new DistributedError(`${location}: checksum ${sum.sha256.slice(0, 12)}… is not the plan's ${sha256.slice(0, 12)}…: the folder was changed after plan_build`);
    }
    return Index.read(local.path);
  } finally {
    if (local.temporary) await removeStored(local.path);
  }
}
