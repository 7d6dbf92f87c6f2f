/**
 * Crash-safe outputs (lib/output/publish.ts): the index, index_infos.json and the ids folder are
 * published as one unit, under kill -9 at every step, a second build, a full disk, a read-only
 * folder and an input that changes during the build; tune_index's output the same way.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parquetReadObjects } from "hyparquet";
import { Index } from "../ffi/faiss.ts";
import { buildIndex } from "../lib/commands/build_index.ts";
import { tuneIndex } from "../lib/commands/tune_index.ts";
import { indexFiles } from "../lib/commands/search.ts";
import { writeNpy } from "../lib/io/npy_writer.ts";
import { acquireOutputLock, KILL_AT_STEP_ENV, lockPathFor, recoverPublish, removeDeadTemporaries } from "../lib/output/publish.ts";
import { silentReporter } from "../lib/reporter.ts";
import { uniformData } from "./helpers/data.ts";
import { rowsOf, writeParquet } from "./fixtures/io/parquet.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const D = 8;
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "autofaiss-publish-"));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A pid that is certainly not running: a child that has exited. */
function deadPid(): number {
  const r = spawnSync("true");
  assert.ok(r.pid);
  return r.pid;
}

/** Runs the CLI in a child process of the current runtime. */
function cli(args: string[], env: Record<string, string> = {}) {
  const argv = ["main.ts", ...args];
  return spawnSync(process.execPath, "Deno" in globalThis ? ["run", "-A", ...argv] : argv, {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, ...env },
  });
}

/** A parquet folder of `rows` vectors with ids `<tag>-0`, `<tag>-1`, … */
function writeVersion(folder: string, rows: number, tag: string): void {
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  writeParquet(join(folder, "part-0.parquet"), {
    vectors: rowsOf(uniformData(rows, D, rows), D),
    extra: [{ name: "id", type: "STRING", data: Array.from({ length: rows }, (_, i) => `${tag}-${i}`) }],
  });
}

async function idsOf(idsPath: string): Promise<string[]> {
  const ids: string[] = [];
  for (const f of readdirSync(idsPath).sort()) {
    const buf = readFileSync(join(idsPath, f));
    const rows = await parquetReadObjects({ file: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) });
    ids.push(...rows.map((r) => String(r.id)));
  }
  return ids;
}

describe("publish: kill -9 at every step", () => {
  test("the index path holds the previous complete outputs or the new complete ones", async () => {
    const out = join(dir, "kill", "out");
    const indexPath = join(out, "knn.index");
    const infosPath = join(out, "infos.json");
    const idsPath = join(out, "ids");
    const versions = { a: 300, b: 500 };
    const build = (tag: "a" | "b", env: Record<string, string> = {}) => {
      writeVersion(join(dir, "kill", "emb"), versions[tag], tag);
      return cli([
        "build_index", join(dir, "kill", "emb"), `--index_path=${indexPath}`, `--index_infos_path=${infosPath}`, `--ids_path=${idsPath}`,
        "--file_format=parquet", "--id_columns=id", "--index_key=Flat", "--metric_type=l2",
      ], env);
    };
    const check = async (tag: "a" | "b", step: number) => {
      const rows = versions[tag];
      const what = `after a kill at step ${step}: version ${tag}`;
      assert.deepEqual(readdirSync(out).sort(), ["ids", "infos.json", "knn.index"], what);
      assert.equal(JSON.parse(readFileSync(infosPath, "utf8"))["nb vectors"], rows, what);
      using index = Index.read(indexPath);
      assert.equal(index.ntotal, rows, what);
      assert.deepEqual(await idsOf(idsPath), Array.from({ length: rows }, (_, i) => `${tag}-${i}`), what);
    };

    assert.equal(build("a").status, 0);
    await check("a", -1);
    let current: "a" | "b" = "a";
    // Steps: 0 temporaries written, 1 journal written, 2 old ids moved aside, 3 new ids renamed,
    // 4 infos renamed, 5 index renamed, 6 journal removed; at 7 nothing is killed.
    for (let step = 0; step <= 7; step++) {
      const target: "a" | "b" = current === "a" ? "b" : "a";
      const r = build(target, { [KILL_AT_STEP_ENV]: String(step) });
      if (step === 7) {
        assert.equal(r.status, 0, r.stderr);
        current = target;
      } else {
        assert.equal(r.signal, "SIGKILL", `step ${step}: ${r.stderr}`);
        // What the next autofaiss command on this path does first: finish or clean up.
        recoverPublish(indexPath);
        acquireOutputLock(indexPath)(); // the dead build's lock is taken over
        removeDeadTemporaries([indexPath, infosPath, idsPath]);
        // Before the journal (step 0) nothing was published; from the journal on, all of it is.
        if (step >= 1) current = target;
      }
      await check(current, step);
    }
  });
});

describe("publish: N parts as one unit", () => {
  test("kill -9 at every step between a 3-part build and a single index: one complete set, never a mix or a stale part", async () => {
    const out = join(dir, "parts", "out");
    const indexPath = join(out, "knn.index");
    const infosPath = join(out, "infos.json");
    const idsPath = join(out, "ids");
    const versions = { a: { rows: 300, parts: 3 }, b: { rows: 500, parts: 1 } };
    const build = (tag: "a" | "b", env: Record<string, string> = {}) => {
      writeVersion(join(dir, "parts", "emb"), versions[tag].rows, tag);
      return cli([
        "build_index", join(dir, "parts", "emb"), `--index_path=${indexPath}`, `--index_infos_path=${infosPath}`, `--ids_path=${idsPath}`,
        "--file_format=parquet", "--id_columns=id", "--index_key=IVF2,Flat", "--index_param=nprobe=2", "--metric_type=l2",
        `--nb_indices_to_keep=${versions[tag].parts}`,
      ], env);
    };
    const check = async (tag: "a" | "b", step: number) => {
      const { rows, parts } = versions[tag];
      const what = `after a kill at step ${step}: version ${tag}`;
      const suffixes = parts === 1 ? [""] : ["01", "02", "03"];
      assert.deepEqual(readdirSync(out).sort(), ["ids", ...suffixes.map((x) => `infos.json${x}`), ...suffixes.map((x) => `knn.index${x}`)], what);
      // what `search --index_path` resolves: exactly this version's files
      assert.deepEqual(indexFiles(indexPath), suffixes.map((x) => indexPath + x), what);
      let total = 0;
      for (const x of suffixes) {
        using index = Index.read(indexPath + x);
        assert.equal(JSON.parse(readFileSync(infosPath + x, "utf8"))["nb vectors"], index.ntotal, what);
        total += index.ntotal;
      }
      assert.equal(total, rows, what);
      assert.deepEqual(await idsOf(idsPath), Array.from({ length: rows }, (_, i) => `${tag}-${i}`), what);
    };

    assert.equal(build("a").status, 0);
    await check("a", -1);
    let current: "a" | "b" = "a";
    // Steps: 0 temporaries written, 1 journal written, 2-3 ids folder, then one per rename or
    // deletion, 12 journal removed, 13 past the end. Single -> 3 parts: 3 infos, 3 parts, 2
    // deletions (knn.index, infos.json); 3 parts -> single: 1 infos, 1 index, 6 deletions. The
    // builds alternate direction, so each step is hit in one direction or the other.
    let completed = 0;
    for (let step = 0; step <= 13; step++) {
      const target: "a" | "b" = current === "a" ? "b" : "a";
      const r = build(target, { [KILL_AT_STEP_ENV]: String(step) });
      if (r.status === 0) {
        completed++;
        current = target;
      } else {
        assert.equal(r.signal, "SIGKILL", `step ${step}: ${r.stderr}`);
        recoverPublish(indexPath);
        acquireOutputLock(indexPath)();
        removeDeadTemporaries([indexPath, infosPath, idsPath]);
        if (step >= 1) current = target;
      }
      await check(current, step);
    }
    assert.ok(completed >= 1, "the last steps are past the end: some builds completed");
  });
});

describe("publish: one build per index path", () => {
  const emb = () => {
    const path = join(dir, "one", "emb", "a.npy");
    if (!existsSync(path)) writeNpy(path, uniformData(200, D, 1), D);
    return join(dir, "one", "emb");
  };
  const options = (out: string) => ({
    indexPath: join(out, "knn.index"), indexInfosPath: join(out, "infos.json"), indexKey: "Flat", metricType: "l2",
  });

  test("a second build fails at once naming the process that holds the lock", async () => {
    const out = join(dir, "one", "locked");
    mkdirSync(out, { recursive: true });
    const holder = spawn("sleep", ["60"]);
    try {
      const lock = lockPathFor(join(out, "knn.index"));
      writeFileSync(lock, `${holder.pid}\n`);
      await assert.rejects(buildIndex(emb(), options(out)), {
        name: "PublishError",
        message: `index_path: another build (pid ${holder.pid}) is writing ${join(out, "knn.index")} (lock file ${lock}); ` +
          `wait for it to finish, or remove the lock file if process ${holder.pid} is not an autofaiss build`,
      });
      assert.deepEqual(readdirSync(out), [".knn.index.lock"], "nothing written beside the other build's lock");
    } finally {
      holder.kill("SIGKILL");
    }
  });

  test("a stale lock and a dead build's temporaries are removed; a live process's temporary is kept", async () => {
    const out = join(dir, "one", "stale");
    mkdirSync(join(out, `.ids.tmp-${deadPid()}`), { recursive: true });
    writeFileSync(lockPathFor(join(out, "knn.index")), `${deadPid()}\n`);
    writeFileSync(join(out, `.knn.index.tmp-${deadPid()}`), "half an index");
    writeFileSync(join(out, `.infos.json.tmp-${deadPid()}`), "{");
    writeFileSync(join(out, `.infos.json.tmp-1`), "{"); // pid 1 is alive: maybe another build's
    const { index } = await buildIndex(emb(), { ...options(out), idsPath: join(out, "ids") });
    index.free();
    assert.deepEqual(readdirSync(out).sort(), [".infos.json.tmp-1", "infos.json", "knn.index"]);
  });

  test("an input file that changes during the build: a clear error, nothing published", async () => {
    const out = join(dir, "one", "changed");
    const file = join(emb(), "a.npy");
    // The reporter touches the file while the index is being measured, after it was read.
    const touching = {
      ...silentReporter,
      timed: async <T>(label: string, _indent: number, fn: () => T | Promise<T>): Promise<T> => {
        const r = await fn();
        if (label === "Compute fast metrics") utimesSync(file, new Date(2001, 0, 1), new Date(2001, 0, 1));
        return r;
      },
    };
    await assert.rejects(buildIndex(emb(), { ...options(out), reporter: touching }), (e: Error) => {
      assert.equal(e.name, "BuildError");
      assert.match(e.message, new RegExp(`^embeddings: ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} changed during the build \\(size 6528 -> 6528 bytes, mtime .* -> 2001-01-01T.*\\); nothing was published$`));
      return true;
    });
    assert.deepEqual(readdirSync(out), [], "no index, no infos, no temporaries, no lock");
  });
});

/** An IVF16,Flat index of `rows` vectors written at `path` (the input of the tune_index tests). */
function writeIvfIndex(path: string, rows: number, d: number): void {
  mkdirSync(join(path, ".."), { recursive: true });
  const x = uniformData(rows, d, 5);
  using index = Index.factory(d, "IVF16,Flat", "l2");
  index.train(x);
  index.add(x);
  index.write(path);
}

describe("publish: tune_index's output", () => {
  const source = () => {
    const path = join(dir, "tune", "source.index");
    if (!existsSync(path)) writeIvfIndex(path, 400, D);
    return path;
  };

  test("kill -9 at every step: the output path holds the previous tuned index or the new one, never a partial file", () => {
    const out = join(dir, "tune", "kill");
    const target = join(out, "tuned.index");
    // index_param: no tuning, so each run is quick; nprobe tells the two versions apart.
    const tune = (nprobe: number, env: Record<string, string> = {}) =>
      cli(["tune_index", source(), "IVF16,Flat", `--index_param=nprobe=${nprobe}`, `--output_index_path=${target}`], env);
    const nprobeOf = (what: string) => {
      using index = Index.read(target);
      assert.equal(index.ntotal, 400, what);
      return index.ivf()!.nprobe;
    };

    let r = tune(2);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(nprobeOf("first run"), 2);
    let current = 2;
    // Steps: 0 temporary written, 1 journal written, 2 index renamed, 3 journal removed; at 4 nothing is killed.
    for (let step = 0; step <= 4; step++) {
      const next = current === 2 ? 3 : 2;
      const what = `after a kill at step ${step}`;
      r = tune(next, { [KILL_AT_STEP_ENV]: String(step) });
      if (step === 4) {
        assert.equal(r.status, 0, r.stderr);
        current = next;
      } else {
        assert.equal(r.signal, "SIGKILL", `step ${step}: ${r.stderr}`);
        // Right after the kill, before any recovery, the output is a complete index: old or new.
        assert.ok([current, next].includes(nprobeOf(what)), what);
        // What the next autofaiss command on this path does first: finish or clean up.
        recoverPublish(target);
        acquireOutputLock(target)(); // the dead process's lock is taken over
        removeDeadTemporaries([target]);
        // Before the journal (step 0) nothing was published; from the journal on, all of it is.
        if (step >= 1) current = next;
      }
      assert.deepEqual(readdirSync(out), ["tuned.index"], what);
      assert.equal(nprobeOf(what), current, what);
    }
  });

  test("a second writer of the output path fails at once naming the process that holds the lock", async () => {
    const out = join(dir, "tune", "locked");
    mkdirSync(out, { recursive: true });
    const target = join(out, "tuned.index");
    const holder = spawn("sleep", ["60"]);
    try {
      const lock = lockPathFor(target);
      writeFileSync(lock, `${holder.pid}\n`);
      await assert.rejects(tuneIndex(source(), "IVF16,Flat", { indexParam: "nprobe=2", outputIndexPath: target }), {
        name: "PublishError",
        message: `output_index_path: another build (pid ${holder.pid}) is writing ${target} (lock file ${lock}); ` +
          `wait for it to finish, or remove the lock file if process ${holder.pid} is not an autofaiss build`,
      });
      assert.deepEqual(readdirSync(out), [".tuned.index.lock"], "nothing written beside the other writer's lock");
    } finally {
      holder.kill("SIGKILL");
    }
  });
});

describe("publish: full and read-only file systems", { skip: isRoot ? false : "not root: cannot mount tmpfs" }, () => {
  if (!isRoot) console.warn("publish.test.ts: SKIPPING the ENOSPC and EROFS tests: they mount tmpfs and need root (CI runs as root)");

  /** Mounts a tmpfs of `size` at a new folder, runs fn, unmounts. */
  async function withTmpfs(size: string, fn: (mnt: string) => Promise<void>, readOnly = false): Promise<void> {
    const mnt = mkdtempSync(join(tmpdir(), "autofaiss-tmpfs-"));
    const mount = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mnt], { encoding: "utf8" });
    assert.equal(mount.status, 0, mount.stderr);
    try {
      if (readOnly) assert.equal(spawnSync("mount", ["-o", "remount,ro", mnt]).status, 0);
      await fn(mnt);
    } finally {
      spawnSync("umount", [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  }

  test("ENOSPC: the error names the index path and nothing is left in the folder", async () => {
    const emb = join(dir, "full", "emb");
    writeNpy(join(emb, "a.npy"), uniformData(2000, 16, 2), 16); // a 128 KB Flat index
    await withTmpfs("16k", async (mnt) => {
      const indexPath = join(mnt, "knn.index");
      await assert.rejects(
        buildIndex(emb, { indexPath, indexInfosPath: join(mnt, "infos.json"), indexKey: "Flat", metricType: "l2" }),
        (e: Error) => {
          assert.equal(e.name, "PublishError");
          assert.ok(e.message.startsWith(`index_path: cannot write ${indexPath} (temporary ${join(mnt, ".knn.index.tmp-")}`), e.message);
          assert.match(e.message, /No space left on device|ENOSPC/);
          return true;
        },
      );
      assert.deepEqual(readdirSync(mnt), []);
    });
  });

  test("tune_index, ENOSPC: the error names output_index_path, the previous output is intact, no temporary left", async () => {
    const source = join(dir, "full-tune", "source.index");
    writeIvfIndex(source, 2000, 16); // about 140 KB: two do not fit in 256 KB
    await withTmpfs("256k", async (mnt) => {
      const target = join(mnt, "tuned.index");
      copyFileSync(source, target); // the previous output
      const before = readFileSync(target);
      await assert.rejects(tuneIndex(source, "IVF16,Flat", { indexParam: "nprobe=4", outputIndexPath: target }), (e: Error) => {
        assert.equal(e.name, "PublishError");
        assert.ok(e.message.startsWith(`output_index_path: cannot write ${target} (temporary ${join(mnt, ".tuned.index.tmp-")}`), e.message);
        assert.match(e.message, /No space left on device|ENOSPC/);
        return true;
      });
      assert.deepEqual(readdirSync(mnt), ["tuned.index"]);
      assert.ok(readFileSync(target).equals(before), "the previous output, byte for byte");
    });
  });

  test("EROFS: reported before any data is read", async () => {
    // Every value is NaN: reading a row would fail with the NaN error instead.
    const emb = join(dir, "ro", "emb");
    writeNpy(join(emb, "a.npy"), new Float32Array(100 * 4).fill(NaN), 4);
    await withTmpfs("1m", async (mnt) => {
      const indexPath = join(mnt, "out", "knn.index");
      await assert.rejects(buildIndex(emb, { indexPath, indexInfosPath: join(mnt, "infos.json"), indexKey: "Flat" }), (e: Error) => {
        assert.equal(e.name, "BuildError");
        assert.match(e.message, new RegExp(`^index_path: cannot write ${indexPath.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: EROFS: read-only file system`));
        return true;
      });
      assert.deepEqual(readdirSync(mnt), []);
    }, true);
  });
});
