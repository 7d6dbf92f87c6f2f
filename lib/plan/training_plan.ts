/**
 * Build planning: training-set size, add batch size, memory available for adding, the memory
 * pre-check, the RAM headroom check and the construction-time estimate (as Python AutoFaiss 2.18.0 computes
 * them). Pure functions, no I/O, no FAISS.
 */

import {
  estimatedIndexSizeBytes,
  pythonEstimatedIndexSizeBytes,
  pythonTrainingMemoryBytes,
  trainingMemoryBytes,
} from "./index_metadata.ts";
import { formatDuration, formatMemory, parseMemory, pyRound } from "./units.ts";
import { parseFactoryKey, trainingSteps } from "./factory_key.ts";

// ---------------------------------------------------------------------------------------------
// Constants

/** Training points per cluster when memory allows. */
const POINTS_PER_CLUSTER = 100;
/** Floor on training points per cluster when memory is tight (Python: `max(…, 31.0)`). */
const MIN_POINTS_PER_CLUSTER = 31.0;
/** The pre-check sizes training with "1K" of RAM, which forces the 31-point floor. */
const PRECHECK_TRAINING_MEMORY = 1024;
/** Adding needs at most 10 % of the index size, capped at 1e9 bytes. */
const ADD_OVERHEAD_FRACTION = 0.1;
const ADD_OVERHEAD_CAP = 1e9;
/** Batches hold at most ~1 GB of float32 ("using more than 1GB of ram is not faster"). */
const BATCH_MEMORY_CAP = 1e9;
/** Bytes of a float32 component. */
const FLOAT_BYTES = 4;
/** The index budget must leave 10 % of RAM free. */
const HEADROOM_FRACTION = 0.1;
/** Construction-time model: constant training time, then 450 s per 150 GiB added. */
const TRAIN_SECONDS = 1000;
const ADD_SECONDS_PER_REFERENCE = 450;
const ADD_REFERENCE_BYTES = 150 * 1024 ** 3;

const RE_CLUSTERS = /IVF\d+|IMI\d+x\d+/;
/**
 * FAISS warns below this many training points per k-means centroid (faiss/Clustering.h,
 * `ClusteringParameters::min_points_per_centroid = 39`); the 100-per-cluster target above is
 * between it and the 256 per centroid beyond which FAISS subsamples (`max_points_per_centroid`).
 */
export const FAISS_MIN_POINTS_PER_CENTROID = 39;
/**
 * Training points for steps that are not k-means: scalar-quantizer ranges (SQ4/6/8: per-dimension
 * min/max over every point given), PCA / ITQ covariance, LSH thresholds, and keys this model does
 * not know. FAISS sets no minimum for these; 32,768 is the floor of FAISS's own cap for ITQ
 * training (VectorTransform.cpp: `max(d_in * max_train_per_dim, 32768)`), which we reuse as
 * "enough for a stable per-dimension statistic". Never fewer than d points, so a PCA covariance
 * has full rank.
 */
export const DATA_STEP_TRAIN_POINTS = 32_768;
/** Keys FAISS marks untrained but that train without data (a random rotation only initialises). */
const NO_DATA_TRAIN_POINTS = 1;
/**
 * Codebook size assumed for a key this model does not know (additive quantizers, lattices, …):
 * FAISS's usual 8-bit codebook, 256 centroids per k-means.
 */
const UNKNOWN_FAMILY_CENTROIDS = 256;

// ---------------------------------------------------------------------------------------------

/**
 * Whether a key needs training: it contains `IVF` or `IMI` (Python `check_if_index_needs_training`).
 *
 * @example needsTraining("OPQ16_64,IVF256,PQ16x8") === true; needsTraining("HNSW32") === false
 */
export function needsTraining(key: string): boolean {
  return key.includes("IVF") || key.includes("IMI");
}

/**
 * Number of coarse clusters of a key: the first `IVFc` → c, or `IMIaxb` → 2^(a·b)
 * (Python `index_key_to_nb_cluster`). Throws for keys without either.
 *
 * @example nbClustersOfKey("IMI2x8,PQ16") === 65536
 */
export function nbClustersOfKey(key: string): number {
  const match = RE_CLUSTERS.exec(key);
  if (match === null) throw new Error(`training plan: index key "${key}" has no IVF<c> or IMI<a>x<b> part`);
  const ints = (match[0].match(/\d+/g) ?? []).map(Number);
  return match[0].startsWith("IVF") ? ints[0] : 2 ** (ints[0] * ints[1]);
}

/** Options shared by the planning functions. */
export interface PlanOptions {
  /** Use Python's size/training models and key classification exactly. Default false. */
  pythonCompatible?: boolean;
}

/**
 * Largest k-means a key runs (centroids), for the training-size rule, and whether it has a
 * training step that is not k-means. IVF / IMI count their list number, as Python AutoFaiss does
 * (an IMI2xb runs two k-means of 2^b centroids, but Python sizes its training for 2^(2b)); PQ
 * counts 2^nbits per sub-quantizer, OPQ 256 (its inner 8-bit PQ); refine stages count too.
 *
 * @example trainingCentroids("PQ16", 64) // { centroids: 256, dataStep: false }
 */
export function trainingCentroids(key: string, d = 0): { centroids: number; dataStep: boolean } {
  const fk = parseFactoryKey(key, d);
  const { kmeans, dataSteps } = trainingSteps(fk);
  let centroids = kmeans.reduce((max, r) => Math.max(max, r.k), 0);
  if (RE_CLUSTERS.test(key)) centroids = Math.max(centroids, nbClustersOfKey(key));
  if (fk.base.family === "other") centroids = Math.max(centroids, UNKNOWN_FAMILY_CENTROIDS);
  return { centroids, dataStep: dataSteps.length > 0 };
}

/**
 * Number of training vectors (Python `get_optimal_train_size`, extended to every key):
 * 100 per centroid of the largest k-means the key runs ({@link trainingCentroids}: IVF lists, 2^nbits
 * per PQ sub-quantizer, OPQ's 256), lowered to as few as 31 per centroid when `memBytes` is below the
 * memory needed to train on 100 vectors (`memBytes / m(100)` points per centroid); at least
 * {@link DATA_STEP_TRAIN_POINTS} (and d) when the key has a non-k-means step (SQ ranges, PCA, ITQ,
 * LSH thresholds); 1 for a key that trains without data (RR); never more than n; half-to-even
 * rounding. Memory is only considered when both `memBytes` and a non-zero `d` are given.
 * For IVF / IMI keys without PQ (or with IVF lists ≥ 256) the result is Python's exactly.
 *
 * @example optimalTrainSize(10_000_000, "IVF16384,Flat", 32 * 2 ** 30, 512) === 1_638_400
 * @example optimalTrainSize(1_000_000, "PQ16", undefined, 64) === 25_600
 */
export function optimalTrainSize(
  n: number,
  key: string,
  memBytes?: number,
  d?: number,
  options: PlanOptions = {},
): number {
  const { centroids, dataStep } = options.pythonCompatible
    ? { centroids: nbClustersOfKey(key), dataStep: false }
    : trainingCentroids(key, d);
  let pointsPerCluster = POINTS_PER_CLUSTER;
  if (memBytes !== undefined && d && centroids > 0) {
    const memoryFor100 = options.pythonCompatible
      ? pythonTrainingMemoryBytes(key, d, POINTS_PER_CLUSTER)
      : trainingMemoryBytes(key, d, POINTS_PER_CLUSTER);
    // Python divides by zero (crash) when its model says 0 (a key it takes for HNSW); 0 means
    // "no memory needed", so keep 100 per cluster.
    const ratio = memoryFor100 > 0 ? memBytes / memoryFor100 : POINTS_PER_CLUSTER;
    pointsPerCluster = Math.max(Math.min(ratio, POINTS_PER_CLUSTER), MIN_POINTS_PER_CLUSTER);
  }
  let points = pyRound(pointsPerCluster * centroids);
  if (dataStep) points = Math.max(points, DATA_STEP_TRAIN_POINTS, d ?? 0);
  if (points === 0) points = NO_DATA_TRAIN_POINTS;
  return Math.min(points, n);
}

/**
 * Vectors per add batch (Python `get_optimal_batch_size`): `int(min(mem, 1e9) / (4d))`.
 * Never below 1 (Python would return 0 and fail when almost no memory is left).
 *
 * @example optimalBatchSize(512, 32 * 2 ** 30) === 488281
 */
export function optimalBatchSize(d: number, memAddBytes: number): number {
  return Math.max(1, Math.trunc(Math.min(memAddBytes, BATCH_MEMORY_CAP) / (FLOAT_BYTES * d)));
}

/** Input bytes handed to FAISS per add call (see {@link addCallRows}). */
export const ADD_CALL_BYTES = 64 * 2 ** 20;

/**
 * Rows per FAISS add call. FAISS allocates temporaries proportional to each call's input: an
 * OPQ pre-transform copies all of it at its output dimension (750 MB for one 976k-row batch into
 * OPQ64_192,…), before IVF's own 65,536-row blocking.
 * Slicing each batch keeps that extra to a few hundred MB whatever the batch size, at no cost in
 * speed (each call still holds tens of thousands of vectors for the threads to share).
 *
 * @example addCallRows(128) === 131072
 */
export function addCallRows(d: number): number {
  return Math.max(1, Math.floor(ADD_CALL_BYTES / (FLOAT_BYTES * d)));
}

/** Memory left for adding vectors, as Python logs and uses it. */
export interface AddMemory {
  /** Bytes after Python's one-decimal string round-trip, ≥ 0. */
  bytes: number;
  /** The string Python logs ("2.0GB"). */
  text: string;
  /** True when the index share exceeded the available memory and the value was clamped to 0. */
  clamped: boolean;
}

/**
 * Memory available for adding: `current − estimatedSize / nbIndicesToKeep`, passed through
 * Python's bytes → one-decimal string → bytes round trip (so 2.04 GiB becomes 2.0 GiB).
 * A negative difference, which Python turns into an unparsable "-1.5GB", is clamped to 0 and flagged.
 *
 * @example memoryAvailableForAdding(32 * 2 ** 30, 2 ** 30, 1) // { bytes: 33285996544, text: "31.0GB", clamped: false }
 */
export function memoryAvailableForAdding(currentBytes: number, estimatedSize: number, nbIndicesToKeep = 1): AddMemory {
  const difference = currentBytes - estimatedSize / nbIndicesToKeep;
  if (difference < 0) return { bytes: 0, text: formatMemory(0), clamped: true };
  const text = formatMemory(difference);
  return { bytes: parseMemory(text), text, clamped: false };
}

/** Options of {@link estimateMemoryForIndexCreation}. */
export interface CreationMemoryOptions extends PlanOptions {
  makeDirectMap?: boolean;
  /** Number of parts the index is split into (Spark); the biggest part is counted. Default 1. */
  nbIndicesToKeep?: number;
  /** Index size to use when the key has no size model (a measured estimate), instead of -1. */
  indexSizeBytes?: number;
}

/**
 * RAM needed to build `key` (Python `estimate_memory_required_for_index_creation`):
 * `max(S // k + S % k + min(0.1·S, 1e9), training memory at 31 points per cluster)` truncated to an
 * integer, where S is the estimated index size. Unlike Python, the caller passes the key actually
 * built (Python re-selects one ignoring the memory-mappable and GPU flags).
 * A key whose size is not modelled counts only its training memory (Python's S = −1 does the same).
 *
 * @example estimateMemoryForIndexCreation(1000, 512, "HNSW15", { pythonCompatible: true }) === 2_384_800
 */
export function estimateMemoryForIndexCreation(
  n: number,
  d: number,
  key: string,
  options: CreationMemoryOptions = {},
): number {
  const k = options.nbIndicesToKeep ?? 1;
  const dm = options.makeDirectMap ?? false;
  const size = options.pythonCompatible
    ? pythonEstimatedIndexSizeBytes(key, n, d, dm)
    : estimatedIndexSizeBytes(key, n, d, dm) ?? options.indexSizeBytes ?? -1;
  const addOverhead = Math.min(size * ADD_OVERHEAD_FRACTION, ADD_OVERHEAD_CAP);
  let trainingMemory = 0;
  if (needsTraining(key)) {
    const t = optimalTrainSize(n, key, PRECHECK_TRAINING_MEMORY, d, options);
    trainingMemory = options.pythonCompatible ? pythonTrainingMemoryBytes(key, d, t) : trainingMemoryBytes(key, d, t);
  }
  // Size of the biggest of k parts (Python's Spark build splits the index into k parts): S // k + S % k.
  const biggestPart = Math.floor(size / k) + (((size % k) + k) % k);
  return Math.trunc(Math.max(biggestPart + addOverhead, trainingMemory));
}

/**
 * RAM headroom check of build_index: with a single output index, the index budget
 * must leave at least 10 % of `current_memory_available` free. Always true for N-part builds.
 *
 * @example headroomOk(4 * 2 ** 30, 4 * 2 ** 30, 1) === false
 */
export function headroomOk(currentBytes: number, maxIndexBytes: number, nbIndicesToKeep = 1): boolean {
  return !(nbIndicesToKeep === 1 && currentBytes - maxIndexBytes < currentBytes * HEADROOM_FRACTION);
}

/** Construction-time estimate, in seconds and as Python logs it. */
export interface ConstructionTime {
  trainSeconds: number;
  addSeconds: number;
  totalSeconds: number;
  /** "-> Train: 16.7 minutes\n-> Add: 9.5 minutes\nTotal: 26.2 minutes", each line prefixed by `indent` tabs. */
  text: string;
}

/**
 * Rough construction time (Python `get_estimated_construction_time_infos`, log only):
 * training is a constant 1000 s, adding is linear at 450 s per 150 GiB of float32 vectors.
 *
 * @example constructionTimeEstimate(1e8, 512).text === "-> Train: 16.7 minutes\n-> Add: 9.5 minutes\nTotal: 26.2 minutes"
 */
export function constructionTimeEstimate(n: number, d: number, indent = 0): ConstructionTime {
  const size = FLOAT_BYTES * n * d;
  const trainSeconds = TRAIN_SECONDS;
  const addSeconds = (ADD_SECONDS_PER_REFERENCE * size) / ADD_REFERENCE_BYTES;
  const totalSeconds = trainSeconds + addSeconds;
  const tab = "\t".repeat(indent);
  const lines = [
    `-> Train: ${formatDuration(trainSeconds)}`,
    `-> Add: ${formatDuration(addSeconds)}`,
    `Total: ${formatDuration(totalSeconds)}`,
  ];
  return { trainSeconds, addSeconds, totalSeconds, text: lines.map((line) => tab + line).join("\n") };
}

// ---------------------------------------------------------------------------------------------
// Limits of FAISS 1.7.3 that a factory call does not report

/**
 * NSG builds its k-NN graph with NNDescent, which draws its 100 evaluation points with
 * `rng() % (N - 100)` (impl/NNDescent.cpp, NUM_EVAL_POINTS): with N ≤ 100 points the process dies
 * with SIGFPE, and N = 101 aborted when we tried it (python3-faiss 1.7.3). 102–114 worked in that
 * try; we ask for more than nndescent_L = GK + 50 = 114 (the NNDescent candidate pool) as a margin.
 * N is the number of vectors of an `NSGr` index, or the number of lists of an `IVFc_NSGr`
 * quantizer (its points are the centroids).
 */
export const NSG_MIN_POINTS = 115;

/**
 * Whether FAISS must receive every vector in one add call: NSG builds its graph once, at the first
 * add, and refuses a second ("NSG does not support incremental addition", IndexNSG.cpp).
 *
 * @example addsInOneCall("NSG32,Flat") === true; addsInOneCall("IVF256_NSG32,Flat") === false
 */
export function addsInOneCall(key: string, d = 0): boolean {
  const fk = parseFactoryKey(key, d);
  return fk.base.family === "NSG" || (fk.refine?.kind === "Refine" && fk.refine.index.base.family === "NSG");
}

/**
 * What FAISS 1.7.3 would do wrong with `key` that its factory accepts: crash the process, or build
 * another metric than asked. null when nothing is known to go wrong. Checked before any data is read.
 *
 * @example keyLimitProblem("HNSW32_PQ16", 64, "ip", 1000)
 *   // "HNSW_PQ: FAISS 1.7.3 builds IndexHNSWPQ with the L2 metric whatever metric_type says; use l2, or HNSW<m>_SQ8 / HNSW<m>,Flat for ip"
 */
export function keyLimitProblem(key: string, d: number, metric: "ip" | "l2", n: number): string | null {
  const fk = parseFactoryKey(key, d);
  const b = fk.base;
  if (metric === "ip" && (b.family === "HNSW" || b.family === "NSG") && b.storage.kind === "PQ") {
    return `${b.family}_PQ: FAISS 1.7.3 builds Index${b.family}PQ with the L2 metric whatever metric_type says; ` +
      `use l2, or ${b.family}<m>_SQ8 / ${b.family}<m>,Flat for ip`;
  }
  if (b.family === "NSG" && n < NSG_MIN_POINTS) {
    return `NSG needs at least ${NSG_MIN_POINTS} vectors (FAISS 1.7.3's NNDescent graph build divides by zero below that), got ${n}`;
  }
  if (b.family === "IVF" && b.quantizer.kind === "NSG" && b.nlist < NSG_MIN_POINTS) {
    return `IVF<c>_NSG<r> needs at least ${NSG_MIN_POINTS} lists (FAISS 1.7.3's NNDescent graph build over the centroids divides by zero below that), got ${b.nlist}`;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Training levers (issue 12): how FAISS's training is run, decided from measurements.

/**
 * OPQ outer iterations (FAISS's default: 50; each trains a PQ on the rotated sample and solves a
 * Procrustes problem). Measured with tasks/bench_train.ts (AVX2 variant, same search parameters,
 * recall@10 against exact neighbours), 50 / 25 / 10 iterations:
 * - 20k × 48 synthetic, `OPQ16_48,IVF256_HNSW32,PQ16x8`: 0.6264 / 0.6266 / 0.6382;
 * - 30k × 64 synthetic, `OPQ32_96,IVF256_HNSW32,PQ32x8`: 0.6072 / 0.6110 / 0.6020;
 * - 200k × 128 synthetic, `OPQ64_192,IVF2048_HNSW32,PQ64x8` (65,536 OPQ training points, nprobe 256):
 *   0.4012 / 0.4030 / 0.3968, training 99.8 / 64.0 / 43.1 s.
 * 25 is never below 50 by more than noise; 10 loses 0.0044–0.0052 on the two larger cases, at the
 * issue's 0.005 limit, so the rotation has not converged for recall by 10 when it rotates into 3
 * dimensions per sub-quantizer. The PQ k-means run 40 + 4·(n−1) iterations per sub-quantizer, so 25
 * costs 136 / 236 of FAISS's OPQ training.
 */
export const OPQ_OUTER_ITERATIONS = 25;

/**
 * Fewest IVF lists from which the coarse k-means assigns its points through an HNSW graph over the
 * centroids (M = {@link IVF_HNSW_ASSIGN_M}) instead of comparing each point with every centroid.
 * Measured with tasks/bench_train.ts (AVX2, `plan` against `plan+hnsw`): 1M × 64,
 * `OPQ32_96,IVF16384_HNSW32,PQ32x8`: training 155 s against 252 s for the same build idle (0.61×; the
 * bench's own `plan` run, 430 s, shared the cores with a compiler), recall@10 0.2680 → 0.2664;
 * 200k × 128, `OPQ64_192,IVF2048_HNSW32,PQ64x8`: 42.3 → 53.6 s (1.27×, slower), recall 0.3974 → 0.4000;
 * 256 lists: 0.94× (no gain). Rebuilding the graph at every iteration pays only when brute force over
 * the centroids is large. 1M × 64, `OPQ32_96,IVF8192_HNSW32,PQ32x8` (session 9, idle, 10,000 held-out
 * queries at `nprobe=512`): training 142.8 → 73.5 s (0.51×), recall@10 0.2778 → 0.2780. 2,048 … 8,191
 * lists are not measured, so they keep FAISS's way.
 * Recall, scored on 10,000 held-out queries (1,000 queries move recall@10 by ±0.004 between trainings
 * of the same variant, which session 8 read as a 0.004 loss): 1M × 64, same key, at `nprobe=1119`,
 * HNSW assignment 0.2777, brute force 0.2780; the same HNSW assignment with its last two iterations
 * brute force 0.2775. The approximate assignment costs no measurable recall.
 */
export const IVF_HNSW_ASSIGN_MIN_LISTS = 8_192;
export const IVF_HNSW_ASSIGN_M = 32;

/**
 * Rows the OPQ rotation trains on (`OPQMatrix::max_train_points`, a random subset of whatever rows it
 * is given; FAISS's default 256 × 256 = 65,536). Each outer iteration trains a PQ on every row, encodes
 * and decodes them and multiplies by them twice (the Procrustes problem), so the rotation's time is
 * proportional to its rows. Measured with tasks/bench_train.ts (session 11, AVX2, idle, the same
 * search parameters for both, recall@10 on 10,000 held-out queries), 65,536 → 32,768 rows:
 * - 200k × 128 synthetic (ip), `OPQ64_192,IVF2048_HNSW32,PQ64x8`, `nprobe=256,efSearch=512`: training
 *   57.4 → 37.1 s (0.64×), recall 0.3991 → 0.3995;
 * - Fashion-MNIST (real, l2), `OPQ128_896,IVF1024_HNSW32,PQ128x8` (its 60,000 rows → 32,768),
 *   `nprobe=16,efSearch=32`: 170.7 → 119.2 s (0.70×), 0.9022 → 0.9020;
 * - Fashion-MNIST, `OPQ28_112,IVF1024_HNSW32,PQ28x8`: 26.1 → 18.9 s (0.72×), 0.7008 → 0.7009.
 * That leaves 128 rows per codebook centroid. 16,384 rows went on saving (200k: 29.6 s, 0.3986;
 * Fashion `OPQ28_112`: 0.74× of 32,768's time) but lost 0.0011 there against 32,768: not used.
 * Two other levers measured on the 200k case are not used either: 10 instead of 25 k-means iterations
 * for the key's own PQ saved nothing (56.9 s; its k-means on 3 dimensions is cheap in the direct loop)
 * and lost 0.0042; OPQ's first outer iteration with 4 instead of FAISS's 40 k-means iterations
 * (`niter_pq_0`, an experimental build) saved 5 % (54.3 s) for −0.0013.
 */
export const OPQ_TRAIN_POINTS = 32_768;

/**
 * Rows of a sample of its own for the OPQ rotation of `key`, trained and freed before the key's
 * training sample of `trainRows` rows is read, or null when the rotation trains inside that sample.
 * FAISS's OPQ training allocates about 4 × its rows at the output dimension (the subset, its
 * padded copy, projections, reconstructions) while the whole training sample stays alive to be
 * rotated next; a separate sample never holds both (200k × 128, `OPQ64_192,…`: the sample's
 * 102 MB). Only a key whose one transform is an OPQ, and only when the sample is larger than what
 * OPQ trains on anyway: the rotation still sees {@link OPQ_TRAIN_POINTS} uniform rows, as FAISS's
 * own subset of a uniform sample.
 *
 * @example rotationSampleRows("OPQ64_192,IVF2048_HNSW32,PQ64x8", 200_000) === 32_768
 * @example rotationSampleRows("OPQ64_192,IVF256,PQ64x8", 25_600) === null
 */
export function rotationSampleRows(key: string, trainRows: number): number | null {
  const { transforms } = parseFactoryKey(key, 0);
  if (transforms.length !== 1 || transforms[0].kind !== "OPQ") return null;
  return trainRows > OPQ_TRAIN_POINTS ? OPQ_TRAIN_POINTS : null;
}

/**
 * Coarse k-means iterations from {@link IVF_HNSW_ASSIGN_MIN_LISTS} lists on (FAISS's IVF default: 10).
 * Session 10, recall@10 on 10,000 held-out queries at fixed search parameters, 10 → 5 iterations:
 * 1M × 64, `OPQ32_96,IVF16384_HNSW32,PQ32x8` (`nprobe=1119`): training 91.2 → 73.6 s, recall 0.2769 →
 * 0.2781 (its objective settles by the second iteration); Fashion-MNIST (real), `OPQ28_112,IVF1024_HNSW32,PQ28x8`:
 * 0.1624 → 0.1640; 200k × 128, `OPQ64_192,IVF2048_HNSW32,PQ64x8`: 0.3990 → 0.3982. Below 8,192 lists the
 * coarse k-means is a small share of training (no measurable time saved on the last two), so they keep 10.
 * Fewer training points per list (50 instead of up to 100) gained nothing either where it applies
 * (Fashion −0.0024, 200k −0.0004, same times): not used.
 */
export const IVF_KMEANS_ITERATIONS_MANY_LISTS = 5;

/** Options of ffi/faiss.ts `trainWithLevers` (each one left out keeps FAISS's default). */
export interface TrainingLeverPlan {
  directSubspace?: boolean;
  opqNiter?: number;
  opqNiterPq?: number;
  opqMaxTrainPoints?: number;
  ivfNiter?: number;
  ivfMaxPointsPerCentroid?: number;
  pqNiter?: number;
  ivfHnswAssignM?: number;
}

/**
 * The training options for `key`: the direct (SIMD) k-means on PQ / OPQ sub-vectors
 * of at most 8 dimensions whenever the key has a PQ or an OPQ (same assignments as FAISS's up to float
 * rounding, so no recall cost), OPQ's outer iterations from {@link OPQ_OUTER_ITERATIONS} and its rows
 * from {@link OPQ_TRAIN_POINTS}, and the
 * HNSW assignment of the coarse k-means and its {@link IVF_KMEANS_ITERATIONS_MANY_LISTS} iterations
 * from {@link IVF_HNSW_ASSIGN_MIN_LISTS} lists.
 *
 * @example trainingLevers("OPQ64_192,IVF1024_HNSW32,PQ64x8") // { directSubspace: true, opqNiter: 25, opqMaxTrainPoints: 32768 }
 */
export function trainingLevers(key: string): TrainingLeverPlan {
  const fk = parseFactoryKey(key, 0);
  const { kmeans } = trainingSteps(fk);
  const plan: TrainingLeverPlan = {};
  const hasOpq = fk.transforms.some((t) => t.kind === "OPQ");
  if (hasOpq || kmeans.some((r) => /(^| )PQ\d/.test(r.what))) plan.directSubspace = true;
  if (hasOpq) {
    plan.opqNiter = OPQ_OUTER_ITERATIONS;
    plan.opqMaxTrainPoints = OPQ_TRAIN_POINTS;
  }
  if (fk.base.family === "IVF" && fk.base.quantizer.kind !== "IMI" && fk.base.nlist >= IVF_HNSW_ASSIGN_MIN_LISTS) {
    plan.ivfHnswAssignM = IVF_HNSW_ASSIGN_M;
    plan.ivfNiter = IVF_KMEANS_ITERATIONS_MANY_LISTS;
  }
  return plan;
}
