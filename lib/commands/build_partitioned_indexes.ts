/**
 * `autofaiss build_partitioned_indexes` on one machine (Python needs Spark): one index per
 * partition folder at `<output_root_dir>/<last path component>/knn.index` + `index_infos.json`
 * (+ `ids/` with id columns); partitions of at least `big_index_threshold` rows are split into
 * `nb_splits_per_big_index` parts (`knn.index01 …`, see lib/commands/build_parts.ts); an optional
 * pre-trained `index_path` is filled for every partition instead of training one.
 *
 * Small partitions are built concurrently, each in a child process (./partition_child.ts: FAISS
 * calls block the JavaScript thread): at most one per core and `maximum_nb_threads` at once, each
 * with cores / concurrent builds FAISS threads, and started only while the memory reservations of
 * the running builds (lib/plan/partitions.ts `partitionReservation`: the partition's estimated
 * build memory plus room for its add batches, which is also the `current_memory_available` it is
 * given) fit in `current_memory_available`. Big partitions are built afterwards in this process,
 * one at a time, each with every core and the whole budget. A compiled binary runs itself as the
 * child; only a module loaded from a URL (no file, no binary to run) builds them one at a time here,
 * with a warning.
 *
 * @example
 * const infos = await buildPartitionedIndexes(["emb/partnerId=1", "emb/partnerId=2"], { outputRootDir: "out" });
 */
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import process from "node:process";
import { hasCapability, Index } from "../../ffi/faiss.ts";
import { BuildError, buildIndex, type BuildIndexOptions, buildSettings, type IndexInfos } from "./build_index.ts";
import { type BuildReporter, silentReporter } from "../reporter.ts";
import { openEmbeddings } from "../io/input.ts";
import { planBuild } from "../plan/build_plan.ts";
import { formatMemory, parseMemory } from "../plan/units.ts";
import {
  admits,
  concurrentBuilds,
  partitionedOptionsError,
  type PartitionJob,
  partitionReservation,
  planPartitions,
  threadsPerBuild,
} from "../plan/partitions.ts";
import { PARTITIONED_DEFAULTS } from "./defaults.ts";
import { type ChildJob, childCommand, type ChildResult } from "./partition_child.ts";

export interface BuildPartitionedOptions
  extends Omit<BuildIndexOptions, "indexPath" | "indexInfosPath" | "idsPath" | "nbIndicesToKeep" | "saveOnDisk" | "trainedIndexPath" | "distributed"> {
  outputRootDir: string;
  /** A trained, empty index reused for every partition; needs `indexKey`. */
  indexPath?: string | null;
  nbSplitsPerBigIndex?: number;
  bigIndexThreshold?: number;
  /** At most this many small partitions are built at once (also bounded by the cores and memory). */
  maximumNbThreads?: number;
  /** Called as each small partition built in a child process finishes (what ran, where, when). */
  onChildBuild?: (run: ChildBuild) => void;
}

/** One small partition built in a child process. */
export interface ChildBuild {
  partition: string;
  pid: number;
  /** FAISS threads it was given */
  threads: number;
  /** bytes reserved for it, also its current_memory_available */
  reservation: number;
  /** wall-clock span of its build, measured in the child (ms since the epoch) */
  startMs: number;
  endMs: number;
}

/** One partition's result: its infos, or the infos of each part by path for a split big partition. */
export type PartitionInfos = IndexInfos | Record<string, IndexInfos>;

/** Builds every partition; returns the infos of big partitions first, then the small ones (Python's order). */
export async function buildPartitionedIndexes(partitions: readonly string[], o: BuildPartitionedOptions): Promise<PartitionInfos[]> {
  const log: BuildReporter = o.reporter ?? silentReporter;
  const nbSplits = o.nbSplitsPerBigIndex ?? PARTITIONED_DEFAULTS.nb_splits_per_big_index;
  const threshold = o.bigIndexThreshold ?? PARTITIONED_DEFAULTS.big_index_threshold;
  const maximumNbThreads = o.maximumNbThreads ?? PARTITIONED_DEFAULTS.maximum_nb_threads;
  const problem = partitionedOptionsError({
    partitions,
    outputRootDir: o.outputRootDir,
    // null means "found in the file" here (the reader's discovery), which is not empty
    embeddingColumnName: o.embeddingColumnName === null || o.embeddingColumnName === undefined ? "(discovered)" : o.embeddingColumnName,
    indexKey: o.indexKey ?? null,
    indexPath: o.indexPath ?? null,
    nbSplitsPerBigIndex: nbSplits,
    bigIndexThreshold: threshold,
    maximumNbThreads,
  });
  if (problem !== null) throw new BuildError(problem);

  const fileFormat = o.fileFormat ?? PARTITIONED_DEFAULTS.file_format;
  const counts: { partition: string; rows: number; dim: number }[] = [];
  await log.timed("Counting the vectors of every partition", 1, async () => {
    for (const partition of partitions) {
      await using embs = await openEmbeddings(partition, { fileFormat, embeddingColumnName: o.embeddingColumnName, idColumns: o.idColumns });
      counts.push({ partition, rows: embs.count, dim: embs.dimension });
    }
  });
  if (o.indexKey) {
    // Python instantiates the key on the first partition's dimension: a bad key fails before any build.
    Index.factory(counts[0].dim, o.indexKey, (o.metricType ?? "ip").toLowerCase() === "l2" ? "l2" : "ip").free();
  }
  const jobs = planPartitions(counts, o.outputRootDir, threshold, nbSplits);
  log.info(`${jobs.filter((j) => j.big).length} big partition(s) (>= ${threshold} vectors, ${nbSplits} part(s) each), ${jobs.filter((j) => !j.big).length} small`);

  const { onChildBuild: _hook, indexPath: trainedIndexPath, ...rest } = o;
  const optionsFor = (job: PartitionJob): BuildIndexOptions => ({
    ...rest,
    reporter: undefined,
    fileFormat,
    indexPath: job.indexPath,
    indexInfosPath: job.infosPath,
    idsPath: o.idColumns?.length ? job.idsPath : null,
    saveOnDisk: true,
    nbIndicesToKeep: job.parts,
    trainedIndexPath: trainedIndexPath ? resolve(trainedIndexPath) : null,
  });

  const results: PartitionInfos[] = new Array(jobs.length);
  const small = jobs.map((job, at) => ({ job, at })).filter(({ job }) => !job.big);
  await buildSmall(small, optionsFor, o, maximumNbThreads, log, results);
  for (const [at, job] of jobs.entries()) {
    if (!job.big) continue;
    results[at] = await buildHere(job, { ...optionsFor(job), reporter: o.reporter }, log);
  }
  return results;
}

async function buildHere(job: PartitionJob, options: BuildIndexOptions, log: BuildReporter): Promise<PartitionInfos> {
  const r = await log.timed(`Building the index of ${job.partition} (${job.rows} vectors) into ${job.indexFiles.join(", ")}`, 1, () =>
    buildIndex(job.partition, options));
  r.index?.free();
  return r.infos;
}

/**
 * Builds the small partitions: in child processes, as many at once as the cores, maximum_nb_threads
 * and the memory reservations allow (in input order); or one at a time in this process when the
 * child module cannot be run.
 */
async function buildSmall(
  small: { job: PartitionJob; at: number }[],
  optionsFor: (job: PartitionJob) => BuildIndexOptions,
  o: BuildPartitionedOptions,
  maximumNbThreads: number,
  log: BuildReporter,
  results: PartitionInfos[],
): Promise<void> {
  if (small.length === 0) return;
  const cores = o.nbCores ?? navigatorCores();
  const slots = concurrentBuilds(cores, maximumNbThreads, small.length);
  const child = childCommand();
  if (slots === 1 || child === null) {
    if (child === null && slots > 1) {
      log.warning(`build_partitioned_indexes: this binary cannot start child processes for concurrent builds; building the ${small.length} small partitions one at a time`);
    }
    for (const { job, at } of small) results[at] = await buildHere(job, { ...optionsFor(job), reporter: o.reporter }, log);
    return;
  }
  const threads = threadsPerBuild(cores, slots);
  const current = parseMemory(o.currentMemoryAvailable ?? PARTITIONED_DEFAULTS.current_memory_available);
  // Each partition's key and memory need, decided here as its build would (same settings): the
  // child gets the key, so its smaller memory budget cannot change the selection.
  const planned = small.map(({ job, at }) => {
    const options = optionsFor(job);
    const plan = planBuild(buildSettings(options), { count: job.rows, dimension: job.dim });
    const reservation = partitionReservation(plan.memory.neededToBuild, current);
    const childOptions: BuildIndexOptions = {
      ...options,
      reporter: undefined,
      indexKey: plan.indexKey,
      // the key is fixed: the index budget no longer matters, and the headroom rule must not refuse the reservation
      maxIndexMemoryUsage: undefined,
      currentMemoryAvailable: `${reservation}B`,
      // without thread control in the library, nb_cores is an error; OMP_NUM_THREADS (set below) still holds
      nbCores: hasCapability("threads") ? threads : undefined,
    };
    return { job, at, reservation, childOptions };
  });
  log.info(`Building ${small.length} small partitions, up to ${slots} at once with ${threads} FAISS thread(s) each, within ${formatMemory(current)}`);

  let reserved = 0;
  let running = 0;
  let next = 0;
  let failure: Error | null = null;
  await new Promise<void>((done) => {
    const pump = () => {
      while (failure === null && next < planned.length &&
        admits({ running, reserved, slots, reservation: planned[next].reservation, currentMemoryAvailable: current })) {
        const p = planned[next++];
        running++;
        reserved += p.reservation;
        log.info(`Building the index of ${p.job.partition} (${p.job.rows} vectors) in a child process (${threads} thread(s), ${formatMemory(p.reservation)} reserved)`);
        runChild(child, p.job, p.childOptions, threads).then((r) => {
          results[p.at] = r.infos;
          o.onChildBuild?.({ partition: p.job.partition, pid: r.pid, threads, reservation: p.reservation, startMs: r.startMs, endMs: r.endMs });
        }, (e: Error) => {
          failure ??= e;
        }).finally(() => {
          running--;
          reserved -= p.reservation;
          if (running === 0 && (failure !== null || next >= planned.length)) done();
          else pump();
        });
      }
    };
    pump();
  });
  if (failure !== null) throw failure;
}

/** Runs one partition's build in a child process; rejects with its one-line error. */
function runChild(child: { command: string; args: string[] }, job: PartitionJob, options: BuildIndexOptions, threads: number): Promise<ChildResult & { pid: number }> {
  const payload: ChildJob = { embeddings: job.partition, options };
  return new Promise((resolveRun, reject) => {
    // OMP_NUM_THREADS bounds the child's FAISS threads with any FAISS library (nb_cores needs our extension)
    const env = { ...process.env, OMP_NUM_THREADS: String(threads) };
    const proc = spawn(child.command, [...child.args, JSON.stringify(payload)], { stdio: ["ignore", "pipe", "pipe"], env });
    let out = "";
    let err = "";
    proc.stdout!.setEncoding("utf8").on("data", (t: string) => (out += t));
    proc.stderr!.setEncoding("utf8").on("data", (t: string) => (err += t));
    proc.on("error", (e) => reject(new BuildError(`${job.partition}: cannot start the build process ${child.command}: ${e.message}`)));
    proc.on("close", (code, signal) => {
      if (code === 0) {
        try {
          resolveRun({ ...(JSON.parse(out.trim().split("\n").at(-1)!) as ChildResult), pid: proc.pid! });
          return;
        } catch {
          // fall through: an unreadable result is a failure
        }
      }
      const last = err.trim().split("\n").at(-1) || (signal ? `killed by ${signal}` : `exit code ${code}`);
      reject(new BuildError(`${job.partition}: ${last}`));
    });
  });
}

function navigatorCores(): number {
  return (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
}
