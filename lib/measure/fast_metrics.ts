/**
 * Fast metrics of a built index, measured with FAISS: serialized size, single-query
 * latency (mean and 99th percentile at k = 40), reconstruction error and compression ratio.
 */
import { FaissError, type Index } from "../../ffi/faiss.ts";
import { FAST_METRICS_MIN_TIMEOUT_MS, FAST_METRICS_TIMEOUT_MS, latencySummary, type SearchCount } from "./latency_stats.ts";
import { singleQueryTimer } from "./single_query_timer.ts";

/** Raw vectors used for latency and reconstruction error (Python: the first min(1000, n)). */
export const FAST_METRICS_QUERIES = 1000;

export interface FastMetrics {
  "size in bytes": number;
  avg_search_speed_ms: number;
  "99p_search_speed_ms": number;
  "reconstruction error %": number;
  "nb vectors": number;
  "vectors dimension": number;
  "compression ratio": number;
}

/** Mean and 99th-percentile latency of one-query searches, queries cycled to ≥ 2000 searches. */
export function singleQueryLatency(
  index: Index,
  queries: Float32Array,
  options: { k?: number; timeoutMs?: number; perSearch?: boolean } = {},
): { avgMs: number; p99Ms: number; searches: number } {
  const r = singleQueryTimer(index, queries, { k: options.k })({
    timeoutMs: options.timeoutMs ?? FAST_METRICS_TIMEOUT_MS,
    perSearch: options.perSearch ?? true,
  });
  if (r.samplesMs) {
    const s = latencySummary(r.samplesMs);
    return { avgMs: s.avgMs, p99Ms: s.p99Ms, searches: r.searches };
  }
  return { avgMs: r.msPerQuery, p99Ms: r.msPerQuery, searches: r.searches };
}

/** Rows encoded per call of the reconstruction error: the time bound is checked between calls. */
export const RECONSTRUCTION_BLOCK_ROWS = 100;

/**
 * 100 × mean ‖x − decode(encode(x))‖ / mean ‖x‖. Indices without a standalone codec
 * (HNSW) count as exact: 0, as in Python. With `timeoutMs`, rows are encoded
 * {@link RECONSTRUCTION_BLOCK_ROWS} at a time until that much time has passed (at least one block):
 * the mean is over the rows encoded. Encoding runs at the index's search parameters, and an IVF
 * under an HNSW quantizer tuned to a large efSearch assigns slowly (200k × 128,
 * `OPQ64_192,IVF2048_HNSW32,PQ64x8` at `efSearch=3384`: 3.4 s for 1,000 rows).
 */
export function reconstructionErrorPercent(index: Index, vectors: Float32Array, options: { timeoutMs?: number } = {}): number {
  const start = performance.now();
  const d = index.d;
  const n = vectors.length / d;
  let errSum = 0;
  let normSum = 0;
  for (let i0 = 0; i0 < n; i0 += RECONSTRUCTION_BLOCK_ROWS) {
    const block = vectors.subarray(i0 * d, Math.min(n, i0 + RECONSTRUCTION_BLOCK_ROWS) * d);
    let decoded: Float32Array;
    try {
      decoded = index.saRoundTrip(block);
    } catch (e) {
      if (e instanceof FaissError) return 0;
      throw e;
    }
    for (let i = 0; i < block.length / d; i++) {
      let e = 0;
      let m = 0;
      for (let j = i * d; j < (i + 1) * d; j++) {
        const diff = block[j] - decoded[j];
        e += diff * diff;
        m += block[j] * block[j];
      }
      errSum += Math.sqrt(e);
      normSum += Math.sqrt(m);
    }
    if (options.timeoutMs !== undefined && performance.now() - start >= options.timeoutMs) break;
  }
  // (errSum / rows) / (normSum / rows)
  return normSum === 0 ? 0 : (100 * errSum) / normSum;
}

/**
 * All fast metrics; `queries` are raw vectors from the data (at most {@link FAST_METRICS_QUERIES}).
 * `count`, when given, receives the searches run (one query per call).
 */
export function fastMetrics(index: Index, queries: Float32Array, options: { timeoutMs?: number; count?: SearchCount } = {}): FastMetrics {
  // `timeoutMs` bounds the whole phase: the size and the reconstruction error (an encode at the tuned
  // parameters, seconds on a big IVF-HNSW) come first, within half of it, and the latency test gets
  // what remains.
  const start = performance.now();
  const budget = options.timeoutMs ?? FAST_METRICS_TIMEOUT_MS;
  const size = index.serializedSize();
  const reconstructionError = reconstructionErrorPercent(index, queries, { timeoutMs: budget / 2 - (performance.now() - start) });
  const remaining = Math.max(Math.min(FAST_METRICS_MIN_TIMEOUT_MS, budget), budget - (performance.now() - start));
  const latency = singleQueryLatency(index, queries, { timeoutMs: remaining });
  if (options.count) {
    options.count.calls += latency.searches;
    options.count.queries += latency.searches;
  }
  const ntotal = index.ntotal;
  const d = index.d;
  return {
    "size in bytes": size,
    avg_search_speed_ms: latency.avgMs,
    "99p_search_speed_ms": latency.p99Ms,
    "reconstruction error %": reconstructionError,
    "nb vectors": ntotal,
    "vectors dimension": d,
    "compression ratio": size > 0 ? (4 * ntotal * d) / size : 0,
  };
}
