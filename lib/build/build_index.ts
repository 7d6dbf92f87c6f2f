/**
 * build_index end to end (spec §1.3, §3): read → select → pre-check → create → train on a uniform
 * sample → add in batches → tune → fast metrics → write index and index_infos.json.
 * Decisions come from the pure modules (selection, training_plan, tuning); this module does the I/O.
 *
 * @example
 * const { index, infos } = await buildIndex("embeddings/", { indexPath: "out/knn.index", maxIndexMemoryUsage: "4G" });
 * index?.free();
 */
import { closeSync, mkdirSync, openSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { GpuResources, gpuSupport, hasCapability, Index, type Metric, nativeNonFiniteScan, numGpus, setNumThreads } from "../../ffi/faiss.ts";
import { faissLibrary } from "../../ffi/library.ts";
import { useNonFiniteScan } from "../io/float.ts";
import { releaseNow } from "../release.ts";
import { type EmbeddingsInput, openEmbeddings } from "../io/input.ts";
import type { EmbeddingCollection } from "../io/collection.ts";
import { IdsWriter, resetIdsFolder } from "../io/ids.ts";
import { noIndexFitsMessage, optimalIndexKeys } from "../selection.ts";
import {
  addCallRows,
  constructionTimeEstimate,
  estimateMemoryForIndexCreation,
  headroomOk,
  memoryAvailableForAdding,
  needsTraining,
  optimalBatchSize,
  optimalTrainSize,
} from "../training_plan.ts";
import { estimatedIndexSizeBytes } from "../index_metadata.ts";
import { formatMemory, parseMemory } from "../units.ts";
import { FAST_METRICS_QUERIES, fastMetrics, type FastMetrics } from "./metrics.ts";
import { TUNING_QUERIES, tuneIndexParameters } from "./tune.ts";
import { type BuildReporter, silentReporter } from "./reporter.ts";
import { writeFileAtomic, writeJsonPython } from "./output.ts";

/** Defaults of build_index. Where the seed README and the Python code differ, the README wins (spec README rule 2). */
export const BUILD_DEFAULTS = {
  indexPath: "knn.index",
  indexInfosPath: "index_infos.json",
  saveOnDisk: true,
  fileFormat: "npy",
  maxIndexQueryTimeMs: 10.0,
  maxIndexMemoryUsage: "32GB", // seed README (Python code: "16G")
  minNearestNeighborsToRetrieve: 20,
  currentMemoryAvailable: "32GB",
  metricType: "ip",
  makeDirectMap: false,
  shouldBeMemoryMappable: false,
  nbIndicesToKeep: 1,
  /** Seed of the uniform training sample (Python takes the first vectors: no seed). */
  trainSeed: 0,
} as const;

/** What `embeddings` can be: folder(s)/file(s)/URL(s), or vectors in memory. */
export type { EmbeddingsInput };

export interface BuildIndexOptions {
  indexPath?: string | null;
  indexInfosPath?: string | null;
  idsPath?: string | null;
  saveOnDisk?: boolean;
  fileFormat?: string;
  embeddingColumnName?: string | null;
  idColumns?: string[] | null;
  indexKey?: string | null;
  indexParam?: string | null;
  maxIndexQueryTimeMs?: number;
  maxIndexMemoryUsage?: string;
  minNearestNeighborsToRetrieve?: number;
  currentMemoryAvailable?: string;
  useGpu?: boolean;
  metricType?: string;
  nbCores?: number | null;
  makeDirectMap?: boolean;
  shouldBeMemoryMappable?: boolean;
  distributed?: string | null;
  nbIndicesToKeep?: number;
  trainSeed?: number;
  /** Logs, timed steps and progress bars; silent by default. */
  reporter?: BuildReporter;
}

/** index_infos.json (spec §5.1), keys in Python's order. */
export interface IndexInfos extends FastMetrics {
  index_key: string;
  index_param: string;
  index_path: string | null;
}

/** A build_index failure the user can act on: the CLI prints its message on one line. */
export class BuildError extends Error {
  override readonly name = "BuildError";
}

function metricOf(metricType: string): Metric {
  const m = metricType.toLowerCase();
  if (m !== "ip" && m !== "l2") throw new BuildError(`metric_type: expected "ip" or "l2", got "${metricType}"`);
  return m;
}

function memoryOption(name: string, value: string): number {
  try {
    return parseMemory(value);
  } catch {
    throw new BuildError(`${name}: expected a memory string like 16G or 512MB, got "${value}"`);
  }
}

/** Fails before any work if `path` cannot be written (creates its folder, probes a file, removes it). */
function assertWritable(option: string, path: string): void {
  const probe = join(dirname(path), `.autofaiss-write-test-${process.pid}`);
  try {
    mkdirSync(dirname(path), { recursive: true });
    closeSync(openSync(probe, "w"));
    rmSync(probe);
  } catch (e) {
    throw new BuildError(`${option}: cannot write ${path}: ${(e as Error).message}`);
  }
}

/** Builds, tunes and (unless saveOnDisk is false) writes an index. The caller owns the returned index. */
export async function buildIndex(
  embeddings: EmbeddingsInput,
  options: BuildIndexOptions = {},
): Promise<{ index: Index; infos: IndexInfos }> {
  const o = options;
  const log = o.reporter ?? silentReporter;
  const saveOnDisk = o.saveOnDisk ?? BUILD_DEFAULTS.saveOnDisk;
  const metric = metricOf(o.metricType ?? BUILD_DEFAULTS.metricType);
  const nbIndicesToKeep = o.nbIndicesToKeep ?? BUILD_DEFAULTS.nbIndicesToKeep;
  if (o.distributed) {
    throw new BuildError(`distributed: "${o.distributed}" is not supported by this tool; builds run locally (leave distributed unset)`);
  }
  if (nbIndicesToKeep !== 1) {
    throw new BuildError(`nb_indices_to_keep: only 1 is supported (N-part output needs distributed mode), got ${nbIndicesToKeep}`);
  }
  if (o.useGpu) assertGpuSupport();
  if (o.nbCores != null && !hasCapability("threads")) {
    // An explicit thread count must not be dropped silently; OpenMP reads OMP_NUM_THREADS at start-up with any library.
    throw new BuildError(
      `nb_cores: the loaded FAISS library (${faissLibrary().path}) cannot set the thread count (autofaiss_set_num_threads missing); ` +
        `leave nb_cores unset and set OMP_NUM_THREADS=${o.nbCores} in the environment instead`,
    );
  }
  const indexPath = o.indexPath === undefined ? BUILD_DEFAULTS.indexPath : o.indexPath;
  const infosPath = o.indexInfosPath === undefined ? BUILD_DEFAULTS.indexInfosPath : o.indexInfosPath;
  if (saveOnDisk && (indexPath === null || infosPath === null)) {
    throw new BuildError("index_path and index_infos_path are required when save_on_disk is true");
  }
  const absIndexPath = indexPath === null ? null : resolve(indexPath);
  if (saveOnDisk) {
    assertWritable("index_path", absIndexPath!);
    assertWritable("index_infos_path", resolve(infosPath!));
  }

  // Memory budgets (spec §1.3 step 4). The seed's defaults (32GB index, 32GB RAM) fail Python's 10 %
  // headroom rule, so an index budget left at its default is lowered to 90 % of the RAM budget.
  const current = memoryOption("current_memory_available", o.currentMemoryAvailable ?? BUILD_DEFAULTS.currentMemoryAvailable);
  let maxIndex = memoryOption("max_index_memory_usage", o.maxIndexMemoryUsage ?? BUILD_DEFAULTS.maxIndexMemoryUsage);
  if (!headroomOk(current, maxIndex, nbIndicesToKeep)) {
    if (o.maxIndexMemoryUsage === undefined) {
      maxIndex = Math.floor(0.9 * current);
      log.info(`max_index_memory_usage defaults to ${formatMemory(maxIndex)} (90% of current_memory_available)`);
    } else {
      throw new BuildError(
        `You do not have enough memory to build this index, please increase current_memory_available or decrease max_index_memory_usage ` +
          `(max_index_memory_usage=${formatMemory(maxIndex)} must leave 10% of current_memory_available=${formatMemory(current)} free)`,
      );
    }
  }

  if (o.nbCores != null) setNumThreads(o.nbCores);
  else setNumThreads(0);
  useNonFiniteScan(nativeNonFiniteScan());
  log.info(`Using ${o.nbCores ?? navigatorCores()} omp threads (processes), consider increasing --nb_cores if you have more`);

  await using embs = await log.timed("Reading total number of vectors and dimension", 0, () =>
    openEmbeddings(embeddings, { ...o, fileFormat: o.fileFormat ?? BUILD_DEFAULTS.fileFormat }));
  const n = embs.count;
  const d = embs.dimension;
  log.info(`There are ${n} embeddings of dim ${d}`);
  await log.timed("Compute estimated construction time of the index", 1, () => {
    for (const line of constructionTimeEstimate(n, d).text.split("\n")) log.info(`\t\t${line}`);
  });

  // Selection first, then the pre-check on the key that will really be built (Python estimated a
  // possibly different key and crashed on an empty candidate list, issue #118).
  const selectionFlags = {
    makeDirectMap: o.makeDirectMap ?? false,
    shouldBeMemoryMappable: o.shouldBeMemoryMappable ?? false,
    useGpu: o.useGpu ?? false,
  };
  const indexKey = await log.timed("Selecting most promising index types given data characteristics", 1, () => {
    if (o.indexKey) return o.indexKey;
    const keys = optimalIndexKeys(n, d, maxIndex, selectionFlags);
    if (keys.length === 0) throw new BuildError(noIndexFitsMessage(n, d, maxIndex, selectionFlags));
    return keys[0];
  });
  await log.timed("Checking that your have enough memory available to create the index", 1, () => {
    const needed = estimateMemoryForIndexCreation(n, d, indexKey, { makeDirectMap: selectionFlags.makeDirectMap });
    log.info(`${formatMemory(needed)} of memory will be needed to build the index (more might be used if you have more)`);
    if (needed > current) {
      throw new BuildError(
        `The current memory available ${formatMemory(current)} is too small to build the ${o.indexKey ? "" : "(default) "}index ${indexKey} ` +
          `of ${n} vectors of dim ${d}: ${formatMemory(needed)} is needed; increase current_memory_available or choose a smaller index_key`,
      );
    }
  });

  const estimatedSize = estimatedIndexSizeBytes(indexKey, n, d, selectionFlags.makeDirectMap) ?? 0;
  // "Creating the index" spans instantiation, training and adding, as in Python's log.
  let index: Index | undefined;
  try {
    await log.timed("Creating the index", 1, async () => {
      index = await log.timed(`-> Instanciate the index ${indexKey}`, 2, () => Index.factory(d, indexKey, metric));
      // Polysemous training costs minutes and is unused: searches run with ht disabled (README).
      index.setPolysemousTraining(false);
      log.info(`The index size will be approximately ${formatMemory(estimatedSize)}`);

      if (!index.isTrained || needsTraining(indexKey)) {
        const trainSize = optimalTrainSize(n, indexKey, current, d);
        const sample = await log.timed("-> Extract training vectors", 2, () => embs.sample(trainSize, o.trainSeed ?? BUILD_DEFAULTS.trainSeed));
        log.info(`Will use ${sample.rows} vectors to train the index, that will use ${formatMemory(sample.vectors.byteLength)} of memory`);
        await log.timed(`-> Training the index with ${sample.rows} vectors of dim ${d}`, 2, () => {
          if (o.useGpu) index = trainOnGpu(index!, sample.vectors);
          else index!.train(sample.vectors);
        });
        releaseNow(sample.vectors); // before adding: the peak is index + batch, not + sample
      }

      const addMemory = memoryAvailableForAdding(current, estimatedSize, nbIndicesToKeep);
      log.info(`The memory available for adding the vectors is ${addMemory.text}(total available - used by the index)`);
      const batchSize = optimalBatchSize(d, addMemory.bytes);
      log.info(`Using a batch size of ${batchSize} (memory overhead ${formatMemory(batchSize * d * 4)})`);
      const ids = await prepareIds(embs, o, log);
      await log.timed("-> Adding the vectors to the index", 2, async () => {
        const bar = log.progress("Adding", n, "vectors");
        // The reader fetches one batch ahead: two half batches hold what one Python batch holds.
        for await (const batch of embs.batches(Math.max(1, Math.ceil(batchSize / 2)), { reuse: true })) {
          index!.add(batch.vectors, { batchRows: addCallRows(d), onProgress: (added) => bar.update(batch.startId + added) });
          if (ids) await ids.write(batch);
        }
        bar.finish();
      });
    });
    return await finishIndex(index!);
  } catch (e) {
    index?.free();
    throw e;
  }

  /** Tuning, fast metrics and saving, on the built index. */
  async function finishIndex(index: Index): Promise<{ index: Index; infos: IndexInfos }> {
    if (selectionFlags.makeDirectMap) index.ivf()?.makeDirectMap();

    const probeRows = Math.min(n, Math.max(TUNING_QUERIES, FAST_METRICS_QUERIES));
    const probe = (await embs.read(0, probeRows)).vectors;
    const indexParam = await log.timed(`Computing best hyperparameters for index ${absIndexPath ?? indexKey}`, 1, async () => {
      if (o.indexParam != null) {
        index.setParameters(o.indexParam);
        return o.indexParam;
      }
      const tuned = await tuneIndexParameters(index, indexKey, probe, {
        maxQueryTimeMs: o.maxIndexQueryTimeMs ?? BUILD_DEFAULTS.maxIndexQueryTimeMs,
        minNearestNeighbors: o.minNearestNeighborsToRetrieve ?? BUILD_DEFAULTS.minNearestNeighborsToRetrieve,
        info: (m) => log.info(m),
        warn: (m) => log.warning(m),
      });
      return tuned.param;
    });
    log.info(`The best hyperparameters are: ${indexParam}`);

    const metrics = await log.timed("Compute fast metrics", 1, () =>
      fastMetrics(index, probe.subarray(0, Math.min(n, FAST_METRICS_QUERIES) * d)));
    const infos: IndexInfos = { index_key: indexKey, index_param: indexParam, index_path: absIndexPath, ...metrics };

    if (saveOnDisk) {
      await log.timed("Saving the index on local disk", 1, () => {
        index.write(absIndexPath!);
        writeFileAtomic(resolve(infosPath!), writeJsonPython(infos));
      });
    }
    return { index, infos };
  }
}

/** Fails fast, before any data is read, when --use_gpu cannot work with the loaded library. */
function assertGpuSupport(): void {
  const { path, missing } = gpuSupport();
  if (missing.length > 0) {
    throw new BuildError(
      `use_gpu: the loaded FAISS library (${path}) has no GPU support (${missing[0]} missing); ` +
        `set AUTOFAISS_FAISS_LIB to a GPU build of libfaiss_c.so`,
    );
  }
  const gpus = numGpus();
  if (gpus < 1) throw new BuildError(`use_gpu: the loaded FAISS library (${path}) sees no GPU (faiss_get_num_gpus gave ${gpus})`);
}

/**
 * Trains a copy of `index` on GPU 0 and returns the trained index copied back to CPU, where adding,
 * tuning and writing run (Python kept the GPU index, so it wrote a GPU index). Frees `index` on
 * success; on failure the caller still owns it.
 */
function trainOnGpu(index: Index, vectors: Float32Array): Index {
  using resources = new GpuResources();
  using onGpu = index.toGpu(resources, 0);
  onGpu.train(vectors);
  const trained = onGpu.toCpu();
  index.free();
  return trained;
}

async function prepareIds(embs: EmbeddingCollection, o: BuildIndexOptions, log: BuildReporter): Promise<IdsWriter | null> {
  if (!o.idColumns?.length) return null;
  if (!o.idsPath) {
    log.error("id_columns is set but ids_path is not: the ids mapping will not be written");
    return null;
  }
  await resetIdsFolder(resolve(o.idsPath));
  return new IdsWriter(resolve(o.idsPath), embs.idColumns);
}

function navigatorCores(): number {
  return (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
}
