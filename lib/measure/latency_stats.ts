/**
 * Latency measurement logic of AutoFaiss around an injected single-query search
 * and clock, so real runs plug in FAISS and tests plug in fakes.
 *
 * Both loops are synchronous on purpose: FAISS searches block under Bun's FFI anyway, and awaiting a
 * promise per search would add microtask overhead to sub-millisecond timings.
 */

/** Python cycles the query set until at least this many searches are available. */
export const MIN_SPEED_TEST_SEARCHES = 2000;

/** Neighbours asked per latency search (Python's speed tests use k=40). */
export const SPEED_TEST_K = 40;

/** Time budget of the fast-metrics latency test, ms (Python: 10 s). */
export const FAST_METRICS_TIMEOUT_MS = 10_000;
/** Fewest ms a build's fast-metrics latency test gets: ≥ 100 samples for the 99th percentile at 10 ms a search. */
export const FAST_METRICS_MIN_TIMEOUT_MS = 1_000;

/**
 * Budget of a build's fast-metrics latency test: no more than the add phase took (no phase of a
 * build may cost more than adding), within [1 s, 10 s]. Python always allows 10 s: on a small
 * build that was most of the build.
 *
 * @example fastMetricsBudgetMs(54_000) // 10_000; fastMetricsBudgetMs(2_500) // 2_500; fastMetricsBudgetMs(100) // 1_000
 */
export function fastMetricsBudgetMs(addMs: number): number {
  return Math.min(FAST_METRICS_TIMEOUT_MS, Math.max(FAST_METRICS_MIN_TIMEOUT_MS, Math.round(addMs)));
}

/** Searches a measurement ran: FAISS search calls and the queries in them. */
export interface SearchCount {
  calls: number;
  queries: number;
}

/** e.g. `1234 search calls, 5678 queries` */
export function formatSearchCount(c: SearchCount): string {
  return `${c.calls} search calls, ${c.queries} queries`;
}

/**
 * Arithmetic mean. Python uses numpy's pairwise summation; a plain left-to-right sum differs only in the
 * last bits, far below the noise of any timing.
 *
 * @example mean([1, 2, 4]) // 2.3333333333333335
 */
export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return Number.NaN;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return s / values.length;
}

/**
 * Quantile with numpy's default `method="linear"` (numpy ≥ 1.22 `np.quantile`): virtual index
 * `(n−1)·q` between the two surrounding order statistics, interpolated with numpy's `_lerp` (which
 * computes from the upper neighbour when the fraction is ≥ 0.5, so results match bit for bit).
 *
 * @example quantileLinear([1, 2, 3, 4], 0.99) // 3.9699999999999998
 */
export function quantileLinear(values: ArrayLike<number>, q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`latency: quantile must be in [0, 1] (got ${q})`);
  const n = values.length;
  if (n === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const virtual = (n - 1) * q;
  const lo = Math.floor(virtual);
  const hi = Math.min(lo + 1, n - 1);
  const t = virtual - lo;
  const a = sorted[lo];
  const b = sorted[hi];
  const diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

/** `avg_search_speed_ms` and `99p_search_speed_ms` of `index_infos.json`. */
export interface LatencySummary {
  avgMs: number;
  p99Ms: number;
}

/** Mean and linear-interpolated 99th percentile of per-search latencies in ms. */
export function latencySummary(samplesMs: ArrayLike<number>): LatencySummary {
  return { avgMs: mean(samplesMs), p99Ms: quantileLinear(samplesMs, 0.99) };
}

/**
 * How many searches the cycled query list offers: Python repeats the queries `1 + (min−1) // nq` times,
 * so the list holds at least `minSearches` searches (or exactly `nq` when `nq` is larger).
 *
 * @example speedTestSearches(1000) // 2000; speedTestSearches(3000) // 3000; speedTestSearches(3) // 2001
 */
export function speedTestSearches(nQueries: number, minSearches = MIN_SPEED_TEST_SEARCHES): number {
  if (!Number.isInteger(nQueries) || nQueries < 1) {
    throw new RangeError(`latency: nQueries must be an integer >= 1 (got ${nQueries})`);
  }
  if (!Number.isInteger(minSearches) || minSearches < 1) {
    throw new RangeError(`latency: minSearches must be an integer >= 1 (got ${minSearches})`);
  }
  return nQueries * (1 + Math.floor((minSearches - 1) / nQueries));
}

/** Options of {@link runSpeedTest}. */
export interface SpeedTestOptions {
  /** size of the query set; search i uses query `i % nQueries` */
  nQueries: number;
  /** runs one single-query search (batch of 1, k = {@link SPEED_TEST_K} in AutoFaiss) */
  searchOne: (queryIndex: number) => void;
  /** monotonic clock in ms, e.g. `performance.now` */
  now: () => number;
  /** stop as soon as the elapsed time exceeds this, checked after each search */
  timeoutMs: number;
  /** record each search's own duration (fast metrics) rather than only the total (tuning) */
  perSearch?: boolean;
  minSearches?: number;
}

/** What {@link runSpeedTest} measured. */
export interface SpeedTestResult {
  searches: number;
  /** wall time from the first search's start to the last clock read */
  elapsedMs: number;
  /** `elapsedMs / searches`: Python's `speed_test_ms_per_query` (tuning) */
  msPerQuery: number;
  /** individual search durations when `perSearch` (Python's `search_speed_test`) */
  samplesMs?: Float64Array;
}

/**
 * The speed-test loop shared by tuning (`perSearch: false`, total time / searches) and fast metrics
 * (`perSearch: true`, each search timed): one query at a time over the cycled query list, stopping once
 * the elapsed time exceeds `timeoutMs` or the list is exhausted. At least one search always runs.
 *
 * @example
 * const { msPerQuery } = runSpeedTest({ nQueries: q.nq, searchOne: (i) => index.search(q.row(i), 40),
 *   now: () => performance.now(), timeoutMs: 150 });
 */
export function runSpeedTest(options: SpeedTestOptions): SpeedTestResult {
  const { nQueries, searchOne, now, timeoutMs, perSearch = false } = options;
  if (!(timeoutMs >= 0)) throw new RangeError(`latency: timeoutMs must be >= 0 (got ${timeoutMs})`);
  const total = speedTestSearches(nQueries, options.minSearches);
  const samples = perSearch ? new Float64Array(total) : undefined;
  const start = now();
  let count = 0;
  for (let i = 0; i < total; i++) {
    if (samples) {
      const t0 = now();
      searchOne(i % nQueries);
      samples[i] = now() - t0;
    } else {
      searchOne(i % nQueries);
    }
    count++;
    if (now() - start > timeoutMs) break;
  }
  const elapsedMs = now() - start;
  return {
    searches: count,
    elapsedMs,
    msPerQuery: elapsedMs / count,
    ...(samples ? { samplesMs: samples.slice(0, count) } : {}),
  };
}
