/**
 * Index selection: which FAISS factory keys to try for n vectors of dimension d under a size budget,
 * as Python AutoFaiss's `get_optimal_index_keys_v2`, `get_optimal_quantization` and
 * `get_optimal_nb_clusters` (external/optimize.py) choose them. Pure functions, no I/O, no FAISS.
 *
 * Default behaviour differs from Python AutoFaiss on purpose (listed in the README):
 * - every returned candidate's corrected size estimate (`estimatedIndexSizeBytes`) fits the budget,
 *   so the built index never exceeds `max_index_memory_usage` (Python only checks PQ code + id bytes,
 *   ignoring centroids, the HNSW quantizer and OPQ; HNSW by its 2M-link formula; and nothing below
 *   10,000 vectors);
 * - duplicate candidates are removed (Python's cluster list repeats a count);
 * - an empty list is returned instead of crashing, and {@link smallestWorkableBudget} tells the
 *   caller which budget would work.
 * `pythonCompatible: true` reproduces Python 2.18.0 exactly (tests/selection.test.ts checks it against a
 * table of keys, candidate counts and size estimates obtained by running the Python code).
 */

import { estimatedIndexSizeBytes, pythonEstimatedIndexSizeBytes } from "./index_metadata.ts";
import { formatMemory, pyRound } from "./units.ts";

// ---------------------------------------------------------------------------------------------
// Constants of Python AutoFaiss's selection (external/optimize.py)

/** Below this many vectors Python picks `Flat` (`IVF1,Flat` when memory-mappable), with no memory check. */
export const FLAT_THRESHOLD = 1000;
/**
 * Below this many vectors quantization is impossible: Python picks HNSW15 (the IVF-Flat list when
 * memory-mappable), with no memory check.
 */
export const QUANTIZATION_THRESHOLD = 10_000;
/**
 * From this many vectors Python no longer offers IVF-Flat on CPU (only with `use_gpu`): OPQ+IVF+PQ
 * instead (its `ivf_flat_threshold`, issue #68).
 */
export const IVF_FLAT_THRESHOLD = 1_000_000;
/** HNSW degree Python uses below {@link QUANTIZATION_THRESHOLD} vectors. */
const SMALL_SET_HNSW_M = 15;
/**
 * Python picks HNSW (unless memory-mappable) when M = floor((budget/(4n) − d)/2) ≥ 8, i.e. when
 * 4n(d + 2M) bytes fit the budget; M is capped at 32.
 */
const HNSW_MIN_M = 8;
const HNSW_MAX_M = 32;
/** PQ sizes Python tries, largest first. */
const PQ_VALUES = [256, 128, 64, 48, 32, 24, 16, 8, 4] as const;
/** Bytes of the int64 id stored next to each code in an inverted list. */
const ID_BYTES = 8;
/** OPQ output dimension is (min(d // pq, 6) + 1)·pq, so at most (6 + 1)·pq. */
const OPQ_Y_CAP = 6;
/** From this many clusters the coarse quantizer is `HNSW32` (`IVF{c}_HNSW32`), below it flat (`IVF{c}`). */
const IVF_HNSW_MIN_CLUSTERS = 1000;
const IVF_HNSW_M = 32;
/** Cluster-count bands of `get_optimal_nb_clusters`. */
const CLUSTERS_1M_TO_10M = [16_384, 65_536];
const CLUSTERS_10M_TO_300M = [65_536, 2 ** 17, 2 ** 18];
const CLUSTERS_FROM_300M = [2 ** 17, 2 ** 18, 65_536, 2 ** 20];
const TEN_MILLION = 10_000_000;
const THREE_HUNDRED_MILLION = 300_000_000;
/** Largest budget {@link smallestWorkableBudget} considers: 1 EiB, beyond any real machine. */
const MAX_SEARCH_BUDGET = 2 ** 60;

// ---------------------------------------------------------------------------------------------
// Building blocks, exactly as Python's external/optimize.py

/**
 * Cluster-count candidates for n vectors, preferred first; duplicates kept (Python
 * `get_optimal_nb_clusters`). Uses half-to-even rounding: n = 8192 gives 256, not 512.
 *
 * @example optimalNbClusters(1000) // [128, 256, 128, 126]
 */
export function optimalNbClusters(n: number): number[] {
  if (n < IVF_FLAT_THRESHOLD) {
    const x = 4 * Math.sqrt(n); // between 4·√n and 16·√n is recommended
    const p = 2 ** pyRound(Math.log2(x));
    return [p, 2 * p, p, pyRound(x)];
  }
  if (n < TEN_MILLION) return [...CLUSTERS_1M_TO_10M];
  if (n < THREE_HUNDRED_MILLION) return [...CLUSTERS_10M_TO_300M];
  return [...CLUSTERS_FROM_300M];
}

/**
 * `IVF{c},Flat` for each cluster candidate (Python `get_optimal_ivf`, duplicates kept).
 *
 * @example optimalIvfKeys(5000) // ["IVF256,Flat", "IVF512,Flat", "IVF256,Flat", "IVF283,Flat"]
 */
export function optimalIvfKeys(n: number): string[] {
  return optimalNbClusters(n).map((c) => `IVF${c},Flat`);
}

/** Options of {@link optimalQuantizationKeys}. */
export interface QuantizationOptions {
  /** Only try this PQ size (Python `force_quantization_value`). */
  forceQuantizationValue?: number;
  /** Keep keys whose code + id bytes fit: `4d/(pq+8) ≥ 4nd/budget` (Python `force_max_index_memory_usage`). */
  budgetBytes?: number;
}

/**
 * OPQ+IVF+PQ candidates, largest PQ first then cluster counts in preference order
 * (Python `get_optimal_quantization`, exact: the budget test ignores centroids, OPQ and HNSW).
 *
 * @example optimalQuantizationKeys(10_000_000, 512, { budgetBytes: 16 * 2 ** 30 })[0]
 *   // "OPQ256_768,IVF65536_HNSW32,PQ256x8"
 */
export function optimalQuantizationKeys(n: number, d: number, options: QuantizationOptions = {}): string[] {
  const pqValues = options.forceQuantizationValue === undefined ? PQ_VALUES : [options.forceQuantizationValue];
  // Python: targeted ratio = (4.0·n·d) / budget, 0 when no budget; same float operations.
  const targetRatio = options.budgetBytes === undefined ? 0 : (4.0 * n * d) / options.budgetBytes;
  const clusters = optimalNbClusters(n);
  const keys: string[] = [];
  for (const pq of pqValues) {
    if (!(pq < d)) continue;
    for (const c of clusters) {
      const ratio = (4 * d) / (pq + ID_BYTES);
      if (!(ratio >= targetRatio)) continue;
      // y: a multiple of pq slightly above d, capped at 7·pq (avoids losing information in OPQ).
      const y = (Math.min(Math.floor(d / pq), OPQ_Y_CAP) + 1) * pq;
      const coarse = c < IVF_HNSW_MIN_CLUSTERS ? `IVF${c}` : `IVF${c}_HNSW${IVF_HNSW_M}`;
      keys.push(`OPQ${pq}_${y},${coarse},PQ${pq}x8`);
    }
  }
  return keys;
}

// ---------------------------------------------------------------------------------------------
// Selection (Python `get_optimal_index_keys_v2`)

/** Flags and thresholds of {@link optimalIndexKeys} (Python `get_optimal_index_keys_v2`). */
export interface SelectionOptions {
  makeDirectMap?: boolean;
  shouldBeMemoryMappable?: boolean;
  useGpu?: boolean;
  flatThreshold?: number;
  quantizationThreshold?: number;
  ivfFlatThreshold?: number;
  /** Force this PQ size (Python `force_pq`; never used by build_index). */
  forcePq?: number;
  /** Reproduce Python 2.18.0 exactly (no corrected fit filter, duplicates kept). Default false. */
  pythonCompatible?: boolean;
}

function dedupe(keys: string[]): string[] {
  return [...new Set(keys)];
}

/**
 * Candidate factory keys for n vectors of dimension d under `budgetBytes`, most promising first;
 * possibly empty. Rules in Python's order: n < 1000 → Flat / `IVF1,Flat`; n < 10,000 →
 * HNSW15 / IVF-Flat list; forced PQ; HNSW with the largest M ∈ [8, 32] that fits (not when
 * memory-mappable); IVF-Flat when n < 1M or GPU and the first key fits; else OPQ+IVF+PQ.
 * By default every returned key's corrected estimate is ≤ `budgetBytes` (see module comment).
 *
 * @example optimalIndexKeys(100_000, 128, 16 * 2 ** 30) // ["HNSW32"]
 */
export function optimalIndexKeys(n: number, d: number, budgetBytes: number, options: SelectionOptions = {}): string[] {
  return options.pythonCompatible ? pythonIndexKeys(n, d, budgetBytes, options) : correctedIndexKeys(n, d, budgetBytes, options);
}

/** Python `get_optimal_index_keys_v2`, rule for rule. */
function pythonIndexKeys(n: number, d: number, budget: number, o: SelectionOptions): string[] {
  const mmap = o.shouldBeMemoryMappable ?? false;
  if (n < (o.flatThreshold ?? FLAT_THRESHOLD)) return [mmap ? "IVF1,Flat" : "Flat"];
  if (n < (o.quantizationThreshold ?? QUANTIZATION_THRESHOLD)) {
    return mmap ? optimalIvfKeys(n) : [`HNSW${SMALL_SET_HNSW_M}`];
  }
  if (o.forcePq !== undefined) return optimalQuantizationKeys(n, d, { forceQuantizationValue: o.forcePq });
  if (!mmap) {
    // From 4n(d + 2M) ≤ budget.
    const m = Math.floor((budget / (4 * n) - d) / 2);
    if (m >= HNSW_MIN_M) return [`HNSW${Math.min(m, HNSW_MAX_M)}`];
  }
  if (n < (o.ivfFlatThreshold ?? IVF_FLAT_THRESHOLD) || o.useGpu) {
    const keys = optimalIvfKeys(n);
    if (pythonEstimatedIndexSizeBytes(keys[0], n, d, o.makeDirectMap) <= budget) return keys;
  }
  return optimalQuantizationKeys(n, d, { budgetBytes: budget });
}

/** Python's rules, but every candidate must fit by the corrected estimate; no duplicates. */
function correctedIndexKeys(n: number, d: number, budget: number, o: SelectionOptions): string[] {
  const mmap = o.shouldBeMemoryMappable ?? false;
  const fits = (key: string) => (estimatedIndexSizeBytes(key, n, d, o.makeDirectMap) ?? Infinity) <= budget;
  const fitting = (keys: string[]) => dedupe(keys).filter(fits);

  if (n < (o.flatThreshold ?? FLAT_THRESHOLD)) return fitting([mmap ? "IVF1,Flat" : "Flat"]);
  if (n < (o.quantizationThreshold ?? QUANTIZATION_THRESHOLD)) {
    return fitting(mmap ? optimalIvfKeys(n) : [`HNSW${SMALL_SET_HNSW_M}`]);
  }
  if (o.forcePq !== undefined) return fitting(optimalQuantizationKeys(n, d, { forceQuantizationValue: o.forcePq }));
  if (!mmap) {
    // Python solves 4n(d + 2M) ≤ budget; the corrected HNSW size also counts upper levels and
    // per-node bookkeeping, so take the largest M in [8, 32] whose corrected size fits.
    for (let m = HNSW_MAX_M; m >= HNSW_MIN_M; m--) {
      if (fits(`HNSW${m}`)) return [`HNSW${m}`];
    }
  }
  if (n < (o.ivfFlatThreshold ?? IVF_FLAT_THRESHOLD) || o.useGpu) {
    const keys = dedupe(optimalIvfKeys(n));
    if (fits(keys[0])) return keys.filter(fits);
  }
  return fitting(optimalQuantizationKeys(n, d, { budgetBytes: budget }));
}

/**
 * Smallest integer budget in bytes for which {@link optimalIndexKeys} returns a non-empty list with
 * the same flags, or `null` if none up to 1 EiB does (e.g. memory-mappable, n ≥ 1M, d ≤ 4: no PQ
 * size is below d). Non-emptiness is monotone in the budget (each rule only admits more keys as the
 * budget grows), so an exponential then binary search finds the boundary exactly.
 * Use it for the error "no index fits 100.0MB for 20000000×64; the smallest budget that works is X".
 *
 * @example smallestWorkableBudget(20_000_000, 64, { pythonCompatible: true }) === 240_000_000
 */
export function smallestWorkableBudget(n: number, d: number, options: SelectionOptions = {}): number | null {
  const works = (budget: number) => optimalIndexKeys(n, d, budget, options).length > 0;
  if (!works(MAX_SEARCH_BUDGET)) return null;
  if (works(0)) return 0;
  // Invariant: !works(low) && works(high).
  let low = 0;
  let high = 1;
  while (!works(high)) {
    low = high;
    high *= 2;
  }
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (works(mid)) high = mid;
    else low = mid;
  }
  return high;
}

/**
 * The error to show when {@link optimalIndexKeys} is empty (Python crashed with an IndexError, issue
 * #118): names the budget, the data shape and the smallest budget that works, exact bytes included
 * because the one-decimal form may round below it (`<bytes>B` is itself a valid memory string).
 *
 * @example noIndexFitsMessage(20_000_000, 64, 100 * 2 ** 20, { pythonCompatible: true })
 *   // "selection: no index fits max_index_memory_usage=100.0MB for 20000000×64 vectors;
 *   //  the smallest budget that works is 228.9MB (240000000B)"
 */
export function noIndexFitsMessage(n: number, d: number, budgetBytes: number, options: SelectionOptions = {}): string {
  const head = `selection: no index fits max_index_memory_usage=${formatMemory(budgetBytes)} for ${n}×${d} vectors`;
  const smallest = smallestWorkableBudget(n, d, options);
  if (smallest === null) return `${head}; no budget works with these options`;
  return `${head}; the smallest budget that works is ${formatMemory(smallest)} (${smallest}B)`;
}
