/**
 * Writes 2-D little-endian float32 .npy files (format 1.0), atomically: rows are appended to a
 * temporary file that is renamed into place by `close()`. Used by tasks and tests that produce
 * embeddings; the reader side is ./npy.ts.
 */
import { AtomicFile } from "./atomic_file.ts";

/** The .npy header of a (rows × dim) C-order array, padded so data starts at a multiple of 64. */
export function npyHeader(rows: number, dim: number, descr: "<f4" | "<i4" = "<f4"): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${rows}, ${dim}), }`;
  const unpadded = 10 + dict.length + 1; // magic(6) + version(2) + len(2) + dict + "\n"
  const total = Math.ceil(unpadded / 64) * 64;
  const text = dict + " ".repeat(total - unpadded) + "\n";
  const out = new Uint8Array(total);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]); // \x93NUMPY v1.0
  new DataView(out.buffer).setUint16(8, text.length, true);
  out.set(new TextEncoder().encode(text), 10);
  return out;
}

export class NpyWriter {
  readonly #target: string;
  readonly #dim: number;
  readonly #rows: number;
  #file: AtomicFile | null;
  #written = 0;

  /** Opens `<path>` for exactly `rows` rows of `dim` float32 values. */
  constructor(path: string, rows: number, dim: number) {
    this.#target = path;
    this.#rows = rows;
    this.#dim = dim;
    this.#file = new AtomicFile(path);
    this.#file.write(npyHeader(rows, dim));
  }

  write(vectors: Float32Array): void {
    if (this.#file === null) throw new Error(`npy writer: ${this.#target}: already closed`);
    if (vectors.length % this.#dim !== 0) {
      throw new Error(`npy writer: ${this.#target}: ${vectors.length} values is not a multiple of dim ${this.#dim}`);
    }
    const rows = vectors.length / this.#dim;
    if (this.#written + rows > this.#rows) {
      throw new Error(`npy writer: ${this.#target}: more than the declared ${this.#rows} rows`);
    }
    // Float32Array is little-endian on every platform Bun and Deno run on (x86_64, aarch64).
    this.#file.write(new Uint8Array(vectors.buffer, vectors.byteOffset, vectors.byteLength));
    this.#written += rows;
  }

  /** Renames the file into place; throws (and removes the temporary file) if rows are missing. */
  close(): void {
    if (this.#file === null) return;
    const file = this.#file;
    this.#file = null;
    if (this.#written !== this.#rows) {
      file.abort();
      throw new Error(`npy writer: ${this.#target}: wrote ${this.#written} rows, declared ${this.#rows}`);
    }
    file.commit();
  }

  /** Abandons the file: nothing half-written is left behind. */
  abort(): void {
    this.#file?.abort();
    this.#file = null;
  }
}

/** Writes a whole in-memory matrix. */
export function writeNpy(path: string, vectors: Float32Array, dim: number): void {
  const w = new NpyWriter(path, vectors.length / dim, dim);
  try {
    w.write(vectors);
    w.close();
  } catch (e) {
    w.abort();
    throw e;
  }
}
