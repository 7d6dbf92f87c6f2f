/**
 * An embedding collection: the files of one or many folders (or single files, or URLs) seen as
 * one matrix of `count` rows of `dimension` float32 values, streamed in bounded batches, read by
 * row range, or sampled uniformly. Headers are read once at open; data files are opened on
 * demand and only a few stay open at a time, so a folder of 10 000 files needs no 10 000 fds.
 */
import { checkFileFormat, type FileFormat, listEmbeddingFiles } from "./discover.ts";
import { EmbeddingReadError } from "./errors.ts";
import { type NpyHeader, NpyReader, readNpyHeader } from "./npy.ts";
import { type IdColumnSpec, type IdValues, type ParquetInfo, ParquetReader, readParquetInfo } from "./parquet.ts";
import type { NonFiniteScan } from "./float.ts";
import { sampleRowIndices } from "./sample.ts";
import { openSource, type SourceOpener } from "./source.ts";
import { setImmediate } from "node:timers";

/**
 * Resolves after pending microtasks ran: a just-started read has then been handed to the I/O
 * thread pool (its promise chain runs in microtasks), so work done next overlaps with it.
 */
function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export type { IdColumnSpec, IdValues } from "./parquet.ts";

/** A run of consecutive rows. `vectors` holds `rows * dimension` float32 values, row-major. */
export interface EmbeddingBatch {
  vectors: Float32Array;
  rows: number;
  /** Global 0-based row number of the first row (the FAISS label of that vector). */
  startId: number;
  /** Id column values of these rows, when the collection was opened with `idColumns`. */
  ids?: IdValues;
}

/** A uniform sample: row `k` of `vectors` is global row `positions[k]` (ascending). */
export interface EmbeddingSample {
  vectors: Float32Array;
  rows: number;
  positions: Float64Array;
  ids?: IdValues;
}

/** Range and buffer policy of {@link EmbeddingCollection.batches}. */
export interface BatchOptions {
  /** First global row (default 0). */
  start?: number;
  /** End global row, exclusive (default `count`). */
  end?: number;
  /** Yield views of two alternating reused buffers instead of a fresh buffer per batch (default false). */
  reuse?: boolean;
}

/** One file of a collection. */
export interface CollectionFile {
  location: string;
  rows: number;
  /** Global row number of this file's first row. */
  startRow: number;
}

/** What every embedding source offers the build pipeline (files, URLs or an in-memory array). */
export interface EmbeddingCollection extends AsyncDisposable {
  readonly count: number;
  readonly dimension: number;
  /** Non-empty files in reading order (empty for in-memory collections). */
  readonly files: readonly CollectionFile[];
  /** Id columns carried along in batches (empty unless requested). */
  readonly idColumns: readonly IdColumnSpec[];
  /**
   * Consecutive batches of at most `maxRows` rows over `[start, end)` (default: everything).
   * Batches may span files; the next batch is read ahead while the caller works on this one.
   * Each is a fresh buffer of `rows * dimension` floats, unless `reuse` is set: then batches are
   * views of two alternating buffers, each valid until the next batch is requested (no
   * per-batch allocation: the fast path for consumers that copy, like index.add).
   */
  batches(maxRows: number, options?: BatchOptions): AsyncGenerator<EmbeddingBatch>;
  /** Rows `[start, end)` as one batch (e.g. the first 1000 rows as queries). */
  read(start: number, end: number): Promise<EmbeddingBatch>;
  /**
   * `n` rows drawn uniformly without replacement, reproducibly for a `seed`; all rows if `n >= count`.
   * Always a fresh array that nothing else references: build_index gives its contents up to training.
   */
  sample(n: number, seed: number): Promise<EmbeddingSample>;
  /** Close every open file (idempotent). */
  close(): Promise<void>;
}

/** Options of {@link openCollection}. */
export interface OpenCollectionOptions {
  /** "npy" (default) or "parquet". */
  fileFormat?: FileFormat | string;
  /** Parquet column with the vectors; default `embedding`, `embeddings`, or the only list column. */
  embeddingColumnName?: string;
  /** Parquet columns to carry along (for the ids mapping). */
  idColumns?: string[];
  /** How to open a location (tests inject counting sources). Default {@link openSource}. */
  openSource?: SourceOpener;
  /** Headers read in parallel at open (default 16). */
  concurrency?: number;
  /** A faster NaN/Inf scan for large ranges, e.g. ffi/faiss.ts `nativeNonFiniteScan()` (see float.ts). */
  nonFiniteScan?: NonFiniteScan;
}

interface Entry extends CollectionFile {
  npy?: NpyHeader;
  parquet?: ParquetInfo;
}

type Reader = NpyReader | ParquetReader;

/** Data files kept open at once (sequential streaming needs one; sampling walks files in order). */
const OPEN_READERS = 4;

/** Check a row-count argument. */
export function checkRows(what: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`embedding collection: ${what} must be an integer >= ${min}, got ${value}`);
  }
}

/** Check `[start, end)` against `count`. */
export function checkRange(start: number, end: number, count: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end > count || start > end) {
    throw new RangeError(`embedding collection: row range [${start}, ${end}) is outside [0, ${count})`);
  }
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

class FileCollection implements EmbeddingCollection {
  readonly count: number;
  readonly dimension: number;
  readonly files: readonly Entry[];
  readonly idColumns: readonly IdColumnSpec[];
  readonly #label: string;
  readonly #open: SourceOpener;
  readonly #readers = new Map<number, Reader>();
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  readonly #nonFiniteScan: NonFiniteScan | undefined;

  constructor(label: string, files: Entry[], dimension: number, idColumns: IdColumnSpec[], open: SourceOpener, nonFiniteScan?: NonFiniteScan) {
    this.#nonFiniteScan = nonFiniteScan;
    this.#label = label;
    this.files = files;
    this.count = files.reduce((s, f) => s + f.rows, 0);
    this.dimension = dimension;
    this.idColumns = idColumns;
    this.#open = open;
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error(`embedding collection: ${this.#label}: collection is closed`);
  }

  /** Index of the file holding global row `row` (binary search over start rows). */
  #fileOf(row: number): number {
    let lo = 0, hi = this.files.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.files[mid]!.startRow <= row) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  async #reader(i: number): Promise<Reader> {
    const cached = this.#readers.get(i);
    if (cached) {
      // refresh LRU position
      this.#readers.delete(i);
      this.#readers.set(i, cached);
      return cached;
    }
    while (this.#readers.size >= OPEN_READERS) {
      const [oldest, reader] = this.#readers.entries().next().value as [number, Reader];
      this.#readers.delete(oldest);
      await reader.close();
    }
    const f = this.files[i]!;
    const source = await this.#open(f.location);
    const reader = f.npy
      ? new NpyReader(source, f.npy, this.#nonFiniteScan)
      : new ParquetReader(source, f.parquet!, this.dimension, this.files[0]!.location, this.#nonFiniteScan);
    if (f.npy && source.byteLength !== f.npy.dataOffset + f.rows * f.npy.dim * f.npy.itemSize) {
      await source.close?.();
      throw new EmbeddingReadError(`npy data: ${f.location}: file size changed since its header was read`, { file: f.location });
    }
    this.#readers.set(i, reader);
    return reader;
  }

  #newIds(): IdValues | undefined {
    if (!this.idColumns.length) return undefined;
    const ids: IdValues = {};
    for (const c of this.idColumns) ids[c.name] = [];
    return ids;
  }

  /**
   * Fill `out` with global rows `[start, end)`, crossing files as needed. With `deferChecks`,
   * .npy NaN/Inf checks are queued there instead of run (see batches()).
   */
  async #fill(start: number, end: number, out: Float32Array, ids: IdValues | undefined, deferChecks?: (() => void)[]): Promise<void> {
    let row = start;
    let i = row < end ? this.#fileOf(row) : 0;
    while (row < end) {
      const f = this.files[i]!;
      const stop = Math.min(end, f.startRow + f.rows);
      const reader = await this.#reader(i);
      if (reader instanceof NpyReader) await reader.readRows(row - f.startRow, stop - f.startRow, out, row - start, deferChecks);
      else await reader.readRows(row - f.startRow, stop - f.startRow, out, row - start, ids);
      row = stop;
      i++;
    }
  }

  /**
   * Run `fn` after every earlier read finished: readers keep per-file scratch buffers and a
   * decoded row group, and a prefetching `batches()` may be reading while the caller calls
   * `read()` or `sample()`.
   */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.then(() => {}, () => {});
    return run;
  }

  async *batches(maxRows: number, options: BatchOptions = {}): AsyncGenerator<EmbeddingBatch> {
    checkRows("maxRows", maxRows, 1);
    const { start = 0, end = this.count, reuse = false } = options;
    checkRange(start, end, this.count);
    const dim = this.dimension;
    // Double-buffered prefetch: batch n+1 is read while the caller works on batch n (its reads
    // run on the I/O thread pool, even during a long synchronous FFI call). With `reuse`, two
    // buffers alternate: allocating (zeroing, faulting in) a fresh batch costs about as much as
    // reading it from the page cache. Batch n+2 goes into batch n's buffer only once the caller
    // has asked for n+1, which keeps the "valid until the next batch" promise. The NaN/Inf scan
    // of batch n+1 runs on this thread while batch n+2 is being read, before n+1 is yielded.
    const size = Math.min(maxRows, end - start) * dim;
    const buffers = reuse ? [new Float32Array(size), new Float32Array(end - start > maxRows ? size : 0)] : [];
    let turn = 0;
    type Loaded = { batch: EmbeddingBatch; checks: (() => void)[] };
    const load = (s: number): Promise<Loaded> => {
      const rows = Math.min(maxRows, end - s);
      const vectors = reuse ? buffers[turn++ % 2]!.subarray(0, rows * dim) : new Float32Array(rows * dim);
      const ids = this.#newIds();
      const checks: (() => void)[] = [];
      const p = this.#exclusive(async () => {
        this.#checkOpen();
        await this.#fill(s, s + rows, vectors, ids, checks);
        return { batch: ids ? { vectors, rows, startId: s, ids } : { vectors, rows, startId: s }, checks };
      });
      p.catch(() => {}); // awaited below; a prefetch abandoned by an early break is not "unhandled"
      return p;
    };
    let next = start < end ? load(start) : undefined;
    try {
      for (let s = start; s < end; s += maxRows) {
        const { batch, checks } = await next!;
        next = s + maxRows < end ? load(s + maxRows) : undefined;
        if (next) await yieldToIo(); // lets the prefetch reach the I/O pool before we scan
        for (const check of checks) check();
        yield batch;
      }
    } finally {
      // the caller stopped early: let the prefetch settle before the collection can be closed
      await next?.catch(() => {});
    }
  }

  read(start: number, end: number): Promise<EmbeddingBatch> {
    return this.#exclusive(async () => {
      this.#checkOpen();
      checkRange(start, end, this.count);
      const vectors = new Float32Array((end - start) * this.dimension);
      const ids = this.#newIds();
      await this.#fill(start, end, vectors, ids);
      return ids ? { vectors, rows: end - start, startId: start, ids } : { vectors, rows: end - start, startId: start };
    });
  }

  sample(n: number, seed: number): Promise<EmbeddingSample> {
    return this.#exclusive(() => this.#sample(n, seed));
  }

  async #sample(n: number, seed: number): Promise<EmbeddingSample> {
    this.#checkOpen();
    checkRows("sample size", n, 0);
    const positions = sampleRowIndices(this.count, n, seed);
    const rows = positions.length;
    const vectors = new Float32Array(rows * this.dimension);
    const ids = this.#newIds();
    let k = 0;
    while (k < rows) {
      const i = this.#fileOf(positions[k]!);
      const f = this.files[i]!;
      let last = k;
      while (last < rows && positions[last]! < f.startRow + f.rows) last++;
      const local = new Float64Array(last - k);
      for (let j = k; j < last; j++) local[j - k] = positions[j]! - f.startRow;
      const reader = await this.#reader(i);
      if (reader instanceof NpyReader) await reader.readRowsAt(local, vectors, k);
      else await reader.readRowsAt(local, vectors, k, ids);
      k = last;
    }
    return ids ? { vectors, rows, positions, ids } : { vectors, rows, positions };
  }

  async close(): Promise<void> {
    this.#closed = true;
    // wait for reads in flight (e.g. a prefetch) before closing their files
    await this.#exclusive(async () => {
      const readers = [...this.#readers.values()];
      this.#readers.clear();
      await Promise.all(readers.map((r) => r.close()));
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Open the embedding files under `paths` (folders searched recursively, single files, a list of
 * either, `file://`, `http(s)://`, `s3://` on Bun) as one collection. Reads headers/footers only.
 *
 * @example
 * ```ts
 * await using embs = await openCollection(["embs/a", "embs/b"], { fileFormat: "npy" });
 * console.log(embs.count, embs.dimension);
 * for await (const b of embs.batches(65536)) index.add(b.vectors, b.rows);
 * const train = await embs.sample(100_000, 42);
 * ```
 */
export async function openCollection(paths: string | string[], options: OpenCollectionOptions = {}): Promise<EmbeddingCollection> {
  const fileFormat = checkFileFormat(options.fileFormat ?? "npy");
  const open = options.openSource ?? openSource;
  const list = typeof paths === "string" ? [paths] : paths;
  const label = list.join(", ");
  if (fileFormat === "npy" && options.idColumns?.length) {
    throw new EmbeddingReadError(
      `embedding files: ${label}: id_columns [${options.idColumns.join(", ")}] need file_format parquet (.npy files have no columns)`,
      { file: label },
    );
  }
  const locations = await listEmbeddingFiles(list, fileFormat);
  const headers = await mapLimit(locations, options.concurrency ?? 16, async (location) => {
    const source = await open(location);
    try {
      if (fileFormat === "npy") {
        const npy = await readNpyHeader(source);
        return { location, rows: npy.rows, startRow: 0, npy } as Entry;
      }
      const parquet = await readParquetInfo(source, {
        ...(options.embeddingColumnName !== undefined ? { embeddingColumnName: options.embeddingColumnName } : {}),
        ...(options.idColumns ? { idColumns: options.idColumns } : {}),
      });
      return { location, rows: parquet.rows, startRow: 0, parquet } as Entry;
    } finally {
      await source.close?.();
    }
  });
  // zero-row files are skipped, as AutoFaiss does
  const files = headers.filter((h) => h.rows > 0);
  if (!files.length) {
    const why = locations.length
      ? `all ${locations.length} *.${fileFormat} files are empty`
      : `found no *.${fileFormat} files`;
    throw new EmbeddingReadError(`embedding files: no embeddings found in ${label} (${why})`, { file: label });
  }
  let startRow = 0;
  for (const f of files) {
    f.startRow = startRow;
    startRow += f.rows;
  }
  const first = files[0]!;
  let dimension: number;
  if (first.npy) {
    dimension = first.npy.dim;
    for (const f of files) {
      if (f.npy!.dim !== dimension) {
        throw new EmbeddingReadError(
          `embedding files: ${f.location}: dimension ${f.npy!.dim} differs from dimension ${dimension} of ${first.location}`,
          { file: f.location },
        );
      }
    }
  } else {
    // parquet has no shape: the first row of the first non-empty file decides;
    // later files are checked row by row as they are read
    const reader = new ParquetReader(await open(first.location), first.parquet!);
    try {
      dimension = await reader.firstRowLength();
    } finally {
      await reader.close();
    }
  }
  return new FileCollection(label, files, dimension, first.parquet?.idColumns ?? [], open, options.nonFiniteScan);
}
