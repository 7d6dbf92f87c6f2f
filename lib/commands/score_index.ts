/**
 * `score_index`: fast metrics of an index, then its recalls against the exact
 * neighbours of the first 500 embeddings, computed with the index's metric in bounded memory and
 * cached outside the data folder (./cache.ts).
 *
 * @example
 * const { infos } = await scoreIndex("knn.index", "embeddings/", { currentMemoryAvailable: "4G" });
 */
import { statSync } from "node:fs";
import { join, resolve } from "node:path";
import { Index, nativeNonFiniteScan } from "../../ffi/faiss.ts";
import { type EmbeddingsInput, openEmbeddings } from "../io/input.ts";
import type { EmbeddingCollection } from "../io/collection.ts";
import { summaryLines } from "../log.ts";
import { formatMemory, parseMemory } from "../plan/units.ts";
import { FAST_METRICS_QUERIES, fastMetrics, type FastMetrics } from "../measure/fast_metrics.ts";
import { writeFileAtomic } from "../io/atomic_file.ts";
import { writeJsonPython } from "../output/python_json.ts";
import { renderReport, type ReportData } from "../output/report_html.ts";
import { type BuildReporter, silentReporter } from "../reporter.ts";
import { recoverPublish } from "../output/publish.ts";
import { SCORE_DEFAULTS } from "./defaults.ts";
import { withFaissThreads } from "./faiss_threads.ts";
import { defaultCacheDir, groundTruthFileName, readGroundTruth, writeGroundTruth } from "../measure/ground_truth_cache.ts";
import { exactNeighbours, GROUND_TRUTH_K } from "../measure/ground_truth.ts";
import { MEDIUM_METRICS_QUERIES, mediumMetrics, type MediumMetrics } from "../measure/medium_metrics.ts";
import { formatSearchCount } from "../measure/latency_stats.ts";

/** Python keeps 10 % of `current_memory_available` free after loading the index. */
const HEADROOM_RATIO = 0.1;

export interface ScoreIndexOptions {
  saveOnDisk?: boolean;
  outputIndexInfoPath?: string;
  currentMemoryAvailable?: string;
  fileFormat?: string;
  /** parquet column; null or unset: `embedding`, `embeddings` or the only list column */
  embeddingColumnName?: string | null;
  /** reuse / store the exact neighbours in the cache folder (default true) */
  useCache?: boolean;
  /** cache folder; null or unset: {@link defaultCacheDir} */
  cacheDir?: string | null;
  /** Write an HTML report of this index (memory, latency, recall, phase timings) here. */
  reportPath?: string | null;
  reporter?: BuildReporter;
}

/** The metrics JSON: fast metrics then recalls, in Python's order. */
export type ScoreInfos = FastMetrics & MediumMetrics;

/** How the ground truth was obtained. */
export interface GroundTruthSource {
  /** hit: read from the cache; miss: computed and stored; off: use_cache=False; unavailable: not cacheable (remote files, arrays) */
  cache: "hit" | "miss" | "off" | "unavailable";
  /** the cache file, when there is one */
  path: string | null;
}

export interface ScoreResult {
  /** null when the memory headroom rule fails (Python returns None) */
  infos: ScoreInfos | null;
  /** fast metrics, always computed */
  fastMetrics: FastMetrics;
  groundTruth?: GroundTruthSource;
  /** why infos is null */
  reason?: string;
}

/** A score_index failure the user can act on: the CLI prints its message on one line. */
export class ScoreError extends Error {
  override readonly name = "ScoreError";
}

/**
 * Scores an index (a path, read here and freed, or an Index the caller keeps) against the
 * embeddings it was built from. Writes the metrics JSON when `saveOnDisk`.
 */
export async function scoreIndex(
  indexOrPath: string | Index,
  embeddings: EmbeddingsInput,
  options: ScoreIndexOptions = {},
): Promise<ScoreResult> {
  const log = options.reporter ?? silentReporter;
  let current: number;
  try {
    current = parseMemory(options.currentMemoryAvailable ?? SCORE_DEFAULTS.current_memory_available);
  } catch {
    throw new ScoreError(`current_memory_available: expected a memory string like 16G or 512MB, got "${options.currentMemoryAvailable}"`);
  }
  // Python: as many threads as cores; the caller's setting is restored afterwards.
  return await withFaissThreads(0, () => scoreWithThreads(indexOrPath, embeddings, options, current, log));
}

async function scoreWithThreads(
  indexOrPath: string | Index,
  embeddings: EmbeddingsInput,
  options: ScoreIndexOptions,
  current: number,
  log: BuildReporter,
): Promise<ScoreResult> {

  let index: Index;
  let indexBytes: number;
  if (typeof indexOrPath === "string") {
    const path = resolve(indexOrPath);
    // A build killed while publishing into this path is finished first (lib/output/publish.ts).
    recoverPublish(path);
    try {
      indexBytes = statSync(path).size;
    } catch (e) {
      throw new ScoreError(`index_path: cannot read ${path}: ${(e as Error).message}`);
    }
    index = Index.read(path);
  } else {
    index = indexOrPath;
    indexBytes = index.serializedSize();
  }
  try {
    await using embs = await openEmbeddings(embeddings, {
      ...options,
      fileFormat: options.fileFormat ?? SCORE_DEFAULTS.file_format,
      nonFiniteScan: nativeNonFiniteScan(),
    });
    if (embs.dimension !== index.d) {
      throw new ScoreError(`embeddings: dimension ${embs.dimension} differs from the index's dimension ${index.d}`);
    }
    if (embs.count !== index.ntotal) {
      log.warning(`the index holds ${index.ntotal} vectors but the embeddings have ${embs.count}: recalls compare against the embeddings`);
    }
    const n = embs.count;

    const fast = await log.timed("Compute fast metrics", 0, async () => {
      const queries = (await embs.read(0, Math.min(n, FAST_METRICS_QUERIES))).vectors;
      const searches = { calls: 0, queries: 0 };
      const metrics = fastMetrics(index, queries, { count: searches });
      log.info(`Fast metrics ran ${formatSearchCount(searches)}`);
      return metrics;
    });
    log.info("Intermediate recap:");
    for (const line of summaryLines(fast as unknown as Record<string, unknown>)) log.info(line);

    const memoryLeft = current - indexBytes;
    if (memoryLeft < HEADROOM_RATIO * current) {
      // Python says index × 1.1, which still fails the rule; this is the real minimum.
      const needed = Math.ceil(indexBytes / (1 - HEADROOM_RATIO));
      const line = `Not enough memory, at least ${formatMemory(needed)} is needed, please increase current_memory_available`;
      log.info(line);
      const reason = `${line} (${formatMemory(current)} minus the ${formatMemory(indexBytes)} index leaves less than 10% for the exact neighbours)`;
      return { infos: null, fastMetrics: fast, reason };
    }

    let source: GroundTruthSource = { cache: "off", path: null };
    const medium = await log.timed("Compute medium metrics", 0, async () => {
      const nq = Math.min(n, MEDIUM_METRICS_QUERIES);
      const queries = (await embs.read(0, nq)).vectors;
      const { labels, source: s } = await groundTruth(embs, queries, nq, index.metric, memoryLeft, options, log);
      source = s;
      const searches = { calls: 0, queries: 0 };
      const recalls = await log.timed("-> Compute recalls", 1, () => mediumMetrics(index, queries, labels, searches));
      log.info(`Medium metrics ran ${formatSearchCount(searches)} (plus the exact neighbours)`);
      return recalls;
    });
    const infos: ScoreInfos = { ...fast, ...medium };
    log.info("Performances recap:");
    for (const line of summaryLines(infos as unknown as Record<string, unknown>)) log.info(line);

    if (options.saveOnDisk ?? SCORE_DEFAULTS.save_on_disk) {
      writeFileAtomic(resolve(options.outputIndexInfoPath ?? SCORE_DEFAULTS.output_index_info_path), writeJsonPython(infos));
    }
    if (options.reportPath) {
      const key = index.describe() ?? (typeof indexOrPath === "string" ? indexOrPath : "index");
      writeFileAtomic(resolve(options.reportPath), renderReport(scoreReportData(key, infos)));
    }
    return { infos, fastMetrics: fast, groundTruth: source };
  } finally {
    if (typeof indexOrPath === "string") index.free();
  }
}

/** One index's report: its size, mean latency and 20-recall@20 (score_index's recall). */
function scoreReportData(key: string, infos: ScoreInfos): ReportData {
  return {
    title: "autofaiss score_index report",
    recallLabel: "20-recall@20",
    latencyLabel: "latency, ms per query (mean, k=40)",
    points: [{
      key, memoryBytes: infos["size in bytes"], latencyMs: infos.avg_search_speed_ms, recall: infos["20-recall@20"], status: "scored",
      note: `1-recall@20 ${infos["1-recall@20"].toFixed(3)}, 40-recall@40 ${infos["40-recall@40"].toFixed(3)}, 99p ${infos["99p_search_speed_ms"].toFixed(3)} ms`,
    }],
    chosenKey: key,
    heuristicKey: null,
    maxIndexMemoryBytes: null,
    maxQueryTimeMs: null,
    phases: [],
    notes: [`${infos["nb vectors"]} vectors of dimension ${infos["vectors dimension"]}; compression ratio ${infos["compression ratio"].toFixed(2)}.`],
  };
}

/** The exact neighbours: from the cache when allowed and present, else computed (and cached). */
async function groundTruth(
  embs: EmbeddingCollection,
  queries: Float32Array,
  nq: number,
  metric: "ip" | "l2",
  memoryBytes: number,
  o: ScoreIndexOptions,
  log: BuildReporter,
): Promise<{ labels: Int32Array; source: GroundTruthSource }> {
  const compute = () =>
    log.timed("-> Compute small ground truth", 1, () => exactNeighbours(embs, queries, { metric, memoryBytes, reporter: log }));
  if (!(o.useCache ?? SCORE_DEFAULTS.use_cache)) {
    log.info("Ground-truth cache not used (use_cache=False)");
    return { labels: await compute(), source: { cache: "off", path: null } };
  }
  const name = embs.files.length === 0 ? null : groundTruthFileName({
    files: embs.files,
    fileFormat: o.fileFormat ?? SCORE_DEFAULTS.file_format,
    embeddingColumn: o.embeddingColumnName ?? null,
    count: embs.count,
    dimension: embs.dimension,
    metric,
    k: GROUND_TRUTH_K,
    nq,
  });
  if (name === null) {
    log.info("Ground truth not cached: the embeddings are not local files");
    return { labels: await compute(), source: { cache: "unavailable", path: null } };
  }
  const path = join(resolve(o.cacheDir ?? defaultCacheDir()), name);
  const cached = readGroundTruth(path, nq, GROUND_TRUTH_K, (why) => log.warning(`ignoring an invalid ground-truth cache file: ${why}`));
  if (cached) {
    log.info(`Using the cached ground truth ${path}`);
    return { labels: cached, source: { cache: "hit", path } };
  }
  const labels = await compute();
  try {
    writeGroundTruth(path, labels, nq, GROUND_TRUTH_K);
    log.info(`Cached the ground truth in ${path}`);
  } catch (e) {
    // A read-only cache folder costs a recomputation next time, not the score.
    log.warning(`could not cache the ground truth in ${path}: ${(e as Error).message}`);
  }
  return { labels, source: { cache: "miss", path } };
}
