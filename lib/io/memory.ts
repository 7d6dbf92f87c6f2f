/**
 * An in-memory Float32Array seen as an embedding collection, so the build pipeline accepts
 * arrays without writing a temporary `emb.npy` first (which is what Python AutoFaiss does).
 */
import {
  type BatchOptions,
  checkRange,
  checkRows,
  type EmbeddingBatch,
  type EmbeddingCollection,
  type EmbeddingSample,
  type IdColumnSpec,
  type IdValues,
} from "./collection.ts";
import { EmbeddingReadError } from "./errors.ts";
import { firstNonFinite, type NonFiniteScan } from "./float.ts";
import { sampleRowIndices } from "./sample.ts";

/** Options of {@link collectionFromArray}. */
export interface ArrayCollectionOptions {
  /** Id values per column, one per row, carried along in batches. */
  ids?: IdValues;
  /** Name used in error messages (default "<in-memory array>"). */
  name?: string;
  /** A faster NaN/Inf scan for large ranges (see float.ts `firstNonFinite`). */
  nonFiniteScan?: NonFiniteScan;
}

const DEFAULT_NAME = "<in-memory array>";

class ArrayCollection implements EmbeddingCollection {
  readonly count: number;
  readonly dimension: number;
  readonly files = [];
  readonly idColumns: readonly IdColumnSpec[];
  readonly #data: Float32Array;
  readonly #ids: IdValues | undefined;
  readonly #name: string;
  readonly #nonFiniteScan: NonFiniteScan | undefined;

  constructor(data: Float32Array, dim: number, options: ArrayCollectionOptions) {
    this.#nonFiniteScan = options.nonFiniteScan;
    this.#name = options.name ?? DEFAULT_NAME;
    this.#data = data;
    this.dimension = dim;
    this.count = data.length / dim;
    this.#ids = options.ids;
    this.idColumns = Object.keys(options.ids ?? {}).map((name) => ({ name }));
  }

  /** Copy rows (the caller may normalise in place; the user's array must not change). */
  #copy(rows: ArrayLike<number>, out: Float32Array): void {
    const d = this.dimension;
    for (let k = 0; k < rows.length; k++) out.set(this.#data.subarray(rows[k]! * d, (rows[k]! + 1) * d), k * d);
  }

  #check(out: Float32Array, rowOf: (k: number) => number): void {
    const bad = firstNonFinite(out, 0, out.length, this.#nonFiniteScan);
    if (bad < 0) return;
    const row = rowOf(Math.floor(bad / this.dimension));
    throw new EmbeddingReadError(
      `embedding array: ${this.#name}: row ${row} has ${out[bad]} at component ${bad % this.dimension} (expected finite values; NaN/Inf poison k-means training)`,
      { file: this.#name, row },
    );
  }

  #idsOf(count: number, rowOf: (k: number) => number): IdValues | undefined {
    if (!this.#ids) return undefined;
    const out: IdValues = {};
    for (const [name, values] of Object.entries(this.#ids)) out[name] = Array.from({ length: count }, (_, k) => values[rowOf(k)]);
    return out;
  }

  async *batches(maxRows: number, options: BatchOptions = {}): AsyncGenerator<EmbeddingBatch> {
    checkRows("maxRows", maxRows, 1);
    const { start = 0, end = this.count, reuse = false } = options;
    checkRange(start, end, this.count);
    const shared = reuse ? new Float32Array(Math.min(maxRows, end - start) * this.dimension) : undefined;
    for (let s = start; s < end; s += maxRows) yield this.#batch(s, Math.min(end, s + maxRows), shared);
  }

  #batch(start: number, end: number, shared?: Float32Array): EmbeddingBatch {
    const d = this.dimension;
    const src = this.#data.subarray(start * d, end * d);
    let vectors: Float32Array;
    if (shared) {
      vectors = shared.subarray(0, src.length);
      vectors.set(src);
    } else vectors = src.slice();
    this.#check(vectors, (k) => start + k);
    const rows = end - start;
    const ids = this.#idsOf(rows, (k) => start + k);
    return ids ? { vectors, rows, startId: start, ids } : { vectors, rows, startId: start };
  }

  // async so that argument and data errors surface as rejections, as with file collections
  async read(start: number, end: number): Promise<EmbeddingBatch> {
    checkRange(start, end, this.count);
    return this.#batch(start, end);
  }

  async sample(n: number, seed: number): Promise<EmbeddingSample> {
    checkRows("sample size", n, 0);
    const positions = sampleRowIndices(this.count, n, seed);
    const vectors = new Float32Array(positions.length * this.dimension);
    this.#copy(positions, vectors);
    this.#check(vectors, (k) => positions[k]!);
    const ids = this.#idsOf(positions.length, (k) => positions[k]!);
    return ids ? { vectors, rows: positions.length, positions, ids } : { vectors, rows: positions.length, positions };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Wrap `vectors` (row-major, `dim` values per row) as an {@link EmbeddingCollection}. Batches
 * and samples are copies; the array itself is never modified.
 *
 * @example
 * ```ts
 * const embs = collectionFromArray(new Float32Array(1000 * 64), 64);
 * embs.count; // 1000
 * ```
 */
export function collectionFromArray(vectors: Float32Array, dim: number, options: ArrayCollectionOptions = {}): EmbeddingCollection {
  const name = options.name ?? DEFAULT_NAME;
  if (!Number.isSafeInteger(dim) || dim < 1) {
    throw new EmbeddingReadError(`embedding array: ${name}: dimension must be an integer >= 1, got ${dim}`, { file: name });
  }
  if (vectors.length % dim !== 0) {
    throw new EmbeddingReadError(
      `embedding array: ${name}: length ${vectors.length} is not a multiple of dimension ${dim}`,
      { file: name },
    );
  }
  if (vectors.length === 0) {
    throw new EmbeddingReadError(`embedding files: no embeddings found in ${name} (the array has 0 rows)`, { file: name });
  }
  for (const [col, values] of Object.entries(options.ids ?? {})) {
    if (values.length !== vectors.length / dim) {
      throw new EmbeddingReadError(
        `embedding array: ${name}: id column '${col}' has ${values.length} values (expected ${vectors.length / dim}, one per row)`,
        { file: name, column: col },
      );
    }
  }
  return new ArrayCollection(vectors, dim, options);
}
