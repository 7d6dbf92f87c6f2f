/**
 * Training an index the way every build trains: through the training levers that
 * lib/plan/training_plan.ts decides for its factory key (direct sub-space k-means, OPQ's measured
 * outer iterations), plainly for keys with no OPQ / PQ, where no lever applies (so no warning about
 * a missing lever either). Used by build_index, by measured selection's sample builds and by the
 * size measurement of key_check, so that each trains what the others train, at the same cost.
 *
 * @example trainForKey(index, sample, "OPQ16_64,IVF256,PQ16x8")
 */
import type { Index, JobStatus } from "../../ffi/faiss.ts";
import { trainingLevers } from "../plan/training_plan.ts";

export function trainForKey(index: Index, vectors: Float32Array, key: string): void {
  const levers = trainingLevers(key);
  if (Object.keys(levers).length === 0) index.train(vectors);
  else index.trainWithLevers(vectors, levers);
}

/**
 * The same training as {@link trainForKey}, on a native thread, with `onStatus` told of its
 * progress from inside FAISS (k-means iterations, OPQ outer iterations, objective), and
 * `onInputReleased` called once the training no longer reads `vectors`, and with `discardInput` the
 * contents of `vectors` given up to a pre-transform that consumes them (Index.trainWithProgress).
 *
 * @example await trainForKeyWithProgress(index, sample, key, (s) => bar.update(s.done))
 */
export async function trainForKeyWithProgress(
  index: Index,
  vectors: Float32Array,
  key: string,
  onStatus: (s: JobStatus) => void,
  onInputReleased?: () => void,
  discardInput = false,
): Promise<void> {
  await index.trainWithProgress(vectors, trainingLevers(key), onStatus, { onInputReleased, discardInput });
}

/**
 * Trains only the transforms of `key` (its OPQ rotation) on `vectors`, with the levers and progress
 * of {@link trainForKeyWithProgress}; the sub-index is trained by a later call on other vectors.
 * False when the library cannot (said once by the FFI): the caller trains everything in one call.
 *
 * @example if (await trainTransformsForKeyWithProgress(index, rotationSample, key, show)) …
 */
export function trainTransformsForKeyWithProgress(
  index: Index,
  vectors: Float32Array,
  key: string,
  onStatus: (s: JobStatus) => void,
): Promise<boolean> {
  return index.trainTransformsWithProgress(vectors, trainingLevers(key), onStatus);
}
