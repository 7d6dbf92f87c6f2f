/**
 * Query vectors for `autofaiss search`: a .npy or .parquet file streamed in bounded batches by the
 * embedding readers, or JSON arrays read from stdin (`-`): one array per line, or one array of
 * arrays. Every query must have the index's dimension and finite values.
 */
import process from "node:process";
import { type EmbeddingCollection, openCollection } from "./collection.ts";
import { EmbeddingReadError } from "./errors.ts";
import { firstNonFinite } from "./float.ts";

/** The `--queries` value that means "JSON arrays on stdin". */
export const STDIN = "-";

/** Which reader a `--queries` path needs, from its extension. */
export function queriesFormat(path: string): "npy" | "parquet" | "stdin" {
  if (path === STDIN) return "stdin";
  if (path.endsWith(".npy")) return "npy";
  if (path.endsWith(".parquet")) return "parquet";
  throw new EmbeddingReadError(`queries: ${path}: expected a .npy or .parquet file, or - for JSON arrays on stdin`, { file: path });
}

/** Opens a .npy or .parquet query file as a collection (the caller closes it). */
export async function openQueryFile(path: string): Promise<EmbeddingCollection> {
  const format = queriesFormat(path);
  if (format === "stdin") throw new RangeError("queries: openQueryFile takes a file, not stdin");
  return await openCollection(path, { fileFormat: format });
}

/**
 * Parses JSON query text: one array of arrays, or one array per line (blank lines skipped); a single
 * flat array is one query. Returns the vectors row-major and their dimension.
 *
 * @example parseJsonQueries("[1,2]\n[3,4]\n") // { vectors: Float32Array [1,2,3,4], dim: 2, rows: 2 }
 */
export function parseJsonQueries(text: string, source = "stdin"): { vectors: Float32Array; dim: number; rows: number } {
  const rowsOut: unknown[] = [];
  const lineOf: number[] = [];
  let whole: unknown;
  let parsedWhole = false;
  try {
    whole = JSON.parse(text);
    parsedWhole = true;
  } catch {
    // not one JSON document: one array per line
  }
  if (parsedWhole) {
    if (!Array.isArray(whole)) throw queryError(source, "expected a JSON array of numbers or an array of arrays");
    if (whole.length > 0 && Array.isArray(whole[0])) {
      whole.forEach((row, i) => {
        rowsOut.push(row);
        lineOf.push(i);
      });
    } else {
      rowsOut.push(whole);
      lineOf.push(0);
    }
  } else {
    text.split("\n").forEach((line, i) => {
      if (line.trim() === "") return;
      try {
        rowsOut.push(JSON.parse(line));
      } catch {
        throw queryError(source, `line ${i + 1} is not JSON (expected an array of numbers): ${clip(line)}`);
      }
      lineOf.push(i);
    });
  }
  if (rowsOut.length === 0) throw queryError(source, "no query (expected JSON arrays of numbers)");
  const where = (q: number) => (parsedWhole && rowsOut.length > 1 ? `query ${q}` : parsedWhole ? "the query" : `line ${lineOf[q] + 1}`);
  const first = rowsOut[0];
  if (!Array.isArray(first) || first.length === 0) throw queryError(source, `${where(0)}: expected a non-empty array of numbers`);
  const dim = first.length;
  const vectors = new Float32Array(rowsOut.length * dim);
  rowsOut.forEach((row, q) => {
    if (!Array.isArray(row)) throw queryError(source, `${where(q)}: expected an array of numbers, got ${clip(JSON.stringify(row))}`);
    if (row.length !== dim) throw queryError(source, `${where(q)}: has ${row.length} values, expected ${dim} like the first query`);
    row.forEach((v, j) => {
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw queryError(source, `${where(q)}: value ${j} is ${JSON.stringify(v)} (expected a finite number)`);
      }
      vectors[q * dim + j] = v;
    });
    const bad = firstNonFinite(vectors, q * dim, (q + 1) * dim);
    if (bad >= 0) throw queryError(source, `${where(q)}: value ${bad - q * dim} overflows float32 (expected a finite float32)`);
  });
  return { vectors, dim, rows: rowsOut.length };
}

/** Reads all of stdin as UTF-8 text. */
export async function readStdinText(): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of process.stdin) chunks.push(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk);
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

function queryError(source: string, detail: string): EmbeddingReadError {
  return new EmbeddingReadError(`queries: ${source}: ${detail}`, { file: source });
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
