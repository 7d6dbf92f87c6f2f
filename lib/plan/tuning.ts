/**
 * Search-parameter tuning: which knob a FAISS index exposes, and the search for the largest
 * value whose single-query latency stays under the bound, with neighbour coverage taking priority.
 *
 * Pure logic: the caller injects coverage and latency measurements (FAISS searches), so the tests run
 * on fake curves and the real run decides how long each measurement takes.
 *
 * Semantics kept from Python AutoFaiss 2.18.0: coverage step first, then a binary search on
 * latency, then a back-off in 5 % steps measured with a longer budget; the result is the largest
 * value measured under the bound, or the coverage minimum when even that is too slow.
 *
 * Differences from Python (all intended):
 * - the coverage minimum is the first value meeting the target, not one below it (Python returns one below);
 * - the back-off may reach the smallest allowed value (Python stops one above it, `best_rank > 1`);
 * - the back-off is a galloping search over the same 5 % sequence instead of a linear walk: same
 *   result on a monotone latency curve, O(log steps) measurements instead of one per step;
 * - the coarse search brackets the bound by interpolating measured latencies (bisection as a fallback)
 *   instead of bisecting blindly: same result on a monotone curve, see {@link largestWithinBound};
 * - the coverage step measures the smallest value first: when it already covers 0.99 the target cannot
 *   change and the (expensive, near-exhaustive) largest value is never searched;
 * - measurements are cached per (phase, value), so no value is measured twice in a phase;
 * - the family table fixes Python's mismatches (see {@link tunableParameter}).
 *
 * Expected measurement calls for a range of n values (Python 2.18.0 in brackets):
 * - coverage: 1 when the smallest value covers 0.99, else ≤ 2 + ⌈log2 n⌉ [1 + ⌈log2 n⌉];
 * - coarse latency: 1 when the largest value is within the bound, 2 when the smallest is not, else
 *   4 on a linear curve, 5–10 on concave ones, never more than ⌈log2 n⌉ + 6 [⌈log2 n⌉, e.g. 14 for
 *   efSearch 16…16383];
 * - precise latency: 0 when the coarse answer is the smallest allowed value, 1 when the coarse answer
 *   holds, else ≤ 2⌈log2(s + 1)⌉ + 1 for s back-off steps [1 + s] — s reaches ~70 when the coarse
 *   search overshoots from 16383, and each precise call costs up to 1 s.
 */

// ---------------------------------------------------------------------------------------------
// Constants (Python AutoFaiss 2.18.0 `get_optimal_hyperparameters` and its defaults)

/** Coverage target: the fraction of the k labels that must not be -1 (Python: 0.99). */
export const COVERAGE_TARGET = 0.99;
/** When the best value covers less than the target, aim for this share of it (Python: 0.95 × max). */
export const COVERAGE_FALLBACK_RATIO = 0.95;
/** Back-off keeps this ratio of the rank per step, i.e. 5 % steps (Python `decreasing_ratio`). */
export const DECREASING_RATIO = 0.95;
/** Per-measurement latency budget is this many times the latency bound (Python: 15 × max_speed_ms). */
export const LATENCY_BUDGET_FACTOR = 15;
/** Upper bound of one measurement's budget, ms (Python: `max_timeout_per_iteration_s = 1.0`). */
export const MAX_TIMEOUT_PER_ITERATION_MS = 1000;
/** Default `min_nearest_neighbors_to_retrieve`. */
export const DEFAULT_MIN_NEAREST_NEIGHBORS = 20;
/** Queries for the coverage step: the first min(ntotal, 100) reconstructed vectors. */
export const COVERAGE_QUERIES = 100;
/** Queries for the coarse latency search: first min(ntotal, 4000). */
export const COARSE_QUERIES = 4000;
/** Queries for the precise back-off: first min(ntotal, 50000). */
export const PRECISE_QUERIES = 50_000;

/** nprobe never exceeds this for quantized IVF families (Python: min(6144, c)). */
const NPROBE_CAP = 6144;
/** Python's `min_ef_search = 32`; the IVF_HNSW range starts at nprobe = 32 // 2. */
const MIN_EF_SEARCH = 32;
/** efSearch range of HNSW indices: 16 … 2^14 − 1. */
const EF_SEARCH_LO = 16;
const EF_SEARCH_HI = 2 ** 14 - 1;
/** HNSW coarse quantizers search efSearch = 2 × nprobe. */
const EF_PER_NPROBE = 2;
/** `ht=2048` disables polysemous Hamming filtering of IVF-PQ. */
const HT_DISABLED = 2048;
/** Precision-phase budget boost: 6, or 12 for HNSW coarse quantizers. */
const BOOST = 6;
const BOOST_HNSW_COARSE = 12;

// ---------------------------------------------------------------------------------------------
// Family table

/** A tunable search parameter: values `lo..hi` (inclusive) and how to write one as a ParameterSpace string. */
export interface TunableParameter {
  kind: "tunable";
  /** short family name for logs, e.g. "IVF_HNSW,PQ" */
  family: string;
  /** the parameter searched */
  name: "nprobe" | "efSearch";
  /** inclusive range of the searched value, never empty */
  values: { lo: number; hi: number };
  /** precision-phase budget multiplier */
  boost: number;
  /** nlist of IVF families (from the index when given, else from the key) */
  nlist?: number;
  /** ParameterSpace string for value v, e.g. `nprobe=16,efSearch=32,ht=2048` */
  format(v: number): string;
}

/** What {@link tunableParameter} says about a key. */
export type TunableResult =
  | TunableParameter
  /** nothing to tune (exhaustive search): the parameter string is "" */
  | { kind: "none" }
  /** no heuristic: the caller keeps FAISS's defaults and warns */
  | { kind: "unknown"; reason: string };

/** Pre-transforms that do not change what is tuned: OPQ, PCA, ITQ, random rotation, padding, L2 norm, id maps. */
const TRANSFORM = /^(OPQ\d+(_\d+)?|PCAW?R?\d+|ITQ(\d+)?|RR\d+|Pad\d+|L2norm|IDMap2?)$/;
/** Codecs stored in IVF lists (or alone) that we know: Flat, PQ (optionally fast-scan), scalar quantizers. */
const CODEC_FLAT = /^Flat$/;
const CODEC_PQ = /^PQ\d+(x\d+)?(np)?$/;
const CODEC_PQ_FASTSCAN = /^PQ\d+x4fsr?$/;
const CODEC_SQ = /^SQ(4|6|8|fp16|bf16|8_direct|8_direct_signed)$/;
/** Re-ranking stages after the codec; they do not change the knob. */
const REFINE = /^(RFlat|Refine\(.*\))$/;

/**
 * The searched parameter of an index key, fixed where Python misclassifies:
 *
 * | key (after OPQ/PCA/Pad… transforms) | parameter string | range | boost |
 * |---|---|---|---|
 * | `Flat`, `PQm`, `SQ8`, `LSH` (no IVF, no HNSW) | none (exhaustive) | — | — |
 * | `HNSWm…` (any storage: Flat, SQ, PQ) | `efSearch=v` | 16 … 16383 | 6 |
 * | `NSGr…` | unknown: search_L cannot be set (warning) | — | — |
 * | `IVFc,Flat` | `nprobe=v` | 1 … c | 6 |
 * | `IMI2xb,<codec>`, `IVFc_NSGr,<codec>` | as `IVFc,<codec>` with c = 2^(2b) for IMI | | |
 * | `IVFc,PQm[xb]` | `nprobe=v,ht=2048` | 1 … min(6144, c) | 6 |
 * | `IVFc,PQmx4fs`, `IVFc,SQ8` | `nprobe=v` | 1 … min(6144, c) | 6 |
 * | `IVFc_HNSWm,<codec>` | `nprobe=v,efSearch=2v[,ht=2048]` | min(16, hi) … min(6144, c) | 12 |
 *
 * `ht=2048` is only written for IVF-PQ, the only type whose ParameterSpace accepts it.
 * `IVFc_HNSWm,Flat` tunes nprobe with an HNSW quantizer like the IVF_HNSW-PQ family (Python tuned
 * efSearch over 16…16383 as if it were a plain HNSW); its range is never empty (Python's was when c < 16).
 *
 * @param nlistFromIndex the index's real nlist; wins over the key's number when given
 * @example tunableParameter("OPQ64_256,IVF4096_HNSW32,PQ64x8").format(20) // "nprobe=20,efSearch=40,ht=2048"
 */
export function tunableParameter(indexKey: string, nlistFromIndex?: number): TunableResult {
  const unknown = (): TunableResult => ({
    kind: "unknown",
    reason: `we don't have heuristics for that kind or index (${indexKey})`,
  });
  const parts = indexKey.split(",").map((p) => p.trim());
  let i = 0;
  while (i < parts.length - 1 && TRANSFORM.test(parts[i])) i++;
  const main = parts[i];
  const rest = parts.slice(i + 1);
  const codec = rest[0];
  const refinesOk = rest.slice(1).every((p) => REFINE.test(p));

  if (/^HNSW\d+/.test(main)) {
    return {
      kind: "tunable",
      family: "HNSW",
      name: "efSearch",
      values: { lo: EF_SEARCH_LO, hi: EF_SEARCH_HI },
      boost: BOOST,
      format: (v) => `efSearch=${v}`,
    };
  }

  if (/^NSG\d*([,_].*)?$/.test(main)) {
    // IndexNSG's search_L is not among the names FAISS 1.7.3's ParameterSpace sets (AutoTune.cpp).
    return { kind: "unknown", reason: "FAISS 1.7.3 cannot set NSG's search_L through ParameterSpace, so it stays at 16" };
  }
  // LSH codes are compared exhaustively, like Flat / PQ / SQ.
  if (/^LSHr?t?$/.test(main) && rest.every((p) => REFINE.test(p))) return { kind: "none" };

  // IMI2xb has 2^(2b) lists; NSG quantizers have no ParameterSpace knob, so only nprobe is tuned.
  const imi = /^IMI2x(\d+)$/.exec(main);
  const coarse = imi ? null : /^IVF(\d+)(?:_(HNSW|NSG)(\d*))?$/.exec(main);
  const ivf = imi ? ["", String(2 ** (2 * Number(imi[1]))), undefined] : coarse ? [coarse[0], coarse[1], coarse[2] === "HNSW" ? "HNSW" : undefined] : null;
  if (ivf) {
    if (codec === undefined || !refinesOk) return unknown();
    const kind = codecKind(codec);
    if (kind === null) return unknown();
    // polysemous filtering exists only for (non fast-scan) IVF-PQ; FAISS rejects `ht` elsewhere
    const isPq = kind === "PQ";
    const nlist = nlistFromIndex ?? Number(ivf[1]);
    if (!Number.isSafeInteger(nlist) || nlist < 1) {
      throw new RangeError(`tuning: nlist must be an integer >= 1 (got ${nlist} for key ${indexKey})`);
    }
    const ht = isPq ? `,ht=${HT_DISABLED}` : "";
    const hnswCoarse = ivf[2] !== undefined;
    // Python leaves IVF-Flat with a flat quantizer uncapped (IVF512,Flat → nprobe up to 512); keep that.
    const hi = kind === "Flat" && !hnswCoarse ? nlist : Math.min(NPROBE_CAP, nlist);
    if (hnswCoarse) {
      return {
        kind: "tunable",
        family: `IVF_HNSW,${kind}`,
        name: "nprobe",
        // Python starts at min_ef_search // 2 so the quantizer's efSearch is >= 32; clamp so c < 16 still works.
        values: { lo: Math.min(Math.max(1, Math.floor(MIN_EF_SEARCH / 2)), hi), hi },
        boost: BOOST_HNSW_COARSE,
        nlist,
        format: (v) => `nprobe=${v},efSearch=${EF_PER_NPROBE * v}${ht}`,
      };
    }
    return {
      kind: "tunable",
      family: `IVF,${kind}`,
      name: "nprobe",
      values: { lo: 1, hi },
      boost: BOOST,
      nlist,
      format: (v) => `nprobe=${v}${ht}`,
    };
  }

  // Exhaustive indices: nothing to tune.
  if (codecKind(main) !== null && rest.every((p) => REFINE.test(p))) return { kind: "none" };
  return unknown();
}

/** Which known codec a factory component is, or null. */
function codecKind(component: string): "Flat" | "PQ" | "PQfs" | "SQ" | null {
  if (CODEC_FLAT.test(component)) return "Flat";
  if (CODEC_PQ.test(component)) return "PQ";
  if (CODEC_PQ_FASTSCAN.test(component)) return "PQfs";
  if (CODEC_SQ.test(component)) return "SQ";
  return null;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/**
 * Coverage target: 0.99, or 0.95 × the best coverage when even the largest value covers
 * less than 0.99 (e.g. IVF lists too short to hold k neighbours).
 *
 * @example coverageTarget(1) // 0.99; coverageTarget(0.5) // 0.475
 */
export function coverageTarget(maxCoverage: number): number {
  return maxCoverage < COVERAGE_TARGET ? COVERAGE_FALLBACK_RATIO * maxCoverage : COVERAGE_TARGET;
}

/**
 * Neighbours asked for the coverage step: `min(k, ntotal)` — Python warns and clamps when
 * `min_nearest_neighbors_to_retrieve` exceeds the index size.
 *
 * @example clampK(20, 5) // 5
 */
export function clampK(k: number, ntotal: number): number {
  return Math.max(0, Math.min(k, ntotal));
}

/**
 * Budget of one latency measurement in ms: `min(1 s, 15 × bound)` for the coarse phase and
 * `min(1 s, boost × 15 × bound)` for the precise phase.
 *
 * @example measurementBudgetMs("coarse", 10, 6) // 150
 */
export function measurementBudgetMs(
  phase: LatencyPhase,
  maxLatencyMs: number,
  boost: number,
  maxTimeoutPerIterationMs = MAX_TIMEOUT_PER_ITERATION_MS,
): number {
  const base = LATENCY_BUDGET_FACTOR * maxLatencyMs;
  return Math.min(maxTimeoutPerIterationMs, phase === "coarse" ? base : boost * base);
}

/**
 * Lower-bound search on a monotone predicate over ranks 0..n−1: the first rank where
 * `isOk` holds, or `n` when none does. Evaluates `isOk` ⌈log2(n+1)⌉ times at most, never at n.
 *
 * @example await discreteBinarySearch((r) => r >= 3, 10) // 3
 */
export async function discreteBinarySearch(
  isOk: (rank: number) => boolean | Promise<boolean>,
  n: number,
): Promise<number> {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (await isOk(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * The ranks the precision phase visits from `best`: each step removes
 * `max(1, floor((1 − 0.95) × rank))`, computed as Python does (1 − 0.95 is 0.050000000000000044), down
 * to 0.
 *
 * @example backoffSequence(45) // [45, 43, 41, 39, 38, …, 1, 0]
 */
export function backoffSequence(best: number): number[] {
  const seq = [best];
  for (let r = best; r > 0; ) {
    r -= Math.max(1, Math.floor((1 - DECREASING_RATIO) * r));
    seq.push(Math.max(0, r));
  }
  return seq;
}

/** Extra calls the interpolating search may spend over plain bisection before it must bisect. */
const INTERPOLATION_EXTRA_CALLS = 4;
/** Interpolation steps in a row that may fail to halve the bracket before one bisection step. */
const MAX_STALE_STEPS = 3;

/**
 * Largest value in `lo..hi` whose `measure` is below `bound`, for a non-decreasing `measure` — the same
 * answer as Python's lower-bound search for the first too-slow value minus one, found with
 * fewer measurements:
 * - `hi` first (small indices are fast at any value: 1 call), then `lo` (all too slow: 2 calls);
 * - then a bracket [within, too slow] narrowed where the line through the bracket's measured ends
 *   crosses the bound (regula falsi with the Illinois rule: an end kept twice in a row has its excess
 *   halved). Latency grows about linearly in nprobe and efSearch, so 2 more calls usually suffice;
 *   concave (saturating) curves take a few more.
 * - safeguards keep the worst case logarithmic: after {@link MAX_STALE_STEPS} steps that did not halve
 *   the bracket it bisects once, and it switches to bisection for good when only as many calls remain
 *   as bisection needs, so any monotone curve costs at most ⌈log2(hi − lo)⌉ + 6 calls.
 * Returns `lo` with `withinBound: false` when even `lo` is at or above the bound.
 *
 * @example await largestWithinBound((v) => v * 0.1, 1, 1000, 10) // { value: 99, withinBound: true }
 */
export async function largestWithinBound(
  measure: (value: number) => number | Promise<number>,
  lo: number,
  hi: number,
  bound: number,
): Promise<{ value: number; withinBound: boolean }> {
  const mHi = await measure(hi);
  if (mHi < bound) return { value: hi, withinBound: true };
  if (lo === hi) return { value: lo, withinBound: false };
  const mLo = await measure(lo);
  if (mLo >= bound) return { value: lo, withinBound: false };
  // Invariant: measure(a) < bound <= measure(b), a < b; fa < 0 <= fb are the (Illinois-scaled) excesses.
  let a = lo;
  let b = hi;
  let fa = mLo - bound;
  let fb = mHi - bound;
  let calls = 2;
  const maxCalls = calls + Math.ceil(Math.log2(hi - lo)) + INTERPOLATION_EXTRA_CALLS;
  let lastMoved: "a" | "b" | null = null;
  let stale = 0;
  while (b - a > 1) {
    const width = b - a;
    const bisect = stale >= MAX_STALE_STEPS || maxCalls - calls <= Math.ceil(Math.log2(width));
    // fb may be Infinity (a measurement that timed out): the line then points at a + 1, still inside.
    const x = Number.isFinite(fb) ? a + (-fa / (fb - fa)) * width : a;
    const p = bisect ? a + Math.floor(width / 2) : Math.min(b - 1, Math.max(a + 1, Math.floor(x)));
    const fp = (await measure(p)) - bound;
    calls++;
    if (fp < 0) {
      a = p;
      fa = fp;
      if (lastMoved === "a") fb /= 2;
      lastMoved = "a";
    } else {
      b = p;
      fb = fp;
      if (lastMoved === "b") fa /= 2;
      lastMoved = "b";
    }
    stale = bisect || 2 * (b - a) <= width ? 0 : stale + 1;
  }
  return { value: a, withinBound: true };
}

// ---------------------------------------------------------------------------------------------
// Tuning

/** Latency phases: the coarse binary search and the precise back-off with a longer budget. */
export type LatencyPhase = "coarse" | "precise";

/** One measurement, in call order. */
export interface TraceStep {
  phase: "coverage" | LatencyPhase;
  value: number;
  coverage?: number;
  latencyMs?: number;
}

/** Progress and warnings, for the caller to log. */
export type TuningEvent =
  /** `k` exceeded the index size and was clamped (Python warns) */
  | { type: "k-clamped"; requestedK: number; k: number; ntotal: number }
  /** even the largest value leaves -1 labels: the target drops to 0.95 × max (Python warns) */
  | { type: "coverage-below-target"; maxCoverage: number; target: number; expectedNeighbours: number }
  | { type: "measurement"; step: TraceStep }
  /** end of a phase and the value it settled on */
  | { type: "phase-done"; phase: "coverage" | LatencyPhase; value: number }
  /** the smallest allowed value is still slower than the bound (coverage has priority) */
  | { type: "latency-bound-unreachable"; value: number; latencyMs: number };

/** Inputs of {@link tuneParameters}. */
export interface TuneOptions {
  family: TunableParameter;
  /** fraction of non -1 labels when searching the coverage queries for `k` neighbours with value v */
  measureCoverage: (value: number, k: number) => number | Promise<number>;
  /**
   * ms per query with value v; the caller sizes the measurement with {@link measurementBudgetMs} and
   * {@link COARSE_QUERIES} / {@link PRECISE_QUERIES} (reusing one reconstructed query set is fine)
   */
  measureLatencyMs: (value: number, phase: LatencyPhase) => number | Promise<number>;
  /** latency bound, ms per query (`max_index_query_time_ms`) */
  maxLatencyMs: number;
  /** `min_nearest_neighbors_to_retrieve` */
  k: number;
  /** vectors in the index */
  ntotal: number;
  onProgress?: (event: TuningEvent) => void;
}

/** Output of {@link tuneParameters}. */
export interface TuningResult {
  value: number;
  /** `family.format(value)` */
  param: string;
  /** every measurement in call order */
  trace: TraceStep[];
  /** the result is the smallest allowed value and it was measured at or above the bound */
  reachedMinimum: boolean;
  /** smallest value meeting the coverage target (the range start when coverage was not measured) */
  coverageMinimum: number;
  /** neighbours used for coverage after clamping */
  k: number;
  /** last latency measured for the chosen value, if any */
  latencyMs?: number;
  /** measurement calls per phase */
  calls: { coverage: number; coarse: number; precise: number };
}

/**
 * Finds the largest value of `family` whose measured single-query latency is below `maxLatencyMs`,
 * never going below the smallest value that meets the coverage target.
 *
 * @example
 * const family = tunableParameter("IVF1024,Flat");
 * if (family.kind === "tunable") {
 *   const { param } = await tuneParameters({ family, maxLatencyMs: 10, k: 20, ntotal: index.ntotal,
 *     measureCoverage: (v, k) => coverageOf(index, family.format(v), k),
 *     measureLatencyMs: (v, phase) => latencyOf(index, family.format(v), phase) });
 * }
 */
export async function tuneParameters(options: TuneOptions): Promise<TuningResult> {
  const { family, measureCoverage, measureLatencyMs, maxLatencyMs, onProgress } = options;
  const { lo, hi } = family.values;
  if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || lo > hi) {
    throw new RangeError(`tuning: family ${family.family} has an empty or invalid range ${lo}..${hi}`);
  }
  if (!(maxLatencyMs > 0 && Number.isFinite(maxLatencyMs))) {
    throw new RangeError(`tuning: maxLatencyMs must be a finite number > 0 (got ${maxLatencyMs})`);
  }
  if (!Number.isInteger(options.k) || options.k < 0) {
    throw new RangeError(`tuning: k must be a non-negative integer (got ${options.k})`);
  }
  if (!Number.isSafeInteger(options.ntotal) || options.ntotal < 0) {
    throw new RangeError(`tuning: ntotal must be a non-negative integer (got ${options.ntotal})`);
  }

  const trace: TraceStep[] = [];
  const calls = { coverage: 0, coarse: 0, precise: 0 };
  const record = (step: TraceStep) => {
    trace.push(step);
    onProgress?.({ type: "measurement", step });
  };

  const coverageCache = new Map<number, number>();
  const latencyCache = { coarse: new Map<number, number>(), precise: new Map<number, number>() };

  const k = clampK(options.k, options.ntotal);
  if (k < options.k) onProgress?.({ type: "k-clamped", requestedK: options.k, k, ntotal: options.ntotal });

  const coverage = async (value: number): Promise<number> => {
    let c = coverageCache.get(value);
    if (c === undefined) {
      c = await measureCoverage(value, k);
      if (!Number.isFinite(c)) {
        throw new RangeError(`tuning: measureCoverage(${value}) returned ${c} (expected a number in [0, 1])`);
      }
      calls.coverage++;
      coverageCache.set(value, c);
      record({ phase: "coverage", value, coverage: c });
    }
    return c;
  };
  const latency = async (value: number, phase: LatencyPhase): Promise<number> => {
    let ms = latencyCache[phase].get(value);
    if (ms === undefined) {
      ms = await measureLatencyMs(value, phase);
      if (!(ms >= 0)) {
        throw new RangeError(`tuning: measureLatencyMs(${value}, ${phase}) returned ${ms} (expected ms >= 0)`);
      }
      calls[phase]++;
      latencyCache[phase].set(value, ms);
      record({ phase, value, latencyMs: ms });
    }
    return ms;
  };
  // Python: too slow when measured >= bound, so "within the bound" is strictly below it.
  const tooSlow = async (value: number, phase: LatencyPhase) => (await latency(value, phase)) >= maxLatencyMs;

  // Step 1: smallest value whose coverage meets the target. Skipped when k = 0 (empty index).
  let minValue = lo;
  if (k > 0) {
    // The smallest value usually covers fully already (HNSW, long IVF lists), and then the target is
    // 0.99 whatever the largest value covers: one cheap measurement instead of a full binary search.
    const lowCoverage = await coverage(lo);
    if (lowCoverage < COVERAGE_TARGET) {
      const maxCoverage = await coverage(hi);
      const target = coverageTarget(maxCoverage);
      if (maxCoverage < COVERAGE_TARGET) {
        onProgress?.({ type: "coverage-below-target", maxCoverage, target, expectedNeighbours: maxCoverage * k });
      }
      if (lowCoverage < target) {
        const n = hi - lo; // ranks for lo+1 … hi; hi meets the target since target <= maxCoverage
        const covers = async (rank: number) => (await coverage(lo + 1 + rank)) >= target;
        const r = await discreteBinarySearch(covers, n);
        // r = n only if coverage is not monotone; keep the largest value as Python does.
        minValue = lo + 1 + Math.min(r, n - 1);
      }
    }
    onProgress?.({ type: "phase-done", phase: "coverage", value: minValue });
  }

  // Step 2: largest value whose coarse latency is below the bound, within minValue … hi.
  const coarse = await largestWithinBound((v) => latency(v, "coarse"), minValue, hi, maxLatencyMs);
  let best = coarse.value;
  onProgress?.({ type: "phase-done", phase: "coarse", value: best });

  // Precision phase: re-measure with the longer budget and back off in 5 % steps while too slow.
  // Python walks the steps one by one; we gallop then bisect over the same sequence.
  let reachedMinimum = false;
  let latencyMs = latencyCache.coarse.get(best);
  if (best === minValue) {
    // Nothing below to back off to: the result is fixed, another measurement cannot change it.
    reachedMinimum = !coarse.withinBound;
  } else {
    const seq = backoffSequence(best - minValue).map((r) => minValue + r);
    const ok = async (j: number) => !(await tooSlow(seq[j], "precise"));
    const last = seq.length - 1;
    let chosen: number;
    if (await ok(0)) {
      chosen = 0;
    } else {
      let bad = 0;
      let good = -1;
      for (let probe = 1; ; probe = 2 * probe + 1) {
        const p = Math.min(probe, last);
        if (await ok(p)) {
          good = p;
          break;
        }
        bad = p;
        if (p === last) break;
      }
      if (good === -1) {
        chosen = last;
        reachedMinimum = true;
      } else {
        chosen = bad + 1 + (await discreteBinarySearch((r) => ok(bad + 1 + r), good - bad - 1));
      }
    }
    best = seq[chosen];
    latencyMs = latencyCache.precise.get(best);
    onProgress?.({ type: "phase-done", phase: "precise", value: best });
  }
  if (reachedMinimum) onProgress?.({ type: "latency-bound-unreachable", value: best, latencyMs: latencyMs! });

  return {
    value: best,
    param: family.format(best),
    trace,
    reachedMinimum,
    coverageMinimum: minValue,
    k,
    ...(latencyMs !== undefined ? { latencyMs } : {}),
    calls,
  };
}
