/**
 * Medium metrics of `score_index`: recalls of the index against exact neighbours of the
 * first 500 vectors. The formulas are ../recall.ts (Python's, value for value); this module runs the
 * searches.
 */
import type { Index } from "../../ffi/faiss.ts";
import { oneRecallAtR, rRecallAtR } from "./recall.ts";
import { GROUND_TRUTH_K } from "./ground_truth.ts";
import type { SearchCount } from "./latency_stats.ts";

/** Queries of the medium metrics: the first 500 vectors. */
export const MEDIUM_METRICS_QUERIES = 500;

/** The recall keys of score_index's output, in Python's order. */
export interface MediumMetrics {
  "1-recall@20": number;
  "1-recall@40": number;
  "20-recall@20": number;
  "40-recall@40": number;
}

/**
 * 1-recall@20/40 (k = 1 search) and 20-recall@20 / 40-recall@40 (k = 40 search) of `index` for
 * `queries` against `groundTruth` (nq × 40 labels, -1 padded).
 * Python searches k = 40 one query at a time; one batched search returns the same labels.
 * `count`, when given, receives the searches run (2 calls of nq queries).
 */
export function mediumMetrics(index: Index, queries: Float32Array, groundTruth: Int32Array, count?: SearchCount): MediumMetrics {
  const gt = { labels: groundTruth, k: GROUND_TRUTH_K };
  const top1 = index.search(queries, 1);
  const top40 = index.search(queries, GROUND_TRUTH_K);
  if (count) {
    count.calls += 2;
    count.queries += 2 * (queries.length / index.d);
  }
  const ntotal = index.ntotal;
  return {
    "1-recall@20": oneRecallAtR({ labels: top1.labels, k: 1 }, gt, 20),
    "1-recall@40": oneRecallAtR({ labels: top1.labels, k: 1 }, gt, 40),
    "20-recall@20": rRecallAtR({ labels: top40.labels, k: GROUND_TRUTH_K }, gt, 20, { ntotal }),
    "40-recall@40": rRecallAtR({ labels: top40.labels, k: GROUND_TRUTH_K }, gt, 40, { ntotal }),
  };
}
