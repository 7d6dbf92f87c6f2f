/**
 * Reads the ids mapping back (the files lib/io/ids.ts writes: id columns, then `i`, the FAISS
 * label): turns search labels into the user's original ids. Only the labels asked for are kept,
 * and files are read one at a time, so memory is bounded by one file plus the answer.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describeIoError, EmbeddingReadError } from "./errors.ts";
import { readParquetRows } from "./parquet.ts";
import { FileSource } from "./source.ts";

/** The label column of the mapping files. */
const LABEL_COLUMN = "i";

/**
 * Original id of each wanted label: the value of the single id column, or an object of all id
 * columns when there are several. Fails naming the folder when a label has no row.
 *
 * @example const ids = await lookupIds("out/ids", new Set([0, 17])); ids.get(17) // "doc-17"
 */
export async function lookupIds(idsPath: string, labels: ReadonlySet<number>): Promise<Map<number, unknown>> {
  const dir = path.resolve(idsPath);
  let names: string[];
  try {
    names = (await fs.promises.readdir(dir)).filter((n) => n.endsWith(".parquet")).sort();
  } catch (e) {
    throw new EmbeddingReadError(`ids mapping: ${dir}: cannot list folder (${describeIoError(e)})`, { file: dir, cause: e });
  }
  if (names.length === 0) throw new EmbeddingReadError(`ids mapping: ${dir}: no .parquet mapping file (expected the ids_path of the build)`, { file: dir });
  const found = new Map<number, unknown>();
  for (const name of names) {
    const file = path.join(dir, name);
    const source = await FileSource.open(file);
    let rows: Record<string, unknown>[];
    try {
      rows = await readParquetRows(source);
    } catch (e) {
      throw new EmbeddingReadError(`ids mapping: ${file}: cannot decode (${(e as Error).message})`, { file, cause: e });
    } finally {
      await source.close();
    }
    for (const row of rows) {
      if (!(LABEL_COLUMN in row)) {
        throw new EmbeddingReadError(`ids mapping: ${file}: no column '${LABEL_COLUMN}' (expected id columns then the label column i)`, { file });
      }
      const label = Number(row[LABEL_COLUMN]);
      if (!labels.has(label)) continue;
      const cols = Object.keys(row).filter((c) => c !== LABEL_COLUMN);
      found.set(label, cols.length === 1 ? jsonSafe(row[cols[0]]) : Object.fromEntries(cols.map((c) => [c, jsonSafe(row[c])])));
    }
  }
  for (const label of labels) {
    if (!found.has(label)) throw new EmbeddingReadError(`ids mapping: ${dir}: no row with i=${label}`, { file: dir });
  }
  return found;
}

/** int64 values become numbers when exact, decimal strings otherwise (JSON has no 64-bit ints). */
function jsonSafe(v: unknown): unknown {
  if (typeof v !== "bigint") return v;
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}
