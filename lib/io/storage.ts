/**
 * Shared storage for the phases of a distributed build: a local or NFS path, or an `s3://bucket/prefix`
 * URL (Bun's built-in S3 client; Deno has none, and says so). Every phase reads and writes the
 * temporary folder through these functions only, so pods or array tasks share nothing but this.
 *
 * Publishing is atomic on both: a local file is written under a hidden temporary name in its final
 * folder, flushed, then renamed over the target (rename(2) is atomic within a filesystem, NFS
 * included); an S3 object appears only when its PUT (or multipart upload) completes, so readers see
 * the previous object or the complete new one, never a prefix. Bun's client has no CopyObject, so
 * there is no server-side rename: the upload goes straight to the final key. What makes several
 * files one unit is the done marker their writer publishes last.
 *
 * @example
 * const text = await readStoredText(storageJoin("s3://bucket/tmp", "plan.json"));
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, createReadStream, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { writeFileAtomic } from "./atomic_file.ts";
import { parseS3Url, s3Client } from "./source_remote.ts";

/** A storage failure: names the operation and the location. */
export class StorageError extends Error {
  override readonly name = "StorageError";
}

export function isS3(location: string): boolean {
  return location.startsWith("s3://");
}

/** `base` joined with `names` (`/` for URLs, the platform's join for paths). */
export function storageJoin(base: string, ...names: string[]): string {
  if (isS3(base)) return [base.replace(/\/+$/, ""), ...names].join("/");
  return join(base, ...names);
}

interface BunFileApi {
  file(path: string): Blob;
  write(destination: string, input: unknown): Promise<number>;
}

function bun(): BunFileApi | undefined {
  return (globalThis as { Bun?: BunFileApi }).Bun;
}

/**
 * Fails early, with the option's name, when `location` cannot be used on this runtime: `s3://`
 * needs Bun's built-in S3 client.
 */
export function assertStorageUsable(option: string, location: string): void {
  if (isS3(location) && !bun()) {
    throw new StorageError(`${option}: ${location}: s3:// needs Bun's built-in S3 client; run this phase with bun or the compiled autofaiss binary (Deno has no S3 client)`);
  }
}

function client(location: string) {
  assertStorageUsable("storage", location);
  const { bucket, key } = parseS3Url(location);
  return { s3: s3Client(location, bucket), key };
}

function describe(e: unknown): string {
  const err = e as { code?: string; message?: string };
  return err.code ? `${err.code}: ${err.message}` : String(err.message ?? e);
}

/** The text at `location`, or null when it does not exist. */
export async function readStoredText(location: string): Promise<string | null> {
  try {
    if (!isS3(location)) return readFileSync(location, "utf8");
    const { s3, key } = client(location);
    if (!(await s3.exists(key))) return null;
    return new TextDecoder().decode(await s3.file(key).arrayBuffer());
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return null;
    if (e instanceof StorageError) throw e;
    throw new StorageError(`storage read: ${location}: ${describe(e)}`);
  }
}

/** Size in bytes of the file or object at `location`, or null when it does not exist. */
export async function storedSize(location: string): Promise<number | null> {
  try {
    if (!isS3(location)) return statSync(location).size;
    const { s3, key } = client(location);
    if (!(await s3.exists(key))) return null;
    return (await s3.file(key).stat()).size;
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return null;
    if (e instanceof StorageError) throw e;
    throw new StorageError(`storage stat: ${location}: ${describe(e)}`);
  }
}

/** Writes `content` to `location` atomically (temporary name + rename, or one PUT). */
export async function writeStoredAtomic(location: string, content: string | Uint8Array): Promise<void> {
  try {
    if (!isS3(location)) return writeFileAtomic(location, content);
    const { s3, key } = client(location);
    await s3.write(key, typeof content === "string" ? new TextEncoder().encode(content) : content);
  } catch (e) {
    if (e instanceof StorageError) throw e;
    throw new StorageError(`storage write: ${location}: ${describe(e)}`);
  }
}

/**
 * Where to write a file that {@link publishLocalFile} will move to `location`: for a local target,
 * a hidden name in the target's own folder (so the final rename stays within one filesystem) that
 * names the host and process, since tasks on several hosts may share an NFS folder; for S3, a file
 * in `scratch`.
 */
export function stagingPathFor(location: string, scratch: string): string {
  const unique = `${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
  if (isS3(location)) return join(scratch, `${basename(location)}.${unique}`);
  mkdirSync(dirname(location), { recursive: true });
  return join(dirname(location), `.${basename(location)}.tmp-${unique}`);
}

/** Moves the finished local file `staged` to `location` atomically; `staged` is gone afterwards. */
export async function publishLocalFile(staged: string, location: string): Promise<void> {
  try {
    if (!isS3(location)) {
      const fd = openSync(staged, "r");
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(staged, location);
      return;
    }
    const { s3, key } = client(location);
    await s3.write(key, bun()!.file(staged));
    rmSync(staged, { force: true });
  } catch (e) {
    rmSync(staged, { force: true });
    if (e instanceof StorageError) throw e;
    throw new StorageError(`storage publish: ${location}: ${describe(e)}`);
  }
}

/**
 * A local path holding the content of `location`: the path itself when local, else a download into
 * `scratch` (`temporary` tells the caller to remove it).
 */
export async function fetchToLocal(location: string, scratch: string): Promise<{ path: string; temporary: boolean }> {
  if (!isS3(location)) return { path: location, temporary: false };
  const { s3, key } = client(location);
  const path = join(scratch, `${basename(key)}.${randomBytes(4).toString("hex")}`);
  try {
    mkdirSync(scratch, { recursive: true });
    if (!(await s3.exists(key))) throw new StorageError(`storage read: ${location}: no such object`);
    await bun()!.write(path, s3.file(key));
    return { path, temporary: true };
  } catch (e) {
    rmSync(path, { force: true });
    if (e instanceof StorageError) throw e;
    throw new StorageError(`storage read: ${location}: ${describe(e)}`);
  }
}

/** Names directly inside `folder` (files and sub-folders; none when it does not exist). */
export async function listStored(folder: string): Promise<string[]> {
  try {
    if (!isS3(folder)) return readdirSync(folder).sort();
    const { s3, key } = client(folder);
    const prefix = key === "" || key.endsWith("/") ? key : key + "/";
    const names = new Set<string>();
    let token: string | undefined;
    do {
      const page = await s3.list({ prefix, ...(token ? { continuationToken: token } : {}) });
      for (const o of page.contents ?? []) names.add(o.key.slice(prefix.length).split("/")[0]);
      token = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (token);
    return [...names].filter((n) => n !== "").sort();
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return [];
    if (e instanceof StorageError) throw e;
    throw new StorageError(`storage list: ${folder}: ${describe(e)}`);
  }
}

/** Removes the file or object at `location` (nothing when absent). */
export async function removeStored(location: string): Promise<void> {
  try {
    if (!isS3(location)) return rmSync(location, { force: true });
    const { s3, key } = client(location);
    await s3.delete(key);
  } catch (e) {
    if (e instanceof StorageError) throw e;
    throw new StorageError(`storage remove: ${location}: ${describe(e)}`);
  }
}

/** Removes `folder` and everything under it. */
export async function removeStoredTree(folder: string): Promise<void> {
  try {
    if (!isS3(folder)) return rmSync(folder, { recursive: true, force: true });
    const { s3, key } = client(folder);
    const prefix = key === "" || key.endsWith("/") ? key : key + "/";
    let page;
    // Deleting while listing from the start: each page lists what is left.
    do {
      page = await s3.list({ prefix });
      for (const o of page.contents ?? []) await s3.delete(o.key);
    } while (page.isTruncated);
  } catch (e) {
    if (e instanceof StorageError) throw e;
    throw new StorageError(`storage remove: ${folder}: ${describe(e)}`);
  }
}

/** Size and sha256 of a local file, read in a stream. */
export async function checksumFile(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) {
    hash.update(chunk as Uint8Array);
    bytes += (chunk as Uint8Array).byteLength;
  }
  return { bytes, sha256: hash.digest("hex") };
}
