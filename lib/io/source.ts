/**
 * Byte sources: the two-member `{ byteLength, slice }` shape (hyparquet's AsyncBuffer) that local
 * files, `file://` URLs, HTTP range requests and S3 objects all satisfy, so the .npy and parquet
 * readers never know where bytes come from.
 */
import * as fs from "node:fs";
import { fileURLToPath } from "node:url";
import { describeIoError, EmbeddingReadError } from "./errors.ts";
import { HttpSource, openS3Source } from "./source_remote.ts";

/** Random-access bytes. `slice` may be called concurrently; `readInto` is an optional zero-copy path. */
export interface ByteSource {
  /** Total size in bytes. */
  readonly byteLength: number;
  /** Path or URL, used in error messages. */
  readonly name: string;
  /** Bytes `[start, end)` (end defaults to `byteLength`); shorter only past the end of the source. */
  slice(start: number, end?: number): Promise<ArrayBuffer>;
  /** Fill `target` from `position`; resolves to the bytes read (fewer only at the end of the source). */
  readInto?(position: number, target: Uint8Array): Promise<number>;
  /** Release the handle (idempotent). Sources without one may omit it. */
  close?(): Promise<void>;
}

/** Opens a source for a path or URL; collections take one so tests can count bytes. */
export type SourceOpener = (location: string) => Promise<ByteSource>;

// One positioned read never asks for more than this: fs implementations cap a single read at
// 2 GiB - 1, and smaller requests keep the thread pool responsive.
const MAX_READ = 64 * 1024 * 1024;

/**
 * A local file read with positioned reads on one open handle (no shared file offset, so
 * concurrent reads are safe). Holds a file descriptor: close it, or use `await using`.
 *
 * @example
 * ```ts
 * await using src = await FileSource.open("emb/0.npy");
 * const head = new Uint8Array(await src.slice(0, 10));
 * ```
 */
export class FileSource implements ByteSource, AsyncDisposable {
  readonly byteLength: number;
  readonly name: string;
  #handle: fs.promises.FileHandle | undefined;

  private constructor(name: string, handle: fs.promises.FileHandle, byteLength: number) {
    this.name = name;
    this.#handle = handle;
    this.byteLength = byteLength;
  }

  /** Open `path` for reading; errors name the path and the errno code. */
  static async open(path: string): Promise<FileSource> {
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(path, "r");
    } catch (e) {
      throw new EmbeddingReadError(`file open: ${path}: cannot open (${describeIoError(e)})`, { file: path, cause: e });
    }
    try {
      const stat = await handle.stat();
      if (stat.isDirectory()) throw Object.assign(new Error("is a directory"), { code: "EISDIR" });
      return new FileSource(path, handle, stat.size);
    } catch (e) {
      await handle.close().catch(() => {});
      throw new EmbeddingReadError(`file open: ${path}: cannot open (${describeIoError(e)})`, { file: path, cause: e });
    }
  }

  async readInto(position: number, target: Uint8Array): Promise<number> {
    const handle = this.#handle;
    if (!handle) throw new EmbeddingReadError(`file read: ${this.name}: source is closed`, { file: this.name });
    let done = 0;
    // positioned reads may return short counts (signals, large requests): loop until full or EOF
    while (done < target.byteLength) {
      const want = Math.min(target.byteLength - done, MAX_READ);
      let n: number;
      try {
        ({ bytesRead: n } = await handle.read(target, done, want, position + done));
      } catch (e) {
        throw new EmbeddingReadError(
          `file read: ${this.name}: cannot read ${want} bytes at offset ${position + done} (${describeIoError(e)})`,
          { file: this.name, cause: e },
        );
      }
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  async slice(start: number, end: number = this.byteLength): Promise<ArrayBuffer> {
    const stop = Math.min(end, this.byteLength);
    const bytes = new Uint8Array(Math.max(0, stop - start));
    const n = await this.readInto(start, bytes);
    return n === bytes.byteLength ? bytes.buffer : bytes.slice(0, n).buffer;
  }

  /** Close the file descriptor; later reads throw. Idempotent. */
  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle) await handle.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Open a local path, `file://` URL, `http(s)://` URL (range requests) or `s3://bucket/key`
 * (Bun only; credentials from the AWS_* environment variables).
 */
export function openSource(location: string): Promise<ByteSource> {
  if (location.startsWith("s3://")) return openS3Source(location);
  if (location.startsWith("http://") || location.startsWith("https://")) return HttpSource.open(location);
  if (location.startsWith("file://")) return FileSource.open(fileURLToPath(location));
  return FileSource.open(location);
}

/** One read made through a {@link CountingSource}. */
export interface ReadRecord {
  start: number;
  end: number;
}

/**
 * Wraps a source and records every byte range read, to prove a reader touches only what it must
 * (used by tests and the benchmark).
 */
export class CountingSource implements ByteSource {
  readonly reads: ReadRecord[] = [];
  readonly #inner: ByteSource;

  constructor(inner: ByteSource) {
    this.#inner = inner;
  }

  get byteLength(): number {
    return this.#inner.byteLength;
  }

  get name(): string {
    return this.#inner.name;
  }

  /** Total bytes handed out so far. */
  get bytesRead(): number {
    let total = 0;
    for (const r of this.reads) total += r.end - r.start;
    return total;
  }

  async slice(start: number, end: number = this.byteLength): Promise<ArrayBuffer> {
    const buf = await this.#inner.slice(start, end);
    this.reads.push({ start, end: start + buf.byteLength });
    return buf;
  }

  async readInto(position: number, target: Uint8Array): Promise<number> {
    let n: number;
    if (this.#inner.readInto) {
      n = await this.#inner.readInto(position, target);
    } else {
      const buf = new Uint8Array(await this.#inner.slice(position, position + target.byteLength));
      target.set(buf);
      n = buf.byteLength;
    }
    this.reads.push({ start: position, end: position + n });
    return n;
  }

  close(): Promise<void> {
    return this.#inner.close?.() ?? Promise.resolve();
  }
}

/** `readInto` for any source: the zero-copy path when it exists, else slice + copy. */
export async function readInto(source: ByteSource, position: number, target: Uint8Array): Promise<number> {
  if (source.readInto) return source.readInto(position, target);
  const buf = new Uint8Array(await source.slice(position, position + target.byteLength));
  target.set(buf);
  return buf.byteLength;
}
