/**
 * What the tool loses when the loaded FAISS library lacks one of our `autofaiss_*` extensions (an
 * upstream libfaiss_c.so has none): each capability, the symbols it needs, and what happens instead.
 * ffi/faiss.ts reports each missing capability once per process, when it is first needed, through
 * the warning sink: stderr by default (so a library user sees it), the CLI's logger while a command
 * runs (lib/cli/main.ts). This module opens no library, so `--help` can import it.
 */
import process from "node:process";
import type { SymbolName } from "./symbols.ts";

export interface Capability {
  readonly symbols: readonly SymbolName[];
  /** What happens without it, as one clause. */
  readonly lost: string;
}

export const CAPABILITIES = {
  threads: {
    symbols: ["autofaiss_set_num_threads", "autofaiss_get_num_threads"],
    lost: "the FAISS thread count cannot be set, so FAISS uses OpenMP's default (OMP_NUM_THREADS, else every core)",
  },
  oneThreadLatency: {
    symbols: ["autofaiss_set_num_threads", "autofaiss_get_num_threads"],
    lost: "single-query latencies (tuning, avg_search_speed_ms, 99p_search_speed_ms) are timed with every OpenMP " +
      "thread instead of one, so they come out higher and noisier on a busy machine",
  },
  polysemous: {
    symbols: ["autofaiss_set_polysemous_training"],
    lost: "polysemous training cannot be switched off, so PQ indices with 8-bit codes train tens of seconds longer",
  },
  serializedSize: {
    symbols: ["autofaiss_serialized_size"],
    lost: "index sizes are measured by writing the index to a temporary file (needs that much free space in the temporary folder)",
  },
  nonFiniteScan: {
    symbols: ["autofaiss_first_nonfinite"],
    lost: "the NaN/Inf check of the embeddings runs in JavaScript, several times slower than the native scan",
  },
  ivfLayer: {
    symbols: ["autofaiss_extract_index_ivf"],
    lost: "the IVF layer under a pre-transform (OPQ, PCA, RR) cannot be reached, so make_direct_map and nprobe " +
      "access do nothing on such indices",
  },
  indexBuffers: {
    symbols: ["autofaiss_write_index_buffer", "autofaiss_read_index_buffer"],
    lost: "indices are copied to and from memory through a temporary file",
  },
  fastScanHeap: {
    symbols: ["autofaiss_fast_scan_use_heap"],
    lost: "fast-scan PQ indices (PQ<m>x4fs) search with FAISS's reservoir when k > 20, which aborts the process " +
      "when many quantized distances tie (FAISS 1.7.3 without AVX2)",
  },
  hashDirectMap: {
    symbols: ["autofaiss_ivf_set_direct_map"],
    lost: "the parts of a split index past the first (ids not starting at 0) cannot get a direct map, so " +
      "nb_indices_to_keep > 1 with make_direct_map is refused",
  },
  directEncoding: {
    symbols: ["autofaiss_add"],
    lost: "IVF-PQ indices with sub-vectors of at most 8 dimensions are encoded by FAISS's per-centroid distance calls, " +
      "which makes adding to them several times slower",
  },
  trainingLevers: {
    symbols: ["autofaiss_train_with_levers"],
    lost: "training keeps FAISS's defaults (OPQ's 50 outer iterations, BLAS k-means on 3- to 8-dimensional " +
      "sub-vectors), which makes OPQ / PQ training several times slower",
  },
  progressJobs: {
    symbols: ["autofaiss_job_train", "autofaiss_job_add", "autofaiss_job_status", "autofaiss_job_join"],
    lost: "training and adding run as one blocking FAISS call each, so their progress is only shown per phase " +
      "(no k-means iterations, no vectors added inside a call)",
  },
  transformTraining: {
    symbols: ["autofaiss_job_train_ex", "autofaiss_job_status", "autofaiss_job_join"],
    lost: "an OPQ rotation trains inside the whole training sample, which also stays in memory beside its rotated " +
      "copy, so training needs more memory",
  },
  sharedTransforms: {
    symbols: ["autofaiss_copy_transforms"],
    lost: "an OPQ rotation trained while selecting the index cannot be handed to the build, so measured selection " +
      "measures the heuristic key on a rotation of its sample and the build trains its rotation again",
  },
  openmpGuards: {
    symbols: ["autofaiss_build_info"],
    lost: "FAISS calls that throw inside OpenMP regions are not guarded natively, so reconstruct_n is refused " +
      "for indices whose reconstruct fails unless they are plain IVF indices",
  },
} as const satisfies Record<string, Capability>;

export type CapabilityName = keyof typeof CAPABILITIES;

/** The warning for a missing capability of the library at `path`. */
export function missingCapabilityMessage(name: CapabilityName, path: string, missing: readonly string[]): string {
  return `faiss library ${path} lacks ${missing.join(", ")}: ${CAPABILITIES[name].lost}`;
}

/** Receives one warning, without a trailing newline. */
export type WarningSink = (message: string) => void;

const stderrWarning: WarningSink = (message) => {
  process.stderr.write(`autofaiss: warning: ${message}\n`);
};

// The two pieces of module state outside ffi/library.ts, both process-wide by nature: `sink` is where
// warnings go while a command runs (lib/cli/main.ts sets it around the command and restores it; it is
// set before the library is opened, because opening it may warn), and `warned` records which missing
// capabilities were already said, so each is said once per process, like the library they describe
// (opened once per process, never closed).
let sink: WarningSink = stderrWarning;
const warned = new Set<CapabilityName>();

/**
 * Routes the capability warnings to `next` (null: back to stderr); returns the previous sink so a
 * caller can restore it.
 *
 * @example const previous = setWarningSink((m) => log.warning(m)); try { … } finally { setWarningSink(previous); }
 */
export function setWarningSink(next: WarningSink | null): WarningSink {
  const previous = sink;
  sink = next ?? stderrWarning;
  return previous;
}

/**
 * Reports a warning that is not about a missing capability through the same sink: ffi/library.ts's
 * GENERIC fallbacks, said when the library is opened (once per process).
 */
export function warn(message: string): void {
  sink(message);
}

/** Reports `name` as missing once per process; later calls do nothing. */
export function warnMissingCapability(name: CapabilityName, path: string, missing: readonly string[]): void {
  if (warned.has(name)) return;
  warned.add(name);
  sink(missingCapabilityMessage(name, path, missing));
}
