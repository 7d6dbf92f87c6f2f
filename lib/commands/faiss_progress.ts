/**
 * Training and adding with progress from inside FAISS. Each runs as a native job
 * (ffi `Index.trainWithProgress` / `addWithProgress`: FAISS on a thread of its own, polled between
 * async sleeps, so a terminal bar is redrawn at least every 250 ms while FAISS works): k-means
 * iterations of the OPQ rotation, the IVF coarse quantizer and the PQ sub-quantizers with their
 * objective, vectors added. A library without the native jobs falls back to the blocking calls
 * (said once, by ffi/capabilities.ts): one bar step per FAISS add call, none inside training.
 */
import type { Index, JobPhase, JobStatus } from "../../ffi/faiss.ts";
import { trainForKeyWithProgress, trainTransformsForKeyWithProgress } from "../measure/train_index.ts";
import type { BuildReporter, ProgressHandle } from "../reporter.ts";

/** Steps of the adding bar per add call: the native job adds this many chunks (FAISS 1.7.3: IVF
 *  lists keep the insertion order, so chunks give the same index; HNSW levels come from its own
 *  sequential RNG). */
export const ADD_PROGRESS_STEPS = 100;
/** Fewest rows per chunk: smaller FAISS add calls would cost more in call and OpenMP start-up
 *  than the progress they show. */
export const ADD_PROGRESS_MIN_ROWS = 1000;

/** Rows per native add chunk for an add of `rows` rows. */
export function addProgressRows(rows: number): number {
  return Math.max(ADD_PROGRESS_MIN_ROWS, Math.ceil(rows / ADD_PROGRESS_STEPS));
}

/** The bar of each training phase with finer progress: label and unit. */
const TRAINING_BARS: Partial<Record<JobPhase, { label: string; unit: string }>> = {
  "opq": { label: "Training OPQ rotation", unit: "PQ k-means iterations" },
  "ivf-kmeans": { label: "Training IVF k-means", unit: "iterations" },
  "pq-kmeans": { label: "Training PQ k-means", unit: "iterations" },
};

/** The phases with a bar, in the order FAISS trains them (rotation, coarse quantizer, codes). */
const TRAINING_ORDER: JobPhase[] = ["opq", "ivf-kmeans", "pq-kmeans"];

/**
 * What follows the count of a training bar: `objective 2.2006` (mean distance of a training vector
 * to its centroid at the last iteration); for OPQ `outer iteration 12/50, PQ error 0.13725`.
 */
export function trainingDetail(s: JobStatus): string {
  const objective = s.objective === null ? "" : formatObjective(s.objective);
  if (s.phase === "opq") {
    return `outer iteration ${s.outer}/${s.outerTotal}` + (objective ? `, PQ error ${objective}` : "");
  }
  return objective ? `objective ${objective}` : "";
}

/** Five significant digits: `2.2006`, `1.2346e+5`. */
export function formatObjective(x: number): string {
  return x.toPrecision(5);
}

/**
 * Trains `index` for its factory `key` (the training levers of lib/measure/train_index.ts), with one
 * progress bar per training phase that FAISS reports from inside. `onInputReleased` is called once
 * the training no longer reads `x` (after a pre-transform such as OPQ has been applied to it); with
 * `discardInput` the caller gives up the contents of `x` to that pre-transform, which consumes it
 * page by page.
 */
export function trainWithProgress(
  index: Index,
  x: Float32Array,
  key: string,
  log: BuildReporter,
  onInputReleased?: () => void,
  discardInput = false,
): Promise<void> {
  return withTrainingBars(log, (onStatus) => trainForKeyWithProgress(index, x, key, onStatus, onInputReleased, discardInput));
}

/**
 * Trains only the transforms of `key` (its OPQ rotation) on `x`, with the rotation's progress bar;
 * false when the library cannot (lib/measure/train_index.ts).
 */
export async function trainTransformsWithProgress(index: Index, x: Float32Array, key: string, log: BuildReporter): Promise<boolean> {
  let trained = false;
  await withTrainingBars(log, async (onStatus) => {
    trained = await trainTransformsForKeyWithProgress(index, x, key, onStatus);
  });
  return trained;
}

/** Runs a training that reports job statuses, drawing one bar per phase FAISS reports from inside. */
async function withTrainingBars(log: BuildReporter, train: (onStatus: (s: JobStatus) => void) => Promise<unknown>): Promise<void> {
  let bar: ProgressHandle | null = null;
  let phase: JobPhase | null = null;
  let detail = "";
  const shown = new Set<JobPhase>();
  let lastCounts: JobStatus["phaseCounts"] | null = null;
  // A phase that started and ended between two status reads (10 k-means iterations on a small
  // sample take milliseconds) still gets its bar, at the job's count of it, in FAISS's order.
  const showMissed = (upTo: number) => {
    for (const p of TRAINING_ORDER.slice(0, upTo)) {
      const count = lastCounts?.[p as keyof JobStatus["phaseCounts"]] ?? 0;
      if (shown.has(p) || count === 0) continue;
      shown.add(p);
      const missed = log.progress(TRAINING_BARS[p]!.label, count, TRAINING_BARS[p]!.unit);
      missed.update(count, "");
      missed.finish();
    }
  };
  try {
    await train((s) => {
      lastCounts = s.phaseCounts;
      if (s.phase !== phase) {
        // statuses are up to 250 ms apart: the last iterations of a finished phase may not have been
        // seen, but the job's count of that phase is final (its objective is the last one read)
        if (bar && phase !== null && phase !== "train") bar.update(s.phaseCounts[phase], detail);
        bar?.finish();
        bar = null;
        const order = TRAINING_ORDER.indexOf(s.phase);
        if (order >= 0) showMissed(order);
        phase = s.phase;
        const kind = TRAINING_BARS[s.phase];
        if (kind) {
          shown.add(s.phase);
          bar = log.progress(kind.label, s.total, kind.unit);
        }
      }
      detail = trainingDetail(s);
      bar?.update(s.done, detail);
      if (s.finished) showMissed(TRAINING_ORDER.length);
    });
  } finally {
    (bar as ProgressHandle | null)?.finish();
  }
}
