/**
 * The host CPU's flags as Linux lists them, read by `cat /proc/cpuinfo` in a child process: an oracle
 * independent of ffi/library.ts's native probe, and readable under Deno's test permissions (Deno
 * refuses to read /proc/cpuinfo itself without --allow-all; tasks/test.ts grants --allow-run).
 */
import { spawnSync } from "node:child_process";
import { AVX2_CPU_FLAGS, cpuinfoFlags } from "../../ffi/library.ts";

/** The flags of the host's /proc/cpuinfo. */
export function hostCpuFlags(): string[] {
  const r = spawnSync("cat", ["/proc/cpuinfo"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`test helper: cat /proc/cpuinfo failed (${r.signal ?? `exit ${r.status}`}): ${r.stderr}`);
  return cpuinfoFlags(r.stdout);
}

/** Of the flags the AVX2 variant needs, those the host has, in AVX2_CPU_FLAGS order. */
export function hostAvx2Flags(): string[] {
  const flags = new Set(hostCpuFlags());
  return AVX2_CPU_FLAGS.filter((f) => flags.has(f));
}
