/**
 * The ids mapping: for each add batch, one parquet file
 * `part-{batch:08d}-{uuid}.parquet` in `ids_path` with the id columns followed by `i` (int64
 * global row number = FAISS label), so `label -> id` is a join on `i`, and reading the folder in
 * file-name order gives the rows back in order.
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import type { EmbeddingBatch, IdColumnSpec } from "./collection.ts";
import { describeIoError, EmbeddingReadError } from "./errors.ts";
import { type ParquetColumn, parquetFileBytes } from "./parquet.ts";
import { writeFileAtomic } from "./atomic_file.ts";

/** File name of batch `batchId`: `part-00000007-<uuid>.parquet` (Python uses uuid1; any uuid keeps names unique). */
export function idsFileName(batchId: number): string {
  return `part-${String(batchId).padStart(8, "0")}-${randomUUID()}.parquet`;
}

/**
 * Delete `idsPath` recursively and recreate it empty, as AutoFaiss does before writing ids.
 * Refuses the filesystem root and the current directory, where a typo would be destructive.
 */
export async function resetIdsFolder(idsPath: string): Promise<void> {
  const abs = path.resolve(idsPath);
  if (abs === path.parse(abs).root || abs === process.cwd()) {
    throw new EmbeddingReadError(`ids mapping: ${abs}: refusing to delete this folder (expected a dedicated ids_path)`, {
      file: abs,
    });
  }
  try {
    await fs.promises.rm(abs, { recursive: true, force: true });
    await fs.promises.mkdir(abs, { recursive: true });
  } catch (e) {
    throw new EmbeddingReadError(`ids mapping: ${abs}: cannot recreate folder (${describeIoError(e)})`, { file: abs, cause: e });
  }
}

/**
 * Write one batch's ids file atomically (temp name, then rename); returns its path.
 */
export async function writeIdsFile(
  idsPath: string,
  batchId: number,
  batch: Pick<EmbeddingBatch, "rows" | "startId" | "ids">,
  idColumns: readonly IdColumnSpec[],
): Promise<string> {
  const bytes = idsParquetBytes(idsPath, batchId, batch, idColumns);
  const final = path.join(idsPath, idsFileName(batchId));
  try {
    writeFileAtomic(final, bytes, { createFolder: false });
  } catch (e) {
    throw new EmbeddingReadError(`ids mapping: ${final}: cannot write (${describeIoError(e)})`, { file: final, cause: e });
  }
  return final;
}

/**
 * The parquet bytes of one ids file: the id columns, then `i` (startId … startId + rows − 1).
 * `where` and `batchId` name the file in errors.
 */
export function idsParquetBytes(
  where: string,
  batchId: number,
  batch: Pick<EmbeddingBatch, "rows" | "startId" | "ids">,
  idColumns: readonly IdColumnSpec[],
): Uint8Array {
  const idsPath = where;
  const columns: ParquetColumn[] = [];
  for (const spec of idColumns) {
    const values = batch.ids?.[spec.name];
    if (!values || values.length !== batch.rows) {
      throw new EmbeddingReadError(
        `ids mapping: ${idsPath}: batch ${batchId} has ${values?.length ?? 0} values for id column '${spec.name}' (expected ${batch.rows})`,
        { file: idsPath, column: spec.name },
      );
    }
    columns.push(spec.type ? { name: spec.name, data: values, type: spec.type } : { name: spec.name, data: values });
  }
  const i = new BigInt64Array(batch.rows);
  for (let k = 0; k < batch.rows; k++) i[k] = BigInt(batch.startId + k);
  columns.push({ name: "i", data: i, type: "INT64" });
  return new Uint8Array(parquetFileBytes(columns));
}

/**
 * Writes one ids file per batch, numbering batches from 0.
 *
 * @example
 * ```ts
 * await resetIdsFolder("ids/");
 * const ids = new IdsWriter("ids/", embs.idColumns);
 * for await (const b of embs.batches(100_000)) { index.add(b.vectors); await ids.write(b); }
 * ```
 */
export class IdsWriter {
  readonly idsPath: string;
  readonly idColumns: readonly IdColumnSpec[];
  #next = 0;

  constructor(idsPath: string, idColumns: readonly IdColumnSpec[]) {
    this.idsPath = idsPath;
    this.idColumns = idColumns;
  }

  /** Files written so far. */
  get batches(): number {
    return this.#next;
  }

  /** Write the ids of `batch` as the next part file. */
  write(batch: Pick<EmbeddingBatch, "rows" | "startId" | "ids">): Promise<string> {
    return writeIdsFile(this.idsPath, this.#next++, batch, this.idColumns);
  }
}
