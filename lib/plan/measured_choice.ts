/**
 * The pure decisions of measured selection: how big the sample is, how a candidate's key and its
 * latency bound are scaled from the full data to the sample, how the sample's measurements predict
 * the full index, how the time budget is spent and which candidate wins. The measurements
 * themselves are lib/measure/measured_selection.ts. Pure functions, no I/O, no FAISS.
 *
 * Scaling, full size n → sample size s (why each rule predicts the full build):
 * - IVF: the sample key keeps the full key's vectors per list: nlist_s = round(nlist · s/n) (at
 *   least 1). A probe then scans as many codes on the sample as on the full index, so the latency
 *   measured at nprobe p on the sample is the full index's latency at the same p, and tuning the
 *   sample at the latency bound finds the full index's nprobe. Recall depends on the fraction of
 *   lists probed (cells of equal population hold the same number of neighbours at both sizes), so the
 *   full index's recall at nprobe p is predicted by the sample's recall at the same fraction,
 *   nprobe_s = max(1, round(p · s/n)).
 * - HNSW: a graph search at fixed efSearch visits O(log n) nodes, so the sample is tuned at the
 *   bound scaled by log(s)/log(n), and its recall at that efSearch is the prediction (slightly
 *   optimistic: recall at fixed efSearch decreases slowly with n).
 * - Exhaustive (Flat, PQ, SQ without IVF or HNSW): cost ∝ n; the bound is scaled by s/n.
 * - Refinement (`,RFlat`): the re-ranking cost (k·k_factor distances) does not depend on n; the
 *   IVF rule applies to the part before it.
 */

import { parseFactoryKey } from "./factory_key.ts";

// ---------------------------------------------------------------------------------------------
// Constants

/**
 * Smallest sample: 256-centroid PQ training needs 39·256 = 9,984 points (FAISS warns below), and
 * recall over fewer vectors is noisy.
 */
export const MIN_SAMPLE_ROWS = 10_000;
/** Sample fraction of big sets: 5% keeps a candidate's training + adding ~20× cheaper than the full build. */
export const SAMPLE_FRACTION = 0.05;
/** Largest sample: beyond this, sampling error is far below the differences between candidates. */
export const MAX_SAMPLE_ROWS = 200_000;
/** Held-out queries whose exact neighbours score each candidate (recall@10 standard error ≈ 0.01). */
export const SELECTION_QUERIES = 500;
/** Neighbours scored: the issue's and ann-benchmarks' recall@10. */
export const SELECTION_RECALL_AT = 10;
/**
 * A candidate replaces the heuristic key only with a predicted recall@10 at least this much higher:
 * the sample's recall has a standard error near 0.01 on 500 queries, and "never worse than the
 * heuristic" matters more than a marginal gain.
 */
export const REPLACE_MARGIN = 0.01;
/**
 * Without `--selection_time_budget`, selection may spend this fraction of the predicted full build
 * (the heuristic key's sample time × n/s, since training and adding are linear in the vectors).
 */
export const AUTO_BUDGET_FRACTION = 0.25;
/**
 * Exact re-ranking of k·16 shortlisted vectors: FAISS's IndexRefine default (1) re-ranks only the k
 * results, which adds no recall; on 4-bit fast-scan codes 16 recovers nearly all neighbours (k_factor
 * 1 / 4 / 16: recall@10 0.29 / 0.70 / 1.00 on 4000×16 clustered data, IVF64,PQ8x4fs,RFlat), and
 * re-ranking 40·16 raw vectors costs microseconds.
 */
export const REFINE_K_FACTOR = 16;

// ---------------------------------------------------------------------------------------------
// Sample

/** Sample rows (index) and held-out queries for n vectors; the queries are never in the sample. */
export interface SelectionSample {
  rows: number;
  queries: number;
}

/**
 * Sample size for n vectors: 5% of n between 10,000 and 200,000 rows, plus 500 held-out queries;
 * when n is too small for both, the queries take min(500, n/5) rows and the sample the rest.
 *
 * @example selectionSample(1_000_000) // { rows: 50_000, queries: 500 }
 */
export function selectionSample(n: number): SelectionSample {
  const queries = Math.min(SELECTION_QUERIES, Math.floor(n / 5));
  const rows = Math.min(n - queries, Math.max(MIN_SAMPLE_ROWS, Math.min(MAX_SAMPLE_ROWS, Math.ceil(n * SAMPLE_FRACTION))));
  return { rows, queries };
}

// ---------------------------------------------------------------------------------------------
// Scaling

/** How a candidate is searched, for scaling its latency. */
export type SearchKind = "ivf" | "hnsw" | "exhaustive";

export function searchKind(key: string, d: number): SearchKind {
  const b = parseFactoryKey(key, d).base;
  if (b.family === "IVF") return "ivf";
  if (b.family === "HNSW" || b.family === "NSG") return "hnsw";
  return "exhaustive";
}

/**
 * The key built on the sample: the full key with nlist scaled by s/n (same vectors per list);
 * other keys unchanged.
 *
 * @example sampleKey("OPQ64_192,IVF4096_HNSW32,PQ64x4fs", 1_000_000, 50_000) // "OPQ64_192,IVF205_HNSW32,PQ64x4fs"
 */
export function sampleKey(key: string, n: number, s: number): string {
  return key.replace(/(^|,)IVF(\d+)/, (_m, sep: string, c: string) => `${sep}IVF${Math.max(1, Math.round((Number(c) * s) / n))}`);
}

/**
 * Latency bound to tune the sample at so that the full index meets `maxMs` (module comment).
 *
 * @example sampleLatencyBound(2, "hnsw", 1_000_000, 10_000) // 2·ln(10⁴)/ln(10⁶) = 1.333…
 */
export function sampleLatencyBound(maxMs: number, kind: SearchKind, n: number, s: number): number {
  switch (kind) {
    case "ivf":
      return maxMs;
    case "hnsw":
      return s >= n ? maxMs : (maxMs * Math.log(s)) / Math.log(n);
    case "exhaustive":
      return (maxMs * s) / n;
  }
}

/** The full index's predicted latency from the sample's (inverse of {@link sampleLatencyBound}). */
export function predictedLatencyMs(sampleMs: number, kind: SearchKind, n: number, s: number): number {
  switch (kind) {
    case "ivf":
      return sampleMs;
    case "hnsw":
      return s >= n ? sampleMs : (sampleMs * Math.log(n)) / Math.log(s);
    case "exhaustive":
      return (sampleMs * n) / s;
  }
}

/**
 * The sample's nprobe probing the same fraction of its lists as nprobe `p` does on the full index.
 *
 * @example equalFractionNprobe(64, 1_000_000, 50_000) // 3
 */
export function equalFractionNprobe(p: number, n: number, s: number): number {
  return Math.max(1, Math.round((p * s) / n));
}

/**
 * The sample's search parameters that predict the full index's recall under `fullParam` (the
 * tuned string): nprobe at the same fraction of lists; efSearch and the rest unchanged.
 *
 * @example recallParam("nprobe=64,ht=2048", 1_000_000, 50_000) // "nprobe=3,ht=2048"
 */
export function recallParam(fullParam: string, n: number, s: number): string {
  return fullParam.replace(/(^|,)nprobe=(\d+)/, (_m, sep: string, p: string) => `${sep}nprobe=${equalFractionNprobe(Number(p), n, s)}`);
}

// ---------------------------------------------------------------------------------------------
// Time budget and choice

/**
 * Seconds selection may spend: the user's budget, else a quarter of the predicted full build (the
 * heuristic key's sample seconds × n/s). Null before the heuristic has been measured.
 */
export function selectionBudgetSeconds(given: number | null, heuristicSampleSeconds: number | null, n: number, s: number): number | null {
  if (given !== null) return given;
  if (heuristicSampleSeconds === null) return null;
  return AUTO_BUDGET_FRACTION * heuristicSampleSeconds * (n / Math.max(1, s));
}

/**
 * Whether to start one more candidate: the heuristic always runs; another only if the mean cost of
 * those measured so far still fits in what is left of the budget.
 */
export function startNext(elapsedSeconds: number, measuredSeconds: number[], budgetSeconds: number | null): boolean {
  if (measuredSeconds.length === 0 || budgetSeconds === null) return true;
  const mean = measuredSeconds.reduce((a, b) => a + b, 0) / measuredSeconds.length;
  return elapsedSeconds + mean <= budgetSeconds;
}

/** What the choice needs of each measured candidate. */
export interface MeasuredPoint {
  key: string;
  heuristic: boolean;
  estimatedBytes: number;
  /** Predicted recall@10 of the full index; null when it could not be measured. */
  recall: number | null;
  /** Predicted single-query latency of the full index at the tuned parameters, ms. */
  latencyMs: number | null;
}

/** The winner and why. */
export interface Choice {
  key: string;
  reason: string;
}

/**
 * Best predicted recall@10 among the candidates within the latency bound (memory is already
 * within its bound); the heuristic key is kept unless another beats it by {@link REPLACE_MARGIN},
 * or unless it misses the latency bound and another does not. Ties: smaller index.
 * Null when nothing was measured.
 *
 * @example chooseMeasured([{ key: "A", heuristic: true, estimatedBytes: 9, recall: 0.8, latencyMs: 1 },
 *   { key: "B", heuristic: false, estimatedBytes: 9, recall: 0.9, latencyMs: 1 }], 2).key // "B"
 */
export function chooseMeasured(points: MeasuredPoint[], maxLatencyMs: number): Choice | null {
  const measured = points.filter((p) => p.recall !== null && p.latencyMs !== null);
  const heuristic = measured.find((p) => p.heuristic);
  const within = measured.filter((p) => p.latencyMs! <= maxLatencyMs);
  const best = [...within].sort((a, b) => b.recall! - a.recall! || a.estimatedBytes - b.estimatedBytes)[0];
  const fmt = (p: MeasuredPoint) => `${p.key} (recall@10 ${p.recall!.toFixed(3)}, ${p.latencyMs!.toFixed(3)} ms)`;
  if (heuristic && heuristic.latencyMs! <= maxLatencyMs) {
    if (best && best !== heuristic && best.recall! >= heuristic.recall! + REPLACE_MARGIN) {
      return { key: best.key, reason: `${fmt(best)} beats the heuristic ${fmt(heuristic)} by at least ${REPLACE_MARGIN}` };
    }
    return { key: heuristic.key, reason: `the heuristic ${fmt(heuristic)}: no candidate beats it by ${REPLACE_MARGIN} within the bounds` };
  }
  if (best) {
    const why = heuristic ? `the heuristic ${fmt(heuristic)} misses the ${maxLatencyMs} ms bound` : "the heuristic key was not measured";
    return { key: best.key, reason: `${fmt(best)}, the best within ${maxLatencyMs} ms; ${why}` };
  }
  if (heuristic) return { key: heuristic.key, reason: `no candidate meets ${maxLatencyMs} ms; keeping the heuristic ${fmt(heuristic)}` };
  return null;
}
