/**
 * The N-part output of `build_index --nb_indices_to_keep N`, on one machine: the index is trained
 * once, then each part in turn is a copy of the trained (empty) index that receives one contiguous
 * range of rows with their global row numbers as ids (`add_with_ids`), is finished (tuned,
 * measured, written beside its final path) by the caller's step, and freed before the next part
 * starts. So at most one part's vectors and inverted lists are in memory, and peak memory falls as
 * N grows.
 *
 * Python AutoFaiss offers N parts only through Spark (each task adds a range with global ids, then
 * parts are merged and tuned one per task); this is the same output without Spark.
 */
import { addProgressRows } from "./faiss_progress.ts";
import type { Index } from "../../ffi/faiss.ts";
import type { EmbeddingCollection } from "../io/collection.ts";
import type { IdsWriter } from "../io/ids.ts";
import type { PlannedPart } from "../plan/build_plan.ts";
import type { BuildReporter } from "../reporter.ts";

export interface PartsWork {
  /** The trained, empty index; cloned for every part, never modified. The caller frees it. */
  trained: Index;
  embs: EmbeddingCollection;
  /** The parts in order, with their rows and output paths (lib/plan/build_plan.ts). */
  parts: readonly PlannedPart[];
  /** Rows per reader batch and per FAISS add call. */
  readBatchRows: number;
  addCallRows: number;
  /** The ids mapping (one for all parts), or null. */
  ids: IdsWriter | null;
  log: BuildReporter;
  /** Tunes, measures and writes one filled part (filled in `addMs` ms); must not free it. */
  finish: (index: Index, part: PlannedPart, addMs: number) => Promise<void>;
}

/**
 * Fills and finishes the parts in order.
 *
 * @example await addParts({ trained, embs, parts: plan.parts, readBatchRows, addCallRows, ids, log, finish });
 */
export async function addParts(work: PartsWork): Promise<void> {
  const { embs, log, parts } = work;
  const d = embs.dimension;
  for (const [p, part] of parts.entries()) {
    const { start, end } = part.rows;
    const index = work.trained.clone();
    try {
      const addStart = performance.now();
      await log.timed(`-> Adding rows [${start}, ${end}) to part ${p + 1} of ${parts.length} (${part.indexPath})`, 2, async () => {
        const bar = log.progress(`Part ${p + 1}/${parts.length}`, end - start, "vectors");
        const ids = new BigInt64Array(Math.max(1, work.addCallRows));
        for await (const batch of embs.batches(work.readBatchRows, { start, end, reuse: true })) {
          // FAISS gets at most addCallRows rows per call: an OPQ pre-transform copies its whole input.
          for (let i = 0; i < batch.rows; i += work.addCallRows) {
            const n = Math.min(work.addCallRows, batch.rows - i);
            for (let j = 0; j < n; j++) ids[j] = BigInt(batch.startId + i + j);
            const done = batch.startId + i - start;
            await index.addWithProgress(batch.vectors.subarray(i * d, (i + n) * d), {
              ids: ids.subarray(0, n),
              progressRows: addProgressRows(end - start),
              onProgress: (added) => bar.update(done + added),
            });
          }
          if (work.ids) await work.ids.write(batch);
        }
        bar.finish();
      });
      await work.finish(index, part, performance.now() - addStart);
    } finally {
      index.free();
    }
  }
}
