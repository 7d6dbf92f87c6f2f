/**
 * Distributed build costs, against the local build of the same data in the same run:
 *   - wall of `build_index --distributed=slurm` with 1, 2 and 4 shards, as a ratio to the local build;
 *   - each phase alone (plan_build, every add_shard run one after another, merge_shards), for each
 *     shard count, so that the cost per shard and per vector can be read off.
 * Needs the one-node Slurm cluster (tasks/slurm_cluster.sh, as root). The search parameters are
 * given (--index_param), so no run spends time tuning and the figures compare building only.
 *   bun tasks/bench_distributed.ts [--n=200000,400000] [--d=64] [--key=IVF1024,Flat] [--shards=1,2,4]
 * Each vector count in --n is a separate run (its own local baseline), so growth with vectors reads
 * off the same table as growth with shards.
 * Data: synthetic clustered float32 vectors in 4 .npy files (no real set of this size here).
 * On a shared machine, print `uptime` with the figures: a loaded machine makes every ratio noisy.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { NpyWriter } from "../lib/io/npy_writer.ts";
import { clusteredData } from "../tests/helpers/data.ts";

const root = resolve(import.meta.dirname ?? ".", "..");
const arg = (name: string, dflt: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? dflt;
const counts = arg("n", "200000,400000").split(",").map(Number);
const d = Number(arg("d", "64"));
const key = arg("key", "IVF1024,Flat");
const shardCounts = arg("shards", "1,2,4").split(",").map(Number);
const bun = process.execPath;

function generate(n: number, emb: string): void {
  if (existsSync(emb) && readdirSync(emb).length) return;
  mkdirSync(emb, { recursive: true });
  const per = Math.ceil(n / 4);
  for (let f = 0; f < 4; f++) {
    const rows = Math.min(per, n - f * per);
    const w = new NpyWriter(join(emb, `part-${f}.npy`), rows, d);
    for (let r = 0; r < rows; r += 50_000) w.write(clusteredData(Math.min(50_000, rows - r), d, 200, 1000 * f + r));
    w.close();
  }
}

/** Runs this program with `args`; returns the wall time in seconds. */
function run(label: string, args: string[], env: Record<string, string> = {}): number {
  console.log(`$ bun main.ts ${args.join(" ")}`);
  const started = performance.now();
  const r = spawnSync(bun, ["main.ts", ...args], { cwd: root, env: { ...process.env, ...env }, encoding: "utf8", maxBuffer: 1 << 26 });
  const wall = (performance.now() - started) / 1000;
  if (r.status !== 0) throw new Error(`${label} failed (${r.status}): ${r.stderr.split("\n").slice(-5).join("\n")}`);
  return wall;
}

const slurm = execFileSync("bash", [join(root, "tasks/slurm_cluster.sh")], { encoding: "utf8" });
const slurmEnv = { SLURM_CONF: /^export SLURM_CONF=(.+)$/m.exec(slurm)![1] };
const load = () => execFileSync("uptime", { encoding: "utf8" }).trim();
const results: Array<{ n: number; local: number; loadBefore: string; loadAfter: string; rows: Array<Record<string, number>> }> = [];

for (const n of counts) {
  const dir = resolve(root, ".cache/bench", `distributed-${n}x${d}`);
  const emb = join(dir, "emb");
  generate(n, emb);
  const common = (out: string) => [
    emb, `--index_key=${key}`, "--index_param=nprobe=16", "--metric_type=l2",
    `--index_path=${join(out, "knn.index")}`, `--index_infos_path=${join(out, "index_infos.json")}`,
  ];
  const loadBefore = load();
  const local = run("local build", ["build_index", ...common(join(dir, "out-local"))]);
  const rows: Array<Record<string, number>> = [];
  for (const s of shardCounts) {
    const t = join(dir, `T-${s}`);
    rmSync(t, { recursive: true, force: true });
    const slurmWall = run(`slurm ${s}`, ["build_index", ...common(join(dir, `out-slurm-${s}`)), "--distributed=slurm", `--nb_shards=${s}`, `--temporary_indices_folder=${t}`], slurmEnv);
    rmSync(t, { recursive: true, force: true });
    const plan = run(`plan ${s}`, ["plan_build", ...common(join(dir, `out-phases-${s}`)), `--nb_shards=${s}`, `--temporary_indices_folder=${t}`]);
    let add = 0;
    for (let i = 0; i < s; i++) add += run(`add ${i}/${s}`, ["add_shard", `--temporary_indices_folder=${t}`, `--shard=${i}`]);
    const merge = run(`merge ${s}`, ["merge_shards", `--temporary_indices_folder=${t}`]);
    rmSync(t, { recursive: true, force: true });
    rows.push({ shards: s, slurmWall, slurmRatio: slurmWall / local, plan, addTotal: add, addPerShard: add / s, merge });
  }
  results.push({ n, local, loadBefore, loadAfter: load(), rows });
}

for (const { n, local, loadBefore, loadAfter, rows } of results) {
  console.log(`\n${n} x ${d}, ${key}, local build ${local.toFixed(1)} s; machine before: ${loadBefore}; after: ${loadAfter}`);
  console.log("shards  slurm wall  vs local  plan_build  add_shard (sum / per shard)  merge_shards");
  for (const r of rows) {
    console.log(
      `${String(r.shards).padStart(6)}  ${r.slurmWall.toFixed(1).padStart(9)} s  ${r.slurmRatio.toFixed(2).padStart(7)}x  ` +
        `${r.plan.toFixed(1).padStart(8)} s  ${r.addTotal.toFixed(1).padStart(10)} s / ${r.addPerShard.toFixed(1).padStart(5)} s           ${r.merge.toFixed(1).padStart(6)} s`,
    );
  }
}
const out = resolve(root, ".cache/bench", "distributed-results.json");
writeFileSync(out, JSON.stringify({ d, key, results }, null, 2) + "\n");
console.log(`results: ${out}`);
