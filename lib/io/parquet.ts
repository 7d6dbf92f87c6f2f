/**
 * Parquet embeddings through hyparquet (the only module that imports hyparquet or
 * hyparquet-writer). The embedding column is a list of float/double/float16 (Arrow's
 * fixed-size lists are stored as parquet lists too); optional id columns are read alongside.
 * Row counts come from the footer alone; data is decoded one row group (or, when the file has
 * an offset index, one bounded slice of pages) at a time.
 */
import { type FileMetaData, parquetMetadataAsync, parquetRead, parquetSchema, type SchemaTree, snappyUncompress } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { parquetWriteBuffer } from "hyparquet-writer";
import { EmbeddingReadError } from "./errors.ts";
import { firstNonFinite, type NonFiniteScan } from "./float.ts";
import { decodeFloatListChunk, type DecodeScratch, type Decompressor } from "./parquet_fast.ts";
import { type ByteSource, readInto } from "./source.ts";

/** Id column values, by column name, in row order. */
export type IdValues = Record<string, unknown[]>;

/** An id column and the hyparquet-writer type that writes its values back unchanged. */
export interface IdColumnSpec {
  name: string;
  /** hyparquet-writer BasicType; undefined lets the writer infer it from the values. */
  type?: string;
}

/** What the footer says about one parquet file, validated. */
export interface ParquetInfo {
  file: string;
  metadata: FileMetaData;
  rows: number;
  embeddingColumn: string;
  /** Physical element type of the embedding list (FLOAT, DOUBLE or FLOAT16). */
  elementType: string;
  idColumns: IdColumnSpec[];
  /** Max definition and repetition levels of the embedding leaf (for the fast decoder). */
  levels: { maxDef: number; maxRep: number };
  /** First row and row count of each row group. */
  rowGroups: { start: number; rows: number; hasOffsetIndex: boolean }[];
}

/** Options for {@link readParquetInfo}. */
export interface ParquetColumnOptions {
  /** Explicit embedding column; when absent, `embedding`, `embeddings` or the only list column. */
  embeddingColumnName?: string;
  idColumns?: string[];
  /** Bytes fetched from the end of the file for the footer (default 64 KiB). */
  initialFetchSize?: number;
}

const DEFAULT_COLUMNS = ["embedding", "embeddings"];
const EXPECTED_LIST = "expected list<float> or list<double>";
/** With an offset index, decode at most this many float32 bytes of a row group at once. */
const DECODE_BYTES = 64 * 1024 * 1024;
/** In sampled reads with an offset index, rows closer than this many float32 bytes share one decode. */
const SAMPLE_GAP_BYTES = 256 * 1024;

/** Human description of a top-level column's type, e.g. `list<FLOAT>`, `INT64`, `BYTE_ARRAY (UTF8)`. */
function describeColumn(node: SchemaTree): string {
  const el = node.element;
  const leaf = listLeaf(node);
  if (leaf) return `list<${describeColumn(leaf)}>`;
  if (node.children.length) return el.converted_type === "MAP" ? "map" : el.converted_type === "LIST" ? "list" : "struct";
  const annotation = el.logical_type?.type ?? el.converted_type;
  if (el.type === "BYTE_ARRAY" && (annotation === "STRING" || annotation === "UTF8")) return "STRING";
  return annotation ? `${el.type} (${annotation})` : String(el.type);
}

/**
 * The element node of a list column: 3-level (`group LIST { repeated group { element } }`),
 * legacy 2-level (`group LIST { repeated float }`) or a bare `repeated float` field.
 */
function listLeaf(node: SchemaTree): SchemaTree | undefined {
  const el = node.element;
  if (!node.children.length) {
    return el.repetition_type === "REPEATED" ? { ...node, element: { ...el, repetition_type: "REQUIRED" } } : undefined;
  }
  if (el.converted_type !== "LIST" && el.logical_type?.type !== "LIST") return undefined;
  if (node.children.length !== 1) return undefined;
  const repeated = node.children[0]!;
  if (repeated.element.repetition_type !== "REPEATED") return undefined;
  if (!repeated.children.length) return repeated;
  return repeated.children.length === 1 ? repeated.children[0] : undefined;
}

/** Max definition/repetition levels from a top-level column down to its list element. */
function leafLevels(node: SchemaTree): { maxDef: number; maxRep: number } {
  let maxDef = 0, maxRep = 0;
  for (let n: SchemaTree | undefined = node; n; n = n.children[0]) {
    if (n.element.repetition_type !== "REQUIRED") maxDef++;
    if (n.element.repetition_type === "REPEATED") maxRep++;
  }
  return { maxDef, maxRep };
}

/** FLOAT, DOUBLE or FLOAT16 when `node` is a list of floats, else undefined. */
function floatListType(node: SchemaTree): string | undefined {
  const leaf = listLeaf(node);
  if (!leaf || leaf.children.length) return undefined;
  const el = leaf.element;
  if (el.type === "FLOAT" || el.type === "DOUBLE") return el.type;
  if (el.type === "FIXED_LEN_BYTE_ARRAY" && el.logical_type?.type === "FLOAT16") return "FLOAT16";
  return undefined;
}

/** The hyparquet-writer type that round-trips what hyparquet decoded for this column. */
function writerType(node: SchemaTree): string | undefined {
  const el = node.element;
  if (node.children.length) return undefined;
  const logical = el.logical_type?.type;
  if (el.type === "BYTE_ARRAY") return logical === "STRING" || el.converted_type === "UTF8" ? "STRING" : logical || el.converted_type ? undefined : "BYTE_ARRAY";
  if (logical === "TIMESTAMP" || el.converted_type?.startsWith("TIMESTAMP")) return "TIMESTAMP";
  if (logical || el.converted_type) return undefined;
  if (["INT32", "INT64", "FLOAT", "DOUBLE", "BOOLEAN"].includes(String(el.type))) return el.type;
  return undefined;
}

/**
 * Read and validate the footer of a parquet source: row count, row groups, which column holds
 * the embeddings, the id columns. Reads only the footer bytes.
 */
export async function readParquetInfo(source: ByteSource, options: ParquetColumnOptions = {}): Promise<ParquetInfo> {
  const file = source.name;
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(source, { initialFetchSize: options.initialFetchSize ?? 64 * 1024 });
  } catch (e) {
    if (e instanceof EmbeddingReadError) throw e;
    throw new EmbeddingReadError(`parquet footer: ${file}: not a readable parquet file (${(e as Error).message})`, {
      file,
      cause: e,
    });
  }
  const tree = parquetSchema(metadata);
  const byName = new Map(tree.children.map((c) => [c.element.name, c]));
  const listing = tree.children.map((c) => `${c.element.name} (${describeColumn(c)})`).join(", ");
  const schemaError = (detail: string, column?: string) =>
    new EmbeddingReadError(`parquet schema: ${file}: ${detail}`, column === undefined ? { file } : { file, column });

  let column: SchemaTree | undefined;
  if (options.embeddingColumnName !== undefined) {
    column = byName.get(options.embeddingColumnName);
    if (!column) {
      throw schemaError(`embedding column '${options.embeddingColumnName}' not found (columns: ${listing})`, options.embeddingColumnName);
    }
  } else {
    // AutoFaiss's README says `embeddings`, its code `embedding`: accept both, or a lone list-of-float column
    column = DEFAULT_COLUMNS.map((n) => byName.get(n)).find((c) => c !== undefined);
    if (!column) {
      const lists = tree.children.filter((c) => floatListType(c) !== undefined);
      if (lists.length === 1) column = lists[0];
      else {
        const why = lists.length ? `${lists.length} list columns` : "no list column";
        throw schemaError(
          `no embedding column: no 'embedding' or 'embeddings' column and ${why} to fall back on (columns: ${listing}; pass embedding_column_name)`,
        );
      }
    }
  }
  const name = column!.element.name;
  const elementType = floatListType(column!);
  if (!elementType) throw schemaError(`column '${name}' is ${describeColumn(column!)} (${EXPECTED_LIST})`, name);

  const idColumns: IdColumnSpec[] = [];
  for (const id of options.idColumns ?? []) {
    const node = byName.get(id);
    if (!node) throw schemaError(`id column '${id}' not found (columns: ${listing})`, id);
    if (node.children.length || node.element.repetition_type === "REPEATED") {
      throw schemaError(`id column '${id}' is ${describeColumn(node)} (expected a flat column)`, id);
    }
    const type = writerType(node);
    idColumns.push(type === undefined ? { name: id } : { name: id, type });
  }

  const rowGroups: ParquetInfo["rowGroups"] = [];
  let start = 0;
  for (const rg of metadata.row_groups) {
    const rows = Number(rg.num_rows);
    const chunk = rg.columns.find((c) => c.meta_data?.path_in_schema[0] === name);
    rowGroups.push({ start, rows, hasOffsetIndex: Boolean(chunk?.offset_index_offset && chunk.offset_index_length) });
    start += rows;
  }
  const rows = Number(metadata.num_rows);
  if (rows !== start) {
    throw new EmbeddingReadError(
      `parquet footer: ${file}: num_rows ${rows} differs from the sum of row group sizes ${start}`,
      { file },
    );
  }
  return { file, metadata, rows, embeddingColumn: name, elementType, idColumns, levels: leafLevels(column!), rowGroups };
}

/**
 * The fast decoder's decompressors for one reader. The decoder consumes each page before
 * decompressing the next, so snappy can write into one buffer the reader reuses: hyparquet's JS
 * snappy into a reused buffer is ~5x faster on Bun than the wasm decompressor, which allocates and
 * copies every page.
 */
function fastDecompressors(): Partial<Record<string, Decompressor>> {
  let snappyOut = new Uint8Array(0);
  return {
    ...(compressors as Partial<Record<string, Decompressor>>),
    SNAPPY: (input, length) => {
      if (snappyOut.length < length) snappyOut = new Uint8Array(length);
      const out = snappyOut.subarray(0, length);
      snappyUncompress(input, out);
      return out;
    },
  };
}

/** A decoded run of rows of one row group. */
interface Decoded {
  start: number;
  end: number;
  vectors: Float32Array;
  ids: IdValues;
}

/**
 * Reads rows of one parquet file into float32 buffers. Keeps the last decoded run so streaming
 * with batches smaller than a row group decodes each row group once.
 */
export class ParquetReader {
  readonly source: ByteSource;
  readonly info: ParquetInfo;
  /** Expected list length, and the file it was learned from (for the mismatch message). */
  dim: number;
  dimSource: string;
  /**
   * Row groups with more float32 bytes than this are decoded in slices when they have an
   * offset index (to bound memory); smaller ones are decoded whole by the fast decoder.
   */
  decodeBytes = DECODE_BYTES;
  #cache: Decoded | undefined;
  // Reused across row groups by the fast path: fresh multi-MB buffers per row group cost as much
  // as decoding them (zeroing and page faults; Bun 1.4.5 especially).
  #chunkBytes = new Uint8Array(0);
  #vectors = new Float32Array(0);
  readonly #decompressors = fastDecompressors();
  readonly #scratch: DecodeScratch = { levels: new Uint8Array(0), indices: new Uint32Array(0) };

  readonly #nonFiniteScan: NonFiniteScan | undefined;

  /** `nonFiniteScan`: a faster NaN/Inf scan for large ranges (see float.ts `firstNonFinite`). */
  constructor(source: ByteSource, info: ParquetInfo, dim = 0, dimSource = "", nonFiniteScan?: NonFiniteScan) {
    this.#nonFiniteScan = nonFiniteScan;
    this.source = source;
    this.info = info;
    this.dim = dim;
    this.dimSource = dimSource || info.file;
  }

  get rows(): number {
    return this.info.rows;
  }

  /** Length of the first row's list: the dimension (decodes the first row only). */
  async firstRowLength(): Promise<number> {
    const rows = await this.#readRaw(0, 1);
    const v = rows[0]?.[0] as ArrayLike<number> | null | undefined;
    if (v === null || v === undefined) {
      throw this.#dataError(0, `column '${this.info.embeddingColumn}' is null (expected a list of floats)`);
    }
    if (v.length === 0) throw this.#dataError(0, `column '${this.info.embeddingColumn}' is an empty list (expected at least 1 value)`);
    return v.length;
  }

  #dataError(row: number, detail: string): EmbeddingReadError {
    return new EmbeddingReadError(`parquet data: ${this.info.file}: row ${row}: ${detail}`, {
      file: this.info.file,
      row,
      column: this.info.embeddingColumn,
    });
  }

  async #readRaw(rowStart: number, rowEnd: number, columns = [this.info.embeddingColumn, ...this.info.idColumns.map((c) => c.name)]): Promise<unknown[][]> {
    let rows: unknown[][] = [];
    try {
      await parquetRead({
        file: this.source,
        metadata: this.info.metadata,
        columns,
        rowStart,
        rowEnd,
        compressors,
        useOffsetIndex: true,
        rowFormat: "array",
        onComplete: (r: unknown[][]) => {
          rows = r;
        },
      });
    } catch (e) {
      if (e instanceof EmbeddingReadError) throw e;
      throw new EmbeddingReadError(
        `parquet data: ${this.info.file}: cannot decode rows ${rowStart}-${rowEnd} (${(e as Error).message})`,
        { file: this.info.file, cause: e },
      );
    }
    if (rows.length !== rowEnd - rowStart) {
      throw new EmbeddingReadError(
        `parquet data: ${this.info.file}: rows ${rowStart}-${rowEnd} decoded to ${rows.length} rows (expected ${rowEnd - rowStart})`,
        { file: this.info.file },
      );
    }
    return rows;
  }

  /**
   * Whole row group `g` through the fast decoder; undefined when its layout needs the general
   * path (nulls, ragged rows, unusual encodings).
   */
  async #decodeFast(g: number): Promise<Decoded | undefined> {
    const group = this.info.rowGroups[g]!;
    const rg = this.info.metadata.row_groups[g]!;
    const chunk = rg.columns.find((c) => c.meta_data?.path_in_schema[0] === this.info.embeddingColumn)?.meta_data;
    if (!chunk || (this.info.elementType !== "FLOAT" && this.info.elementType !== "DOUBLE")) return undefined;
    const offset = Number(chunk.dictionary_page_offset || chunk.data_page_offset);
    const size = Number(chunk.total_compressed_size);
    if (this.#chunkBytes.length < size) this.#chunkBytes = new Uint8Array(size);
    const bytes = this.#chunkBytes.subarray(0, size);
    if ((await readInto(this.source, offset, bytes)) !== size) return undefined;
    if (this.#vectors.length < group.rows * this.dim) this.#vectors = new Float32Array(group.rows * this.dim);
    let vectors: Float32Array | undefined;
    try {
      vectors = decodeFloatListChunk({
        out: this.#vectors,
        bytes,
        codec: chunk.codec,
        elementType: this.info.elementType,
        ...this.info.levels,
        rows: group.rows,
        dim: this.dim,
        compressors: this.#decompressors,
        scratch: this.#scratch,
      });
    } catch {
      vectors = undefined; // malformed for the fast path: let the general decoder report it
    }
    if (!vectors) return undefined;
    const start = group.start, end = group.start + group.rows;
    const ids: IdValues = {};
    if (this.info.idColumns.length) {
      const raw = await this.#readRaw(start, end, this.info.idColumns.map((c) => c.name));
      this.info.idColumns.forEach((c, k) => {
        ids[c.name] = raw.map((row) => row[k]);
      });
    }
    this.#checkFinite(vectors, start);
    return { start, end, vectors, ids };
  }

  #checkFinite(vectors: Float32Array, start: number): void {
    const bad = firstNonFinite(vectors, 0, vectors.length, this.#nonFiniteScan);
    if (bad >= 0) {
      const dim = this.dim;
      throw this.#dataError(
        start + Math.floor(bad / dim),
        `column '${this.info.embeddingColumn}' has ${vectors[bad]} at component ${bad % dim} (expected finite values; NaN/Inf poison k-means training)`,
      );
    }
  }

  /** Decode rows `[start, end)` (inside one row group) into float32 + ids, checking each row. */
  async #decode(start: number, end: number): Promise<Decoded> {
    const raw = await this.#readRaw(start, end);
    const dim = this.dim;
    const vectors = new Float32Array((end - start) * dim);
    const ids: IdValues = {};
    for (const c of this.info.idColumns) ids[c.name] = new Array(end - start);
    const col = this.info.embeddingColumn;
    for (let i = 0; i < raw.length; i++) {
      const row = raw[i]!;
      const v = row[0] as ArrayLike<unknown> | null | undefined;
      if (v === null || v === undefined) {
        throw this.#dataError(start + i, `column '${col}' is null (expected a list of ${dim} floats)`);
      }
      if (v.length !== dim) {
        throw this.#dataError(
          start + i,
          `column '${col}' has ${v.length} values (expected ${dim}, the dimension of ${this.dimSource})`,
        );
      }
      const o = i * dim;
      for (let j = 0; j < dim; j++) {
        const x = v[j];
        if (typeof x !== "number") {
          throw this.#dataError(start + i, `column '${col}' has ${x === null ? "a null" : typeof x} at component ${j} (expected a float)`);
        }
        vectors[o + j] = x;
      }
      for (let k = 0; k < this.info.idColumns.length; k++) ids[this.info.idColumns[k]!.name]![i] = row[k + 1];
    }
    this.#checkFinite(vectors, start);
    return { start, end, vectors, ids };
  }

  /**
   * The decoded run holding `row`: the whole row group (fast decoder first), or, for a row group
   * too big to decode at once that has an offset index, a bounded slice of its pages.
   */
  async #runFor(row: number, wantEnd: number): Promise<Decoded> {
    const c = this.#cache;
    if (c && row >= c.start && row < c.end) return c;
    const g = this.info.rowGroups.findIndex((rg) => row >= rg.start && row < rg.start + rg.rows);
    const group = this.info.rowGroups[g]!;
    const groupEnd = group.start + group.rows;
    this.#cache = undefined; // drop the old run before decoding the next one
    const maxRows = Math.max(1, Math.floor(this.decodeBytes / (4 * this.dim)));
    if (group.hasOffsetIndex && group.rows > maxRows) {
      this.#cache = await this.#decode(row, Math.min(groupEnd, wantEnd, row + maxRows));
    } else {
      this.#cache = (await this.#decodeFast(g)) ?? (await this.#decode(group.start, groupEnd));
    }
    return this.#cache;
  }

  /** Read rows `[start, end)` into `out` from row `outRow`; id values are appended to `ids`. */
  async readRows(start: number, end: number, out: Float32Array, outRow: number, ids?: IdValues): Promise<void> {
    const dim = this.dim;
    let r = start;
    while (r < end) {
      const run = await this.#runFor(r, end);
      const stop = Math.min(end, run.end);
      out.set(run.vectors.subarray((r - run.start) * dim, (stop - run.start) * dim), (outRow + r - start) * dim);
      if (ids) {
        for (const c of this.info.idColumns) {
          const src = run.ids[c.name]!;
          const dst = ids[c.name]!;
          for (let i = r - run.start; i < stop - run.start; i++) dst.push(src[i]);
        }
      }
      r = stop;
    }
  }

  /**
   * Read the rows listed in `rows` (ascending, file-local) into consecutive rows of `out`.
   * Per row group, only the span between its first and last wanted row is decoded.
   */
  async readRowsAt(rows: ArrayLike<number>, out: Float32Array, outRow: number, ids?: IdValues): Promise<void> {
    const dim = this.dim;
    let k = 0;
    while (k < rows.length) {
      const g = this.info.rowGroups.find((rg) => rows[k]! >= rg.start && rows[k]! < rg.start + rg.rows);
      if (!g) throw new RangeError(`parquet read: ${this.info.file}: row ${rows[k]} outside [0, ${this.info.rows})`);
      let last = k;
      while (last + 1 < rows.length && rows[last + 1]! < g.start + g.rows) last++;
      // with an offset index, far-apart rows are decoded as separate small runs of pages
      const gapRows = g.hasOffsetIndex ? Math.max(1, Math.floor(SAMPLE_GAP_BYTES / (4 * dim))) : Infinity;
      let j = k;
      while (j <= last) {
        let runLast = j;
        while (runLast < last && rows[runLast + 1]! - rows[runLast]! <= gapRows) runLast++;
        const run = await this.#runFor(rows[j]!, rows[runLast]! + 1);
        for (; j <= runLast && rows[j]! < run.end; j++) {
          const at = (rows[j]! - run.start) * dim;
          out.set(run.vectors.subarray(at, at + dim), (outRow + j) * dim);
          if (ids) for (const c of this.info.idColumns) ids[c.name]!.push(run.ids[c.name]![rows[j]! - run.start]);
        }
      }
      k = last + 1;
    }
  }

  /** Drop the decoded cache and close the source (idempotent). */
  close(): Promise<void> {
    this.#cache = undefined;
    this.#chunkBytes = new Uint8Array(0);
    this.#vectors = new Float32Array(0);
    return this.source.close?.() ?? Promise.resolve();
  }
}

/** A column to write with {@link parquetFileBytes}. */
export interface ParquetColumn {
  name: string;
  data: unknown[] | BigInt64Array | Float32Array | Float64Array | Int32Array;
  /** hyparquet-writer BasicType (e.g. STRING, INT64); inferred when absent. */
  type?: string;
}

/** Encode columns as one parquet file (snappy, one row group) in memory. */
export function parquetFileBytes(columns: ParquetColumn[]): ArrayBuffer {
  const rows = columns[0]?.data.length ?? 0;
  return parquetWriteBuffer({
    // deno-lint-ignore no-explicit-any
    columnData: columns.map((c) => ({ name: c.name, data: c.data as any, ...(c.type ? { type: c.type as any } : {}) })),
    rowGroupSize: Math.max(1, rows),
  });
}

/** Every row of a small parquet file (e.g. an ids mapping file) as objects keyed by column name. */
export async function readParquetRows(source: ByteSource): Promise<Record<string, unknown>[]> {
  const metadata = await parquetMetadataAsync(source);
  let rows: Record<string, unknown>[] = [];
  await parquetRead({ file: source, metadata, compressors, rowFormat: "object", onComplete: (r: Record<string, unknown>[]) => (rows = r) });
  return rows;
}
