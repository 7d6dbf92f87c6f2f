/**
 * Merging the search results of the N parts of a split index into the result one index holding the
 * same inverted lists gives: by distance, ties by the smaller id (see ./topk.ts).
 */
import { type Metric, TopK } from "./topk.ts";

/** One part's search result: `nq` rows of `k` entries, row-major, labels already global. */
export interface PartResult {
  distances: Float32Array;
  labels: BigInt64Array;
  k: number;
}

/**
 * Merges per-part top-k results into the global top-k: by distance (IP larger first, L2 smaller
 * first), ties by the smaller id, −1 entries skipped and empty slots padded as FAISS pads them
 * (label −1, distance −FLT_MAX for IP, +FLT_MAX for L2). Each part's top-k contains every one of
 * its entries that can reach the global top-k, so the result is the top-k of the union.
 *
 * @example mergePartResults([partA, partB], nq, 10, "l2")
 */
export function mergePartResults(parts: readonly PartResult[], nq: number, k: number, metric: Metric): PartResult {
  const top = new TopK(nq, k, metric);
  for (const p of parts) top.push(p, 0);
  return { distances: top.distances(), labels: top.labels(), k };
}

/** Merges results incrementally, one part at a time, so only one part's index need be open. */
export class PartMerger {
  readonly #top: TopK;

  constructor(nq: number, k: number, metric: Metric) {
    this.#top = new TopK(nq, k, metric);
  }

  push(part: PartResult): void {
    this.#top.push(part, 0);
  }

  result(): PartResult {
    return { distances: this.#top.distances(), labels: this.#top.labels(), k: this.#top.k };
  }
}
