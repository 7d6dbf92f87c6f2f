/**
 * The real single-node Slurm cluster of tasks/slurm_cluster.sh, for the distributed-build tests.
 * Started here when the tests run as root; when it cannot start, the test fails with the reason
 * (a missing capability is said, never skipped).
 */
import { execFileSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "tasks", "slurm_cluster.sh");

/** Starts the cluster (a no-op when it is up) and returns the environment its clients need. */
export function ensureSlurmCluster(): { SLURM_CONF: string } {
  const uid = process.getuid?.() ?? -1;
  if (uid !== 0) {
    throw new Error(`slurm: the test cluster needs root to start slurmctld/slurmd (uid ${uid}); run the tests as root or start tasks/slurm_cluster.sh as root first`);
  }
  let out: string;
  try {
    out = execFileSync("bash", [SCRIPT], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
  } catch (e) {
    const stderr = String((e as { stderr?: unknown }).stderr ?? "").trim();
    throw new Error(`slurm: tasks/slurm_cluster.sh could not start the test cluster: ${stderr || (e as Error).message}`);
  }
  const m = /^export SLURM_CONF=(.+)$/m.exec(out);
  if (!m) throw new Error(`slurm: tasks/slurm_cluster.sh printed no SLURM_CONF line: ${out.trim()}`);
  return { SLURM_CONF: m[1] };
}
