/** The test cluster itself: starts (or is up), runs a 4-task array with --wait, restarts at once. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import assert from "node:assert/strict";
import { ensureSlurmCluster } from "./helpers/slurm.ts";

test("slurm test cluster: sbatch --array=0-3 --wait runs every task; a second start returns at once", () => {
  const env = { ...process.env, ...ensureSlurmCluster() };
  const dir = mkdtempSync(join(tmpdir(), "autofaiss-slurm-test-"));
  try {
    execFileSync("sbatch", ["--array=0-3", "--wait", "--chdir", dir, "-o", "task-%a.out", "--wrap", "echo task $SLURM_ARRAY_TASK_ID"], {
      env, stdio: "pipe", timeout: 120_000,
    });
    for (let i = 0; i < 4; i++) assert.equal(readFileSync(join(dir, `task-${i}.out`), "utf8"), `task ${i}\n`);
    const started = Date.now();
    assert.deepEqual(ensureSlurmCluster(), { SLURM_CONF: env.SLURM_CONF });
    assert.ok(Date.now() - started < 5_000, `a second start took ${Date.now() - started} ms (expected: returns at once)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
