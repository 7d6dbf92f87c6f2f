/**
 * What build_index will do, decided before any FAISS call: memory budgets and the 10 % headroom
 * rule, the index key, the memory needed to build it, the training-set size and the add batch
 * sizes, with the lines the build logs about each decision. Pure: settings and the data's shape
 * in, a {@link BuildPlan} out, so `--dry_run` can print it and tests can check it without data.
 *
 * The executor (lib/commands/build_index.ts) calls the same steps, in the same order, inside its
 * timed log blocks, then {@link completePlan}; {@link planBuild} chains them for a dry run.
 *
 * @example
 * const plan = planBuild(settings, { count: 1_000_000, dimension: 512 });
 * plan.indexKey; // "OPQ256_1280,IVF16384_HNSW32,PQ256x8"
 */
import { noIndexFitsMessage, optimalIndexKeys, type SelectionOptions } from "./selection.ts";
import { type CandidateList, selectionCandidates } from "./candidates.ts";
import {
  addCallRows,
  addsInOneCall,
  constructionTimeEstimate,
  estimateMemoryForIndexCreation,
  headroomOk,
  memoryAvailableForAdding,
  needsTraining,
  optimalBatchSize,
  keyLimitProblem,
  optimalTrainSize,
} from "./training_plan.ts";
import { estimatedIndexSizeBytes } from "./index_metadata.ts";
import { formatMemory, parseMemory } from "./units.ts";
import { effectivePartCount, partPaths, partRanges, type RowRange } from "./parts.ts";

/** A build_index failure the user can act on: the CLI prints its message on one line. */
export class BuildError extends Error {
  override readonly name = "BuildError";
}

/** build_index's options with every default filled in (lib/commands/defaults.ts). */
export interface BuildSettings {
  indexPath: string | null;
  indexInfosPath: string | null;
  idsPath: string | null;
  saveOnDisk: boolean;
  indexKey: string | null;
  indexParam: string | null;
  maxIndexQueryTimeMs: number;
  maxIndexMemoryUsage: string;
  /** false: `maxIndexMemoryUsage` is the default, and may be lowered to pass the headroom rule */
  maxIndexMemoryUsageGiven: boolean;
  minNearestNeighborsToRetrieve: number;
  currentMemoryAvailable: string;
  useGpu: boolean;
  metricType: string;
  /** null: all cores */
  nbCores: number | null;
  makeDirectMap: boolean;
  shouldBeMemoryMappable: boolean;
  distributed: string | null;
  nbIndicesToKeep: number;
  /** seed of the uniform training sample */
  trainSeed: number;
  /** a trained, empty index file to fill instead of training (build_partitioned_indexes' index_path) */
  trainedIndexPath: string | null;
}

/** One output file of a build: the index (or part) and its infos, holding rows `[start, end)`. */
export interface PlannedPart {
  indexPath: string | null;
  indexInfosPath: string | null;
  rows: RowRange;
}

/** The shape of the embeddings, read from the files' headers. */
export interface DataShape {
  count: number;
  dimension: number;
}

/** Memory budgets in bytes, after the headroom rule. */
export interface MemoryBudgets {
  currentMemoryAvailable: number;
  maxIndexMemoryUsage: number;
  /** the default index budget was lowered to 90 % of the RAM budget */
  lowered: boolean;
  /** INFO lines about the budgets, logged before the data is read */
  notes: string[];
}

export interface BuildPlan {
  vectors: number;
  dimension: number;
  metricType: "ip" | "l2";
  indexKey: string;
  /** "index_key": given by the user; "selected": the best candidate that fits the budget */
  indexKeySource: "index_key" | "selected";
  /** search parameters to apply, or null to tune them after building */
  indexParam: string | null;
  /** all in bytes */
  memory: {
    currentMemoryAvailable: number;
    maxIndexMemoryUsage: number;
    maxIndexMemoryUsageLowered: boolean;
    neededToBuild: number;
    estimatedIndexSize: number;
    /**
     * "formula": the size model of lib/plan/index_metadata.ts; "measured": the key's family has no
     * formula, so two small trained instances were serialized and extrapolated (lib/measure/key_check.ts)
     */
    estimatedIndexSizeSource: "formula" | "measured";
    availableForAdding: number;
    /** as Python logs it (one decimal; `availableForAdding` is this string parsed back) */
    availableForAddingText: string;
  };
  training: {
    /**
     * The key's family always trains. When false, the build still trains if FAISS's instance of the
     * key turns out untrained, on {@link trainingVectors} then.
     */
    needed: boolean;
    /** training-set size (null when not needed) */
    vectors: number | null;
    /** memory the training sample takes (null when not needed) */
    bytes: number | null;
    seed: number;
  };
  adding: {
    /** Python's batch size for the memory available for adding */
    batchSize: number;
    /** rows per read: the reader fetches one batch ahead, so two of these hold one Python batch */
    readBatchRows: number;
    /** rows per FAISS add call */
    addCallRows: number;
  };
  /** OpenMP threads; null: all cores */
  threads: number | null;
  tuning: { maxIndexQueryTimeMs: number; minNearestNeighborsToRetrieve: number };
  outputs: { saveOnDisk: boolean; indexPath: string | null; indexInfosPath: string | null; idsPath: string | null };
  /**
   * The index files written, in order: one (the index itself) or the N parts of
   * `nb_indices_to_keep` (`knn.index01 …`, capped at the number of vectors), each holding a
   * contiguous range of rows under their global row numbers.
   */
  parts: PlannedPart[];
  /** Python's rough estimate (log only) */
  constructionTimeSeconds: { train: number; add: number; total: number };
  /** the INFO lines the build logs about these decisions, in order */
  decisions: string[];
}

/** Why `distributed="pyspark"` is refused, and what to use instead. */
export const PYSPARK_REFUSED =
  'distributed: "pyspark" (Spark) is not available in this tool; use --distributed=slurm (a Slurm job array), ' +
  "or run the phases plan_build, add_shard and merge_shards with any scheduler (examples/kubernetes/ for Kubernetes Indexed Jobs)";

/** Checks the options that need no data: metric, distributed mode and part count. Returns the metric. */
export function checkBuildOptions(s: BuildSettings): "ip" | "l2" {
  const m = s.metricType.toLowerCase();
  if (m !== "ip" && m !== "l2") throw new BuildError(`metric_type: expected "ip" or "l2", got "${s.metricType}"`);
  if (s.distributed === "pyspark") throw new BuildError(PYSPARK_REFUSED);
  if (s.distributed !== null && s.distributed !== "slurm") {
    throw new BuildError(`distributed: expected None or "slurm", got "${s.distributed}"`);
  }
  if (!Number.isInteger(s.nbIndicesToKeep) || s.nbIndicesToKeep < 1) {
    throw new BuildError(`nb_indices_to_keep: expected an integer >= 1, got ${s.nbIndicesToKeep}`);
  }
  if (s.nbIndicesToKeep > 1 && !s.saveOnDisk) {
    throw new BuildError(`nb_indices_to_keep=${s.nbIndicesToKeep} writes ${s.nbIndicesToKeep} index files: save_on_disk must be true`);
  }
  return m;
}

/** Saving needs both output paths. */
export function checkOutputPaths(s: BuildSettings): void {
  if (s.saveOnDisk && (s.indexPath === null || s.indexInfosPath === null)) {
    throw new BuildError("index_path and index_infos_path are required when save_on_disk is true");
  }
}

function memoryOption(name: string, value: string): number {
  try {
    return parseMemory(value);
  } catch {
    throw new BuildError(`${name}: expected a memory string like 16G or 512MB, got "${value}"`);
  }
}

/**
 * Parses the memory budgets and applies Python's rule that the index leaves 10 % of the RAM budget
 * free. The default pair (32GB index, 32GB RAM) fails that rule, so an index budget left at its
 * default is lowered to 90 % of the RAM budget; a budget the user gave is an error instead.
 */
export function planMemoryBudgets(s: BuildSettings): MemoryBudgets {
  const current = memoryOption("current_memory_available", s.currentMemoryAvailable);
  let maxIndex = memoryOption("max_index_memory_usage", s.maxIndexMemoryUsage);
  const notes: string[] = [];
  let lowered = false;
  if (!headroomOk(current, maxIndex, s.nbIndicesToKeep)) {
    if (s.maxIndexMemoryUsageGiven) {
      throw new BuildError(
        `You do not have enough memory to build this index, please increase current_memory_available or decrease max_index_memory_usage ` +
          `(max_index_memory_usage=${formatMemory(maxIndex)} must leave 10% of current_memory_available=${formatMemory(current)} free)`,
      );
    }
    maxIndex = Math.floor(0.9 * current);
    lowered = true;
    notes.push(`max_index_memory_usage defaults to ${formatMemory(maxIndex)} (90% of current_memory_available)`);
  }
  return { currentMemoryAvailable: current, maxIndexMemoryUsage: maxIndex, lowered, notes };
}

/** Number of part files for `data`: nb_indices_to_keep, never more than the vectors (no empty part). */
export function partCount(s: BuildSettings, data: DataShape): number {
  return effectivePartCount(data.count, s.nbIndicesToKeep);
}

function selectionFlags(s: BuildSettings, data: DataShape): SelectionOptions {
  return {
    makeDirectMap: s.makeDirectMap,
    // Parts hold global ids (add_with_ids), which only IVF indices store: as in Python's Spark mode.
    shouldBeMemoryMappable: s.shouldBeMemoryMappable || partCount(s, data) > 1,
    useGpu: s.useGpu,
  };
}

/**
 * The given index_key, or the best candidate whose estimated size fits the index budget. A given key
 * that FAISS 1.7.3 accepts but would mishandle (crash, wrong metric: {@link keyLimitProblem}) is a
 * BuildError naming it; whether FAISS accepts the key at all is checked by the caller, with FAISS.
 */
export function chooseIndexKey(s: BuildSettings, budgets: MemoryBudgets, data: DataShape): string {
  if (s.indexKey) {
    const problem = keyLimitProblem(s.indexKey, data.dimension, checkBuildOptions(s), data.count);
    if (problem !== null) throw new BuildError(`index_key "${s.indexKey}": ${problem}`);
    return s.indexKey;
  }
  const flags = selectionFlags(s, data);
  const keys = optimalIndexKeys(data.count, data.dimension, budgets.maxIndexMemoryUsage, flags);
  if (keys.length === 0) throw new BuildError(noIndexFitsMessage(data.count, data.dimension, budgets.maxIndexMemoryUsage, flags));
  return keys[0];
}

/**
 * Measured selection's candidates (lib/plan/candidates.ts) for this build: same flags as
 * {@link chooseIndexKey}; IVF keys without refinement only when a direct map or N parts need
 * `ivf()`; keys FAISS 1.7.3 would mishandle ({@link keyLimitProblem}) or too big to build in
 * current_memory_available ({@link creationMemory}) are dropped with the reason.
 * Empty (BuildError) when nothing fits, as chooseIndexKey.
 */
export function candidateList(s: BuildSettings, budgets: MemoryBudgets, data: DataShape): CandidateList {
  const flags = selectionFlags(s, data);
  const list = selectionCandidates(data.count, data.dimension, budgets.maxIndexMemoryUsage, {
    ...flags,
    ivfOnly: s.makeDirectMap || flags.shouldBeMemoryMappable,
  });
  if (list.candidates.length === 0) throw new BuildError(noIndexFitsMessage(data.count, data.dimension, budgets.maxIndexMemoryUsage, flags));
  const metric = checkBuildOptions(s);
  const candidates = [];
  const dropped = [...list.dropped];
  for (const c of list.candidates) {
    let problem = keyLimitProblem(c.key, data.dimension, metric, data.count);
    if (problem === null) {
      try {
        creationMemory(s, budgets, c.key, data);
      } catch (e) {
        if (!(e instanceof BuildError)) throw e;
        problem = e.message;
      }
    }
    if (problem === null || c.heuristic) candidates.push({ ...c, rank: candidates.length + 1 });
    else dropped.push({ key: c.key, estimatedBytes: c.estimatedBytes, reason: problem });
  }
  return { ...list, candidates, dropped };
}

/**
 * Size of `indexKey` over the data: the formula of lib/plan/index_metadata.ts, else `measuredSize`
 * (bytes, from lib/measure/key_check.ts). A key without either is a BuildError: the caller must
 * measure the families that have no formula ({@link needsMeasuredSize}).
 */
export function indexSizeEstimate(
  s: BuildSettings,
  indexKey: string,
  data: DataShape,
  measuredSize?: number,
): { bytes: number; source: "formula" | "measured" } {
  const formula = estimatedIndexSizeBytes(indexKey, data.count, data.dimension, s.makeDirectMap);
  if (formula !== null) return { bytes: formula, source: "formula" };
  if (measuredSize === undefined) {
    throw new BuildError(`index_key "${indexKey}": no size formula for this family and no measured size was given`);
  }
  return { bytes: measuredSize, source: "measured" };
}

/** Whether the size of `indexKey` must be measured with FAISS: its family has no size formula. */
export function needsMeasuredSize(s: BuildSettings, indexKey: string, data: DataShape): boolean {
  return estimatedIndexSizeBytes(indexKey, data.count, data.dimension, s.makeDirectMap) === null;
}

/**
 * RAM needed to build `indexKey` (the key really built: Python estimated a possibly different key
 * and crashed on an empty candidate list, its issue #118); an error when it exceeds the RAM budget.
 * `measuredSize`: the index size when its family has no formula ({@link indexSizeEstimate}).
 */
export function creationMemory(s: BuildSettings, budgets: MemoryBudgets, indexKey: string, data: DataShape, measuredSize?: number): number {
  const indexSizeBytes = indexSizeEstimate(s, indexKey, data, measuredSize).bytes;
  // N parts: the largest part is counted (one part is in memory at a time).
  const needed = estimateMemoryForIndexCreation(data.count, data.dimension, indexKey, {
    makeDirectMap: s.makeDirectMap,
    indexSizeBytes,
    nbIndicesToKeep: partCount(s, data),
  });
  if (needed > budgets.currentMemoryAvailable) {
    throw new BuildError(
      `The current memory available ${formatMemory(budgets.currentMemoryAvailable)} is too small to build the ${s.indexKey ? "" : "(default) "}index ${indexKey} ` +
        `of ${data.count} vectors of dim ${data.dimension}: ${formatMemory(needed)} is needed; increase current_memory_available or choose a smaller index_key`,
    );
  }
  return needed;
}

/** The line the build logs after {@link creationMemory}. */
export function creationMemoryLine(needed: number): string {
  return `${formatMemory(needed)} of memory will be needed to build the index (more might be used if you have more)`;
}

/** Training-set size for `indexKey` with the RAM budget (at most the number of vectors). */
export function trainingVectors(budgets: MemoryBudgets, data: DataShape, indexKey: string): number {
  return optimalTrainSize(data.count, indexKey, budgets.currentMemoryAvailable, data.dimension);
}

/** The rest of the plan, once the key, its creation memory and (without a formula) its measured size are known. */
export function completePlan(
  s: BuildSettings,
  budgets: MemoryBudgets,
  data: DataShape,
  indexKey: string,
  neededToBuild: number,
  measuredSize?: number,
): BuildPlan {
  const metric = checkBuildOptions(s);
  const { count: n, dimension: d } = data;
  const size = indexSizeEstimate(s, indexKey, data, measuredSize);
  const estimatedSize = size.bytes;
  // NSG builds its graph at the first add call and refuses a second: every vector in one call.
  const oneCall = addsInOneCall(indexKey, d);
  // A pre-trained index is filled as it is.
  const needed = s.trainedIndexPath === null && needsTraining(indexKey);
  const trainVectors = needed ? trainingVectors(budgets, data, indexKey) : null;
  const nParts = partCount(s, data);
  const addMemory = memoryAvailableForAdding(budgets.currentMemoryAvailable, estimatedSize, nParts);
  const parts = plannedParts(s, n, nParts);
  const batchSize = optimalBatchSize(d, addMemory.bytes);
  const time = constructionTimeEstimate(n, d);
  const training = { needed, vectors: trainVectors, bytes: trainVectors === null ? null : trainVectors * d * 4, seed: s.trainSeed };
  return {
    vectors: n,
    dimension: d,
    metricType: metric,
    indexKey,
    indexKeySource: s.indexKey ? "index_key" : "selected",
    indexParam: s.indexParam,
    memory: {
      currentMemoryAvailable: budgets.currentMemoryAvailable,
      maxIndexMemoryUsage: budgets.maxIndexMemoryUsage,
      maxIndexMemoryUsageLowered: budgets.lowered,
      neededToBuild,
      estimatedIndexSize: estimatedSize,
      estimatedIndexSizeSource: size.source,
      availableForAdding: addMemory.bytes,
      availableForAddingText: addMemory.text,
    },
    training,
    adding: oneCall
      ? { batchSize, readBatchRows: n, addCallRows: n }
      : { batchSize, readBatchRows: Math.max(1, Math.ceil(batchSize / 2)), addCallRows: addCallRows(d) },
    threads: s.nbCores,
    tuning: { maxIndexQueryTimeMs: s.maxIndexQueryTimeMs, minNearestNeighborsToRetrieve: s.minNearestNeighborsToRetrieve },
    outputs: { saveOnDisk: s.saveOnDisk, indexPath: s.indexPath, indexInfosPath: s.indexInfosPath, idsPath: s.idsPath },
    parts,
    constructionTimeSeconds: { train: time.trainSeconds, add: time.addSeconds, total: time.totalSeconds },
    decisions: [
      ...budgets.notes,
      `There are ${n} embeddings of dim ${d}`,
      ...time.text.split("\n"),
      `Index key: ${indexKey}${s.indexKey ? " (given)" : ""}`,
      creationMemoryLine(neededToBuild),
      `The index size will be approximately ${formatMemory(estimatedSize)}${size.source === "measured" ? " (measured on two small trained instances)" : ""}`,
      training.vectors !== null && training.bytes !== null
        ? `Will use ${training.vectors} vectors to train the index, that will use ${formatMemory(training.bytes)} of memory`
        : s.trainedIndexPath !== null
        ? `The pre-trained index ${s.trainedIndexPath} is filled (no training)`
        : "The index needs no training",
      `The memory available for adding the vectors is ${addMemory.text}(total available - used by the index)`,
      `Using a batch size of ${batchSize} (memory overhead ${formatMemory(batchSize * d * 4)})`,
      ...partLines(s, parts),
    ],
  };
}

/** The output files: the index itself, or `nParts` parts with contiguous row ranges. */
function plannedParts(s: BuildSettings, n: number, nParts: number): PlannedPart[] {
  if (nParts === 1) return [{ indexPath: s.indexPath, indexInfosPath: s.indexInfosPath, rows: { start: 0, end: n } }];
  // checkBuildOptions guarantees save_on_disk, hence both paths, when there are parts
  const indexPaths = partPaths(s.indexPath!, nParts);
  const infosPaths = partPaths(s.indexInfosPath!, nParts);
  return partRanges(n, nParts).map((rows, i) => ({ indexPath: indexPaths[i], indexInfosPath: infosPaths[i], rows }));
}

function partLines(s: BuildSettings, parts: readonly PlannedPart[]): string[] {
  if (s.nbIndicesToKeep === 1) return [];
  const capped = parts.length < s.nbIndicesToKeep
    ? [`nb_indices_to_keep=${s.nbIndicesToKeep} but there are only ${parts[parts.length - 1].rows.end} vectors: writing ${parts.length} parts`]
    : [];
  return [...capped, ...parts.map((p, i) => `Part ${i + 1} of ${parts.length}: rows [${p.rows.start}, ${p.rows.end}) -> ${p.indexPath}`)];
}

/**
 * The whole plan for `data` (what `--dry_run` prints). Throws {@link BuildError} for options the
 * build would refuse: bad metric, a given key FAISS would mishandle, no key that fits, not enough
 * memory to build. `measuredSize`: the size of a given key whose family has no formula, measured
 * by the caller ({@link needsMeasuredSize}).
 */
export function planBuild(s: BuildSettings, data: DataShape, measuredSize?: number): BuildPlan {
  checkBuildOptions(s);
  checkOutputPaths(s);
  const budgets = planMemoryBudgets(s);
  const indexKey = chooseIndexKey(s, budgets, data);
  const needed = creationMemory(s, budgets, indexKey, data, measuredSize);
  return completePlan(s, budgets, data, indexKey, needed, measuredSize);
}
