/**
 * Search-parameter tuning on a real FAISS index: the pure search of ../tuning.ts driven by
 * FAISS measurements (coverage of k results, single-query latency at k = 40).
 */
import type { Index } from "../../ffi/faiss.ts";
import { type SearchCount, SPEED_TEST_K } from "./latency_stats.ts";
import { singleQueryTimer } from "./single_query_timer.ts";
import {
  COARSE_QUERIES,
  COVERAGE_QUERIES,
  type LatencyPhase,
  measurementBudgetMs,
  tunableParameter,
  tuneParameters,
  type TuningEvent,
  type TuningResult,
} from "../plan/tuning.ts";

export interface TuneIndexOptions {
  /** `max_index_query_time_ms` */
  maxQueryTimeMs: number;
  /** `min_nearest_neighbors_to_retrieve` */
  minNearestNeighbors: number;
  /**
   * Time the whole tuning should take, ms (build_index: what adding took, since no phase of a build
   * may cost more). The precise latency measurements are shortened to what is left of it, to half
   * their length at most (≥ 50 searches at the bound: the last choice is made on them), so a small
   * build's tuning can still exceed it. Unset: Python's fixed lengths.
   */
  budgetMs?: number;
  /** INFO-level progress lines */
  info?: (message: string) => void;
  warn?: (message: string) => void;
}

export interface TunedParameters {
  /** ParameterSpace string applied to the index ("" for exhaustive indices and unknown families). */
  param: string;
  result?: TuningResult;
  /** Every search the tuning ran: coverage searches (all queries in one call) and one-query latency searches. */
  searches: SearchCount;
}

/** Rows needed from the data for tuning (the first ones, like fast metrics). */
export const TUNING_QUERIES = COARSE_QUERIES;

/**
 * Tunes `index` (built from factory `key`) and leaves the chosen parameters applied.
 * `queries` are raw vectors of the data set (Python reconstructs them from the index; raw
 * vectors are the real query distribution and need no direct map).
 */
export async function tuneIndexParameters(
  index: Index,
  key: string,
  queries: Float32Array,
  options: TuneIndexOptions,
): Promise<TunedParameters> {
  const family = tunableParameter(key, index.ivf()?.nlist);
  const searches: SearchCount = { calls: 0, queries: 0 };
  if (family.kind === "none") return { param: "", searches };
  if (family.kind === "unknown") {
    options.warn?.(`no tuning heuristic for index key ${key} (${family.reason}); keeping FAISS's default search parameters`);
    return { param: "", searches };
  }
  const d = index.d;
  const ntotal = index.ntotal;
  const nq = Math.min(queries.length / d, COARSE_QUERIES);
  if (nq === 0) return { param: "", searches };
  const coverageQueries = queries.subarray(0, Math.min(nq, COVERAGE_QUERIES) * d);
  const timeSearches = singleQueryTimer(index, queries, { k: SPEED_TEST_K, nQueries: nq });

  const measureCoverage = (value: number, k: number): number => {
    if (k === 0) return 1;
    index.setParameters(family.format(value));
    const r = index.search(coverageQueries, k);
    searches.calls += 1;
    searches.queries += coverageQueries.length / d;
    let missing = 0;
    for (const l of r.labels) if (l === -1n) missing++;
    return 1 - missing / r.labels.length;
  };
  const start = performance.now();
  const measureLatencyMs = (value: number, phase: LatencyPhase): number => {
    index.setParameters(family.format(value));
    let timeoutMs = measurementBudgetMs(phase, options.maxQueryTimeMs, family.boost);
    if (phase === "precise" && options.budgetMs !== undefined) {
      timeoutMs = Math.max(timeoutMs / 2, Math.min(timeoutMs, options.budgetMs - (performance.now() - start)));
    }
    const r = timeSearches({ timeoutMs });
    searches.calls += r.searches;
    searches.queries += r.searches;
    return r.msPerQuery;
  };

  const result = await tuneParameters({
    family,
    measureCoverage,
    measureLatencyMs,
    maxLatencyMs: options.maxQueryTimeMs,
    k: options.minNearestNeighbors,
    ntotal,
    onProgress: (e) => describeEvent(e, family.name, options),
  });
  index.setParameters(result.param);
  return { param: result.param, result, searches };
}

function describeEvent(e: TuningEvent, name: string, o: TuneIndexOptions): void {
  switch (e.type) {
    case "measurement": {
      const s = e.step;
      const what = s.coverage !== undefined ? `coverage ${(100 * s.coverage).toFixed(1)}%` : `${s.latencyMs?.toFixed(3)} ms/query`;
      o.info?.(`tuning ${name}=${s.value} (${s.phase}): ${what}`);
      break;
    }
    case "k-clamped":
      o.warn?.(`min_nearest_neighbors_to_retrieve=${e.requestedK} is more than the ${e.ntotal} vectors in the index; using ${e.k}`);
      break;
    case "coverage-below-target":
      o.warn?.(
        `even the largest ${name} returns only ${(100 * e.maxCoverage).toFixed(1)}% of the requested neighbours ` +
          `(about ${e.expectedNeighbours}); aiming for ${(100 * e.target).toFixed(1)}%`,
      );
      break;
    case "latency-bound-unreachable":
      o.warn?.(`the smallest ${name}=${e.value} takes ${e.latencyMs.toFixed(3)} ms/query, above the bound; neighbour coverage has priority`);
      break;
    case "phase-done":
      break;
  }
}
