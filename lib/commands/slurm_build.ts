/**
 * `build_index --distributed=slurm`: the whole distributed build from one command, as
 * `--distributed=pyspark` is in Python. Plans and trains here, submits the add phase as a Slurm job
 * array (`sbatch --array=0-(S-1) --wait`, each task running this same program's `add_shard`),
 * resubmits only the shards that did not finish (failed, cancelled, node lost) a bounded number of
 * times, then merges here. Slurm schedules, places and retries; the done markers in the shared
 * folder, not Slurm's accounting, say which shards are finished.
 *
 * The shared folder of one build is `<temporary_indices_folder>/autofaiss-<random>`, removed at the end.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";
import { isS3, listStored, removeStoredTree, storageJoin } from "../io/storage.ts";
import { DistributedError, shardName } from "../plan/shards.ts";
import { type BuildReporter, silentReporter } from "../reporter.ts";
import type { BuildIndexOptions, BuildIndexResult } from "./build_index.ts";
import { mergeShards } from "./merge_shards.ts";
import { planDistributedBuild } from "./plan_build.ts";
import { folderPaths } from "./shard_folder.ts";

export interface SlurmBuildOptions extends BuildIndexOptions {
  temporaryIndicesFolder: string;
  nbShards?: number | null;
  /** Extra sbatch arguments, split like a shell does (quotes group words). */
  slurmArgs?: string | null;
  /** Resubmissions of unfinished shards before the build fails (default 2). */
  slurmRetries?: number;
  /** How a task runs this program (default: {@link workerCommand}). */
  worker?: string[];
  /** Seconds between two progress polls (default 2). */
  pollSeconds?: number;
}

/** What {@link workerCommandFor} needs to know about the running program. */
export interface RunningProgram {
  /** The runtime's executable, or the compiled binary itself. */
  execPath: string;
  /** Bun/Node: process.argv[1] (the script); undefined on Deno. */
  script?: string;
  /** Deno: Deno.mainModule; undefined on Bun. */
  denoMainModule?: string;
}

/**
 * The command line that runs this program again in an array task: the compiled binary itself, or
 * the runtime with main.ts (`bun /abs/main.ts`, `deno run -A /abs/main.ts`).
 *
 * @example workerCommandFor({ execPath: "/opt/autofaiss", script: "/$bunfs/root/autofaiss" }) // ["/opt/autofaiss"]
 */
export function workerCommandFor(p: RunningProgram): string[] {
  if (p.denoMainModule !== undefined) {
    // `deno compile` runs its entry point from a temporary "deno-compile-<name>" root (Deno 2).
    if (p.denoMainModule.includes("/deno-compile-")) return [p.execPath];
    return [p.execPath, "run", "-A", new URL(p.denoMainModule).pathname];
  }
  // A compiled Bun binary runs its entry point from its virtual file system (/$bunfs/ on Linux, Bun 1.x).
  if (!p.script || p.script.startsWith("/$bunfs/")) return [p.execPath];
  return [p.execPath, resolve(p.script)];
}

/** {@link workerCommandFor} of this process. */
export function workerCommand(): string[] {
  const deno = (globalThis as { Deno?: { execPath(): string; mainModule: string } }).Deno;
  if (deno) return workerCommandFor({ execPath: deno.execPath(), denoMainModule: deno.mainModule });
  return workerCommandFor({ execPath: process.execPath, script: process.argv[1] });
}

/** Splits `--a=1 "--b=x y"` into words as a shell does (single/double quotes, backslash escapes). */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  let word: string | null = null;
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && i + 1 < text.length) word += text[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= "";
    } else if (c === "\\" && i + 1 < text.length) {
      word = (word ?? "") + text[++i];
    } else if (/\s/.test(c)) {
      if (word !== null) out.push(word);
      word = null;
    } else word = (word ?? "") + c;
  }
  if (quote) throw new DistributedError(`slurm_args: unclosed ${quote} in ${JSON.stringify(text)}`);
  if (word !== null) out.push(word);
  return out;
}

/** `'…'` shell quoting for sbatch --wrap. */
function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Compresses shard numbers to Slurm's array syntax: [0,1,2,5] → "0-2,5". */
export function arraySpec(shards: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < shards.length;) {
    let j = i;
    while (j + 1 < shards.length && shards[j + 1] === shards[j] + 1) j++;
    parts.push(i === j ? `${shards[i]}` : `${shards[i]}-${shards[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

function assertSlurmClient(): void {
  const r = spawnSync("sbatch", ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new DistributedError(
      `distributed: "slurm" needs Slurm's sbatch on PATH (${r.error ? r.error.message : `sbatch --version exited ${r.status}: ${r.stderr.trim()}`})`,
    );
  }
}

/** Shards of `n` whose done marker is in the folder. */
async function doneShards(t: string, n: number): Promise<Set<number>> {
  const names = new Set(await listStored(folderPaths(t).shards));
  const done = new Set<number>();
  for (let i = 0; i < n; i++) if (names.has(`${shardName(i, n)}.done`)) done.add(i);
  return done;
}

/** The array tasks of `jobId` still in Slurm's queue (pending or running), by shard, with their state; null if squeue failed. */
function queuedTasks(jobId: string): Map<number, string> | null {
  const r = spawnSync("squeue", ["-h", "-r", "-j", jobId, "-t", "all", "-o", "%K %T"], { encoding: "utf8" });
  if (r.status !== 0) return null;
  const out = new Map<number, string>();
  for (const line of r.stdout.split("\n")) {
    const [task, state] = line.trim().split(/\s+/);
    // Finished tasks stay listed for MinJobAge seconds: only live states count as queued.
    if (/^\d+$/.test(task) && ["PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED"].includes(state)) out.set(Number(task), state);
  }
  return out;
}

/**
 * The sbatch arguments of the add phase: an array of `shards`, each task running `worker add_shard`
 * on T. With nb_cores and no CPU count in `slurmArgs`, each task asks for nb_cores CPUs
 * (`--cpus-per-task`), which Slurm passes to add_shard as SLURM_CPUS_PER_TASK.
 *
 * @example sbatchArgs([0, 1], "/nfs/T", ["/opt/autofaiss"], null, 4, null)
 *   // ["--array=0-1", "--wait", "--parsable", "--job-name=autofaiss-add", "--cpus-per-task=4", "--wrap=exec /opt/autofaiss add_shard --temporary_indices_folder=/nfs/T"]
 */
export function sbatchArgs(
  shards: readonly number[],
  t: string,
  worker: readonly string[],
  slurmArgs: string | null,
  nbCores: number | null,
  logDir: string | null,
): string[] {
  const extra = splitArgs(slurmArgs ?? "");
  const cpusGiven = extra.some((a) => /^(--cpus-per-task(=|$)|-c)/.test(a));
  const wrap = [...worker, "add_shard", `--temporary_indices_folder=${t}`].map(shellQuote).join(" ");
  return [
    `--array=${arraySpec(shards)}`,
    "--wait",
    "--parsable",
    "--job-name=autofaiss-add",
    ...(logDir ? [`--output=${logDir}/add-%A_%a.out`] : []),
    ...(nbCores !== null && !cpusGiven ? [`--cpus-per-task=${nbCores}`] : []),
    ...extra,
    `--wrap=exec ${wrap}`,
  ];
}

/** Runs `sbatch … --wait` for `shards`; resolves with the job id once every task ended. */
async function submitAndWait(
  shards: number[],
  t: string,
  n: number,
  o: SlurmBuildOptions,
  logDir: string | null,
  log: BuildReporter,
): Promise<{ jobId: string; exitCode: number | null; stderr: string }> {
  const args = sbatchArgs(shards, t, o.worker ?? workerCommand(), o.slurmArgs ?? null, o.nbCores ?? null, logDir);
  log.info(`sbatch ${args.map(shellQuote).join(" ")}`);
  const child = spawn("sbatch", args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (b: Uint8Array) => (stdout += new TextDecoder().decode(b)));
  child.stderr.on("data", (b: Uint8Array) => (stderr += new TextDecoder().decode(b)));
  const exited = new Promise<number | null>((ok, fail) => {
    child.on("error", (e) => fail(new DistributedError(`slurm: cannot run sbatch: ${e.message}`)));
    child.on("close", (code) => ok(code));
  });
  let last = "";
  let finished = false;
  let exitCode: number | null = null;
  exited.then((c) => {
    finished = true;
    exitCode = c;
  }, () => (finished = true));
  const pollMs = (o.pollSeconds ?? 2) * 1000;
  while (!finished) {
    await Promise.race([exited.catch(() => {}), new Promise((r) => setTimeout(r, pollMs))]);
    const jobId = stdout.trim().split(";")[0];
    if (!jobId) continue;
    // Done: its marker is in T. Running: Slurm says so. Failed: submitted, not done, no longer queued.
    const done = await doneShards(t, n);
    const queued = finished ? new Map<number, string>() : queuedTasks(jobId);
    if (queued === null) continue;
    const running = [...queued.values()].filter((state) => state === "RUNNING").length;
    const failed = shards.filter((i) => !done.has(i) && !queued.has(i)).length;
    const line = `Shards: ${done.size} done, ${running} running, ${failed} failed of ${n} (job ${jobId})`;
    if (line !== last) log.info(line);
    last = line;
  }
  await exited;
  const jobId = stdout.trim().split(";")[0];
  if (!/^\d+$/.test(jobId)) {
    throw new DistributedError(`slurm: sbatch did not submit the add phase (exit ${exitCode}): ${stderr.trim() || stdout.trim() || "no output"}`);
  }
  return { jobId, exitCode, stderr };
}

/**
 * Plans, runs the add phase on Slurm, merges. Returns what build_index returns (the caller frees
 * the index).
 */
export async function buildIndexOnSlurm(embeddings: string | string[], o: SlurmBuildOptions): Promise<BuildIndexResult> {
  const log = o.reporter ?? silentReporter;
  // The distributed plan picks a memory-mappable key by the heuristic and has no report: say so
  // rather than ignore the flags.
  if (o.selection === "measured") {
    throw new DistributedError('selection: "measured" is not available with distributed="slurm"; pass --index_key (e.g. the key a local --selection=measured build on a sample chose) or use selection="heuristic"');
  }
  if (o.reportPath) throw new DistributedError('report_path: distributed="slurm" builds write no HTML report yet; run score_index --report_path on the result');
  assertSlurmClient();
  const run = storageJoin(isS3(o.temporaryIndicesFolder) ? o.temporaryIndicesFolder : resolve(o.temporaryIndicesFolder), `autofaiss-${randomBytes(6).toString("hex")}`);
  const { plan } = await planDistributedBuild(embeddings, { ...o, temporaryIndicesFolder: run });
  const n = plan.shards.length;
  const logDir = isS3(run) ? null : storageJoin(run, "logs");
  if (logDir) mkdirSync(logDir, { recursive: true });
  const attempts = 1 + (o.slurmRetries ?? 2);
  let pending = Array.from({ length: n }, (_, i) => i);
  const jobs: string[] = [];
  for (let attempt = 1; attempt <= attempts && pending.length > 0; attempt++) {
    if (attempt > 1) {
      log.warning(`Shards ${pending.join(", ")} did not finish (failed, cancelled or lost): resubmitting them (attempt ${attempt} of ${attempts})`);
    }
    const { jobId } = await submitAndWait(pending, run, n, o, logDir, log);
    jobs.push(jobId);
    const done = await doneShards(run, n);
    pending = pending.filter((i) => !done.has(i));
    log.info(`Job ${jobId} ended: ${n - pending.length} of ${n} shards done`);
  }
  if (pending.length > 0) {
    const logs = logDir ? `; task logs in ${logDir}` : "";
    throw new DistributedError(
      `slurm: shards ${pending.join(", ")} of ${n} did not finish after ${attempts} attempts (jobs ${jobs.join(", ")})${logs}; ` +
        `the plan stays in ${run}: run add_shard for them, then merge_shards --temporary_indices_folder=${run}`,
    );
  }
  const { alreadyMerged: _, ...result } = await mergeShards({ temporaryIndicesFolder: run, nbCores: o.nbCores, reporter: log });
  await removeStoredTree(run);
  return result;
}
