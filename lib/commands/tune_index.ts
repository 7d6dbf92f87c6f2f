/**
 * `tune_index`: load an index, find its search parameters under the latency bound (or
 * apply the given ones), and write it back; FAISS stores nprobe / efSearch / ht in the file.
 * The search itself is lib/measure/tune_parameters.ts, the same as at the end of build_index.
 *
 * @example
 * const { index, param } = await tuneIndex("knn.index", "IVF4096,Flat", { outputIndexPath: "tuned.index" });
 * index.free();
 */
import { resolve } from "node:path";
import { FaissError, Index } from "../../ffi/faiss.ts";
import { type BuildReporter, silentReporter } from "../reporter.ts";
import { TUNING_QUERIES, tuneIndexParameters, type TunedParameters } from "../measure/tune_parameters.ts";
import { tunableParameter } from "../plan/tuning.ts";
import { recoverPublish } from "../output/publish.ts";
import { TUNE_DEFAULTS } from "./defaults.ts";

export interface TuneIndexOptions {
  /** applied as-is instead of tuning */
  indexParam?: string | null;
  outputIndexPath?: string | null;
  saveOnDisk?: boolean;
  minNearestNeighborsToRetrieve?: number;
  maxIndexQueryTimeMs?: number;
  reporter?: BuildReporter;
}

export interface TuneIndexResult {
  /** the tuned index; the caller frees it */
  index: Index;
  /** the applied ParameterSpace string ("" = FAISS defaults) */
  param: string;
  /** the measurements, when tuned */
  tuning?: TunedParameters["result"];
  /** absolute path written, when saved */
  outputPath: string | null;
}

/** A tune_index failure the user can act on: the CLI prints its message on one line. */
export class TuneError extends Error {
  override readonly name = "TuneError";
}

/**
 * Tunes an index given by path (read here) or in memory (the caller's: tuned in place).
 * Queries are the first min(ntotal, 4000) vectors reconstructed from the index, as in Python
 * (build_index tunes on raw vectors instead; tune_index has no data).
 */
export async function tuneIndex(
  indexOrPath: string | Index,
  indexKey: string,
  options: TuneIndexOptions = {},
): Promise<TuneIndexResult> {
  const log = options.reporter ?? silentReporter;
  const saveOnDisk = options.saveOnDisk ?? TUNE_DEFAULTS.save_on_disk;
  const output = options.outputIndexPath === undefined ? TUNE_DEFAULTS.output_index_path : options.outputIndexPath;
  if (saveOnDisk && !output) throw new TuneError("output_index_path is required when save_on_disk is true");
  const where = typeof indexOrPath === "string" ? resolve(indexOrPath) : "the index";
  // A build killed while publishing into this path is finished first (lib/output/publish.ts).
  if (typeof indexOrPath === "string") recoverPublish(where);
  const index = typeof indexOrPath === "string" ? readIndex(where) : indexOrPath;
  try {
    let param = options.indexParam ?? null;
    let tuning: TunedParameters["result"];
    if (param === null) {
      const tuned = await log.timed("Compute best hyperparameters", 0, async () => {
        // Only tunable families need queries: the others keep FAISS's defaults, reconstructible or not.
        const tunable = tunableParameter(indexKey, index.ivf()?.nlist).kind === "tunable";
        const queries = tunable ? reconstructQueries(index, where) : new Float32Array(0);
        try {
          return await tuneIndexParameters(index, indexKey, queries, {
            maxQueryTimeMs: options.maxIndexQueryTimeMs ?? TUNE_DEFAULTS.max_index_query_time_ms,
            minNearestNeighbors: options.minNearestNeighborsToRetrieve ?? TUNE_DEFAULTS.min_nearest_neighbors_to_retrieve,
            info: (m) => log.info(m),
            warn: (m) => log.warning(m),
          });
        } catch (e) {
          if (e instanceof FaissError) {
            throw new TuneError(`index_key "${indexKey}" does not describe ${where} (${describe(index)}): FAISS ${e.message}`);
          }
          throw e;
        }
      });
      param = tuned.param;
      tuning = tuned.result;
    }
    await log.timed("Set search hyperparameters for the index", 0, () => {
      try {
        index.setParameters(param);
      } catch (e) {
        if (e instanceof FaissError) throw new TuneError(`index_param "${param}" cannot be applied to ${where} (${describe(index)}): ${e.message}`);
        throw e;
      }
    });
    log.info(`The optimal hyperparameters are ${param}.`);
    let outputPath: string | null = null;
    if (saveOnDisk) {
      outputPath = resolve(output!);
      index.write(outputPath);
      log.info("The index with these parameters has been saved on disk.");
    }
    return { index, param, outputPath, ...(tuning ? { tuning } : {}) };
  } catch (e) {
    if (typeof indexOrPath === "string") index.free();
    throw e;
  }
}

function readIndex(path: string): Index {
  try {
    return Index.read(path);
  } catch (e) {
    if (e instanceof FaissError) throw new TuneError(`index_path: cannot read ${path}: ${e.message}`);
    throw e;
  }
}

/**
 * The first min(ntotal, 4000) stored vectors, decoded by the index: the tuning queries Python
 * AutoFaiss uses when no query file is given. An index that cannot decode its vectors (e.g.
 * IndexIDMap) gives a FaissError: ffi/ keeps FAISS's reconstruct_n from aborting the process.
 */
function reconstructQueries(index: Index, where: string): Float32Array {
  const n = Math.min(index.ntotal, TUNING_QUERIES);
  if (n === 0) return new Float32Array(0);
  try {
    return index.reconstructN(0, n);
  } catch (e) {
    if (!(e instanceof FaissError)) throw e;
    throw new TuneError(
      `cannot reconstruct vectors from ${where} (${describe(index)}) to use as tuning queries: ${e.message}; ` +
        "pass index_param to set the search parameters without tuning",
    );
  }
}

function describe(index: Index): string {
  return index.describe() ?? `d=${index.d}, ntotal=${index.ntotal}`;
}
