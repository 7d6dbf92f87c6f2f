/**
 * FAISS-side checks of a factory key before any data is read: a dry factory call (FAISS's own
 * verdict and message), and a measured size for the families lib/plan/index_metadata.ts has no
 * formula for. The limits FAISS accepts but mishandles are pure (lib/plan/training_plan.ts
 * `keyLimitProblem`) and checked by the plan.
 */
import { FaissError, Index, type Metric } from "../../ffi/faiss.ts";
import { parseFactoryKey, trainingSteps } from "../plan/factory_key.ts";
import { DATA_STEP_TRAIN_POINTS, FAISS_MIN_POINTS_PER_CENTROID } from "../plan/training_plan.ts";
import { trainForKey } from "./train_index.ts";

/**
 * Vectors of the two small instances whose serialized sizes are extrapolated: small, because an
 * NSG graph build costs seconds per thousand vectors, yet above NSG's 115-point minimum.
 */
export const MEASURE_SIZES = [256, 512] as const;
/** Bytes of a FAISS idx_t: a direct map adds one per vector. */
const ID_BYTES = 8;

/**
 * FAISS's verdict on `key` for dimension d and this metric: null when its factory builds it, else a
 * message naming the key and quoting FAISS. Creates and frees one empty index; reads no data.
 *
 * @example factoryRejection(64, "IVF64,Blah", "l2")
 *   // 'index_key "IVF64,Blah": FAISS 1.7.3 rejects it for d=64, metric l2: 'index_ivf' failed: could not parse code description Blah in IVF64,Blah'
 */
export function factoryRejection(d: number, key: string, metric: Metric): string | null {
  try {
    Index.factory(d, key, metric).free();
    return null;
  } catch (e) {
    if (!(e instanceof FaissError)) throw e;
    return `index_key "${key}": FAISS 1.7.3 rejects it for d=${d}, metric ${metric}: ${firstLine(e.faissMessage)}`;
  }
}

/** FAISS messages carry "Error in <signature> at <file>:<line>: Error: '<cond>' failed: <text>". */
function firstLine(message: string): string {
  const line = message.split("\n").find((l) => l.trim() !== "") ?? message;
  const i = line.indexOf("Error: ");
  return (i >= 0 ? line.slice(i + "Error: ".length) : line).trim();
}

/** Seeded standard normal vectors (mulberry32 + Box–Muller): the measurement must be reproducible. */
function gaussianVectors(rows: number, d: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Float32Array.from({ length: rows * d }, () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()));
}

/** Training points of a measurement instance: FAISS's minimum (39 per centroid of its largest k-means). */
function measurementTrainRows(key: string, d: number): number {
  const { kmeans, dataSteps } = trainingSteps(parseFactoryKey(key, d));
  const k = kmeans.reduce((max, r) => Math.max(max, r.k), 0);
  return Math.max(1, FAISS_MIN_POINTS_PER_CENTROID * k, dataSteps.length > 0 ? Math.min(DATA_STEP_TRAIN_POINTS, 10 * d) : 0);
}

/**
 * Serialized sizes of `key` at {@link MEASURE_SIZES}, on seeded synthetic vectors. The key is
 * trained once: each instance is a copy of that trained empty index (through its serialized bytes,
 * which every family supports, unlike FAISS's clone_index), filled with its rows in one add call.
 */
export function measureSerializedSizes(key: string, d: number, metric: Metric): [number, number] {
  const base = gaussianVectors(MEASURE_SIZES[1], d, 2);
  const trained = trainedEmptyIndex(key, d, metric);
  const sizes = MEASURE_SIZES.map((rows) => {
    using index = trained === null ? Index.factory(d, key, metric) : Index.fromBytes(trained);
    index.add(base.subarray(0, rows * d)); // one add call: NSG accepts no other
    return index.serializedSize();
  });
  return [sizes[0], sizes[1]];
}

/** The serialized bytes of `key` trained on seeded vectors, or null when it needs no training. */
function trainedEmptyIndex(key: string, d: number, metric: Metric): Uint8Array | null {
  using index = Index.factory(d, key, metric);
  if (index.isTrained) return null;
  index.setPolysemousTraining(false); // unused at search time, costs minutes (README)
  trainForKey(index, gaussianVectors(measurementTrainRows(key, d), d, 1), key);
  return index.toBytes();
}

/**
 * Size of `key` over n vectors for a family without a formula: two small trained instances are
 * serialized and the size is extrapolated linearly (every FAISS layout is a fixed part plus a
 * per-vector part). Costs one small training (shared by both sizes) and two small adds.
 *
 * @example measuredIndexSizeBytes("NSG32,Flat", 64, "l2", 100_000)
 */
export function measuredIndexSizeBytes(key: string, d: number, metric: Metric, n: number, makeDirectMap = false): number {
  const [s1, s2] = measureSerializedSizes(key, d, metric);
  const [n1, n2] = MEASURE_SIZES;
  const perVector = (s2 - s1) / (n2 - n1);
  const fixed = s1 - perVector * n1;
  return Math.ceil(Math.max(0, fixed + perVector * n) + (makeDirectMap ? ID_BYTES * n : 0));
}
