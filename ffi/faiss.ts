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

export { FaissError } from "./errors.ts";

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

/** Calls a status-returning C function; a non-zero status becomes a FaissError with FAISS's message. */
function call(name: SymbolName, ...args: unknown[]): void {
  const rc = fn(name)(...args) as number;
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

/** Native version and compile options, when the library provides them (our build does). */
export function buildInfo(): { faissVersion: string; compileOptions: string; extAbi: number } | null {
  if (!hasSymbol("autofaiss_build_info")) return null;
  const buf = new Uint8Array(4096);
  const abi = new Int32Array(1);
  call("autofaiss_build_info", buf, buf.length, abi);
  const text = new TextDecoder().decode(buf.subarray(0, buf.indexOf(0)));
  const [faissVersion, compileOptions = ""] = text.split("|");
  return { faissVersion, compileOptions: compileOptions.trim(), extAbi: abi[0] };
}

/** OpenMP threads for FAISS (n ≤ 0: all cores). Returns false when the library cannot set them. */
export function setNumThreads(n: number): boolean {
  if (!hasSymbol("autofaiss_set_num_threads")) return false;
  call("autofaiss_set_num_threads", Math.trunc(n));
  return true;
}

export function numThreads(): number | null {
  if (!hasSymbol("autofaiss_get_num_threads")) return null;
  const out = new Int32Array(1);
  call("autofaiss_get_num_threads", out);
  return out[0];
}

/** Runs `fn` with FAISS on `n` OpenMP threads, then restores the previous count. */
export function withNumThreads<T>(n: number, fn: () => T): T {
  const previous = numThreads();
  if (previous === null || previous === n) return fn();
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
  if (!hasSymbol("autofaiss_first_nonfinite")) return undefined;
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

// Safety net only: a wrapper that is garbage-collected without free() releases its handle here.
const leaked = new FinalizationRegistry<{ ptr: bigint; free: SymbolName }>(({ ptr, free }) => {
  fn(free)(ptr);
});

abstract class Handle {
  #ptr: bigint;
  readonly #freeFn: SymbolName;
  protected abstract readonly kind: string;

  protected constructor(ptr: bigint, freeFn: SymbolName) {
    this.#ptr = ptr;
    this.#freeFn = freeFn;
    leaked.register(this, { ptr, free: freeFn }, this);
  }

  /** The native address; throws once freed. */
  protected ptr(callName: string): bigint {
    if (this.#ptr === 0n) throw new FaissError(callName, CODE_USE_AFTER_FREE, `this ${this.kind} has been freed`);
    return this.#ptr;
  }

  get freed(): boolean {
    return this.#ptr === 0n;
  }

  /** Releases the native object; later calls are no-ops. */
  free(): void {
    if (this.#ptr === 0n) return;
    const p = this.#ptr;
    this.#ptr = 0n;
    leaked.unregister(this);
    fn(this.#freeFn)(p);
  }

  [Symbol.dispose](): void {
    this.free();
  }
}

/** A FAISS index (FaissIndex*). */
export class Index extends Handle {
  protected readonly kind = "index";

  private constructor(ptr: bigint) {
    super(ptr, "faiss_Index_free");
  }

  /** `faiss_index_factory`: e.g. `Index.factory(128, "OPQ16_64,IVF1024_HNSW32,PQ16x4fs", "ip")`. */
  static factory(d: number, key: string, metric: Metric = "ip"): Index {
    if (!Number.isInteger(d) || d <= 0) throw badArgument("faiss_index_factory", `dimension must be a positive integer, got ${d}`);
    const m = metric === "ip" ? METRIC_INNER_PRODUCT : metric === "l2" ? METRIC_L2 : undefined;
    if (m === undefined) throw badArgument("faiss_index_factory", `metric must be "ip" or "l2", got "${metric}"`);
    return new Index(outPointer("faiss_index_factory", (out) => [out, d, cstr(key), m]));
  }

  /** Reads an index file; `mmap` keeps IVF inverted lists on disk (read-only). */
  static read(path: string, opts: { mmap?: boolean } = {}): Index {
    const flags = opts.mmap ? FAISS_IO_FLAG_MMAP | FAISS_IO_FLAG_READ_ONLY | CXX_IO_FLAG_MMAP : 0;
    return new Index(outPointer("faiss_read_index_fname", (out) => [cstr(resolve(path)), flags, out]));
  }

  /** Deserializes an index from bytes produced by `toBytes()` or a FAISS index file. */
  static fromBytes(bytes: Uint8Array): Index {
    if (hasSymbol("autofaiss_read_index_buffer")) {
      return new Index(outPointer("autofaiss_read_index_buffer", (out) => [bytes, bytes.byteLength, 0, out]));
    }
    return withTempFile((tmp) => {
      writeFileSync(tmp, bytes);
      return Index.read(tmp);
    });
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

  train(x: Float32Array): void {
    const p = this.ptr("faiss_Index_train");
    call("faiss_Index_train", p, rowsOf("faiss_Index_train", x, this.d), x);
  }

  /**
   * Adds vectors (ids continue from ntotal). With `batchRows`, adds in slices of that many rows
   * and reports progress after each, so long adds can show progress despite synchronous FFI.
   */
  add(x: Float32Array, opts: { batchRows?: number; onProgress?: (added: number, total: number) => void } = {}): void {
    const p = this.ptr("faiss_Index_add");
    const d = this.d;
    const n = rowsOf("faiss_Index_add", x, d);
    const step = opts.batchRows && opts.batchRows > 0 ? opts.batchRows : n;
    for (let i = 0; i < n; i += step) {
      const rows = Math.min(step, n - i);
      call("faiss_Index_add", p, rows, x.subarray(i * d, (i + rows) * d));
      opts.onProgress?.(i + rows, n);
    }
  }

  addWithIds(x: Float32Array, ids: BigInt64Array): void {
    const p = this.ptr("faiss_Index_add_with_ids");
    const n = rowsOf("faiss_Index_add_with_ids", x, this.d);
    if (ids.length !== n) throw badArgument("faiss_Index_add_with_ids", `${ids.length} ids for ${n} vectors`);
    call("faiss_Index_add_with_ids", p, n, x, ids);
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
    call("faiss_Index_reset", this.ptr("faiss_Index_reset"));
  }

  reconstruct(key: number): Float32Array {
    const p = this.ptr("faiss_Index_reconstruct");
    const out = new Float32Array(this.d);
    this.checkRange("faiss_Index_reconstruct", key, 1);
    call("faiss_Index_reconstruct", p, key, out);
    return out;
  }

  reconstructN(i0: number, n: number): Float32Array {
    const p = this.ptr("faiss_Index_reconstruct_n");
    this.checkRange("faiss_Index_reconstruct_n", i0, n);
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
   * Moves every vector of `other` into this index, keeping their ids (FAISS `ivflib::merge_into`):
   * both are IVF indices (through pre-transforms) cloned from one trained index. `other` is left
   * empty; this index must be in memory (not a memory-mapped read).
   */
  mergeFrom(other: Index): void {
    call("autofaiss_merge_into", this.ptr("autofaiss_merge_into"), other.ptr("autofaiss_merge_into"));
  }

  /** A copy of this index on GPU `device` (upstream GPU builds only); free it before `res`. */
  toGpu(res: GpuResources, device = 0): Index {
    const p = this.ptr("faiss_index_cpu_to_gpu");
    return new Index(outPointer("faiss_index_cpu_to_gpu", (out) => [res._ptr("faiss_index_cpu_to_gpu"), device, p, out]));
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
    if (!hasSymbol("autofaiss_set_polysemous_training")) return false;
    const applied = new Int32Array(1);
    call("autofaiss_set_polysemous_training", p, enabled ? 1 : 0, applied);
    return applied[0] === 1;
  }

  /** Applies a ParameterSpace string such as "nprobe=16,efSearch=32,ht=2048". */
  setParameters(params: string): void {
    if (params === "") return;
    using space = new ParameterSpace();
    space.setIndexParameters(this, params);
  }

  /** Writes the index to `path` atomically (temporary name, then rename); creates parent folders. */
  write(path: string): void {
    const p = this.ptr("faiss_write_index_fname");
    const target = resolve(path);
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
    if (hasSymbol("autofaiss_serialized_size")) {
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
    if (hasSymbol("autofaiss_write_index_buffer")) {
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
    if (ivf === 0n && hasSymbol("autofaiss_extract_index_ivf")) {
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

  set nprobe(v: number) {
    fn("faiss_IndexIVF_set_nprobe")(this.p("faiss_IndexIVF_set_nprobe"), v);
  }

  listSize(list: number): number {
    return fn("faiss_IndexIVF_get_list_size")(this.p("faiss_IndexIVF_get_list_size"), list) as number;
  }

  /** Builds the id → (list, offset) map that `reconstruct` needs (8 bytes per vector). */
  makeDirectMap(on = true): void {
    call("faiss_IndexIVF_make_direct_map", this.p("faiss_IndexIVF_make_direct_map"), on ? 1 : 0);
  }

  /** Moves all vectors of `other` into this index, shifting their ids by `addId`. */
  mergeFrom(other: IvfView, addId = 0): void {
    call("faiss_IndexIVF_merge_from", this.p("faiss_IndexIVF_merge_from"), other.p("faiss_IndexIVF_merge_from"), addId);
  }
}

/** A FaissParameterSpace: applies "name=value,…" strings to an index. */
export class ParameterSpace extends Handle {
  protected readonly kind = "parameter space";

  constructor() {
    super(outPointer("faiss_ParameterSpace_new", (out) => [out]), "faiss_ParameterSpace_free");
  }

  setIndexParameters(index: Index, params: string): void {
    const p = this.ptr("faiss_ParameterSpace_set_index_parameters");
    call("faiss_ParameterSpace_set_index_parameters", p, index._ptr("faiss_ParameterSpace_set_index_parameters"), cstr(params));
  }

  setIndexParameter(index: Index, name: string, value: number): void {
    const p = this.ptr("faiss_ParameterSpace_set_index_parameter");
    call("faiss_ParameterSpace_set_index_parameter", p, index._ptr("faiss_ParameterSpace_set_index_parameter"), cstr(name), value);
  }
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

/** A FaissStandardGpuResources (GPU memory, streams, cuBLAS handle); outlives the GPU indices using it. */
export class GpuResources extends Handle {
  protected readonly kind = "GPU resources";

  constructor() {
    super(outPointer("faiss_StandardGpuResources_new", (out) => [out]), "faiss_StandardGpuResources_free");
  }

  /** @internal the raw pointer for Index.toGpu. */
  _ptr(callName: string): bigint {
    return this.ptr(callName);
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
