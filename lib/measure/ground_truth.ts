/**
 * Exact k nearest neighbours of a few queries over a whole embedding collection, in bounded memory:
 * the collection is streamed in batches, each batch is searched exhaustively by a FAISS
 * flat index of the scored index's metric, and the per-batch results are merged by ../topk.ts.
 *
 * Differences from Python AutoFaiss: the metric is the index's own (Python always used inner
 * product, wrong for L2 indices), and ties are broken by the smaller row number whatever the batch
 * size (Python's tied neighbours are whichever FAISS's heap kept).
 */
import { Index, type Metric, type SearchResult } from "../../ffi/faiss.ts";
import type { EmbeddingCollection } from "../io/collection.ts";
import { TopK } from "./topk.ts";
import type { BuildReporter } from "../reporter.ts";

/** Neighbours kept per query (Python keeps the top 40). */
export const GROUND_TRUTH_K = 40;

/** Python caps one batch at 1e9 bytes of vectors (`min(memory_available, 1e9)`). */
export const MAX_BATCH_BYTES = 1e9;

/**
 * Copies of a batch alive at once: the batch being searched, the next one being read ahead
 * (double-buffered batches), and the flat index's own copy.
 */
const BATCH_COPIES = 3;

/**
 * Rows per batch for `memoryBytes` of working memory and dimension d: the three copies of a batch
 * fit in the memory, one batch is at most {@link MAX_BATCH_BYTES}; at least one row.
 *
 * @example groundTruthBatchRows(12 * 1024 ** 2, 128) // 8192
 */
export function groundTruthBatchRows(memoryBytes: number, d: number): number {
  const perBatch = Math.min(memoryBytes / BATCH_COPIES, MAX_BATCH_BYTES);
  return Math.max(1, Math.floor(perBatch / (4 * d)));
}

export interface GroundTruthOptions {
  metric: Metric;
  /** neighbours per query (default {@link GROUND_TRUTH_K}) */
  k?: number;
  /** working memory for the batches, bytes */
  memoryBytes: number;
  reporter?: BuildReporter;
}

/**
 * Exact top-k labels (global row numbers, best first, -1 padded) of `queries` over `collection`,
 * as an (nq × k) int32 matrix, the dtype of Python's cached ground truth.
 *
 * @example
 * const gt = await exactNeighbours(embs, queries, { metric: index.metric, memoryBytes: 1 << 30 });
 */
export async function exactNeighbours(
  collection: EmbeddingCollection,
  queries: Float32Array,
  options: GroundTruthOptions,
): Promise<Int32Array> {
  const d = collection.dimension;
  const k = options.k ?? GROUND_TRUTH_K;
  if (queries.length % d !== 0) throw new RangeError(`ground truth: queries have length ${queries.length}, not a multiple of d=${d}`);
  const nq = queries.length / d;
  const top = new TopK(nq, k, options.metric);
  const batchRows = groundTruthBatchRows(options.memoryBytes, d);
  options.reporter?.debug(`ground truth: ${collection.count} vectors in batches of ${batchRows}`);
  const bar = options.reporter?.progress("Ground truth", collection.count, "vectors");
  using flat = Index.factory(d, "Flat", options.metric);
  for await (const batch of collection.batches(batchRows, { reuse: true })) {
    flat.add(batch.vectors);
    top.push(searchWithTies(flat, queries, k, batch.rows), batch.startId);
    flat.reset();
    bar?.update(batch.startId + batch.rows);
  }
  bar?.finish();
  return top.labelsInt32();
}

/**
 * The best k of a flat index per query, plus every row tied with the k-th. FAISS (1.7.3) keeps an
 * arbitrary subset of the rows tied at its cut-off, so the ground truth would depend on the batch
 * size (and on duplicates in the data); with all tied rows in hand, TopK keeps the smallest row
 * numbers, which makes the result canonical. Searches again with a doubled k only when a query's
 * last returned distance still equals its k-th (ties are rare in real embeddings, save duplicates).
 */
function searchWithTies(flat: Index, queries: Float32Array, k: number, rows: number): SearchResult {
  const nq = queries.length / flat.d;
  let kb = Math.min(k, rows);
  for (;;) {
    const r = flat.search(queries, kb);
    if (kb === rows) return r;
    let complete = true;
    for (let q = 0; q < nq && complete; q++) {
      const row = q * kb;
      // distances are sorted; a -1 label would mean fewer than kb results (not for a flat index)
      if (r.distances[row + kb - 1] === r.distances[row + k - 1] && r.labels[row + kb - 1] !== -1n) complete = false;
    }
    if (complete) return r;
    kb = Math.min(rows, 2 * kb);
  }
}
