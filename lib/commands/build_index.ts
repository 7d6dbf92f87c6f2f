/**
 * `build_index`: read → select → pre-check → create → train on a uniform sample → add in batches →
 * tune → fast metrics → write the index and index_infos.json. The decisions are lib/plan/build_plan.ts
 * (a pure plan, printable with `--dry_run`); this module resolves the options, runs the plan against
 * FAISS and does the I/O.
 *
 * @example
 * const { index, infos } = await buildIndex("embeddings/", { indexPath: "out/knn.index", maxIndexMemoryUsage: "4G" });
 * index.free();
 */
import { closeSync, mkdirSync, openSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { canShareTransforms, canTrainTransformsApart, GpuResources, gpuSupport, hasCapability, Index, type Metric, nativeNonFiniteScan, numGpus } from "../../ffi/faiss.ts";
import { faissLibrary } from "../../ffi/library.ts";
import { releaseNow } from "../free_buffers.ts";
import { changedInput, type EmbeddingsInput, type InputSnapshot, openEmbeddings, snapshotInputs } from "../io/input.ts";
import type { EmbeddingCollection } from "../io/collection.ts";
import { IdsWriter, resetIdsFolder } from "../io/ids.ts";
import {
  BuildError,
  type BuildPlan,
  candidateList,
  type BuildSettings,
  checkBuildOptions,
  checkOutputPaths,
  chooseIndexKey,
  type PlannedPart,
  completePlan,
  creationMemory,
  creationMemoryLine,
  type DataShape,
  type MemoryBudgets,
  needsMeasuredSize,
  planBuild,
  planMemoryBudgets,
  trainingVectors,
} from "../plan/build_plan.ts";
import { constructionTimeEstimate, rotationSampleRows } from "../plan/training_plan.ts";
import { trainForKey } from "../measure/train_index.ts";
import { formatMemory } from "../plan/units.ts";
import { FAST_METRICS_QUERIES, fastMetrics, type FastMetrics } from "../measure/fast_metrics.ts";
import { TUNING_QUERIES, tuneIndexParameters } from "../measure/tune_parameters.ts";
import {
  measuredSelection,
  type MeasuredSelectionOptions,
  resampleRows,
  type SelectionReport,
  selectionWithoutMeasuring,
  splitSample,
  type TrainedRotation,
} from "../measure/measured_selection.ts";
import { rotationAhead, type RotationAhead, selectionSample, usesRotationAhead } from "../plan/measured_choice.ts";
import { fastMetricsBudgetMs, formatSearchCount } from "../measure/latency_stats.ts";
import { factoryRejection, measuredIndexSizeBytes } from "../measure/key_check.ts";
import { writeJsonPython } from "../output/python_json.ts";
import { claimOutputs, Publication, PublishError, staleOutputs } from "../output/publish.ts";
import { renderReport, type ReportData } from "../output/report_html.ts";
import { writeFileAtomic } from "../io/atomic_file.ts";
import { addParts } from "./build_parts.ts";
import { addProgressRows, trainTransformsWithProgress, trainWithProgress } from "./faiss_progress.ts";
import { type BuildReporter, silentReporter } from "../reporter.ts";
import { BUILD_DEFAULTS } from "./defaults.ts";
import { withFaissThreads } from "./faiss_threads.ts";

export { BuildError, type BuildPlan };

/** Seed of the uniform training sample (Python takes the first vectors: no seed). */
export const TRAIN_SEED = 0;

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
  /**
   * A trained, empty index file to fill instead of training one (build_partitioned_indexes'
   * `index_path`); `indexKey` must name its factory string. Its dimension and metric must match.
   */
  trainedIndexPath?: string | null;
  /**
   * "heuristic" (default): Python's first candidate; "measured": candidates are built on a sample and
   * the best recall@10 within both bounds wins (lib/measure/measured_selection.ts). Ignored with `indexKey`.
   */
  selection?: "heuristic" | "measured";
  /** Seconds measured selection may spend; null = a quarter of the predicted full build. */
  selectionTimeBudget?: number | null;
  /** Write an HTML report (candidates, Pareto front, chosen and heuristic keys, phase timings) here. */
  reportPath?: string | null;
  /** Logs, timed steps and progress bars; silent by default. */
  reporter?: BuildReporter;
}

/** index_infos.json, keys in Python's order. */
export interface IndexInfos extends FastMetrics {
  index_key: string;
  index_param: string;
  index_path: string | null;
}

/** Fails before any work if `path` cannot be written (creates its folder, probes a file, removes it). */
export function assertWritable(option: string, path: string): void {
  const probe = join(dirname(path), `.autofaiss-write-test-${process.pid}`);
  try {
    mkdirSync(dirname(path), { recursive: true });
    closeSync(openSync(probe, "w"));
    rmSync(probe);
  } catch (e) {
    throw new BuildError(`${option}: cannot write ${path}: ${(e as Error).message}`);
  }
}

/** A local output path made absolute; a URL (s3://…) kept as given. */
function outputPath(p: string): string {
  return isUrl(p) ? p : resolve(p);
}

export function isUrl(p: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(p);
}

/** build_index's options with the defaults of the CLI schema filled in. */
export function buildSettings(o: BuildIndexOptions): BuildSettings {
  const d = BUILD_DEFAULTS;
  const indexPath = o.indexPath === undefined ? d.index_path : o.indexPath;
  const infosPath = o.indexInfosPath === undefined ? d.index_infos_path : o.indexInfosPath;
  return {
    indexPath: indexPath === null ? null : outputPath(indexPath),
    indexInfosPath: infosPath === null ? null : outputPath(infosPath),
    idsPath: o.idsPath ? outputPath(o.idsPath) : null,
    saveOnDisk: o.saveOnDisk ?? d.save_on_disk,
    indexKey: o.indexKey || null,
    indexParam: o.indexParam ?? null,
    maxIndexQueryTimeMs: o.maxIndexQueryTimeMs ?? d.max_index_query_time_ms,
    maxIndexMemoryUsage: o.maxIndexMemoryUsage ?? d.max_index_memory_usage,
    maxIndexMemoryUsageGiven: o.maxIndexMemoryUsage !== undefined,
    minNearestNeighborsToRetrieve: o.minNearestNeighborsToRetrieve ?? d.min_nearest_neighbors_to_retrieve,
    currentMemoryAvailable: o.currentMemoryAvailable ?? d.current_memory_available,
    useGpu: o.useGpu ?? d.use_gpu,
    metricType: o.metricType ?? d.metric_type,
    nbCores: o.nbCores ?? d.nb_cores,
    makeDirectMap: o.makeDirectMap ?? d.make_direct_map,
    shouldBeMemoryMappable: o.shouldBeMemoryMappable ?? d.should_be_memory_mappable,
    distributed: o.distributed ?? d.distributed,
    nbIndicesToKeep: o.nbIndicesToKeep ?? d.nb_indices_to_keep,
    trainSeed: o.trainSeed ?? TRAIN_SEED,
    trainedIndexPath: o.trainedIndexPath ? resolve(o.trainedIndexPath) : null,
  };
}

/** The reader options of build_index's options. */
export function openOptions(o: BuildIndexOptions) {
  return { fileFormat: o.fileFormat ?? BUILD_DEFAULTS.file_format, embeddingColumnName: o.embeddingColumnName, idColumns: o.idColumns };
}

/**
 * What {@link buildIndex} would do with these embeddings and options, without building: reads only
 * the files' headers, loads no training data, writes nothing. FAISS is loaded only for a given
 * `indexKey`: a dry factory call checks it, and a family without a size formula is measured on
 * two small synthetic instances ({@link measuredIndexSizeBytes}).
 *
 * @example const plan = await planBuildIndex("embeddings/", { maxIndexMemoryUsage: "4G" }); plan.indexKey
 */
export async function planBuildIndex(embeddings: EmbeddingsInput, options: BuildIndexOptions = {}): Promise<BuildPlan> {
  const s = buildSettings(options);
  const metric = checkBuildOptions(s);
  checkOutputPaths(s);
  planMemoryBudgets(s);
  await using embs = await openEmbeddings(embeddings, openOptions(options));
  const data: DataShape = { count: embs.count, dimension: embs.dimension };
  if (s.indexKey) checkKeyWithFaiss(s.indexKey, data, metric);
  const measured = s.indexKey && needsMeasuredSize(s, s.indexKey, data)
    ? measuredIndexSizeBytes(s.indexKey, data.dimension, metric, data.count, s.makeDirectMap)
    : undefined;
  const plan = planBuild(s, data, measured);
  if ((options.selection ?? BUILD_DEFAULTS.selection) === "measured" && !s.indexKey) {
    // measuring needs training candidates on data, which a dry run never does
    plan.decisions.push(`selection=measured: the build measures candidates on a sample and may choose another key than ${plan.indexKey}, the heuristic one shown here`);
  }
  return plan;
}

/** A key FAISS's factory rejects is a BuildError naming it with FAISS's message (no data is read). */
function checkKeyWithFaiss(indexKey: string, data: DataShape, metric: "ip" | "l2"): void {
  const rejection = factoryRejection(data.dimension, indexKey, metric);
  if (rejection !== null) throw new BuildError(rejection);
}

/**
 * What buildIndex returns: the index and its infos; or, for an N-part build (nb_indices_to_keep > 1
 * and more than one vector), no index and the infos of every part by part path, as Python's
 * `(None, {path: infos})`.
 */
export type BuildIndexResult =
  | { index: Index; infos: IndexInfos; selection?: SelectionReport }
  | { index: null; infos: Record<string, IndexInfos>; selection?: SelectionReport };

/**
 * Builds, tunes and (unless saveOnDisk is false) writes an index. The caller owns the returned index.
 * FAISS's thread count is set to `nbCores` for the build and restored afterwards.
 */
export async function buildIndex(
  embeddings: EmbeddingsInput,
  options?: BuildIndexOptions & { nbIndicesToKeep?: 1 },
): Promise<{ index: Index; infos: IndexInfos; selection?: SelectionReport }>;
export async function buildIndex(embeddings: EmbeddingsInput, options: BuildIndexOptions): Promise<BuildIndexResult>;
export async function buildIndex(
  embeddings: EmbeddingsInput,
  options: BuildIndexOptions = {},
): Promise<BuildIndexResult> {
  const phases: ReportData["phases"] = [];
  const log = options.reportPath ? recordingPhases(options.reporter ?? silentReporter, phases) : options.reporter ?? silentReporter;
  const s = buildSettings(options);
  checkBuildOptions(s);
  if (s.distributed === "slurm") {
    throw new BuildError('distributed: "slurm" builds run through buildIndexOnSlurm (lib/commands/slurm_build.ts), which needs a temporary_indices_folder');
  }
  if (s.useGpu) assertGpuSupport();
  if (s.nbIndicesToKeep > 1 && s.makeDirectMap && !hasCapability("hashDirectMap")) {
    throw new BuildError(
      `nb_indices_to_keep=${s.nbIndicesToKeep} with make_direct_map needs a hash direct map (parts whose ids do not start at 0), ` +
        `which the loaded FAISS library lacks (autofaiss_ivf_set_direct_map); use native/build/libfaiss_c.so`,
    );
  }
  if (s.nbCores != null && !hasCapability("threads")) {
    // An explicit thread count must not be dropped silently; OpenMP reads OMP_NUM_THREADS at start-up with any library.
    throw new BuildError(
      `nb_cores: the loaded FAISS library (${faissLibrary().path}) cannot set the thread count (autofaiss_set_num_threads missing); ` +
        `leave nb_cores unset and set OMP_NUM_THREADS=${s.nbCores} in the environment instead`,
    );
  }
  checkOutputPaths(s);
  if (s.saveOnDisk) {
    for (const [option, path] of [["index_path", s.indexPath], ["index_infos_path", s.indexInfosPath], ["ids_path", s.idsPath]] as const) {
      if (path && isUrl(path)) {
        throw new BuildError(`${option}: ${path}: a local build writes local files; URL outputs (s3://) are written by distributed builds (--distributed=slurm, merge_shards)`);
      }
    }
    assertWritable("index_path", s.indexPath!);
    assertWritable("index_infos_path", s.indexInfosPath!);
    if (s.idsPath && options.idColumns?.length) assertWritable("ids_path", s.idsPath);
  }
  if (options.reportPath) assertWritable("report_path", resolve(options.reportPath));
  const budgets = planMemoryBudgets(s);
  for (const note of budgets.notes) log.info(note);
  // One build per index path; what a killed build left there is finished or removed first (the
  // parts' temporaries, `.knn.index01.tmp-<pid>`, are matched from the base names).
  const finals = [s.indexPath!, s.indexInfosPath!, ...(s.idsPath ? [s.idsPath] : [])];
  const releaseLock = s.saveOnDisk ? claimOutputs(s.indexPath!, finals, (m) => log.warning(m)) : () => {};
  try {
    const result = await buildLocked(embeddings, options, s, budgets, log);
    if (options.reportPath) writeFileAtomic(resolve(options.reportPath), renderReport(buildReportData(result, s, budgets, phases)));
    return result;
  } finally {
    releaseLock();
  }
}

/** A reporter that also records each timed step's wall seconds (indented by its level). */
function recordingPhases(inner: BuildReporter, phases: ReportData["phases"]): BuildReporter {
  return {
    ...inner,
    timed: async (label, indent, fn) => {
      const t0 = performance.now();
      const slot = phases.length;
      phases.push({ label: `${"  ".repeat(indent)}${label}`, seconds: 0 });
      try {
        return await inner.timed(label, indent, fn);
      } finally {
        phases[slot].seconds = (performance.now() - t0) / 1000;
      }
    },
  };
}

/** The report's data: the measured candidates, or the one built index when selection was heuristic. */
function buildReportData(result: BuildIndexResult, s: BuildSettings, budgets: MemoryBudgets, phases: ReportData["phases"]): ReportData {
  const sel = result.selection;
  const infosList = result.index === null ? Object.values(result.infos) : [result.infos];
  const first = infosList[0];
  const points = sel
    ? sel.candidates.map((c) => ({
      key: c.key, memoryBytes: c.estimatedBytes, latencyMs: c.latencyMs ?? null, recall: c.recall ?? null,
      status: c.status, param: c.param, note: c.note ?? c.reason,
    }))
    : infosList.map((i) => ({
      key: i.index_key, memoryBytes: i["size in bytes"], latencyMs: i.avg_search_speed_ms, recall: null,
      status: "built", param: i.index_param, note: "heuristic selection: no recall measured (use --selection=measured)",
    }));
  const notes = sel
    ? [
      sel.candidates.every((c) => c.status === "skipped")
        ? `${sel.vectors} vectors of dimension ${sel.dimension}; no candidate measured.`
        : `${sel.vectors} vectors of dimension ${sel.dimension}; candidates measured on ${sel.sampleRows} sampled vectors with ${sel.queries} held-out queries in ${sel.seconds.toFixed(1)} s${rotationNote(sel)} (budget ${sel.budgetSeconds === null ? "none" : `${sel.budgetSeconds.toFixed(1)} s`}${sel.predictedBuildSeconds === null ? "" : `; the heuristic key's full training and adding predicted at ${sel.predictedBuildSeconds.toFixed(1)} s`}).`,
      ...(sel.resampled === null
        ? []
        : [`First measured on ${sel.resampled.fromRows} sampled vectors (${sel.resampled.seconds.toFixed(1)} s), where the heuristic's search probed ${Math.round(100 * sel.resampled.probedShare)}% of the lists and could rank nothing; measured again on ${sel.sampleRows}.`]),
      `Why: ${sel.reason}.`,
      ...(sel.budgetHint === null
        ? []
        : [`Skipped for time from ${sel.budgetHint.key} on: --selection_time_budget=${sel.budgetHint.seconds} is predicted to measure it and every candidate ranked before it.`]),
      `Built: ${first.index_key} with ${first.index_param || "no search parameter"}; ${first["size in bytes"]} bytes, ${first.avg_search_speed_ms.toFixed(3)} ms per query.`,
    ]
    : [`${first["nb vectors"]} vectors of dimension ${first["vectors dimension"]}; heuristic (Python-compatible) selection.`];
  return {
    title: "autofaiss build_index report",
    recallLabel: sel ? "recall@10 (predicted from the sample)" : "recall@10",
    latencyLabel: sel ? "latency, ms per query (predicted, k=40, 1 thread)" : "latency, ms per query (k=40)",
    points,
    chosenKey: first.index_key,
    heuristicKey: sel ? sel.heuristicKey : first.index_key,
    maxIndexMemoryBytes: budgets.maxIndexMemoryUsage,
    maxQueryTimeMs: s.maxIndexQueryTimeMs,
    phases,
    notes,
  };
}

/** The report's words for the rotation trained ahead of the selection, "" when none was. */
function rotationNote(sel: SelectionReport): string {
  const r = sel.rotation;
  if (r === null) return "";
  return `, after training the heuristic key's ${r.spec} rotation on ${r.rows} vectors in ${r.seconds.toFixed(1)} s (${r.reusedByBuild ? "reused by the build" : "not the chosen key's: the build trained its own"})`;
}

async function buildLocked(
  embeddings: EmbeddingsInput,
  options: BuildIndexOptions,
  s: BuildSettings,
  budgets: MemoryBudgets,
  log: BuildReporter,
): Promise<BuildIndexResult> {
  return await withFaissThreads(s.nbCores ?? 0, async () => {
    log.info(`Using ${s.nbCores ?? navigatorCores()} omp threads (processes), consider increasing --nb_cores if you have more`);
    await using embs = await log.timed("Reading total number of vectors and dimension", 0, () =>
      openEmbeddings(embeddings, { ...openOptions(options), nonFiniteScan: nativeNonFiniteScan() }));
    const inputs = snapshotInputs(embs.files);
    const data: DataShape = { count: embs.count, dimension: embs.dimension };
    log.info(`There are ${data.count} embeddings of dim ${data.dimension}`);
    await log.timed("Compute estimated construction time of the index", 1, () => {
      for (const line of constructionTimeEstimate(data.count, data.dimension).text.split("\n")) log.info(`\t\t${line}`);
    });
    let indexKey = await log.timed("Selecting most promising index types given data characteristics", 1, () => {
      // A given key is checked with a dry factory call before any vector is read.
      if (s.indexKey) checkKeyWithFaiss(s.indexKey, data, checkBuildOptions(s));
      return chooseIndexKey(s, budgets, data);
    });
    let selection: SelectionReport | undefined;
    // the OPQ rotation trained during the selection, handed to the build of a key that has it
    let rotation: TrainedRotation | null = null;
    try {
      if ((options.selection ?? BUILD_DEFAULTS.selection) === "measured" && !s.indexKey) {
        const found = await log.timed("Measuring candidate index types on a sample", 1, () =>
          selectIndexByMeasuring(s, budgets, data, embs, options.selectionTimeBudget ?? BUILD_DEFAULTS.selection_time_budget, log));
        selection = found.report;
        rotation = found.rotation;
        log.info(`selection: ${JSON.stringify(selection)}`);
        log.info(`Measured selection chose ${selection.chosenKey}: ${selection.reason}`);
        indexKey = selection.chosenKey;
        if (rotation !== null && !usesRotationAhead(indexKey, rotation)) {
          log.info(`The ${rotation.spec} rotation trained for the selection is not ${indexKey}'s: the build trains its own`);
        }
      }
      const reusable = rotation !== null && usesRotationAhead(indexKey, rotation) ? rotation : null;
      return await buildChosen(s, budgets, data, embs, inputs, log, indexKey, selection, reusable);
    } finally {
      rotation?.owner.free();
    }
  });
}

/** The build of the chosen key: its memory check, its plan, and the plan run. */
async function buildChosen(
  s: BuildSettings,
  budgets: MemoryBudgets,
  data: DataShape,
  embs: EmbeddingCollection,
  inputs: InputSnapshot,
  log: BuildReporter,
  indexKey: string,
  selection: SelectionReport | undefined,
  rotation: TrainedRotation | null,
): Promise<BuildIndexResult> {
  const measured = needsMeasuredSize(s, indexKey, data)
    ? await log.timed(`Measuring the size of ${indexKey} (no size formula for this family)`, 1, () =>
      measuredIndexSizeBytes(indexKey, data.dimension, checkBuildOptions(s), data.count, s.makeDirectMap))
    : undefined;
  const needed = await log.timed("Checking that your have enough memory available to create the index", 1, () => {
    const bytes = creationMemory(s, budgets, indexKey, data, measured);
    log.info(creationMemoryLine(bytes));
    return bytes;
  });
  const plan = completePlan(s, budgets, data, indexKey, needed, measured);
  const result = await runPlan(plan, s, embs, inputs, log, selection?.presetParam ?? "", rotation);
  return selection ? { ...result, selection } : result;
}

/**
 * Measured selection on a uniform sample (seeded apart from the training sample): candidates of
 * the plan, the sample split into index rows and held-out queries, each candidate measured. When
 * the heuristic key has an OPQ rotation the build would train apart (measured_choice.ts
 * `rotationAhead`), it is trained first, on the build's own rotation sample and seed, and returned
 * with the report for the build to reuse; the caller owns it.
 */
async function selectIndexByMeasuring(
  s: BuildSettings,
  budgets: MemoryBudgets,
  data: DataShape,
  embs: EmbeddingCollection,
  timeBudgetSeconds: number | null,
  log: BuildReporter,
): Promise<{ report: SelectionReport; rotation: TrainedRotation | null }> {
  const list = candidateList(s, budgets, data);
  const { rows, queries } = selectionSample(data.count);
  const wanted = s.useGpu || s.trainedIndexPath ? null : rotationAhead(list.heuristicKey, data.count, data.dimension, timeBudgetSeconds !== null);
  // asked only when a rotation would be trained ahead, so a missing capability is said when it matters
  const ahead = wanted !== null && canTrainTransformsApart() && canShareTransforms() ? wanted : null;
  const options: MeasuredSelectionOptions = {
    n: data.count,
    metric: checkBuildOptions(s),
    maxQueryTimeMs: s.maxIndexQueryTimeMs,
    minNearestNeighbors: s.minNearestNeighborsToRetrieve,
    maxIndexMemoryBytes: budgets.maxIndexMemoryUsage,
    timeBudgetSeconds,
    ahead,
    log,
  };
  // decided from the shapes, so a selection that will not measure reads no sample
  const unmeasured = selectionWithoutMeasuring(list, data.dimension, rows, queries, options);
  if (unmeasured !== null) return { report: unmeasured, rotation: null };
  const rotation = ahead === null ? null : await trainRotationAhead(list.heuristicKey!, ahead, s, data.dimension, embs, log);
  // measured without it when the library could not train the rotation alone after all (said by the FFI)
  try {
    log.info(`Measuring up to ${list.candidates.length} candidates on ${rows} sampled vectors with ${queries} held-out queries`);
    const measureOn = async (sampleRows: number, seed: number, o: MeasuredSelectionOptions) => {
      const sample = await embs.sample(sampleRows + queries, seed);
      const split = splitSample(sample.vectors, data.dimension, queries);
      releaseNow(sample.vectors);
      return await measuredSelection(list, split.base, split.queries, data.dimension, o, rotation);
    };
    const first = await measureOn(rows, s.trainSeed + 1, options);
    const grown = resampleRows(first, list, data.count, data.dimension, rotation);
    if (grown === null) return { report: first, rotation };
    // a saturated heuristic ranks nothing: measure again where its search probes a quarter of the lists
    const { probedShare } = grown;
    log.info(
      `selection: the heuristic's search probed ${Math.round(100 * probedShare)}% of the sample's lists ` +
        `(${first.candidates.find((c) => c.heuristic)!.param}); measuring again on ${grown.rows} sampled vectors`,
    );
    // the first round's budget (the automatic one is set from the heuristic's first measurement), so the
    // second round does not judge again from the shapes whether measuring pays: resampleRows did, from times
    const again = await measureOn(grown.rows, s.trainSeed + 2, {
      ...options,
      timeBudgetSeconds: first.budgetSeconds,
      spentSeconds: first.seconds,
      firstRoundRows: rows,
    });
    const report = { ...again, seconds: first.seconds + again.seconds, resampled: { fromRows: rows, probedShare, seconds: first.seconds } };
    return { report, rotation };
  } catch (e) {
    rotation?.owner.free();
    throw e;
  }
}

/**
 * The heuristic key's OPQ rotation, trained on the rows and with the seed the build's own rotation
 * sample uses (createTrainedIndex), so the build of a key with that rotation copies it instead of
 * training the same one again; null when the library cannot train it alone. The caller owns the
 * returned index.
 */
async function trainRotationAhead(
  key: string,
  ahead: RotationAhead,
  s: BuildSettings,
  d: number,
  embs: EmbeddingCollection,
  log: BuildReporter,
): Promise<TrainedRotation | null> {
  const start = performance.now();
  const owner = Index.factory(d, key, checkBuildOptions(s));
  try {
    const sample = await log.timed("-> Extract rotation training vectors", 2, () => embs.sample(ahead.rows, s.trainSeed));
    const trained = await log.timed(`-> Training the ${ahead.spec} rotation with ${sample.rows} vectors of dim ${d}, for the selection and the build`, 2, () =>
      trainTransformsWithProgress(owner, sample.vectors, key, log));
    releaseNow(sample.vectors);
    if (!trained) {
      owner.free();
      return null;
    }
    return { ...ahead, owner, seconds: (performance.now() - start) / 1000 };
  } catch (e) {
    owner.free();
    throw e;
  }
}

/**
 * Creates, trains and fills the index of `plan`, then tunes, measures and saves it. With N parts,
 * the trained empty index is cloned for each part in turn, which is filled with its rows (global
 * ids), tuned, measured, written and freed before the next: one part in memory at a time. All
 * outputs are published together at the end.
 */
async function runPlan(
  plan: BuildPlan,
  s: BuildSettings,
  embs: EmbeddingCollection,
  inputs: InputSnapshot,
  log: BuildReporter,
  preset: string,
  rotation: TrainedRotation | null = null,
): Promise<BuildIndexResult> {
  const { indexKey, dimension: d } = plan;
  // The outputs are written beside their final paths and published together at the end.
  const publication = s.saveOnDisk ? new Publication(s.indexPath!) : null;
  const split = plan.parts.length > 1;
  // "Creating the index" spans instantiation, training and adding, as in Python's log.
  let index: Index | undefined;
  try {
    let ids: IdsWriter | null = null;
    let addMs = 0;
    await log.timed("Creating the index", 1, async () => {
      index = await createTrainedIndex(plan, s, embs, log, rotation);

      log.info(`The memory available for adding the vectors is ${plan.memory.availableForAddingText}(total available - used by the index)`);
      log.info(`Using a batch size of ${plan.adding.batchSize} (memory overhead ${formatMemory(plan.adding.batchSize * d * 4)})`);
      ids = await prepareIds(embs, s.idsPath, publication, log);
      if (split) return; // the parts are filled one at a time below
      const addStart = performance.now();
      await log.timed("-> Adding the vectors to the index", 2, async () => {
        const bar = log.progress("Adding", plan.vectors, "vectors");
        for await (const batch of embs.batches(plan.adding.readBatchRows, { reuse: true })) {
          await index!.addWithProgress(batch.vectors, {
            batchRows: plan.adding.addCallRows,
            progressRows: addProgressRows(plan.vectors),
            onProgress: (added) => bar.update(batch.startId + added),
          });
          if (ids) await ids.write(batch);
        }
        bar.finish();
      });
      addMs = performance.now() - addStart;
    });
    if (!split) {
      const infos = await finishIndex(index!, plan, plan.parts[0], s, embs, log, preset, addMs, (infos) => writeOutputs(publication!, index!, plan.parts[0], infos));
      if (publication) commitOutputs(publication, s, plan, inputs);
      return { index: index!, infos };
    }
    const byPath: Record<string, IndexInfos> = {};
    await addParts({
      trained: index!,
      embs,
      parts: plan.parts,
      readBatchRows: plan.adding.readBatchRows,
      addCallRows: plan.adding.addCallRows,
      ids,
      log,
      finish: async (part, planned, partAddMs) => {
        const infos = await finishIndex(part, plan, planned, s, embs, log, preset, partAddMs, (infos) => writeOutputs(publication!, part, planned, infos));
        byPath[planned.indexPath!] = infos;
      },
    });
    index!.free();
    index = undefined;
    commitOutputs(publication!, s, plan, inputs);
    return { index: null, infos: byPath };
  } catch (e) {
    publication?.abort();
    index?.free();
    throw e;
  }
}

/**
 * Instantiates `plan.indexKey` (or reads the pre-trained `s.trainedIndexPath`) and trains it on a
 * uniform sample of `embs` (the seed of the plan), as the first steps of "Creating the index". An
 * OPQ rotation the selection trained on this build's own rotation sample (same rows, same seed) is
 * copied in instead of being trained again. The caller owns the returned index; `rotation` stays
 * the caller's.
 */
export async function createTrainedIndex(
  plan: BuildPlan,
  s: BuildSettings,
  embs: EmbeddingCollection,
  log: BuildReporter,
  rotation: TrainedRotation | null = null,
): Promise<Index> {
  const { indexKey, dimension: d } = plan;
  let index = await log.timed(`-> Instanciate the index ${indexKey}`, 2, () =>
    s.trainedIndexPath ? readTrainedIndex(s.trainedIndexPath, d, plan.metricType) : Index.factory(d, indexKey, plan.metricType));
  try {
    // Polysemous training costs minutes and is unused: searches run with ht disabled (README).
    index.setPolysemousTraining(false);
    if (plan.parts.length > 1 && index.ivf() === null) {
      throw new BuildError(
        `nb_indices_to_keep=${s.nbIndicesToKeep}: index_key "${indexKey}" cannot store global ids (add_with_ids); use an IVF key such as IVF1,Flat`,
      );
    }
    log.info(`The index size will be approximately ${formatMemory(plan.memory.estimatedIndexSize)}`);

    if (!s.trainedIndexPath && (!index.isTrained || plan.training.needed)) {
      const trainSize = plan.training.vectors ?? trainingVectors(planBudgets(plan), { count: plan.vectors, dimension: d }, indexKey);
      const rotationRows = s.useGpu || index.isTrained ? null : rotationSampleRows(indexKey, Math.min(trainSize, plan.vectors));
      const sameRotation = rotation !== null && rotationRows === rotation.rows && plan.training.seed === s.trainSeed;
      if (rotation !== null && !sameRotation) {
        log.info(`The rotation trained for the selection (${rotation.rows} vectors) is not this build's (${rotationRows ?? "inside the training sample"}): training it again`);
      }
      if (sameRotation && index.copyTransformsFrom(rotation.owner)) {
        log.info(`-> Reusing the ${rotation.spec} rotation trained for the selection on this build's ${rotation.rows} rotation vectors (${rotation.seconds.toFixed(1)} s)`);
      } else if (rotationRows !== null && canTrainTransformsApart()) {
        // the rotation's sample is read, trained on and freed before the larger training sample
        // exists: the two are never in memory together
        const sample = await log.timed("-> Extract rotation training vectors", 2, () => embs.sample(rotationRows, plan.training.seed));
        log.info(`Will use ${sample.rows} vectors to train the OPQ rotation, that will use ${formatMemory(sample.vectors.byteLength)} of memory`);
        await log.timed(`-> Training the OPQ rotation with ${sample.rows} vectors of dim ${d}`, 2, () =>
          trainTransformsWithProgress(index, sample.vectors, indexKey, log));
        releaseNow(sample.vectors);
      }
      const sample = await log.timed("-> Extract training vectors", 2, () => embs.sample(trainSize, plan.training.seed));
      log.info(`Will use ${sample.rows} vectors to train the index, that will use ${formatMemory(sample.vectors.byteLength)} of memory`);
      await log.timed(`-> Training the index with ${sample.rows} vectors of dim ${d}`, 2, async () => {
        if (s.useGpu) index = trainOnGpu(index, sample.vectors);
        // a pre-transformed index (OPQ, PCA) trains its IVF / PQ on the transformed copy: the raw
        // sample is consumed page by page as that copy is written, then freed (200k × 128 into
        // OPQ64_192: the 102 MB sample is never resident beside its 154 MB copy)
        else await trainWithProgress(index, sample.vectors, plan.indexKey, log, () => releaseNow(sample.vectors), true);
      });
      releaseNow(sample.vectors); // before adding: the peak is index + batch, not + sample
    }
    return index;
  } catch (e) {
    index.free();
    throw e;
  }
}

/** Reads a pre-trained empty index and checks it fits the data; the caller owns it. */
function readTrainedIndex(path: string, d: number, metric: Metric): Index {
  let index: Index;
  try {
    index = Index.read(path);
  } catch (e) {
    throw new BuildError(`index_path: ${path}: cannot read the pre-trained index (${(e as Error).message})`);
  }
  const problem = !index.isTrained ? "is not trained"
    : index.ntotal !== 0 ? `already holds ${index.ntotal} vectors (expected an empty trained index)`
    : index.d !== d ? `has dimension ${index.d}, the embeddings ${d}`
    : index.metric !== metric ? `has metric ${index.metric}, expected ${metric}`
    : null;
  if (problem !== null) {
    index.free();
    throw new BuildError(`index_path: ${path}: the pre-trained index ${problem}`);
  }
  return index;
}

/** The memory budgets recorded in a plan. */
function planBudgets(plan: BuildPlan) {
  return {
    currentMemoryAvailable: plan.memory.currentMemoryAvailable,
    maxIndexMemoryUsage: plan.memory.maxIndexMemoryUsage,
    lowered: plan.memory.maxIndexMemoryUsageLowered,
    notes: [],
  };
}

/**
 * Tuning, fast metrics and saving, on the built index or part holding `part.rows`: the end of every
 * build, local or merged from shards. Reads the part's first rows of `embs` as tuning and metric queries.
 */
export async function finishIndex(
  index: Index,
  plan: Pick<BuildPlan, "dimension" | "indexKey">,
  part: PlannedPart,
  s: BuildSettings,
  embs: Pick<EmbeddingCollection, "read">,
  log: BuildReporter,
  preset: string,
  addMs: number,
  save: (infos: IndexInfos) => void | Promise<void>,
): Promise<IndexInfos> {
  const { dimension: d, indexKey } = plan;
  if (s.makeDirectMap) {
    // FAISS's array direct map needs ids 0..ntotal-1: the later parts of a split index get a hash map.
    if (part.rows.start === 0) index.ivf()?.makeDirectMap();
    else index.ivf()?.makeHashDirectMap();
  }

  const n = part.rows.end - part.rows.start;
  const probeRows = Math.min(n, Math.max(TUNING_QUERIES, FAST_METRICS_QUERIES));
  const probe = (await embs.read(part.rows.start, part.rows.start + probeRows)).vectors;
  const indexParam = await log.timed(`Computing best hyperparameters for index ${part.indexPath ?? indexKey}`, 1, async () => {
    if (s.indexParam != null) {
      index.setParameters(s.indexParam);
      return s.indexParam;
    }
    // measured selection's refinement k_factor: the tuner sets only nprobe / efSearch
    if (preset !== "") index.setParameters(preset);
    const tuned = await tuneIndexParameters(index, indexKey, probe, {
      maxQueryTimeMs: s.maxIndexQueryTimeMs,
      minNearestNeighbors: s.minNearestNeighborsToRetrieve,
      // a latency measurement ends with the search that crosses its time: up to one search at the bound later
      budgetMs: addMs - s.maxIndexQueryTimeMs,
      info: (m) => log.info(m),
      warn: (m) => log.warning(m),
    });
    log.info(`Tuning ran ${formatSearchCount(tuned.searches)}`);
    return [preset, tuned.param].filter((x) => x !== "").join(",");
  });
  log.info(`The best hyperparameters are: ${indexParam}`);

  // The phase gets no more time than adding took (within 1–10 s), less one search at the latency
  // bound by which its latency test can overrun: no phase costs more than adding.
  const searches = { calls: 0, queries: 0 };
  const timeoutMs = fastMetricsBudgetMs(addMs - s.maxIndexQueryTimeMs);
  const metrics = await log.timed("Compute fast metrics", 1, () =>
    fastMetrics(index, probe.subarray(0, Math.min(n, FAST_METRICS_QUERIES) * d), { timeoutMs, count: searches }));
  log.info(`Fast metrics ran ${formatSearchCount(searches)}`);
  const infos: IndexInfos = { index_key: indexKey, index_param: indexParam, index_path: part.indexPath, ...metrics };

  if (s.saveOnDisk) {
    await log.timed("Saving the index on local disk", 1, () => save(infos));
  }
  return infos;
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

/** Writes one index (or part) and its index_infos.json beside their final paths. */
export function writeOutputs(publication: Publication, index: Index, part: PlannedPart, infos: IndexInfos): void {
  const temporary = publication.file("index_path", part.indexPath!);
  try {
    index.write(temporary);
  } catch (e) {
    throw new PublishError(`index_path: cannot write ${part.indexPath} (temporary ${temporary}): ${(e as Error).message}`);
  }
  publication.writeFile("index_infos_path", part.indexInfosPath!, writeJsonPython(infos));
}

/**
 * Publishes everything written, with the ids folder, as one unit, unless an input file changed
 * since the build read it; an earlier build's outputs that a reader would mix with these (a single
 * index beside new parts, parts beyond the new count) are deleted in the same publication.
 */
export function commitOutputs(publication: Publication, s: BuildSettings, plan: Pick<BuildPlan, "parts">, inputs: InputSnapshot): void {
  const indexFinals = plan.parts.map((p) => p.indexPath!);
  const infosFinals = plan.parts.map((p) => p.indexInfosPath!);
  for (const stale of staleOutputs(s.indexPath!, indexFinals)) publication.remove("index_path", stale);
  for (const stale of staleOutputs(s.indexInfosPath!, infosFinals)) publication.remove("index_infos_path", stale);
  publication.commit(() => {
    const changed = changedInput(inputs);
    if (changed) throw new BuildError(changed);
  });
}

/**
 * The ids writer when the collection carries id columns (the reader got `id_columns`): into a
 * temporary folder published with the index when saving, else straight into ids_path.
 */
async function prepareIds(
  embs: EmbeddingCollection,
  idsPath: string | null,
  publication: Publication | null,
  log: BuildReporter,
): Promise<IdsWriter | null> {
  if (!embs.idColumns.length) return null;
  if (!idsPath) {
    log.error("id_columns is set but ids_path is not: the ids mapping will not be written");
    return null;
  }
  const folder = publication ? publication.dir("ids_path", idsPath) : idsPath;
  await resetIdsFolder(folder);
  return new IdsWriter(folder, embs.idColumns);
}

function navigatorCores(): number {
  return (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
}
