/**
 * `build_index --distributed=slurm` on the real one-node Slurm cluster of tasks/slurm_cluster.sh
 * (started here when root; the test fails, never skips, when it cannot start).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Index } from "../ffi/faiss.ts";
import { KILL_BEFORE_PUBLISH_ENV, PAUSE_BEFORE_PUBLISH_ENV } from "../lib/commands/add_shard.ts";
import { arraySpec, buildIndexOnSlurm, sbatchArgs, splitArgs, workerCommandFor } from "../lib/commands/slurm_build.ts";
import { writeNpy } from "../lib/io/npy_writer.ts";
import { clusteredData } from "./helpers/data.ts";
import { ensureSlurmCluster } from "./helpers/slurm.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
/** This program, run the way the current runtime runs it. */
const WORKER = isBun ? [process.execPath, join(ROOT, "main.ts")] : [process.execPath, "run", "-A", join(ROOT, "main.ts")];

test("the binary resubmits itself: the worker command of a compiled binary, bun main.ts and deno; sbatch's arguments", () => {
  // Compiled with tasks/compile.ts: Bun runs the entry point from /$bunfs/, Deno from a deno-compile- root.
  assert.deepEqual(workerCommandFor({ execPath: "/opt/bin/autofaiss", script: "/$bunfs/root/autofaiss" }), ["/opt/bin/autofaiss"]);
  assert.deepEqual(workerCommandFor({ execPath: "/opt/bin/autofaiss", denoMainModule: "file:///tmp/deno-compile-autofaiss/main.ts" }), ["/opt/bin/autofaiss"]);
  assert.deepEqual(workerCommandFor({ execPath: "/usr/bin/bun", script: "/src/autofaiss/main.ts" }), ["/usr/bin/bun", "/src/autofaiss/main.ts"]);
  assert.deepEqual(workerCommandFor({ execPath: "/usr/bin/deno", denoMainModule: "file:///src/autofaiss/main.ts" }), ["/usr/bin/deno", "run", "-A", "/src/autofaiss/main.ts"]);
  assert.deepEqual(sbatchArgs([0, 1, 2, 5], "/nfs/my T", ["/opt/bin/autofaiss"], "--partition=cpu --mem=16G", 4, "/nfs/my T/logs"), [
    "--array=0-2,5", "--wait", "--parsable", "--job-name=autofaiss-add", "--output=/nfs/my T/logs/add-%A_%a.out", "--cpus-per-task=4",
    "--partition=cpu", "--mem=16G", "--wrap=exec /opt/bin/autofaiss add_shard '--temporary_indices_folder=/nfs/my T'",
  ]);
  // A CPU count in --slurm_args wins; without nb_cores none is asked for.
  assert.deepEqual(sbatchArgs([3], "/T", ["/usr/bin/bun", "/src/main.ts"], "-c 8", 4, null), [
    "--array=3", "--wait", "--parsable", "--job-name=autofaiss-add", "-c", "8", "--wrap=exec /usr/bin/bun /src/main.ts add_shard --temporary_indices_folder=/T",
  ]);
  assert.deepEqual(sbatchArgs([0], "/T", ["/b"], null, null, null), ["--array=0", "--wait", "--parsable", "--job-name=autofaiss-add", "--wrap=exec /b add_shard --temporary_indices_folder=/T"]);
});

test("splitArgs and arraySpec: shell words and Slurm's array syntax", () => {
  assert.deepEqual(splitArgs(` --partition=cpu  "--comment=a b" --x='it''s' a\\ b `), ["--partition=cpu", "--comment=a b", "--x=its", "a b"]);
  assert.deepEqual(splitArgs(""), []);
  assert.throws(() => splitArgs('--a="x'), { message: 'slurm_args: unclosed " in "--a=\\"x"' });
  assert.equal(arraySpec([0, 1, 2, 3]), "0-3");
  assert.equal(arraySpec([1, 3]), "1,3");
  assert.equal(arraySpec([0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
});

describe("build_index --distributed=slurm on a real Slurm cluster", () => {
  const d = 16;
  const N = 200_000;
  const all = clusteredData(N, d, 30, 11);
  const queries = clusteredData(50, d, 30, 12);
  let dir = "";
  let slurmEnv: Record<string, string> = {};

  before(() => {
    slurmEnv = ensureSlurmCluster();
    dir = mkdtempSync(join(tmpdir(), "autofaiss-slurm-build-"));
    for (let i = 0; i < 4; i++) writeNpy(join(dir, "emb", `part-${i}.npy`), all.subarray((i * N / 4) * d, ((i + 1) * N / 4) * d), d);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("4 shards, one array task cancelled with scancel mid-run: resubmitted, same neighbours as one add of the same trained index", async () => {
    const out = join(dir, "out");
    const t = join(dir, "T");
    // A job name of this run only (sbatch keeps the last --job-name; --slurm_args come after ours), so
    // that the scancel below never hits another build's tasks on the same cluster.
    const jobName = `autofaiss-test-${process.pid}-${Date.now()}`;
    const child = spawn(WORKER[0], [
      ...WORKER.slice(1), "build_index", join(dir, "emb"), "--distributed=slurm", "--nb_shards=4", "--index_key=IVF256,Flat", "--metric_type=l2",
      `--slurm_args=--job-name=${jobName}`, `--temporary_indices_folder=${t}`, `--index_path=${join(out, "knn.index")}`, `--index_infos_path=${join(out, "index_infos.json")}`,
    ], { cwd: ROOT, env: { ...process.env, ...slurmEnv, [PAUSE_BEFORE_PUBLISH_ENV]: "5000" }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (b) => (stderr += b.toString()));
    const exited = new Promise<number | null>((ok) => child.on("close", ok));

    // Cancel the first array task seen running (it pauses 5 s before publishing its shard).
    let cancelled = "";
    for (let i = 0; i < 600 && !cancelled; i++) {
      const q = spawnSync("squeue", ["-h", "-r", "-n", jobName, "-t", "RUNNING", "-o", "%i"], { env: { ...process.env, ...slurmEnv }, encoding: "utf8" });
      const running = q.stdout.split("\n").map((l) => l.trim()).filter((l) => /^\d+_\d+$/.test(l));
      if (running.length > 0) {
        cancelled = running[0];
        const sc = spawnSync("scancel", [cancelled], { env: { ...process.env, ...slurmEnv }, encoding: "utf8" });
        assert.equal(sc.status, 0, sc.stderr);
      } else await new Promise((r) => setTimeout(r, 200));
    }
    assert.notEqual(cancelled, "", "no array task was seen running");
    const code = await exited;
    assert.equal(code, 0, stderr);
    const shard = Number(cancelled.split("_")[1]);
    assert.match(stderr, new RegExp(`Shards ${shard} did not finish \\(failed, cancelled or lost\\): resubmitting them \\(attempt 2 of 3\\)`));
    assert.match(stderr, new RegExp(`Shards: 3 done, 0 running, 1 failed of 4 \\(job \\d+\\)`));
    assert.match(stderr, /Shards: 4 done, 0 running, 0 failed of 4/);
    assert.deepEqual(readdirSync(t), [], "the build's folder in T is removed");
    assert.deepEqual(readdirSync(out).sort(), ["index_infos.json", "knn.index"]);

    const built = Index.read(join(out, "knn.index"));
    const reference = built.clone();
    try {
      // The same trained index (the built one emptied), filled by one sequential add.
      reference.reset();
      reference.add(all);
      for (const idx of [built, reference]) idx.ivf()!.nprobe = 16;
      const a = built.search(queries, 10);
      const b = reference.search(queries, 10);
      assert.equal(built.ntotal, N);
      assert.deepEqual(a.labels, b.labels);
      assert.deepEqual(a.distances, b.distances);
    } finally {
      reference.free();
      built.free();
    }
  });

  test("a shard that fails on every attempt: a clear error listing it after the retries", async () => {
    const t = join(dir, "T-fail");
    const saved = { ...process.env };
    Object.assign(process.env, slurmEnv, { [KILL_BEFORE_PUBLISH_ENV]: "2" });
    try {
      await assert.rejects(
        buildIndexOnSlurm(join(dir, "emb"), {
          temporaryIndicesFolder: t, nbShards: 4, indexKey: "IVF64,Flat", metricType: "l2", slurmRetries: 1, worker: WORKER, pollSeconds: 1,
          indexPath: join(dir, "out-fail", "knn.index"), indexInfosPath: join(dir, "out-fail", "index_infos.json"),
        }),
        (e: Error) => /^slurm: shards 2 of 4 did not finish after 2 attempts \(jobs \d+, \d+\); task logs in .+\/logs; the plan stays in .+: run add_shard for them, then merge_shards --temporary_indices_folder=.+$/.test(e.message) || assert.fail(e.message),
      );
    } finally {
      for (const k of [...Object.keys(slurmEnv), KILL_BEFORE_PUBLISH_ENV]) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });
});
