/**
 * Streaming reader for NumPy `.npy` files (format versions 1.0, 2.0, 3.0) holding 2-D C-order
 * little-endian float16/32/64 arrays. Count and dimension come from the header alone; data is
 * read with positioned, chunked reads straight into the caller's float32 buffer, so a 50 GB file
 * never becomes one buffer.
 */
import { EmbeddingReadError } from "./errors.ts";
import { convertFloat16, firstNonFinite, type NonFiniteScan } from "./float.ts";
import { type ByteSource, readInto } from "./source.ts";

/** Element types we accept, by numpy kind+size. */
export type NpyDtype = "f2" | "f4" | "f8";

/** What an .npy header says, validated. */
export interface NpyHeader {
  /** Format version, "1.0" | "2.0" | "3.0". */
  version: string;
  dtype: NpyDtype;
  /** Bytes per element (2, 4 or 8). */
  itemSize: number;
  rows: number;
  dim: number;
  /** Byte offset of the first element. */
  dataOffset: number;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const EXPECTED_DESCR = "expected <f2, <f4 or <f8";
/**
 * Largest single read (and the float16/float64 conversion scratch buffer): big enough for disk
 * speed, small enough to pipeline reads with the NaN scan within a batch.
 */
export const NPY_CHUNK_BYTES = 8 * 1024 * 1024;
/** Concurrent reads of one batch when its checks are deferred (2 cores copy faster than one). */
const READS_IN_FLIGHT = 2;
/** In sampled reads, read through gaps up to this size instead of issuing another read. */
const GAP_BYTES = 64 * 1024;
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function headerError(file: string, detail: string): EmbeddingReadError {
  return new EmbeddingReadError(`npy header: ${file}: ${detail}`, { file });
}

/** Python-style tuple text, as numpy prints it: `(10,)`, `(3, 4)`, `()`. */
function shapeText(shape: number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}

/** Validate a numpy `descr` string and map it to our dtype. */
function parseDescr(descr: string, file: string): NpyDtype {
  const m = /^([<>|=]?)([a-zA-Z])(\d+)$/.exec(descr);
  if (!m) throw headerError(file, `descr '${descr}' is not a float type (${EXPECTED_DESCR})`);
  const [, order, kind, size] = m;
  if (kind === "c") throw headerError(file, `descr '${descr}' is a complex type (${EXPECTED_DESCR})`);
  if (kind !== "f") throw headerError(file, `descr '${descr}' is not a float type (${EXPECTED_DESCR})`);
  if (size !== "2" && size !== "4" && size !== "8") {
    throw headerError(file, `descr '${descr}' is an unsupported float size (${EXPECTED_DESCR})`);
  }
  if (order === ">" || (order === "=" && !LITTLE_ENDIAN_HOST)) {
    throw headerError(file, `descr '${descr}' is big-endian (${EXPECTED_DESCR})`);
  }
  if (order !== "<" && order !== "=") {
    throw headerError(file, `descr '${descr}' has no byte order (${EXPECTED_DESCR})`);
  }
  return `f${size}` as NpyDtype;
}

/**
 * Parse and validate an .npy header from the first bytes of a file.
 * Returns `{ needed }` when `bytes` is too short to hold the whole header.
 *
 * @example
 * ```ts
 * const h = parseNpyHeader(first128Bytes, "a.npy"); // { version: "1.0", dtype: "f4", rows: 10, dim: 64, ... }
 * ```
 */
export function parseNpyHeader(bytes: Uint8Array, file: string): NpyHeader | { needed: number } {
  const magicLen = Math.min(bytes.length, MAGIC.length);
  for (let i = 0; i < magicLen; i++) {
    if (bytes[i] !== MAGIC[i]) {
      const hex = Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join(" ");
      throw headerError(file, `bad magic bytes ${hex} (expected 93 4e 55 4d 50 59, "\\x93NUMPY")`);
    }
  }
  if (bytes.length < 10) return { needed: 12 };
  const major = bytes[6]!;
  const minor = bytes[7]!;
  let prefix: number;
  let headerLen: number;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major === 1 && minor === 0) {
    prefix = 10;
    headerLen = view.getUint16(8, true);
  } else if ((major === 2 || major === 3) && minor === 0) {
    if (bytes.length < 12) return { needed: 12 };
    prefix = 12;
    headerLen = view.getUint32(8, true);
  } else {
    throw headerError(file, `format version ${major}.${minor} is not supported (expected 1.0, 2.0 or 3.0)`);
  }
  const dataOffset = prefix + headerLen;
  if (bytes.length < dataOffset) return { needed: dataOffset };

  // v1/v2 headers are latin-1, v3 headers UTF-8 (numpy's rule).
  const text = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(prefix, dataOffset)).trim();
  if (!text.startsWith("{") || !text.endsWith("}")) {
    throw headerError(file, `header is not a Python dict literal (got ${JSON.stringify(text.slice(0, 80))})`);
  }
  const descrMatch = /['"]descr['"]\s*:\s*(?:'([^']*)'|"([^"]*)"|(\[))/.exec(text);
  const fortranMatch = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  const shapeMatch = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  for (const [key, m] of [["descr", descrMatch], ["fortran_order", fortranMatch], ["shape", shapeMatch]] as const) {
    if (!m) throw headerError(file, `header has no valid '${key}' (got ${JSON.stringify(text.slice(0, 120))})`);
  }
  if (descrMatch![3]) {
    throw headerError(file, `descr is a structured dtype (${EXPECTED_DESCR})`);
  }
  const dtype = parseDescr(descrMatch![1] ?? descrMatch![2]!, file);
  if (fortranMatch![1] === "True") {
    throw headerError(file, "fortran_order is True (expected a C-order array; save it with np.ascontiguousarray)");
  }
  const parts = shapeMatch![1]!.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const shape = parts.map((p) => {
    // Python 2 numpy wrote longs as "10L"
    if (!/^\d+L?$/.test(p)) throw headerError(file, `shape (${shapeMatch![1]}) is not a tuple of integers`);
    return Number(p.replace("L", ""));
  });
  if (shape.length !== 2) {
    throw headerError(file, `shape ${shapeText(shape)} is ${shape.length}-D (expected a 2-D array (rows, dim))`);
  }
  const [rows, dim] = shape as [number, number];
  if (rows > 0 && dim === 0) throw headerError(file, `shape ${shapeText(shape)} has dimension 0 (expected at least 1)`);
  const itemSize = Number(dtype.slice(1));
  return { version: `${major}.${minor}`, dtype, itemSize, rows, dim, dataOffset };
}

/**
 * Read and validate the header of an .npy source, touching only the header bytes, and check that
 * the file size matches the shape (truncated files fail here, before any data is read).
 */
export async function readNpyHeader(source: ByteSource): Promise<NpyHeader> {
  const file = source.name;
  let want = Math.min(12, source.byteLength);
  let bytes = new Uint8Array(await source.slice(0, want));
  for (;;) {
    const parsed = parseNpyHeader(bytes, file);
    if ("dataOffset" in parsed) {
      const dataBytes = parsed.rows * parsed.dim * parsed.itemSize;
      const have = source.byteLength - parsed.dataOffset;
      const what = `header shape (${parsed.rows}, ${parsed.dim}) of <${parsed.dtype} needs ${dataBytes} data bytes`;
      if (have < dataBytes) {
        throw new EmbeddingReadError(`npy data: ${file}: truncated: ${what}, file has ${have}`, { file });
      }
      if (have > dataBytes) {
        throw new EmbeddingReadError(`npy data: ${file}: ${have - dataBytes} unexpected bytes after the data (${what})`, {
          file,
        });
      }
      return parsed;
    }
    if (parsed.needed > source.byteLength) {
      throw headerError(
        file,
        `truncated: file has ${source.byteLength} bytes (expected at least ${parsed.needed} for the header)`,
      );
    }
    // second read: the rest of the header, now that its length is known
    const rest = new Uint8Array(await source.slice(want, parsed.needed));
    const all = new Uint8Array(parsed.needed);
    all.set(bytes);
    all.set(rest, want);
    bytes = all;
    want = parsed.needed;
  }
}

/**
 * Reads rows of one .npy source into float32 buffers. Conversions (float16, float64) go through
 * one reusable chunk-sized scratch buffer; float32 is read directly into the destination.
 */
export class NpyReader {
  readonly source: ByteSource;
  readonly header: NpyHeader;
  readonly rowBytes: number;
  #scratch: Uint8Array | undefined;

  readonly #nonFiniteScan: NonFiniteScan | undefined;

  /** `nonFiniteScan`: a faster NaN/Inf scan for large ranges (see float.ts `firstNonFinite`). */
  constructor(source: ByteSource, header: NpyHeader, nonFiniteScan?: NonFiniteScan) {
    this.source = source;
    this.header = header;
    this.#nonFiniteScan = nonFiniteScan;
    this.rowBytes = header.dim * header.itemSize;
  }

  get rows(): number {
    return this.header.rows;
  }

  get dim(): number {
    return this.header.dim;
  }

  /** Rows per scratch chunk (at least one row). */
  get #chunkRows(): number {
    return Math.max(1, Math.floor(NPY_CHUNK_BYTES / this.rowBytes));
  }

  #scratchBuffer(): Uint8Array {
    this.#scratch ??= new Uint8Array(this.#chunkRows * this.rowBytes);
    return this.#scratch;
  }

  /** Read exactly `target.byteLength` bytes of data at `position`, or fail naming the first missing row. */
  async #readExact(position: number, target: Uint8Array): Promise<void> {
    const n = await readInto(this.source, position, target);
    if (n < target.byteLength) {
      const row = Math.floor((position + n - this.header.dataOffset) / this.rowBytes);
      throw new EmbeddingReadError(
        `npy data: ${this.source.name}: truncated at row ${row}: read ${n} of ${target.byteLength} bytes at offset ${position} (the file shrank after its header was read)`,
        { file: this.source.name, row },
      );
    }
  }

  /** Decode `count` rows from `bytes` (byteOffset 0, aligned) into `out` at float index `outOffset`. */
  #decode(bytes: Uint8Array, byteStart: number, count: number, out: Float32Array, outOffset: number): void {
    const n = count * this.header.dim;
    const buffer = bytes.buffer;
    const at = bytes.byteOffset + byteStart;
    if (this.header.dtype === "f4") out.set(new Float32Array(buffer, at, n), outOffset);
    else if (this.header.dtype === "f8") out.set(new Float64Array(buffer, at, n), outOffset);
    else convertFloat16(new Uint16Array(buffer, at, n), out, outOffset);
  }

  /**
   * Read rows `[start, end)` into `out` starting at row `outRow`, then refuse NaN/Inf. With
   * `deferChecks`, the NaN/Inf checks are pushed there instead of run, for a caller that runs
   * them while its next read is in flight (and before anyone sees the rows).
   */
  async readRows(start: number, end: number, out: Float32Array, outRow: number, deferChecks?: (() => void)[]): Promise<void> {
    const { dim, dataOffset } = this.header;
    if (start < 0 || end > this.header.rows || start > end) {
      throw new RangeError(`npy read: ${this.source.name}: rows [${start}, ${end}) outside [0, ${this.header.rows})`);
    }
    const chunkRows = this.#chunkRows;
    if (this.header.dtype === "f4") {
      // zero-copy: the file bytes are the float32 values. Chunked so remote sources get bounded
      // requests, and pipelined: the next chunk is read (on the I/O thread pool) while this one
      // is checked for NaN/Inf, which is also when it is still in the CPU cache.
      const readChunk = (r: number): Promise<void> => readChunkOf(r, chunkRows);
      const readChunkOf = (r: number, count: number): Promise<void> => {
        const stop = Math.min(end, r + count);
        const target = new Uint8Array(out.buffer, out.byteOffset + (outRow + r - start) * dim * 4, (stop - r) * this.rowBytes);
        const p = this.#readExact(dataOffset + r * this.rowBytes, target);
        p.catch(() => {}); // awaited below; this only keeps an abandoned read from being "unhandled"
        return p;
      };
      if (deferChecks) {
        // The checks run later: keep READS_IN_FLIGHT reads going (at least two per batch), so
        // the I/O pool never waits for this thread and copies with both threads.
        const rows = end - start;
        const step = Math.max(1, Math.min(chunkRows, Math.ceil(rows / READS_IN_FLIGHT)));
        const inFlight: Promise<void>[] = [];
        for (let r = start; r < end; r += step) {
          if (inFlight.length === READS_IN_FLIGHT) await inFlight.shift();
          inFlight.push(readChunkOf(r, step));
        }
        await Promise.all(inFlight);
        deferChecks.push(() => this.#checkFinite(out, outRow, rows, (i) => start + i));
        return;
      }
      let pending = start < end ? readChunk(start) : Promise.resolve();
      for (let r = start; r < end; r += chunkRows) {
        await pending;
        if (r + chunkRows < end) pending = readChunk(r + chunkRows);
        this.#checkFinite(out, outRow + r - start, Math.min(end, r + chunkRows) - r, (i) => r + i);
      }
    } else {
      const scratch = this.#scratchBuffer();
      for (let r = start; r < end; r += chunkRows) {
        const stop = Math.min(end, r + chunkRows);
        const target = scratch.subarray(0, (stop - r) * this.rowBytes);
        await this.#readExact(dataOffset + r * this.rowBytes, target);
        this.#decode(scratch, 0, stop - r, out, (outRow + r - start) * dim);
        this.#checkFinite(out, outRow + r - start, stop - r, (i) => r + i);
      }
    }
  }

  /**
   * Read the rows listed in `rows` (ascending, file-local) into consecutive rows of `out` from
   * `outRow`. Nearby rows are coalesced into one positioned read; far ones are read alone.
   */
  async readRowsAt(rows: ArrayLike<number>, out: Float32Array, outRow: number): Promise<void> {
    const { dim, dataOffset } = this.header;
    const rb = this.rowBytes;
    const scratch = this.#scratchBuffer();
    const maxRun = this.#chunkRows;
    const gapRows = Math.floor(GAP_BYTES / rb);
    let k = 0;
    while (k < rows.length) {
      const runStart = rows[k]!;
      let last = k;
      while (
        last + 1 < rows.length &&
        rows[last + 1]! - rows[last]! - 1 <= gapRows &&
        rows[last + 1]! - runStart < maxRun
      ) {
        last++;
      }
      const runEnd = rows[last]! + 1;
      if (runStart < 0 || runEnd > this.header.rows) {
        throw new RangeError(`npy read: ${this.source.name}: row ${runEnd - 1} outside [0, ${this.header.rows})`);
      }
      await this.#readExact(dataOffset + runStart * rb, scratch.subarray(0, (runEnd - runStart) * rb));
      for (let j = k; j <= last; j++) {
        this.#decode(scratch, (rows[j]! - runStart) * rb, 1, out, (outRow + j) * dim);
      }
      k = last + 1;
    }
    this.#checkFinite(out, outRow, rows.length, (i) => rows[i]!);
  }

  #checkFinite(out: Float32Array, outRow: number, count: number, fileRow: (i: number) => number): void {
    const dim = this.header.dim;
    const bad = firstNonFinite(out, outRow * dim, (outRow + count) * dim, this.#nonFiniteScan);
    if (bad < 0) return;
    const i = Math.floor(bad / dim) - outRow;
    const row = fileRow(i);
    throw new EmbeddingReadError(
      `npy data: ${this.source.name}: row ${row} has ${out[bad]} at component ${bad % dim} (expected finite values; NaN/Inf poison k-means training)`,
      { file: this.source.name, row },
    );
  }

  /** Close the underlying source (idempotent). */
  close(): Promise<void> {
    return this.source.close?.() ?? Promise.resolve();
  }
}
