/**
 * Ground-truth cache of `score_index`, fixed: Python stores `small_ground_truth_test.gt`
 * inside the embeddings folder and reuses it blindly, so it needs write access to the data and goes
 * stale when the data changes. Here the file lives in a cache folder (never the data folder) under a
 * name that is the sha256 of everything the neighbours depend on: each file's location, size, mtime
 * and row count, the dimension, the metric, k and the number of queries.
 *
 * The payload is Python's: a numpy `.npy` of int32, shape (nq, k), -1 padded, with the `.gt`
 * extension so that even a cache folder pointed into a data folder never matches the `*.npy` glob.
 */
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import type { CollectionFile } from "../io/collection.ts";
import { writeFileAtomic } from "../io/atomic_file.ts";
import { npyHeader } from "../io/npy_writer.ts";

/** Bumped when the key material or the payload changes meaning. */
const CACHE_FORMAT = "autofaiss-ground-truth-v1";

/**
 * The cache folder: `$XDG_CACHE_HOME/autofaiss` when XDG_CACHE_HOME is an absolute path (XDG Base
 * Directory spec: relative values are ignored), else `$HOME/.cache/autofaiss`.
 * HOME comes from the environment: Deno's `os.homedir()` needs an extra permission.
 *
 * @example defaultCacheDir({ XDG_CACHE_HOME: "/var/cache" }) // "/var/cache/autofaiss"
 */
export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && xdg.startsWith("/")) return join(xdg, "autofaiss");
  const home = env.HOME || env.USERPROFILE;
  if (!home) throw new Error("ground-truth cache: neither XDG_CACHE_HOME nor HOME is set; pass cache_dir or use_cache=False");
  return join(home, ".cache", "autofaiss");
}

/** What the ground truth depends on besides the files. */
export interface GroundTruthKeyParts {
  files: readonly CollectionFile[];
  /** `npy` or `parquet` */
  fileFormat: string;
  /** parquet column asked for (null: found automatically) */
  embeddingColumn: string | null;
  count: number;
  dimension: number;
  metric: "ip" | "l2";
  k: number;
  nq: number;
}

/**
 * The cache file name for these inputs, or null when a file is not local (http, s3): without a size
 * and mtime we cannot tell that it changed, so those collections are not cached.
 *
 * @example groundTruthFileName(parts) // "ground_truth-3f1c…e9.gt"
 */
export function groundTruthFileName(parts: GroundTruthKeyParts): string | null {
  const files: [string, number, number, number][] = [];
  for (const f of parts.files) {
    const path = localPath(f.location);
    if (path === null) return null;
    const st = statSync(path);
    files.push([path, st.size, st.mtimeMs, f.rows]);
  }
  const material = JSON.stringify({
    format: CACHE_FORMAT,
    files,
    fileFormat: parts.fileFormat,
    embeddingColumn: parts.embeddingColumn,
    count: parts.count,
    dimension: parts.dimension,
    metric: parts.metric,
    k: parts.k,
    nq: parts.nq,
  });
  return `ground_truth-${createHash("sha256").update(material).digest("hex")}.gt`;
}

function localPath(location: string): string | null {
  if (location.startsWith("file://")) return decodeURIComponent(new URL(location).pathname);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) return null;
  return location;
}

/** The .npy header of an (nq × k) little-endian int32 C-order array (format 1.0). */
export function npyInt32Header(nq: number, k: number): Uint8Array {
  return npyHeader(nq, k, "<i4");
}

/** Writes `labels` (nq × k int32) as .npy to `path`, atomically. */
export function writeGroundTruth(path: string, labels: Int32Array, nq: number, k: number): void {
  if (labels.length !== nq * k) throw new RangeError(`ground-truth cache: ${labels.length} labels for nq=${nq} × k=${k}`);
  const header = npyInt32Header(nq, k);
  const out = new Uint8Array(header.length + labels.length * 4);
  out.set(header);
  const view = new DataView(out.buffer, header.length);
  for (let i = 0; i < labels.length; i++) view.setInt32(i * 4, labels[i], true);
  writeFileAtomic(path, out);
}

/**
 * Reads a cached (nq × k) ground truth, or null when the file is missing. A file that is not exactly
 * what {@link writeGroundTruth} writes for this shape is reported through `invalid` and ignored.
 */
export function readGroundTruth(path: string, nq: number, k: number, invalid?: (why: string) => void): Int32Array | null {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return null;
    throw e;
  }
  const header = npyInt32Header(nq, k);
  const expected = header.length + nq * k * 4;
  if (bytes.length !== expected || !header.every((b, i) => bytes[i] === b)) {
    invalid?.(`${path}: ${bytes.length} bytes, expected an int32 .npy of shape (${nq}, ${k}) (${expected} bytes)`);
    return null;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + header.length, nq * k * 4);
  const labels = new Int32Array(nq * k);
  for (let i = 0; i < labels.length; i++) labels[i] = view.getInt32(i * 4, true);
  return labels;
}
