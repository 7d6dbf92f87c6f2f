/**
 * `autofaiss search` (the Python tool has none): k nearest neighbours of query vectors in one index
 * file or in the N parts `P01 … PNN` of a split build, one JSON line per query, in query order:
 * `{"ids":[…],"distances":[…]}`.
 *
 * Over N parts, each part's top-k is merged by distance (ties by smaller id), which is what one
 * index holding the same inverted lists returns. Parts are opened one at a time for each chunk of
 * queries, so only one part is in memory (or mapped, with `mmap`) at once; queries are searched in
 * chunks small enough that the running top-k and the chunk's vectors stay bounded.
 *
 * @example
 * await searchIndex({ indexPath: "out/knn.index", queries: "q.npy", k: 10, write: (l) => console.log(l) });
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Index, type Metric } from "../../ffi/faiss.ts";
import { EmbeddingReadError } from "../io/errors.ts";
import { lookupIds } from "../io/ids_lookup.ts";
import { recoverPublish } from "../output/publish.ts";
import { openQueryFile, parseJsonQueries, queriesFormat, readStdinText } from "../io/queries.ts";
import { resolvePartNames } from "../plan/parts.ts";
import { PartMerger, type PartResult } from "../measure/merge_parts.ts";

/** A search input the user can fix: the CLI prints its message as one line. */
export class SearchError extends Error {
  override readonly name = "SearchError";
}

/** Bound on (queries × k) results held per chunk: 16M entries = 192 MB of distances and labels. */
const CHUNK_RESULTS = 16 * 1024 * 1024;
/** Bound on the query vectors held per chunk: 256 MB of float32. */
const CHUNK_QUERY_BYTES = 256 * 1024 * 1024;

/** Queries per chunk for dimension d and k results: both bounds above hold, at least one query. */
export function queriesPerChunk(d: number, k: number): number {
  return Math.max(1, Math.min(Math.floor(CHUNK_RESULTS / k), Math.floor(CHUNK_QUERY_BYTES / (4 * d))));
}

export interface SearchOptions {
  /** One index file, or the base name of parts `indexPath01 …`. */
  indexPath: string;
  /** A .npy or .parquet file, or `-` for JSON arrays on stdin. */
  queries: string;
  k: number;
  /** Search parameters applied to every part before searching, e.g. "nprobe=16". */
  indexParam?: string | null;
  /** The ids mapping folder of the build: output original ids instead of row numbers. */
  idsPath?: string | null;
  /** Memory-map the index files (IVF only; inverted lists stay on disk). */
  mmap?: boolean;
  /** Where each JSON line goes (without newline). */
  write: (line: string) => void;
  /** Queries searched at once (default {@link queriesPerChunk}); parts are reopened for each chunk. */
  chunkRows?: number;
  /** Stdin text for `queries: "-"` (default: the process's stdin). */
  readStdin?: () => Promise<string>;
}

/** The files of `indexPath`: itself, or its parts in order. Errors name the path. */
export function indexFiles(indexPath: string): string[] {
  const abs = path.resolve(indexPath);
  const dir = path.dirname(abs);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    throw new SearchError(`index_path: ${abs}: folder ${dir} does not exist`);
  }
  const r = resolvePartNames(path.basename(abs), names);
  if (r.kind === "single") {
    if (fs.statSync(abs).isDirectory()) throw new SearchError(`index_path: ${abs} is a folder (expected an index file or the base name of parts)`);
    return [abs];
  }
  if (r.kind === "error") throw new SearchError(`index_path: ${path.join(dir, r.message)}`);
  return r.suffixes.map((s) => abs + s);
}

/** Chunks of queries, each row-major with its dimension. */
async function* queryChunks(o: SearchOptions, rowsPerChunk: (d: number) => number): AsyncGenerator<{ vectors: Float32Array; dim: number; rows: number; source: string }> {
  if (queriesFormat(o.queries) === "stdin") {
    const text = await (o.readStdin ?? readStdinText)();
    const q = parseJsonQueries(text);
    const step = rowsPerChunk(q.dim);
    for (let i = 0; i < q.rows; i += step) {
      const rows = Math.min(step, q.rows - i);
      yield { vectors: q.vectors.subarray(i * q.dim, (i + rows) * q.dim), dim: q.dim, rows, source: "stdin" };
    }
    return;
  }
  await using coll = await openQueryFile(o.queries);
  if (coll.count === 0) throw new EmbeddingReadError(`queries: ${path.resolve(o.queries)}: no query rows`, { file: o.queries });
  for await (const b of coll.batches(rowsPerChunk(coll.dimension))) {
    yield { vectors: b.vectors, dim: coll.dimension, rows: b.rows, source: path.resolve(o.queries) };
  }
}

/**
 * Searches and writes one JSON line per query. Returns the number of queries and parts searched.
 * A single index file's results are FAISS's own; parts are merged as described above.
 */
export async function searchIndex(o: SearchOptions): Promise<{ queries: number; parts: number }> {
  if (!Number.isInteger(o.k) || o.k < 1) throw new SearchError(`k: expected an integer >= 1, got ${o.k}`);
  // A build killed while publishing left a journal: finish it, so the files read are one complete set.
  recoverPublish(path.resolve(o.indexPath));
  const files = indexFiles(o.indexPath);
  queriesFormat(o.queries); // a bad extension fails before any index is read
  let total = 0;
  // A single file stays open across chunks; parts are reopened per chunk (one in memory at a time).
  let single: Index | undefined;
  // Parts: the first part, already read for its dimension, serves the first chunk instead of being read twice.
  let firstPart: Index | undefined;
  let reference: { file: string; d: number; metric: Metric } | undefined;
  const open = (file: string): Index => {
    let index: Index;
    try {
      index = Index.read(file, { mmap: o.mmap ?? false });
    } catch (e) {
      throw new SearchError(`index_path: ${file}: cannot read index (${(e as Error).message})`);
    }
    try {
      if (reference === undefined) reference = { file, d: index.d, metric: index.metric };
      else if (index.d !== reference.d || index.metric !== reference.metric) {
        throw new SearchError(
          `index_path: ${file}: dimension ${index.d} metric ${index.metric}, but ${reference.file} has dimension ${reference.d} metric ${reference.metric} (parts must match)`,
        );
      }
      if (o.indexParam) index.setParameters(o.indexParam);
      return index;
    } catch (e) {
      index.free();
      throw e;
    }
  };
  try {
    // The index dimension is needed to size chunks and check queries: read it from the first file.
    const first = open(files[0]);
    const d = first.d;
    if (files.length === 1) single = first;
    else firstPart = first;
    for await (const chunk of queryChunks(o, () => o.chunkRows ?? queriesPerChunk(d, o.k))) {
      if (chunk.dim !== d) {
        throw new SearchError(`queries: ${chunk.source}: dimension ${chunk.dim}, but the index ${files[0]} has dimension ${d}`);
      }
      let result: PartResult;
      if (single) {
        result = single.search(chunk.vectors, o.k);
      } else {
        const merger = new PartMerger(chunk.rows, o.k, reference!.metric);
        for (const file of files) {
          const part = file === files[0] && firstPart ? firstPart : open(file);
          if (part === firstPart) firstPart = undefined;
          try {
            merger.push(part.search(chunk.vectors, o.k));
          } finally {
            part.free();
          }
        }
        result = merger.result();
      }
      await writeLines(o, result, chunk.rows);
      total += chunk.rows;
    }
  } finally {
    single?.free();
    firstPart?.free();
  }
  return { queries: total, parts: files.length };
}

async function writeLines(o: SearchOptions, r: PartResult, rows: number): Promise<void> {
  const k = r.k;
  let ids: Map<number, unknown> | undefined;
  if (o.idsPath) {
    const wanted = new Set<number>();
    for (const l of r.labels) if (l >= 0n) wanted.add(Number(l));
    ids = await lookupIds(o.idsPath, wanted);
  }
  for (let q = 0; q < rows; q++) {
    const labels = Array.from(r.labels.subarray(q * k, (q + 1) * k), Number);
    const out = ids ? labels.map((l) => (l < 0 ? null : ids!.get(l))) : labels;
    o.write(JSON.stringify({ ids: out, distances: Array.from(r.distances.subarray(q * k, (q + 1) * k)) }));
  }
}
