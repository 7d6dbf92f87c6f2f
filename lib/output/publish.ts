/**
 * Publishing a build's outputs (the index file, index_infos.json and the ids folder) as one unit,
 * with plain files at the paths Python AutoFaiss reads.
 *
 * 1. Each new output is written under a temporary name in its final folder (`.<name>.tmp-<pid>`)
 *    and flushed to disk (fsync) — the previous outputs are untouched.
 * 2. A journal `.<index name>.publish-journal` next to the index lists the renames
 *    (temporary → final); it is written atomically and flushed. From here on the publication is
 *    decided: whoever finds the journal finishes it.
 * 3. The renames run (an ids folder that exists is first moved aside to `.<name>.old-<pid>`), the
 *    folders are flushed, the moved-aside folder and the journal are deleted.
 *
 * A process killed before step 2 leaves only temporaries (removed by the next build into the same
 * place, {@link removeDeadTemporaries}); killed after it, the next build, tune_index or score_index
 * on that index path rolls the journal forward ({@link recoverPublish}) before anything else. So
 * after `kill -9` at any moment, once any autofaiss command has touched the index path, it holds
 * the previous complete outputs or the new complete ones. In the microseconds of step 3 itself, a
 * reader that bypasses this tool (Python) can see some files renamed and others not.
 *
 * A build of N parts (`knn.index01 …`, `index_infos.json01 …`) publishes all of them, with the ids
 * folder, as the same one unit; outputs of an earlier build of another shape that a reader would take
 * for part of this one (a lone `knn.index` beside new parts, or parts beyond the new count) are
 * listed in the journal too and deleted after the renames ({@link staleOutputs}).
 *
 * One build at a time per index path: {@link acquireOutputLock} takes `.<index name>.lock`
 * (holding the owner's pid); a second build fails at once naming that pid, and a lock whose
 * process is gone is taken over. {@link claimOutputs} does the three things a command does before
 * writing into an index path (lock, roll forward, remove dead temporaries): build_index for its
 * index, infos and ids; tune_index for its output index.
 */
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { temporaryPathFor, writeFileAtomic } from "../io/atomic_file.ts";
import { resolvePartNames } from "../plan/parts.ts";

/** A publication failure the user can act on: the message names the path. */
export class PublishError extends Error {
  override readonly name = "PublishError";
}

/** Test hook: kill the process (SIGKILL) right after this publish step (0-based). */
export const KILL_AT_STEP_ENV = "AUTOFAISS_TEST_KILL_AT_PUBLISH_STEP";

/**
 * One output: a file or a folder, written at `temporary`, renamed to `final` on publish; or
 * (`remove`) a stale file of an earlier build, deleted on publish (`temporary` is unused: "").
 */
export interface PublishEntry {
  kind: "file" | "dir" | "remove";
  /** `index_path`, `index_infos_path`, `ids_path`: named in errors */
  option: string;
  temporary: string;
  final: string;
}

interface Journal {
  pid: number;
  entries: PublishEntry[];
}

const hidden = (path: string, suffix: string) => join(dirname(path), `.${basename(path)}.${suffix}`);

/** The journal of a publication into `indexPath`. */
export function journalPathFor(indexPath: string): string {
  return hidden(indexPath, "publish-journal");
}

/** The lock of builds into `indexPath`. */
export function lockPathFor(indexPath: string): string {
  return hidden(indexPath, "lock");
}

/** Where an existing folder `final` is moved while a publication by `pid` replaces it. */
function asidePathFor(final: string, pid: number): string {
  return hidden(final, `old-${pid}`);
}

/** Whether process `pid` exists (EPERM: it exists, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

function describeError(e: unknown): string {
  const err = e as { code?: string; message?: string };
  return err.code ? `${err.message ?? err.code}` : String(err.message ?? e);
}

/** fsync a file or folder so that its content (or its entries: renames) survive a crash. */
function syncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncTree(path: string): void {
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path)) syncTree(join(path, name));
  }
  syncPath(path);
}

/**
 * Takes the lock of builds into `indexPath`; returns its release function. Fails at once when a
 * live process holds it; a lock left by a dead process is taken over. `option` (the flag that names
 * `indexPath`) starts the error messages.
 */
export function acquireOutputLock(indexPath: string, option = "index_path"): () => void {
  const lock = lockPathFor(indexPath);
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(lock, "wx");
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") {
        throw new PublishError(`${option}: cannot create the lock file ${lock}: ${describeError(e)}`);
      }
      const text = (() => {
        try {
          return readFileSync(lock, "utf8").trim();
        } catch {
          return "";
        }
      })();
      const pid = Number(text);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new PublishError(
          `${option}: another build (pid ${pid}) is writing ${indexPath} (lock file ${lock}); wait for it to finish, ` +
            `or remove the lock file if process ${pid} is not an autofaiss build`,
        );
      }
      // stale: its process is gone (or the file is empty: it died between create and write)
      rmSync(lock, { force: true });
      continue;
    }
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      rmSync(lock, { force: true });
    };
  }
  throw new PublishError(`${option}: cannot take the lock file ${lock}: another process keeps recreating it`);
}

/**
 * Readies `indexPath` for a publication by this process: takes its lock ({@link acquireOutputLock}),
 * finishes a publication a killed process left half done ({@link recoverPublish}) and removes the
 * temporaries dead processes left next to `finals` ({@link removeDeadTemporaries}); `warn` hears
 * each path finished or removed. Returns the lock's release function.
 */
export function claimOutputs(
  indexPath: string,
  finals: readonly string[],
  warn: (message: string) => void,
  option = "index_path",
): () => void {
  const release = acquireOutputLock(indexPath, option);
  try {
    for (const path of recoverPublish(indexPath)) warn(`finished publishing ${path}, interrupted by a killed build`);
    for (const path of removeDeadTemporaries(finals)) warn(`removed ${path}, left by a killed build`);
  } catch (e) {
    release();
    throw e;
  }
  return release;
}

/**
 * Removes temporaries and moved-aside folders that dead builds left next to `finals` (those of
 * live processes are kept: they may be another build's, into another index path).
 */
export function removeDeadTemporaries(finals: readonly string[]): string[] {
  const removed: string[] = [];
  for (const final of finals) {
    const dir = dirname(final);
    // `.knn.index.tmp-<pid>`, and the parts' `.knn.index01.tmp-<pid>` (a dead build's part count is unknown)
    const prefix = `.${basename(final)}`;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue; // no folder yet: nothing left behind
    }
    for (const name of names) {
      if (!name.startsWith(prefix)) continue;
      const m = /^(?:\d{2,})?\.(?:tmp|old)-(\d+)$/.exec(name.slice(prefix.length));
      if (!m || processAlive(Number(m[1]))) continue;
      rmSync(join(dir, name), { recursive: true, force: true });
      removed.push(join(dir, name));
    }
  }
  return removed;
}

/** Runs the renames of `journal` that are not done yet (idempotent), calling `step` after each. */
function rollForward(journal: Journal, step: () => void): void {
  for (const e of journal.entries) {
    if (e.kind === "remove") {
      rmSync(e.final, { force: true });
      step();
      continue;
    }
    if (e.kind === "file") {
      if (existsSync(e.temporary)) renameSync(e.temporary, e.final);
      step();
      continue;
    }
    const aside = asidePathFor(e.final, journal.pid);
    if (existsSync(e.temporary)) {
      if (existsSync(e.final)) {
        rmSync(aside, { recursive: true, force: true });
        renameSync(e.final, aside);
      }
      step();
      renameSync(e.temporary, e.final);
    } else {
      step();
    }
    step();
  }
  for (const dir of new Set(journal.entries.map((e) => dirname(e.final)))) syncPath(dir);
  for (const e of journal.entries) if (e.kind === "dir") rmSync(asidePathFor(e.final, journal.pid), { recursive: true, force: true });
}

/**
 * Finishes a publication into `indexPath` that a killed process left half done. Returns the paths
 * it published (empty when there was nothing to do, or when the publisher is still running).
 */
export function recoverPublish(indexPath: string): string[] {
  const path = journalPathFor(indexPath);
  let journal: Journal;
  try {
    journal = JSON.parse(readFileSync(path, "utf8")) as Journal;
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return [];
    throw new PublishError(`index_path: unreadable publish journal ${path} (${describeError(e)}); remove it and rebuild`);
  }
  // A live publisher is finishing it itself (the journal exists for a few milliseconds).
  if (journal.pid !== process.pid && processAlive(journal.pid)) return [];
  try {
    rollForward(journal, () => {});
    rmSync(path, { force: true });
    syncPath(dirname(path));
  } catch (e) {
    throw new PublishError(`index_path: cannot finish the interrupted publication of ${indexPath} (journal ${path}): ${describeError(e)}`);
  }
  return journal.entries.map((e) => e.final);
}

/**
 * The outputs of one build: register each with {@link file} / {@link dir}, write them at the
 * temporary paths these return, then {@link commit} (or {@link abort}).
 *
 * @example
 * const pub = new Publication(indexPath);
 * index.write(pub.file("index_path", indexPath));
 * pub.commit();
 */
export class Publication {
  readonly indexPath: string;
  /** The flag that names the index file(s) (`index_path`; tune_index: `output_index_path`). */
  readonly indexOption: string;
  readonly entries: PublishEntry[] = [];
  #done = false;

  constructor(indexPath: string, indexOption = "index_path") {
    this.indexPath = indexPath;
    this.indexOption = indexOption;
  }

  /** Registers file output `final`; returns the temporary path to write it to. */
  file(option: string, final: string): string {
    const temporary = temporaryPathFor(final);
    this.entries.push({ kind: "file", option, temporary, final });
    return temporary;
  }

  /** Registers folder output `final`; returns the temporary folder to fill. */
  dir(option: string, final: string): string {
    const temporary = temporaryPathFor(final);
    this.entries.push({ kind: "dir", option, temporary, final });
    return temporary;
  }

  /** Registers `final`, a stale output of an earlier build, for deletion when publishing. */
  remove(option: string, final: string): void {
    this.entries.push({ kind: "remove", option, temporary: "", final });
  }

  /** Writes `content` at the temporary path of file output `final`. */
  writeFile(option: string, final: string, content: string | Uint8Array): void {
    const temporary = this.file(option, final);
    try {
      const fd = openSync(temporary, "w");
      try {
        const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
        let done = 0;
        while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      throw new PublishError(`${option}: cannot write ${final} (temporary ${temporary}): ${describeError(e)}`);
    }
  }

  /**
   * Flushes the temporaries, records the journal and renames everything into place. Index files
   * are renamed last. `beforeJournal` runs once the temporaries are on disk, before anything is
   * published (a last check, e.g. that the input did not change): throwing there aborts.
   */
  commit(beforeJournal: () => void = () => {}): void {
    if (this.#done) throw new Error(`publish: ${this.indexPath}: already committed or aborted`);
    const killAt = process.env[KILL_AT_STEP_ENV];
    let stepNo = 0;
    const step = () => {
      if (killAt !== undefined && Number(killAt) === stepNo) process.kill(process.pid, "SIGKILL");
      stepNo++;
    };
    // infos and ids first, then the index file(s), then the deletions of stale outputs
    const isIndex = (e: PublishEntry) => e.kind === "file" && e.option === this.indexOption;
    const entries = [
      ...this.entries.filter((e) => e.kind !== "remove" && !isIndex(e)),
      ...this.entries.filter(isIndex),
      ...this.entries.filter((e) => e.kind === "remove"),
    ];
    try {
      for (const e of entries) {
        if (e.kind === "remove") continue;
        try {
          syncTree(e.temporary);
        } catch (err) {
          throw new PublishError(`${e.option}: cannot write ${e.final} (temporary ${e.temporary}): ${describeError(err)}`);
        }
      }
      beforeJournal();
    } catch (e) {
      this.abort();
      throw e;
    }
    step(); // 0: temporaries on disk, nothing published
    const journal = journalPathFor(this.indexPath);
    try {
      writeFileAtomic(journal, JSON.stringify({ pid: process.pid, entries } satisfies Journal));
      syncPath(dirname(journal));
    } catch (e) {
      this.abort();
      rmSync(journal, { force: true });
      throw new PublishError(`${this.indexOption}: cannot write the publish journal ${journal}: ${describeError(e)}`);
    }
    this.#done = true;
    step(); // 1: journal on disk: the publication is decided
    try {
      rollForward({ pid: process.pid, entries }, step);
      rmSync(journal, { force: true });
      syncPath(dirname(journal));
    } catch (e) {
      throw new PublishError(
        `${this.indexOption}: publishing ${this.indexPath} failed half way (${describeError(e)}); the journal ${journal} ` +
          "remains and the next autofaiss command on this index path finishes it",
      );
    }
    step(); // last: journal removed
  }

  /** Removes every temporary; the previous outputs are untouched. */
  abort(): void {
    if (this.#done) return;
    this.#done = true;
    for (const e of this.entries) if (e.kind !== "remove") rmSync(e.temporary, { recursive: true, force: true });
  }
}

/**
 * The files an earlier build left at `base` (an index or infos path) that are not among `finals`
 * and that a reader would take for this build's output: `base` itself, and the set of parts
 * `base01 …` as `autofaiss search --index_path=base` would resolve it (so an unrelated
 * `knn.index2024` is left alone). Only files whose names the part rules recognise are returned.
 */
export function staleOutputs(base: string, finals: readonly string[]): string[] {
  const dir = dirname(base);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const keep = new Set(finals);
  const stale: string[] = [];
  if (names.includes(basename(base))) stale.push(base);
  const parts = resolvePartNames(basename(base), names.filter((n) => n !== basename(base)));
  if (parts.kind === "parts") stale.push(...parts.suffixes.map((sfx) => base + sfx));
  return stale.filter((p) => !keep.has(p));
}
