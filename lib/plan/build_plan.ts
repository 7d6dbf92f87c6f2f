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
import {
  addCallRows,
  constructionTimeEstimate,
  estimateMemoryForIndexCreation,
  headroomOk,
  memoryAvailableForAdding,
  needsTraining,
  optimalBatchSize,
  optimalTrainSize,
} from "./training_plan.ts";
import { estimatedIndexSizeBytes } from "./index_metadata.ts";
import { formatMemory, parseMemory } from "./units.ts";

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
  if (s.nbIndicesToKeep !== 1) {
    throw new BuildError(`nb_indices_to_keep: only 1 is supported (N-part output needs distributed mode), got ${s.nbIndicesToKeep}`);
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

function selectionFlags(s: BuildSettings): SelectionOptions {
  return { makeDirectMap: s.makeDirectMap, shouldBeMemoryMappable: s.shouldBeMemoryMappable, useGpu: s.useGpu };
}

/** The given index_key, or the best candidate whose estimated size fits the index budget. */
export function chooseIndexKey(s: BuildSettings, budgets: MemoryBudgets, data: DataShape): string {
  if (s.indexKey) return s.indexKey;
  const flags = selectionFlags(s);
  const keys = optimalIndexKeys(data.count, data.dimension, budgets.maxIndexMemoryUsage, flags);
  if (keys.length === 0) throw new BuildError(noIndexFitsMessage(data.count, data.dimension, budgets.maxIndexMemoryUsage, flags));
  return keys[0];
}

/**
 * RAM needed to build `indexKey` (the key really built: Python estimated a possibly different key
 * and crashed on an empty candidate list, its issue #118); an error when it exceeds the RAM budget.
 */
export function creationMemory(s: BuildSettings, budgets: MemoryBudgets, indexKey: string, data: DataShape): number {
  const needed = estimateMemoryForIndexCreation(data.count, data.dimension, indexKey, { makeDirectMap: s.makeDirectMap });
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

/** The rest of the plan, once the key and its creation memory are known. */
export function completePlan(
  s: BuildSettings,
  budgets: MemoryBudgets,
  data: DataShape,
  indexKey: string,
  neededToBuild: number,
): BuildPlan {
  const metric = checkBuildOptions(s);
  const { count: n, dimension: d } = data;
  const estimatedSize = estimatedIndexSizeBytes(indexKey, n, d, s.makeDirectMap) ?? 0;
  const needed = needsTraining(indexKey);
  const trainVectors = needed ? trainingVectors(budgets, data, indexKey) : null;
  const addMemory = memoryAvailableForAdding(budgets.currentMemoryAvailable, estimatedSize, s.nbIndicesToKeep);
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
      availableForAdding: addMemory.bytes,
      availableForAddingText: addMemory.text,
    },
    training,
    adding: { batchSize, readBatchRows: Math.max(1, Math.ceil(batchSize / 2)), addCallRows: addCallRows(d) },
    threads: s.nbCores,
    tuning: { maxIndexQueryTimeMs: s.maxIndexQueryTimeMs, minNearestNeighborsToRetrieve: s.minNearestNeighborsToRetrieve },
    outputs: { saveOnDisk: s.saveOnDisk, indexPath: s.indexPath, indexInfosPath: s.indexInfosPath, idsPath: s.idsPath },
    constructionTimeSeconds: { train: time.trainSeconds, add: time.addSeconds, total: time.totalSeconds },
    decisions: [
      ...budgets.notes,
      `There are ${n} embeddings of dim ${d}`,
      ...time.text.split("\n"),
      `Index key: ${indexKey}${s.indexKey ? " (given)" : ""}`,
      creationMemoryLine(neededToBuild),
      `The index size will be approximately ${formatMemory(estimatedSize)}`,
      training.vectors !== null && training.bytes !== null
        ? `Will use ${training.vectors} vectors to train the index, that will use ${formatMemory(training.bytes)} of memory`
        : "The index needs no training",
      `The memory available for adding the vectors is ${addMemory.text}(total available - used by the index)`,
      `Using a batch size of ${batchSize} (memory overhead ${formatMemory(batchSize * d * 4)})`,
    ],
  };
}

/**
 * The whole plan for `data` (what `--dry_run` prints). Throws {@link BuildError} for options the
 * build would refuse: bad metric, no key that fits, not enough memory to build.
 */
export function planBuild(s: BuildSettings, data: DataShape): BuildPlan {
  checkBuildOptions(s);
  checkOutputPaths(s);
  const budgets = planMemoryBudgets(s);
  const indexKey = chooseIndexKey(s, budgets, data);
  const needed = creationMemory(s, budgets, indexKey, data);
  return completePlan(s, budgets, data, indexKey, needed);
}
