/**
 * The one single-query timer: one-query FAISS searches over a cycled list of query rows, on one
 * OpenMP thread, used by tuning (total time / searches) and by the fast metrics (each search timed).
 */
import { type Index, withNumThreads } from "../../ffi/faiss.ts";
import { runSpeedTest, SPEED_TEST_K, type SpeedTestResult } from "./latency_stats.ts";

/**
 * Single-query searches are timed on one OpenMP thread: a one-query search cannot use more, and
 * waking idle threads cost 1–12 ms per search on a loaded 2-core machine (efSearch=16: 0.13 ms on
 * one thread), which is noise, not the index's latency. Python times with all threads.
 */
export const SINGLE_QUERY_THREADS = 1;

/**
 * Prepares one-query searches of `index` over the first `nQueries` rows of `queries` (default: all)
 * and returns a function that runs one speed test with the index's current search parameters.
 * The result buffers and row views are allocated once, so repeated tests time only the searches.
 *
 * @example
 * const time = singleQueryTimer(index, queries);
 * const { msPerQuery } = time({ timeoutMs: 2000 });
 */
export function singleQueryTimer(
  index: Index,
  queries: Float32Array,
  options: { k?: number; nQueries?: number } = {},
): (run: { timeoutMs: number; perSearch?: boolean }) => SpeedTestResult {
  const d = index.d;
  const k = options.k ?? SPEED_TEST_K;
  const nq = options.nQueries ?? queries.length / d;
  const distances = new Float32Array(k);
  const labels = new BigInt64Array(k);
  const rows = Array.from({ length: nq }, (_, i) => queries.subarray(i * d, (i + 1) * d));
  return ({ timeoutMs, perSearch }) =>
    withNumThreads(SINGLE_QUERY_THREADS, () =>
      runSpeedTest({
        nQueries: nq,
        searchOne: (i) => index.searchInto(rows[i], k, distances, labels),
        now: () => performance.now(),
        timeoutMs,
        perSearch,
      }));
}
