/**
 * What the library API accepts as embeddings: a folder or file, a list of them, or an in-memory
 * array; opened as one collection. Shared by build_index and score_index.
 */
import { type EmbeddingCollection, type OpenCollectionOptions, openCollection } from "./collection.ts";
import type { NonFiniteScan } from "./float.ts";
import { collectionFromArray } from "./memory.ts";

export type EmbeddingsInput = string | string[] | { vectors: Float32Array; dim: number };

/**
 * Opens `input`. Unset or empty optional options are left out, so the collection's own defaults
 * apply (column discovery, no id columns).
 */
export async function openEmbeddings(
  input: EmbeddingsInput,
  o: { fileFormat: string; embeddingColumnName?: string | null; idColumns?: string[] | null; nonFiniteScan?: NonFiniteScan },
): Promise<EmbeddingCollection> {
  if (typeof input === "string" || Array.isArray(input)) {
    const options: OpenCollectionOptions = { fileFormat: o.fileFormat };
    if (o.embeddingColumnName) options.embeddingColumnName = o.embeddingColumnName;
    if (o.idColumns?.length) options.idColumns = o.idColumns;
    if (o.nonFiniteScan) options.nonFiniteScan = o.nonFiniteScan;
    return await openCollection(input, options);
  }
  return collectionFromArray(input.vectors, input.dim, o.nonFiniteScan ? { nonFiniteScan: o.nonFiniteScan } : {});
}
