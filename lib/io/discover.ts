/**
 * Which files make up an embedding collection: every `*.<format>` file under each
 * folder, recursively (depth 0 included, unlike fsspec before 2023), single files as given, all
 * globally sorted by full path so `10.npy` comes before `2.npy` exactly as AutoFaiss orders them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describeIoError, EmbeddingReadError } from "./errors.ts";
import { listS3 } from "./source_remote.ts";

/** Embedding file formats. */
export type FileFormat = "npy" | "parquet";

/** Check a user-given file_format value. */
export function checkFileFormat(value: string): FileFormat {
  if (value === "npy" || value === "parquet") return value;
  throw new EmbeddingReadError(`embedding files: file_format '${value}' is not supported (expected npy or parquet)`, {
    file: "",
  });
}

/** Recursive walk collecting files with `ext`; follows symlinks, each real folder once. */
async function walk(dir: string, ext: string, out: string[], seen: Set<string>): Promise<void> {
  let real: string;
  try {
    real = await fs.promises.realpath(dir);
  } catch (e) {
    throw new EmbeddingReadError(`embedding files: ${dir}: cannot resolve (${describeIoError(e)})`, { file: dir, cause: e });
  }
  if (seen.has(real)) return; // a symlink loop or two links to one folder
  seen.add(real);
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new EmbeddingReadError(`embedding files: ${dir}: cannot list folder (${describeIoError(e)})`, { file: dir, cause: e });
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      try {
        const st = await fs.promises.stat(full);
        isDir = st.isDirectory();
        isFile = st.isFile();
      } catch {
        // a dangling link with the right extension is reported when opened, not skipped
        isFile = true;
      }
    }
    if (isDir) await walk(full, ext, out, seen);
    else if (isFile && entry.name.endsWith(ext)) out.push(full);
  }
}

/**
 * List the files of a collection: folders (recursively), single files, `file://` URLs,
 * `http(s)://` file URLs and `s3://` files or prefixes. Local paths are made absolute.
 *
 * @example
 * ```ts
 * await listEmbeddingFiles(["embs/b", "embs/a"], "npy"); // ["/abs/embs/a/0.npy", "/abs/embs/a/1.npy", "/abs/embs/b/0.npy"]
 * ```
 */
export async function listEmbeddingFiles(paths: string | string[], fileFormat: FileFormat): Promise<string[]> {
  const list = typeof paths === "string" ? [paths] : paths;
  const ext = `.${fileFormat}`;
  const out: string[] = [];
  for (const given of list) {
    if (given.startsWith("http://") || given.startsWith("https://")) {
      // HTTP has no listing: a URL is one file
      out.push(given);
      continue;
    }
    if (given.startsWith("s3://")) {
      if (given.endsWith(ext)) out.push(given);
      else for (const obj of await listS3(given)) if (obj.url.endsWith(ext)) out.push(obj.url);
      continue;
    }
    const local = path.resolve(given.startsWith("file://") ? fileURLToPath(given) : given);
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(local);
    } catch (e) {
      throw new EmbeddingReadError(`embedding files: ${local}: cannot access (${describeIoError(e)})`, { file: local, cause: e });
    }
    if (st.isDirectory()) await walk(local, ext, out, new Set());
    else out.push(local);
  }
  // global sort by full path, as AutoFaiss does (the order of `paths` does not matter)
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
