/**
 * Typed wrappers over the FAISS C API: one class per native handle, each owning its pointer,
 * freed exactly once (`free()` is idempotent, `using` calls it), guarded against use after free.
 * Arrays cross the boundary as JS typed arrays referenced for the whole (synchronous) call.
 *
 * @example
 * using index = Index.factory(128, "IVF256,Flat", "ip");
 * index.train(sample);
 * index.add(vectors);
 * const { distances, labels } = index.search(queries, 10);
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import process from "node:process";
import { CAPABILITIES, type CapabilityName, warnMissingCapability } from "./capabilities.ts";
import { CODE_BAD_ARGUMENT, CODE_UNSUPPORTED, CODE_USE_AFTER_FREE, FaissError } from "./errors.ts";
import { faissLibrary } from "./library.ts";
import type { NativeFn } from "./runtime.ts";
import {
  CXX_IO_FLAG_MMAP,
  FAISS_IO_FLAG_MMAP,
  FAISS_IO_FLAG_READ_ONLY,
  METRIC_INNER_PRODUCT,
  METRIC_L2,
  type SymbolName,
} from "./symbols.ts";

/**
 * Training options of {@link Index.trainWithLevers}; each one left out keeps FAISS's default.
 * OPQ: `opqNiter` outer iterations (FAISS 50), `opqNiterPq` PQ k-means iterations per outer iteration
 * after the first (4), `opqMaxTrainPoints` (65,536). IVF coarse k-means: `ivfNiter` (25),
 * `ivfMaxPointsPerCentroid` (256). `pqNiter`: a PQ's sub-quantizer k-means iterations (25).
 * `directSubspace`: sub-quantizer k-means on sub-vectors of ≤ 8 dimensions with a direct (SIMD) loop
 * instead of BLAS. `ivfHnswAssignM`: coarse k-means assignment through an HNSW graph with M links over
 * the centroids (approximate; for large nlist); 0 or left out: FAISS's exhaustive assignment.
 */
export interface TrainingLevers {
  opqNiter?: number;
  opqNiterPq?: number;
  opqMaxTrainPoints?: number;
  ivfNiter?: number;
  ivfMaxPointsPerCentroid?: number;
  pqNiter?: number;
  directSubspace?: boolean;
  ivfHnswAssignM?: number;
}

export { FaissError } from "./errors.ts";
export { setWarningSink } from "./capabilities.ts";

export type Metric = "ip" | "l2";

export interface SearchResult {
  /** n × k distances, row-major. */
  distances: Float32Array;
  /** n × k labels (-1 where fewer than k results), row-major. */
  labels: BigInt64Array;
  k: number;
}

const encoder = new TextEncoder();
const cstr = (s: string): Uint8Array => encoder.encode(`${s}\0`);

/** A JS string as a C string; an embedded NUL would silently cut it short in C, so it is refused. */
function cstrArg(callName: string, what: string, s: string): Uint8Array {
  if (typeof s !== "string") throw badArgument(callName, `${what} must be a string, got ${typeof s}`);
  if (s.includes("\0")) throw badArgument(callName, `${what} contains a NUL character: ${JSON.stringify(s)}`);
  return cstr(s);
}

function fn(name: SymbolName): NativeFn {
  const f = faissLibrary().fns[name];
  if (!f) {
    throw new FaissError(name, CODE_UNSUPPORTED, `the loaded library (${faissLibrary().path}) lacks ${name}`);
  }
  return f;
}

/** True when the loaded library exports `name` (autofaiss_* extensions are optional). */
export function hasSymbol(name: SymbolName): boolean {
  return faissLibrary().fns[name] !== undefined;
}

/** The extension ABI (autofaiss_ext.h AUTOFAISS_EXT_ABI) from which the library guards the FAISS calls
 *  that throw inside OpenMP regions (reconstruct_n, changes to read-only inverted lists). */
const GUARDED_ABI = 2;

/** The extension ABI from which autofaiss_job_train takes the training levers (ABI 5 builds, never
 *  released, had a shorter signature under the same name: calling one with ABI 7's arguments would
 *  read garbage). */
const JOBS_ABI = 7;

function missingFor(name: CapabilityName): string[] {
  if (name === "openmpGuards" || name === "progressJobs") {
    const needed = name === "openmpGuards" ? GUARDED_ABI : JOBS_ABI;
    const symbols = CAPABILITIES[name].symbols.filter((s) => !hasSymbol(s));
    if (symbols.length > 0) return symbols;
    const info = buildInfo();
    if (info === null) return ["autofaiss_build_info"];
    return info.extAbi >= needed ? [] : [`extension ABI ${needed} (it has ${info.extAbi})`];
  }
  return CAPABILITIES[name].symbols.filter((s) => !hasSymbol(s));
}

/** True when the loaded library provides capability `name` (ffi/capabilities.ts); no warning. */
export function hasCapability(name: CapabilityName): boolean {
  return missingFor(name).length === 0;
}

/** Like hasCapability, but a missing capability is reported (once per process) before the fallback runs. */
function capable(name: CapabilityName): boolean {
  const missing = missingFor(name);
  if (missing.length === 0) return true;
  warnMissingCapability(name, faissLibrary().path, missing);
  return false;
}

/**
 * True when the loaded library can train a pre-transform's rotation apart from its sub-index
 * ({@link Index.trainTransformsWithProgress}); says once that it cannot otherwise, so a caller can
 * ask before reading a sample it would not use.
 */
export function canTrainTransformsApart(): boolean {
  return capable("transformTraining");
}

/**
 * True when the loaded library can copy trained transforms into another index
 * ({@link Index.copyTransformsFrom}); says once that it cannot otherwise, so a caller can ask before
 * training a rotation it could not hand on.
 */
export function canShareTransforms(): boolean {
  return capable("sharedTransforms");
}

/** Calls a status-returning C function; a non-zero status becomes a FaissError with FAISS's message. */
function call(name: SymbolName, ...args: unknown[]): void {
  callAs(name, name, ...args);
}

/** `call(symbol, …)` whose error is named `name`: an extension that stands in for a FAISS call
 *  (autofaiss_add for faiss_Index_add) fails under the name the caller knows. */
function callAs(name: string, symbol: SymbolName, ...args: unknown[]): void {
  const rc = fn(symbol)(...args) as number;
  if (rc !== 0) {
    // Read the message now: the next failing call on this thread replaces it.
    const message = (fn("faiss_get_last_error")() as string | null) ?? "unknown error";
    throw new FaissError(name, rc, message);
  }
}

/** Calls a C function with a `T** p_out` argument (placed by `args`) and returns the pointer. */
function outPointer(name: SymbolName, args: (out: BigUint64Array) => unknown[]): bigint {
  const out = new BigUint64Array(1);
  call(name, ...args(out));
  if (out[0] === 0n) throw new FaissError(name, CODE_UNSUPPORTED, "returned a null pointer");
  return out[0];
}

function badArgument(callName: string, message: string): FaissError {
  return new FaissError(callName, CODE_BAD_ARGUMENT, message);
}

/** Rows in `x` for dimension d, or a clear error when its length is not a multiple of d. */
function rowsOf(callName: string, x: Float32Array, d: number): number {
  if (!(x instanceof Float32Array)) throw badArgument(callName, "vectors must be a Float32Array");
  if (x.length % d !== 0) {
    throw badArgument(callName, `vectors have length ${x.length}, not a multiple of the index dimension ${d}`);
  }
  return x.length / d;
}

/**
 * Native version and compile options, when the library provides them (our build does). Asked of the
 * library on each call rather than cached in this module (no module state outside ffi/library.ts):
 * one short native call (it copies a short string), made by --version and once per reconstructN
 * call or change to a memory-mapped index, never per vector.
 */
export function buildInfo(): { faissVersion: string; compileOptions: string; extAbi: number } | null {
  if (!hasSymbol("autofaiss_build_info")) return null;
  const buf = new Uint8Array(4096);
  const abi = new Int32Array(1);
  call("autofaiss_build_info", buf, buf.length, abi);
  const text = new TextDecoder().decode(buf.subarray(0, buf.indexOf(0)));
  const [faissVersion, compileOptions = ""] = text.split("|");
  return { faissVersion, compileOptions: compileOptions.trim(), extAbi: abi[0] };
}

/**
 * OpenMP threads for FAISS (0: every core). Returns false, after a once-per-process warning, when
 * the library cannot set them (callers that were given an explicit count must fail instead:
 * check `hasCapability("threads")` first).
 */
export function setNumThreads(n: number): boolean {
  if (!Number.isInteger(n) || n < 0) {
    throw badArgument("autofaiss_set_num_threads", `threads must be an integer >= 0 (0: every core), got ${n}`);
  }
  if (!capable("threads")) return false;
  call("autofaiss_set_num_threads", n);
  return true;
}

export function numThreads(): number | null {
  if (!hasSymbol("autofaiss_get_num_threads")) return null;
  const out = new Int32Array(1);
  call("autofaiss_get_num_threads", out);
  return out[0];
}

/**
 * Runs `fn` with FAISS on `n` OpenMP threads, then restores the previous count. Without thread
 * control in the library, `fn` runs on the current threads after a once-per-process warning.
 */
export function withNumThreads<T>(n: number, fn: () => T): T {
  if (!Number.isInteger(n) || n < 1) throw badArgument("autofaiss_set_num_threads", `threads must be an integer >= 1, got ${n}`);
  if (!capable("oneThreadLatency")) return fn();
  const previous = numThreads()!;
  if (previous === n) return fn();
  setNumThreads(n);
  try {
    return fn();
  } finally {
    setNumThreads(previous);
  }
}

/**
 * The library's SIMD NaN/Inf scan (`autofaiss_first_nonfinite`) as `(v, from, to) => index | -1`,
 * or undefined when the loaded library lacks it (upstream builds). The readers use it through
 * lib/io/float.ts `useNonFiniteScan`: a JavaScript loop costs about as much as reading the data.
 */
export function nativeNonFiniteScan(): ((v: Float32Array, from: number, to: number) => number) | undefined {
  if (!capable("nonFiniteScan")) return undefined;
  const scan = fn("autofaiss_first_nonfinite");
  const at = new BigInt64Array(1);
  return (v, from, to) => {
    if (to <= from) return -1;
    // the view keeps `v`'s memory reachable for the whole (synchronous) call
    const view = v.subarray(from, to);
    const rc = scan(view, view.length, at) as number;
    if (rc !== 0) throw new FaissError("autofaiss_first_nonfinite", rc, "scan failed");
    return at[0] < 0n ? -1 : from + Number(at[0]);
  };
}

// ---- progress jobs (issue 12) ----

/** What a native job is doing (autofaiss_ext.h, AUTOFAISS_JOB_*). */
export type JobPhase = "train" | "opq" | "ivf-kmeans" | "pq-kmeans" | "add";
const JOB_PHASES: readonly JobPhase[] = ["train", "train", "opq", "ivf-kmeans", "pq-kmeans", "add"];

/** One poll of a native job: `done` of `total` steps of `phase` (k-means iterations, or vectors for "add"). */
export interface JobStatus {
  phase: JobPhase;
  done: number;
  /** 0: unknown (a training step without finer progress). */
  total: number;
  /** Mean distance of the training vectors to their centroid at the last k-means iteration (OPQ: the PQ's mean squared error after the last outer iteration); null before the first. */
  objective: number | null;
  /** OPQ outer iterations done / planned (0 / 0 otherwise). */
  outer: number;
  outerTotal: number;
  finished: boolean;
  /** The job no longer reads its input (ext ABI ≥ 8, training through a pre-transform): the caller
   *  may free it. Always false with an older library. */
  inputReleased: boolean;
  /** Steps counted in each phase over the whole job (never reset): a phase that ended between two
   *  polls still shows its final count here. */
  phaseCounts: Record<Exclude<JobPhase, "train">, number>;
}

/** AUTOFAISS_JOB_STATUS_LEN (an ABI 7 library fills the first 12 and leaves the 13th at 0). */
const JOB_STATUS_LEN = 13;
/**
 * Longest time between two status reads of a native job (ms): progress is redrawn at least this
 * often. The JS thread spends it inside autofaiss_job_wait, which returns as soon as the job ends,
 * then lets the event loop run before the next slice; a library without that call (ABI < 9) is
 * polled between async sleeps instead, and its end is seen up to this late.
 */
export const JOB_POLL_MS = 250;

function jobStatus(b: Float64Array): JobStatus {
  return {
    finished: b[0] === 1,
    inputReleased: b[12] === 1,
    phase: JOB_PHASES[b[1]] ?? "train",
    done: b[2],
    total: b[3],
    objective: Number.isNaN(b[4]) ? null : b[4],
    outer: b[5],
    outerTotal: b[6],
    phaseCounts: { "opq": b[8], "ivf-kmeans": b[9], "pq-kmeans": b[10], "add": b[11] },
  };
}

/**
 * A typed array whose bytes cannot move while a native thread reads them: V8 (Deno) keeps small
 * typed arrays inside its moving heap, so those are copied into an ArrayBuffer of their own.
 */
function offHeap<T extends Float32Array | BigInt64Array>(a: T): T {
  if (a.byteLength > 4096) return a;
  const copy = new (a.constructor as new (b: ArrayBuffer) => T)(new ArrayBuffer(a.byteLength));
  (copy as unknown as { set(x: T): void }).set(a);
  return copy;
}

/** autofaiss_job_train_ex's flags (autofaiss_ext.h). */
const TRAIN_TRANSFORMS_ONLY = 1;
const TRAIN_DISCARD_INPUT = 2;

/** The lever arguments of autofaiss_train_with_levers / autofaiss_job_train, in their C order
 *  (opq_niter … ivf_hnsw_assign_m); -1 keeps FAISS's default. */
function leverArguments(callName: string, levers: TrainingLevers): number[] {
  const opt = (v: number | undefined, name: string): number => {
    if (v === undefined) return -1;
    if (!Number.isInteger(v) || v < 0) throw badArgument(callName, `${name} must be an integer ≥ 0, got ${v}`);
    return v;
  };
  return [
    opt(levers.opqNiter, "opqNiter"), opt(levers.opqNiterPq, "opqNiterPq"), opt(levers.opqMaxTrainPoints, "opqMaxTrainPoints"),
    opt(levers.ivfNiter, "ivfNiter"), opt(levers.ivfMaxPointsPerCentroid, "ivfMaxPointsPerCentroid"), opt(levers.pqNiter, "pqNiter"),
    levers.directSubspace ? 1 : 0, Math.max(0, opt(levers.ivfHnswAssignM, "ivfHnswAssignM")),
  ];
}

/** The `applied` bit mask of the lever calls: 1 an OPQ matrix, 2 an IVF, 4 a PQ. */
function appliedLevers(mask: number): { opq: boolean; ivf: boolean; pq: boolean } {
  return { opq: (mask & 1) !== 0, ivf: (mask & 2) !== 0, pq: (mask & 4) !== 0 };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Starts a native job, reads its status until it finishes (passing each to `onStatus`), and joins
 * it exactly once: also when `onStatus` throws, after the native work ends (the job's buffers are
 * referenced by the caller's closure until this returns). A failure of the work becomes a
 * FaissError named `callName` with FAISS's message, as the synchronous call would give.
 * Between two reads the JS thread waits in autofaiss_job_wait (slices growing from 1 ms to
 * `pollMs`, so a short job gets its first status at once), which wakes at the job's end: polling
 * every 250 ms instead added 125 ms on average to every job (a 0.38 s IVF training took 0.51 s).
 */
async function runJob(
  callName: string,
  startArgs: (out: BigUint64Array) => unknown[],
  start: SymbolName,
  onStatus: ((s: JobStatus) => void) | undefined,
  pollMs = JOB_POLL_MS,
  onInputReleased?: () => void,
): Promise<void> {
  const job = outPointer(start, startArgs);
  const buf = new Float64Array(JOB_STATUS_LEN);
  const waits = hasSymbol("autofaiss_job_wait");
  const finished = new Int32Array(1);
  let failure: { error: unknown } | null = null;
  let released = false;
  try {
    for (let wait = 1;; wait = Math.min(pollMs, wait * 2)) {
      call("autofaiss_job_status", job, buf, JOB_STATUS_LEN);
      const status = jobStatus(buf);
      if (status.inputReleased && !released) {
        released = true;
        onInputReleased?.();
      }
      onStatus?.(status);
      if (status.finished) break;
      if (waits) {
        // blocks this thread for at most `wait` ms, then the event loop gets its turn
        call("autofaiss_job_wait", job, wait, finished);
        await sleep(0);
      } else await sleep(wait);
    }
  } catch (e) {
    failure = { error: e };
  }
  const rc = fn("autofaiss_job_join")(job) as number;
  if (failure) throw failure.error;
  if (rc !== 0) {
    const message = (fn("faiss_get_last_error")() as string | null) ?? "unknown error";
    throw new FaissError(callName, rc, message);
  }
}

// Safety net only: a wrapper that is garbage-collected without free() releases its handle here.
// `parent` (the GpuResources of a GPU index) is held by the registry until the child's handle is
// freed, so a parent is never collected, hence never freed, before its child.
const leaked = new FinalizationRegistry<{ ptr: bigint; free: SymbolName; parent?: GpuResources }>(({ ptr, free, parent }) => {
  fn(free)(ptr);
  parent?._release();
});

abstract class Handle {
  #ptr: bigint;
  /** Set while a native job (train/add on its own thread) uses the handle: any other use is refused. */
  #busyWith: string | null = null;
  readonly #freeFn: SymbolName;
  protected abstract readonly kind: string;

  protected constructor(ptr: bigint, freeFn: SymbolName, parent?: GpuResources) {
    this.#ptr = ptr;
    this.#freeFn = freeFn;
    leaked.register(this, { ptr, free: freeFn, ...(parent ? { parent } : {}) }, this);
  }

  /** The native address; throws once freed. */
  protected ptr(callName: string): bigint {
    if (this.#ptr === 0n) throw new FaissError(callName, CODE_USE_AFTER_FREE, `this ${this.kind} has been freed`);
    if (this.#busyWith !== null) throw badArgument(callName, `this ${this.kind} is busy: ${this.#busyWith} is running on it`);
    return this.#ptr;
  }

  /** Runs `fn` with the handle marked busy (other calls are refused until it settles); `fn` gets the pointer. */
  protected async whileBusy<T>(callName: string, fn: (ptr: bigint) => Promise<T>): Promise<T> {
    const p = this.ptr(callName);
    this.#busyWith = callName;
    try {
      return await fn(p);
    } finally {
      this.#busyWith = null;
    }
  }

  get freed(): boolean {
    return this.#ptr === 0n;
  }

  /** Releases the native object; later calls are no-ops. */
  free(): void {
    if (this.#ptr === 0n) return;
    // freeing under a running native thread would crash the process
    if (this.#busyWith !== null) throw badArgument("free", `this ${this.kind} is busy: ${this.#busyWith} is running on it`);
    const p = this.#ptr;
    this.#ptr = 0n;
    leaked.unregister(this);
    fn(this.#freeFn)(p);
    this.afterFree();
  }

  /** Runs once, right after the native object is freed (a child releases its parent here). */
  protected afterFree(): void {}

  [Symbol.dispose](): void {
    this.free();
  }
}

/** A FAISS index (FaissIndex*). */
export class Index extends Handle {
  protected readonly kind = "index";
  /** Set for a GPU index: the resources it runs on, kept alive until this index is freed. */
  #gpuResources: GpuResources | undefined;
  /** Read with mmap: its IVF inverted lists (if any) are read-only files. */
  #mapped = false;

  private constructor(ptr: bigint, gpuResources?: GpuResources) {
    super(ptr, "faiss_Index_free", gpuResources);
    this.#gpuResources = gpuResources;
  }

  protected override afterFree(): void {
    const res = this.#gpuResources;
    this.#gpuResources = undefined;
    res?._release();
  }

  /** `faiss_index_factory`: e.g. `Index.factory(128, "OPQ16_64,IVF1024_HNSW32,PQ16x4fs", "ip")`. */
  static factory(d: number, key: string, metric: Metric = "ip"): Index {
    if (!Number.isInteger(d) || d <= 0) throw badArgument("faiss_index_factory", `dimension must be a positive integer, got ${d}`);
    const m = metric === "ip" ? METRIC_INNER_PRODUCT : metric === "l2" ? METRIC_L2 : undefined;
    if (m === undefined) throw badArgument("faiss_index_factory", `metric must be "ip" or "l2", got "${metric}"`);
    const description = cstrArg("faiss_index_factory", "index key", key);
    if (key.trim() === "") throw badArgument("faiss_index_factory", "index key is empty");
    return new Index(outPointer("faiss_index_factory", (out) => [out, d, description, m])).withFastScanHeap(/x4fs/.test(key));
  }

  /**
   * Reads an index file; `mmap` keeps IVF inverted lists on disk (read-only): FAISS then holds them
   * as OnDiskInvertedLists mapping the file (`invertedListsClass()` proves it), and calls that would
   * change them (add, reset, merge) are errors.
   */
  static read(path: string, opts: { mmap?: boolean } = {}): Index {
    const flags = opts.mmap ? FAISS_IO_FLAG_MMAP | FAISS_IO_FLAG_READ_ONLY | CXX_IO_FLAG_MMAP : 0;
    const name = cstrArg("faiss_read_index_fname", "path", resolve(path));
    const index = new Index(outPointer("faiss_read_index_fname", (out) => [name, flags, out]));
    index.#mapped = opts.mmap === true;
    return index.withFastScanHeap(false);
  }

  /** Deserializes an index from bytes produced by `toBytes()` or a FAISS index file. */
  static fromBytes(bytes: Uint8Array): Index {
    if (capable("indexBuffers")) {
      return new Index(outPointer("autofaiss_read_index_buffer", (out) => [bytes, bytes.byteLength, 0, out])).withFastScanHeap(false);
    }
    return withTempFile((tmp) => {
      writeFileSync(tmp, bytes);
      return Index.read(tmp);
    });
  }

  /**
   * Every index this module creates or reads passes here: its fast-scan parts (`PQ<m>x4fs`,
   * `IVF<c>,PQ<m>x4fs`, under transforms and refinement) keep their top k in a heap, because the
   * reservoir FAISS 1.7.3 picks for k > 20 aborts the process (partitioning.cpp
   * `assert(n_eq == 0)`) when many quantized distances tie (native/autofaiss_ext.h). The choice is
   * stored by write(). A library without the extension changes nothing; that is warned once when
   * a factory key asks for fast-scan codes (`warn`: an index read from a file has no key to look at).
   */
  private withFastScanHeap(warn: boolean): Index {
    if (!(warn ? capable("fastScanHeap") : hasSymbol("autofaiss_fast_scan_use_heap"))) return this;
    try {
      call("autofaiss_fast_scan_use_heap", this.ptr("autofaiss_fast_scan_use_heap"), new Int32Array(1));
    } catch (e) {
      this.free();
      throw e;
    }
    return this;
  }

  get d(): number {
    return fn("faiss_Index_d")(this.ptr("faiss_Index_d")) as number;
  }

  get ntotal(): number {
    return fn("faiss_Index_ntotal")(this.ptr("faiss_Index_ntotal")) as number;
  }

  get isTrained(): boolean {
    return (fn("faiss_Index_is_trained")(this.ptr("faiss_Index_is_trained")) as number) !== 0;
  }

  get metric(): Metric {
    const m = fn("faiss_Index_metric_type")(this.ptr("faiss_Index_metric_type")) as number;
    return m === METRIC_INNER_PRODUCT ? "ip" : "l2";
  }

  set verbose(on: boolean) {
    fn("faiss_Index_set_verbose")(this.ptr("faiss_Index_set_verbose"), on ? 1 : 0);
  }

  /**
   * FAISS modifies inverted lists inside OpenMP regions, where the exception a read-only list throws
   * aborts the process. Our library refuses such calls itself (extension ABI 2); with another
   * library, any change to an index read with mmap is refused here.
   */
  /** @internal also used by IvfView.mergeFrom. */
  _assertMutable(callName: string): void {
    if (this.#mapped && !capable("openmpGuards")) {
      throw badArgument(callName, "the index was read with mmap, so its inverted lists may be read-only; read it without mmap to modify it");
    }
  }

  train(x: Float32Array): void {
    const p = this.ptr("faiss_Index_train");
    call("faiss_Index_train", p, rowsOf("faiss_Index_train", x, this.d), x);
  }

  /**
   * Trains like {@link train} after applying `levers` to every OPQ matrix, IVF and PQ the index nests
   * (an option left out keeps FAISS's default). Returns what the index holds (`opq`, `ivf`, `pq`), or
   * null when the library lacks the extension: then it trains with FAISS's defaults (announced once).
   *
   * @example index.trainWithLevers(sample, { opqNiter: 10, directSubspace: true })
   */
  trainWithLevers(x: Float32Array, levers: TrainingLevers): { opq: boolean; ivf: boolean; pq: boolean } | null {
    if (!capable("trainingLevers")) {
      this.train(x);
      return null;
    }
    const p = this.ptr("autofaiss_train_with_levers");
    const n = rowsOf("autofaiss_train_with_levers", x, this.d);
    const applied = new Int32Array(1);
    call("autofaiss_train_with_levers", p, n, x, ...leverArguments("autofaiss_train_with_levers", levers), applied);
    return appliedLevers(applied[0]);
  }

  /**
   * Adds vectors (ids continue from ntotal). With `batchRows`, adds in slices of that many rows
   * and reports progress after each, so long adds can show progress despite synchronous FFI.
   */
  add(x: Float32Array, opts: { batchRows?: number; onProgress?: (added: number, total: number) => void } = {}): void {
    const p = this.ptr("faiss_Index_add");
    this._assertMutable("faiss_Index_add");
    const d = this.d;
    const n = rowsOf("faiss_Index_add", x, d);
    const step = opts.batchRows && opts.batchRows > 0 ? opts.batchRows : n;
    // autofaiss_add encodes IVF-PQ sub-vectors of ≤ 8 dimensions with the direct loop (native/README.md)
    const direct = capable("directEncoding");
    for (let i = 0; i < n; i += step) {
      const rows = Math.min(step, n - i);
      const slice = x.subarray(i * d, (i + rows) * d);
      if (direct) callAs("faiss_Index_add", "autofaiss_add", p, rows, slice, null);
      else call("faiss_Index_add", p, rows, slice);
      opts.onProgress?.(i + rows, n);
    }
  }

  addWithIds(x: Float32Array, ids: BigInt64Array): void {
    const p = this.ptr("faiss_Index_add_with_ids");
    this._assertMutable("faiss_Index_add_with_ids");
    const n = rowsOf("faiss_Index_add_with_ids", x, this.d);
    if (ids.length !== n) throw badArgument("faiss_Index_add_with_ids", `${ids.length} ids for ${n} vectors`);
    if (capable("directEncoding")) callAs("faiss_Index_add_with_ids", "autofaiss_add", p, n, x, ids);
    else call("faiss_Index_add_with_ids", p, n, x, ids);
  }

  // ---- progress jobs (issue 12): train / add on a native thread, watched from here ----

  /**
   * `trainWithLevers(x, levers)` (`train(x)` when `levers` is empty), reporting progress from
   * inside FAISS: the work runs on a native thread (`autofaiss_job_train`) while this function reads
   * its status between waits for the job's end (first 1 ms, doubling up to `pollMs`; runJob) and
   * passes it to `onStatus`. The trained index is the same as the blocking call gives. The index is busy (other
   * calls refused) until the promise settles; `x` is referenced until the native thread has
   * finished, also when `onStatus` throws, or until the job says it no longer reads it: then
   * `opts.onInputReleased` is called once, while training goes on, and may free `x` (an index with a
   * pre-transform such as OPQ trains its sub-index on the transformed copy). With
   * `opts.discardInput` the caller gives up x's contents (they read as zeros afterwards): the first
   * transform consumes x page by page, so x and its transformed copy are never in memory together
   * (a library without autofaiss_job_train_ex says so once and leaves x alone). Without the extension
   * (upstream libfaiss_c.so) it says so once and runs the blocking call without status. Returns what
   * `trainWithLevers` returns.
   *
   * @example await index.trainWithProgress(sample, { opqNiter: 10, directSubspace: true }, (s) => console.log(s.phase, s.done, s.total))
   */
  async trainWithProgress(
    x: Float32Array,
    levers: TrainingLevers = {},
    onStatus?: (s: JobStatus) => void,
    opts: { pollMs?: number; onInputReleased?: () => void; discardInput?: boolean } = {},
  ): Promise<{ opq: boolean; ivf: boolean; pq: boolean } | null> {
    const n = rowsOf("faiss_Index_train", x, this.d);
    if (!capable("progressJobs")) {
      // no lever asked for: plain training, without a warning about levers nobody wanted
      if (Object.keys(levers).length > 0) return this.trainWithLevers(x, levers);
      this.train(x);
      return null;
    }
    const discard = opts.discardInput === true && canTrainTransformsApart();
    return await this.#trainJob("faiss_Index_train", x, n, levers, discard ? TRAIN_DISCARD_INPUT : 0, onStatus, opts);
  }

  /**
   * Trains only the untrained transforms of a pre-transformed index (OPQ, PCA, …) on `x`, with the
   * levers and progress of {@link trainWithProgress}; the sub-index stays untrained, for a later
   * `trainWithProgress` on other vectors (`autofaiss_job_train_ex`). Lets an OPQ rotation train on a
   * sample of its own, read before the sub-index's larger sample. Returns false, after saying once
   * that the capability is missing, when the library cannot (the caller then trains everything in
   * one call); throws for an index without pre-transform.
   *
   * @example if (await index.trainTransformsWithProgress(rotationSample, { opqNiter: 25 })) await index.trainWithProgress(sample, levers)
   */
  async trainTransformsWithProgress(
    x: Float32Array,
    levers: TrainingLevers = {},
    onStatus?: (s: JobStatus) => void,
    opts: { pollMs?: number } = {},
  ): Promise<boolean> {
    const n = rowsOf("autofaiss_job_train_ex", x, this.d);
    if (!canTrainTransformsApart()) return false;
    await this.#trainJob("autofaiss_job_train_ex", x, n, levers, TRAIN_TRANSFORMS_ONLY, onStatus, opts);
    return true;
  }

  /** A training job (autofaiss_job_train, or autofaiss_job_train_ex when `flags` ≠ 0) run to its end. */
  async #trainJob(
    callName: string,
    x: Float32Array,
    n: number,
    levers: TrainingLevers,
    flags: number,
    onStatus: ((s: JobStatus) => void) | undefined,
    opts: { pollMs?: number; onInputReleased?: () => void },
  ): Promise<{ opq: boolean; ivf: boolean; pq: boolean }> {
    const start: SymbolName = flags === 0 ? "autofaiss_job_train" : "autofaiss_job_train_ex";
    const args = [...leverArguments(start, levers), ...(flags === 0 ? [] : [flags])];
    const applied = new Int32Array(1);
    const data = offHeap(x);
    await this.whileBusy(callName, (p) =>
      runJob(callName, (out) => [p, n, data, ...args, applied, out], start, onStatus, opts.pollMs, opts.onInputReleased));
    return appliedLevers(applied[0]);
  }

  /**
   * `add(x)` (or `addWithIds(x, ids)`), with `onProgress(added, total)` called as FAISS adds: a
   * native thread adds calls of at most `batchRows` rows, cut further into `progressRows` for
   * progress (an index holding NSG gets one call: NSG refuses a second). Polled as
   * {@link trainWithProgress}. Without the extension, it says so once and adds `batchRows` per
   * call, reporting after each (as `add` does).
   */
  async addWithProgress(
    x: Float32Array,
    opts: { ids?: BigInt64Array; batchRows?: number; progressRows?: number; onProgress?: (added: number, total: number) => void; pollMs?: number } = {},
  ): Promise<void> {
    const callName = opts.ids ? "faiss_Index_add_with_ids" : "faiss_Index_add";
    this._assertMutable(callName);
    const n = rowsOf(callName, x, this.d);
    if (opts.ids && opts.ids.length !== n) throw badArgument(callName, `${opts.ids.length} ids for ${n} vectors`);
    const batch = opts.batchRows && opts.batchRows > 0 ? opts.batchRows : n;
    if (!capable("progressJobs")) {
      if (opts.ids) {
        for (let i = 0; i < n; i += batch) {
          const rows = Math.min(batch, n - i);
          this.addWithIds(x.subarray(i * this.d, (i + rows) * this.d), opts.ids.subarray(i, i + rows));
          opts.onProgress?.(i + rows, n);
        }
      } else this.add(x, { batchRows: batch, onProgress: opts.onProgress });
      return;
    }
    const chunk = Math.max(1, Math.min(batch, opts.progressRows && opts.progressRows > 0 ? opts.progressRows : batch));
    const data = offHeap(x);
    const ids = opts.ids ? offHeap(opts.ids) : null;
    const onStatus = opts.onProgress ? (s: JobStatus) => opts.onProgress!(s.done, n) : undefined;
    await this.whileBusy(callName, (p) =>
      runJob(callName, (out) => [p, n, data, ids, chunk, out], "autofaiss_job_add", onStatus, opts.pollMs));
  }

  search(queries: Float32Array, k: number): SearchResult {
    const p = this.ptr("faiss_Index_search");
    const n = rowsOf("faiss_Index_search", queries, this.d);
    if (!Number.isInteger(k) || k <= 0) throw badArgument("faiss_Index_search", `k must be a positive integer, got ${k}`);
    const distances = new Float32Array(n * k);
    const labels = new BigInt64Array(n * k);
    call("faiss_Index_search", p, n, queries, k, distances, labels);
    return { distances, labels, k };
  }

  /**
   * Searches into caller-owned result arrays (no allocation): the timing loops of tuning and
   * fast metrics run thousands of single-query searches.
   */
  searchInto(queries: Float32Array, k: number, distances: Float32Array, labels: BigInt64Array): void {
    const p = this.ptr("faiss_Index_search");
    const n = rowsOf("faiss_Index_search", queries, this.d);
    if (distances.length < n * k || labels.length < n * k) {
      throw badArgument("faiss_Index_search", `result arrays hold ${Math.min(distances.length, labels.length)} entries, need ${n * k}`);
    }
    call("faiss_Index_search", p, n, queries, k, distances, labels);
  }

  reset(): void {
    const p = this.ptr("faiss_Index_reset");
    this._assertMutable("faiss_Index_reset");
    call("faiss_Index_reset", p);
  }

  reconstruct(key: number): Float32Array {
    const p = this.ptr("faiss_Index_reconstruct");
    const out = new Float32Array(this.d);
    this.checkRange("faiss_Index_reconstruct", key, 1);
    call("faiss_Index_reconstruct", p, key, out);
    return out;
  }

  /**
   * Vectors i0 … i0+n-1 as the index stores them. FAISS 1.7.3's default reconstruct_n calls
   * reconstruct inside an OpenMP loop, where a failure (e.g. IndexIDMap: "reconstruct not
   * implemented") aborts the process; our library runs that loop itself and returns the error.
   * With a library without that guard, one reconstruct(i0) is tried first, and an index whose
   * reconstruct fails is refused unless it is a plain IVF index (IVF reconstruct_n walks the lists
   * serially and needs no direct map).
   */
  reconstructN(i0: number, n: number): Float32Array {
    const p = this.ptr("faiss_Index_reconstruct_n");
    this.checkRange("faiss_Index_reconstruct_n", i0, n);
    if (n > 0 && !capable("openmpGuards")) {
      try {
        call("faiss_Index_reconstruct", p, i0, new Float32Array(this.d));
      } catch (e) {
        if (!(e instanceof FaissError)) throw e;
        if ((fn("faiss_IndexIVF_cast")(p) as bigint) === 0n) throw new FaissError("faiss_Index_reconstruct_n", e.code, e.faissMessage);
      }
    }
    const out = new Float32Array(n * this.d);
    call("faiss_Index_reconstruct_n", p, i0, n, out);
    return out;
  }

  /** Bytes per vector of the standalone codec (`sa_encode`). */
  saCodeSize(): number {
    const out = new BigUint64Array(1);
    call("faiss_Index_sa_code_size", this.ptr("faiss_Index_sa_code_size"), out);
    return Number(out[0]);
  }

  /** `sa_decode(sa_encode(x))`: what the index stores for x. */
  saRoundTrip(x: Float32Array): Float32Array {
    const p = this.ptr("faiss_Index_sa_encode");
    const n = rowsOf("faiss_Index_sa_encode", x, this.d);
    const codes = new Uint8Array(n * this.saCodeSize());
    call("faiss_Index_sa_encode", p, n, x, codes);
    const out = new Float32Array(x.length);
    call("faiss_Index_sa_decode", p, n, codes, out);
    return out;
  }

  clone(): Index {
    return new Index(outPointer("faiss_clone_index", (out) => [this.ptr("faiss_clone_index"), out]));
  }

  /**
   * Replaces this pre-transformed index's transforms (OPQ, PCA, …) by copies of the trained ones of
   * `trained`, which must have the same transforms, classes and dimensions; this index must hold no
   * vectors. Training this index then trains only its sub-index. Returns false, after saying once
   * that the capability is missing, when the library cannot (the caller trains the transforms itself).
   *
   * @example if (!index.copyTransformsFrom(rotation)) await index.trainTransformsWithProgress(sample)
   */
  copyTransformsFrom(trained: Index): boolean {
    this._assertMutable("autofaiss_copy_transforms");
    if (!capable("sharedTransforms")) return false;
    call("autofaiss_copy_transforms", this.ptr("autofaiss_copy_transforms"), trained.ptr("autofaiss_copy_transforms"));
    return true;
  }

  /**
   * Moves every vector of `other` into this index, keeping their ids (FAISS `ivflib::merge_into`):
   * both are IVF indices (through pre-transforms) cloned from one trained index. `other` is left
   * empty; this index must be in memory (not a memory-mapped read).
   */
  mergeFrom(other: Index): void {
    call("autofaiss_merge_into", this.ptr("autofaiss_merge_into"), other.ptr("autofaiss_merge_into"));
  }

  /**
   * A copy of this index on GPU `device` (upstream GPU builds only). The copy keeps `res` alive:
   * `res.free()` before the copy is freed only takes effect when the copy is freed.
   */
  toGpu(res: GpuResources, device = 0): Index {
    const p = this.ptr("faiss_index_cpu_to_gpu");
    if (!Number.isInteger(device) || device < 0) {
      throw badArgument("faiss_index_cpu_to_gpu", `device must be an integer >= 0, got ${device}`);
    }
    if (!(res instanceof GpuResources)) throw badArgument("faiss_index_cpu_to_gpu", "resources must be a GpuResources");
    const gpu = outPointer("faiss_index_cpu_to_gpu", (out) => [res._ptr("faiss_index_cpu_to_gpu"), device, p, out]);
    res._acquire();
    return new Index(gpu, res);
  }

  /** A CPU copy of this GPU index, which CPU search and `write` need (Python forgets this step). */
  toCpu(): Index {
    return new Index(outPointer("faiss_index_gpu_to_cpu", (out) => [this.ptr("faiss_index_gpu_to_cpu"), out]));
  }

  /**
   * Switches polysemous training of an (IVF)PQ index on or off before train(). Returns false when
   * the index has no such step or the library cannot change it (upstream libfaiss_c.so).
   */
  setPolysemousTraining(enabled: boolean): boolean {
    const p = this.ptr("autofaiss_set_polysemous_training");
    if (!capable("polysemous")) return false;
    const applied = new Int32Array(1);
    call("autofaiss_set_polysemous_training", p, enabled ? 1 : 0, applied);
    return applied[0] === 1;
  }

  /**
   * Applies a ParameterSpace string such as "nprobe=16,efSearch=32,ht=2048" (checked by
   * `parseParameters` first; FAISS names the parameters an index does not have).
   */
  setParameters(params: string): void {
    if (parseParameters("faiss_ParameterSpace_set_index_parameters", params).length === 0) return;
    using space = new ParameterSpace();
    space.setIndexParameters(this, params);
  }

  /** Writes the index to `path` atomically (temporary name, then rename); creates parent folders. */
  write(path: string): void {
    const p = this.ptr("faiss_write_index_fname");
    const target = resolve(path);
    cstrArg("faiss_write_index_fname", "path", target);
    mkdirSync(dirname(target), { recursive: true });
    const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);
    try {
      call("faiss_write_index_fname", p, cstr(tmp));
      renameSync(tmp, target);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  }

  /** The size in bytes of the serialized index (what `write` would produce). */
  serializedSize(): number {
    const p = this.ptr("autofaiss_serialized_size");
    if (capable("serializedSize")) {
      const out = new BigUint64Array(1);
      call("autofaiss_serialized_size", p, out);
      return Number(out[0]);
    }
    return withTempFile((tmp) => {
      this.write(tmp);
      return statSync(tmp).size;
    });
  }

  toBytes(): Uint8Array {
    const p = this.ptr("autofaiss_write_index_buffer");
    if (capable("indexBuffers")) {
      const buf = new Uint8Array(this.serializedSize());
      const written = new BigUint64Array(1);
      call("autofaiss_write_index_buffer", p, buf, buf.byteLength, written);
      return buf.subarray(0, Number(written[0]));
    }
    return withTempFile((tmp) => {
      this.write(tmp);
      return new Uint8Array(readFileSync(tmp));
    });
  }

  /** The IVF layer (through OPQ/pre-transforms), or null for non-IVF indices. Borrowed: valid while this index lives. */
  ivf(): IvfView | null {
    const p = this.ptr("faiss_IndexIVF_cast");
    let ivf = fn("faiss_IndexIVF_cast")(p) as bigint;
    if (ivf === 0n && capable("ivfLayer")) {
      const out = new BigUint64Array(1);
      try {
        call("autofaiss_extract_index_ivf", p, out);
        ivf = out[0];
      } catch {
        ivf = 0n;
      }
    }
    return ivf === 0n ? null : new IvfView(this, ivf);
  }

  /** Class chain with metrics, e.g. "IndexIVFFlat(metric=0,nlist=16)>quantizer:IndexFlat(metric=0)". */
  describe(): string | null {
    if (!hasSymbol("autofaiss_describe_index")) return null;
    const buf = new Uint8Array(2048);
    call("autofaiss_describe_index", this.ptr("autofaiss_describe_index"), buf, buf.length);
    return new TextDecoder().decode(buf.subarray(0, buf.indexOf(0)));
  }

  /**
   * Class of the inverted lists of the IVF layer (through pre-transforms): "ArrayInvertedLists" in
   * memory, "OnDiskInvertedLists" after `Index.read(path, { mmap: true })`. Null when the library
   * lacks `autofaiss_invlists_class`; a FaissError when the index has no IVF layer.
   */
  invertedListsClass(): string | null {
    const p = this.ptr("autofaiss_invlists_class");
    if (!hasSymbol("autofaiss_invlists_class")) return null;
    const buf = new Uint8Array(256);
    call("autofaiss_invlists_class", p, buf, buf.length);
    return new TextDecoder().decode(buf.subarray(0, buf.indexOf(0)));
  }

  /** @internal the raw pointer for sibling wrappers (ParameterSpace, IvfView). */
  _ptr(callName: string): bigint {
    return this.ptr(callName);
  }

  private checkRange(callName: string, i0: number, n: number): void {
    const total = this.ntotal;
    if (!Number.isInteger(i0) || !Number.isInteger(n) || i0 < 0 || n < 0 || i0 + n > total) {
      throw badArgument(callName, `range [${i0}, ${i0 + n}) is outside [0, ${total})`);
    }
  }

  // ---- N-part indices (issue 13) ----

  /**
   * The stored vector of id `id`, for indices whose ids are not 0..ntotal-1 (the parts of a split
   * index, which hold global ids): FAISS's direct map checks the id and names a missing one.
   */
  reconstructId(id: number): Float32Array {
    const p = this.ptr("faiss_Index_reconstruct");
    if (!Number.isSafeInteger(id) || id < 0) throw badArgument("faiss_Index_reconstruct", `id must be a non-negative integer, got ${id}`);
    const out = new Float32Array(this.d);
    call("faiss_Index_reconstruct", p, id, out);
    return out;
  }
}

/** The IVF layer of an Index. It does not own its pointer: the parent Index does. */
export class IvfView {
  constructor(
    private readonly owner: Index,
    private readonly ivfPtr: bigint,
  ) {}

  private p(callName: string): bigint {
    this.owner._ptr(callName); // throws if the owning index was freed
    return this.ivfPtr;
  }

  get nlist(): number {
    return fn("faiss_IndexIVF_nlist")(this.p("faiss_IndexIVF_nlist")) as number;
  }

  get nprobe(): number {
    return fn("faiss_IndexIVF_nprobe")(this.p("faiss_IndexIVF_nprobe")) as number;
  }

  /** Lists visited per query, >= 1 (FAISS caps it at nlist when searching). */
  set nprobe(v: number) {
    const p = this.p("faiss_IndexIVF_set_nprobe");
    if (!Number.isInteger(v) || v < 1) throw badArgument("faiss_IndexIVF_set_nprobe", `nprobe must be an integer >= 1, got ${v}`);
    fn("faiss_IndexIVF_set_nprobe")(p, v);
  }

  /** Vectors in inverted list `list`; the C function has no error path, so the range is checked here. */
  listSize(list: number): number {
    const p = this.p("faiss_IndexIVF_get_list_size");
    const nlist = this.nlist;
    if (!Number.isInteger(list) || list < 0 || list >= nlist) {
      throw badArgument("faiss_IndexIVF_get_list_size", `list must be an integer in [0, ${nlist}), got ${list}`);
    }
    return fn("faiss_IndexIVF_get_list_size")(p, list) as number;
  }

  /** Builds the id → (list, offset) map that `reconstruct` needs (8 bytes per vector). */
  makeDirectMap(on = true): void {
    call("faiss_IndexIVF_make_direct_map", this.p("faiss_IndexIVF_make_direct_map"), on ? 1 : 0);
  }

  /** Moves all vectors of `other` into this index, shifting their ids by `addId`. */
  mergeFrom(other: IvfView, addId = 0): void {
    if (other.owner === this.owner) throw badArgument("faiss_IndexIVF_merge_from", "an index cannot be merged into itself");
    if (!Number.isInteger(addId) || addId < 0) {
      throw badArgument("faiss_IndexIVF_merge_from", `addId must be an integer >= 0, got ${addId}`);
    }
    this.owner._assertMutable("faiss_IndexIVF_merge_from");
    other.owner._assertMutable("faiss_IndexIVF_merge_from");
    call("faiss_IndexIVF_merge_from", this.p("faiss_IndexIVF_merge_from"), other.p("faiss_IndexIVF_merge_from"), addId);
  }

  // ---- N-part indices (issue 13) ----

  /**
   * Builds a hash-table direct map (id → list offset), which `reconstruct` needs and which, unlike
   * `makeDirectMap`'s array, accepts ids that do not run 0..ntotal-1 (the parts of a split index).
   * Needs our library's `autofaiss_ivf_set_direct_map`; an upstream libfaiss_c.so lacks it.
   */
  makeHashDirectMap(): void {
    call("autofaiss_ivf_set_direct_map", this.p("autofaiss_ivf_set_direct_map"), DIRECT_MAP_HASHTABLE);
  }
}

/** faiss::DirectMap::Hashtable (faiss/invlists/DirectMap.h). */
const DIRECT_MAP_HASHTABLE = 2;

/** A FaissParameterSpace: applies "name=value,…" strings to an index. */
export class ParameterSpace extends Handle {
  protected readonly kind = "parameter space";

  constructor() {
    super(outPointer("faiss_ParameterSpace_new", (out) => [out]), "faiss_ParameterSpace_free");
  }

  setIndexParameters(index: Index, params: string): void {
    const p = this.ptr("faiss_ParameterSpace_set_index_parameters");
    parseParameters("faiss_ParameterSpace_set_index_parameters", params);
    call("faiss_ParameterSpace_set_index_parameters", p, index._ptr("faiss_ParameterSpace_set_index_parameters"), cstr(params));
  }

  setIndexParameter(index: Index, name: string, value: number): void {
    const p = this.ptr("faiss_ParameterSpace_set_index_parameter");
    checkParameter("faiss_ParameterSpace_set_index_parameter", name, value, `${name}=${value}`);
    call("faiss_ParameterSpace_set_index_parameter", p, index._ptr("faiss_ParameterSpace_set_index_parameter"), cstr(name), value);
  }
}

/**
 * Rules for the values of ParameterSpace parameters that FAISS 1.7.3 stores without checking
 * (AutoTune.cpp casts with int(val): nprobe=0 or efSearch=-1 are accepted and break searches later).
 * A `quantizer_` prefix applies the same rule to the coarse quantizer's parameter.
 */
const PARAMETER_RULES: Record<string, { min: number; integer: boolean }> = {
  nprobe: { min: 1, integer: true },
  efSearch: { min: 1, integer: true },
  efConstruction: { min: 1, integer: true },
  k_factor_rf: { min: 1, integer: true },
  ht: { min: 0, integer: true },
  max_codes: { min: 0, integer: true },
};

const PARAMETER_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function checkParameter(callName: string, name: string, value: number, token: string): void {
  if (typeof name !== "string" || !PARAMETER_NAME.test(name)) {
    throw badArgument(callName, `parameter name ${JSON.stringify(name)} is not an identifier (in "${token}")`);
  }
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw badArgument(callName, `parameter ${name} must be a finite number, got ${value} (in "${token}")`);
  }
  const rule = PARAMETER_RULES[name.replace(/^quantizer_/, "")];
  if (rule && (value < rule.min || (rule.integer && !Number.isInteger(value)))) {
    throw badArgument(callName, `${name} must be ${rule.integer ? "an integer" : "a number"} >= ${rule.min}, got ${value} (in "${token}")`);
  }
}

/**
 * Parses a ParameterSpace string ("nprobe=16,efSearch=32,ht=2048"; FAISS separates by commas or
 * spaces) into its parameters, or throws a FaissError naming the bad token. "" gives [].
 *
 * @example parseParameters("set", "nprobe=8,ht=2048") // [{ name: "nprobe", value: 8 }, { name: "ht", value: 2048 }]
 */
export function parseParameters(callName: string, params: string): { name: string; value: number }[] {
  if (typeof params !== "string") throw badArgument(callName, `parameters must be a string, got ${typeof params}`);
  const out: { name: string; value: number }[] = [];
  for (const token of params.split(/[ ,]+/)) {
    if (token === "") continue;
    const m = /^([^=]*)=(.*)$/.exec(token);
    if (!m || m[2].trim() === "") throw badArgument(callName, `parameter "${token}" is not name=value`);
    const value = Number(m[2]);
    checkParameter(callName, m[1], value, token);
    out.push({ name: m[1], value });
  }
  return out;
}

/** The upstream C API's GPU functions, which only GPU builds of libfaiss_c.so export. */
export const GPU_SYMBOLS = [
  "faiss_index_cpu_to_gpu",
  "faiss_index_gpu_to_cpu",
  "faiss_StandardGpuResources_new",
  "faiss_StandardGpuResources_free",
  "faiss_get_num_gpus",
] as const satisfies readonly SymbolName[];

/** The loaded library's path and the GPU symbols it lacks (none: it is a GPU build). */
export function gpuSupport(): { path: string; missing: SymbolName[] } {
  return { path: faissLibrary().path, missing: GPU_SYMBOLS.filter((name) => !hasSymbol(name)) };
}

/** Number of GPUs FAISS sees (`faiss_get_num_gpus`). */
export function numGpus(): number {
  const out = new Int32Array(1);
  call("faiss_get_num_gpus", out);
  return out[0];
}

/**
 * A FaissStandardGpuResources (GPU memory, streams, cuBLAS handle). It outlives the GPU indices made
 * with it: `free()` while such an index lives is deferred until the last one is freed (FAISS's GPU
 * index uses the resources in its destructor).
 */
export class GpuResources extends Handle {
  protected readonly kind = "GPU resources";
  #users = 0;
  #freeRequested = false;

  constructor() {
    super(outPointer("faiss_StandardGpuResources_new", (out) => [out]), "faiss_StandardGpuResources_free");
  }

  /** True once `free()` was called, even while a GPU index still holds the native object. */
  override get freed(): boolean {
    return this.#freeRequested || super.freed;
  }

  override free(): void {
    this.#freeRequested = true;
    if (this.#users === 0) super.free();
  }

  /** @internal the raw pointer for Index.toGpu; throws once free() was called. */
  _ptr(callName: string): bigint {
    if (this.#freeRequested) throw new FaissError(callName, CODE_USE_AFTER_FREE, `this ${this.kind} has been freed`);
    return this.ptr(callName);
  }

  /** @internal a GPU index now uses these resources. */
  _acquire(): void {
    this.#users++;
  }

  /** @internal a GPU index using these resources was freed. */
  _release(): void {
    this.#users--;
    if (this.#users === 0 && this.#freeRequested) super.free();
  }
}

function withTempFile<T>(body: (path: string) => T): T {
  const path = join(tmpdir(), `autofaiss-${process.pid}-${Math.random().toString(36).slice(2)}.index`);
  closeSync(openSync(path, "w"));
  try {
    return body(path);
  } finally {
    rmSync(path, { force: true });
  }
}
