/**
 * The one way this tool writes a file: into a temporary name in the target's folder, flushed to
 * disk, then renamed over the target. rename(2) within one filesystem is atomic, so a reader (or a
 * crash) sees the previous file or the complete new one, never a prefix. The temporary name
 * `.<name>.tmp-<pid>` is hidden from globs such as `*.npy` and names the process that wrote it.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import process from "node:process";

/** The temporary name `path` is written under before the rename. */
export function temporaryPathFor(path: string, pid: number = process.pid): string {
  return join(dirname(path), `.${basename(path)}.tmp-${pid}`);
}

/**
 * A file being written: bytes go to the temporary name, {@link commit} flushes and renames it over
 * the target, {@link abort} removes it. Creates the target's folder unless `createFolder` is false.
 *
 * @example
 * const f = new AtomicFile("out/x.npy");
 * try { f.write(header); f.write(rows); f.commit(); } catch (e) { f.abort(); throw e; }
 */
export class AtomicFile {
  readonly path: string;
  readonly temporaryPath: string;
  #fd: number | null;

  constructor(path: string, options: { createFolder?: boolean } = {}) {
    this.path = path;
    this.temporaryPath = temporaryPathFor(path);
    if (options.createFolder ?? true) mkdirSync(dirname(path), { recursive: true });
    this.#fd = openSync(this.temporaryPath, "w");
  }

  /** Appends `bytes` (all of them: writeSync may write less than asked). */
  write(bytes: Uint8Array): void {
    if (this.#fd === null) throw new Error(`atomic write: ${this.path}: already committed or aborted`);
    let done = 0;
    while (done < bytes.length) done += writeSync(this.#fd, bytes, done, bytes.length - done);
  }

  /** Flushes the data to disk, then renames the temporary file over the target. */
  commit(): void {
    if (this.#fd === null) throw new Error(`atomic write: ${this.path}: already committed or aborted`);
    const fd = this.#fd;
    this.#fd = null;
    try {
      fsyncSync(fd);
      closeSync(fd);
      renameSync(this.temporaryPath, this.path);
    } catch (e) {
      try { closeSync(fd); } catch { /* already closed */ }
      rmSync(this.temporaryPath, { force: true });
      throw e;
    }
  }

  /** Removes the temporary file; the target is left as it was. Safe to call after commit. */
  abort(): void {
    if (this.#fd !== null) {
      try { closeSync(this.#fd); } catch { /* already closed */ }
      this.#fd = null;
    }
    rmSync(this.temporaryPath, { force: true });
  }
}

/** Writes `content` to `path` atomically (see {@link AtomicFile}). */
export function writeFileAtomic(path: string, content: string | Uint8Array, options: { createFolder?: boolean } = {}): void {
  const f = new AtomicFile(path, options);
  try {
    f.write(typeof content === "string" ? new TextEncoder().encode(content) : content);
    f.commit();
  } catch (e) {
    f.abort();
    throw e;
  }
}
