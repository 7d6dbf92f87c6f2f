/**
 * What the library API accepts as embeddings: a folder or file, a list of them, or an in-memory
 * array; opened as one collection. Shared by build_index and score_index.
 */
import { statSync } from "node:fs";
import { type CollectionFile, type EmbeddingCollection, type OpenCollectionOptions, openCollection } from "./collection.ts";
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

/** Size and modification time of each local input file, taken when the build opens them. */
export interface InputSnapshot {
  files: Array<{ path: string; size: number; mtimeMs: number }>;
}

/** The local path of a location (`/x`, `file:///x`), or null for http(s), s3 and other URLs. */
function localPath(location: string): string | null {
  if (location.startsWith("file://")) return decodeURIComponent(new URL(location).pathname);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) return null;
  return location;
}

/** Records the local files of a collection (remote files have no reliable size and mtime here). */
export function snapshotInputs(files: readonly CollectionFile[]): InputSnapshot {
  const out: InputSnapshot["files"] = [];
  for (const f of files) {
    const path = localPath(f.location);
    if (path === null) continue;
    const st = statSync(path);
    out.push({ path, size: st.size, mtimeMs: st.mtimeMs });
  }
  return { files: out };
}

/**
 * The first input file that changed (or vanished) since `snapshot`, as an error message naming it,
 * or null: an index built from a file that changed while it was read matches neither version.
 */
export function changedInput(snapshot: InputSnapshot): string | null {
  for (const f of snapshot.files) {
    let st;
    try {
      st = statSync(f.path);
    } catch (e) {
      return `embeddings: ${f.path} disappeared during the build (${(e as Error).message}); nothing was published`;
    }
    if (st.size !== f.size || st.mtimeMs !== f.mtimeMs) {
      return `embeddings: ${f.path} changed during the build (size ${f.size} -> ${st.size} bytes, ` +
        `mtime ${new Date(f.mtimeMs).toISOString()} -> ${new Date(st.mtimeMs).toISOString()}); nothing was published`;
    }
  }
  return null;
}
