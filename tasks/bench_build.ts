/**
 * build_index against a plain python3-faiss script doing only train + add + write of the same key
 * with the same training-set size, on the same data, in one run. Wall time and peak RSS come from
 * `/usr/bin/time -v`; printed as ratios. The Python baseline loads the OpenMP OpenBLAS, as ours.
 *   bun tasks/bench_build.ts [--case=ivfflat|opq] [--n=...] [--keep]
 * Data: synthetic clustered float32 vectors in several .npy files (no real set of this size here).
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { NpyWriter } from "../lib/io/npy_writer.ts";
import { optimalTrainSize } from "../lib/plan/training_plan.ts";
import { parseMemory } from "../lib/plan/units.ts";
import { estimatedIndexSizeBytes } from "../lib/plan/index_metadata.ts";
import { clusteredData } from "../tests/helpers/data.ts";

const root = resolve(import.meta.dirname ?? ".", "..");
const arg = (name: string, dflt: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? dflt;

const CASES = {
  // 1M × 128 with a budget that rules out HNSW and IVF-Flat: OPQ…,IVF…_HNSW32,PQ…x8.
  opq: { n: 1_000_000, d: 128, budget: "100MB", key: null as string | null, metric: "l2" },
  // 200k × 768, IVF-Flat given explicitly.
  ivfflat: { n: 200_000, d: 768, budget: "4G", key: "IVF2048,Flat", metric: "ip" },
};
const name = arg("case", "ivfflat") as keyof typeof CASES;
const c = { ...CASES[name], n: Number(arg("n", String(CASES[name].n))) };
const current = "16G";
const dir = resolve(root, ".cache/bench", `${name}-${c.n}x${c.d}`);
const emb = join(dir, "emb");

function generate(): void {
  if (existsSync(emb) && readdirSync(emb).length) return;
  mkdirSync(emb, { recursive: true });
  const files = 4;
  const per = Math.ceil(c.n / files);
  for (let f = 0; f < files; f++) {
    const rows = Math.min(per, c.n - f * per);
    const w = new NpyWriter(join(emb, `part-${f}.npy`), rows, c.d);
    for (let r = 0; r < rows; r += 50_000) w.write(clusteredData(Math.min(50_000, rows - r), c.d, 500, 1000 * f + r));
    w.close();
  }
}

/**
 * Run `cmd` under `/usr/bin/time -v`, with the report written by time to a file (`-o`) and the
 * command's output to a log file. Pipes do not work here: the Bun child marks the stderr pipe
 * it shares with time non-blocking, and time's report then fails half-written with status 1.
 */
function timed(cmd: string, args: string[], label: string, env: Record<string, string> = {}): { wall: number; rssMb: number; out: string } {
  console.log(`$ ${cmd} ${args.join(" ")}`);
  const report = join(dir, `${label}.time.txt`);
  const log = join(dir, `${label}.log`);
  const fd = openSync(log, "w");
  let r;
  try {
    r = spawnSync("/usr/bin/time", ["-v", "-o", report, cmd, ...args], { cwd: root, stdio: ["ignore", fd, fd], env: { ...process.env, ...env } });
  } finally {
    closeSync(fd);
  }
  const out = readFileSync(log, "utf8");
  const times = existsSync(report) ? readFileSync(report, "utf8") : "";
  const exit = /Exit status: (\d+)/.exec(times)?.[1];
  if (exit !== "0" || r.status !== 0) {
    throw new Error(`bench_build: ${cmd} failed (exit ${exit ?? r.status}, signal ${r.signal}, ${r.error ?? "no spawn error"}); log ${log}:\n${out.slice(-2000)}`);
  }
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (.*)/.exec(times)![1].split(":").map(Number).reduce((a, b) => a * 60 + b, 0);
  const rssKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(times)![1]);
  return { wall, rssMb: rssKb / 1024, out };
}

generate();
const files = readdirSync(emb).sort().map((f) => join(emb, f));
const ours = timed("node_modules/.bin/bun", [
  "main.ts", "build_index", `--embeddings=${emb}`, `--index_path=${dir}/ours.index`, `--index_infos_path=${dir}/ours.json`,
  `--max_index_memory_usage=${c.budget}`, `--current_memory_available=${current}`, `--metric_type=${c.metric}`,
  ...(c.key ? [`--index_key=${c.key}`] : []),
], "ours");
const infos = JSON.parse(readFileSync(`${dir}/ours.json`, "utf8"));
const key: string = infos.index_key;
const trainSize = optimalTrainSize(c.n, key, parseMemory(current), c.d);
// Our steps after the add (tuning, fast metrics) are not in the raw script: report them apart.
const stepSecs = (label: string) => Number(new RegExp(`Finished "${label}[^"]*" in ([\\d.]+) secs`).exec(ours.out)?.[1] ?? 0);
const extra = stepSecs("Computing best hyperparameters") + stepSecs("Compute fast metrics");
// Debian's python3-faiss loads the system BLAS (pthread OpenBLAS by default). Its default thread
// pool oversubscribes the cores inside FAISS's OpenMP regions (OPQ), one thread starves k-means
// (IVF-Flat training 1.6x slower): no pthread setting is fair to both. So the baseline loads the
// OpenMP OpenBLAS we link statically: same FAISS, same BLAS, and the ratio is our overhead alone.
const OPENMP_BLAS = "/usr/lib/x86_64-linux-gnu/openblas-openmp";
const raw = timed("/usr/bin/python3", [join(root, "tasks/bench/raw_faiss_build.py"), key, c.metric, String(trainSize), `${dir}/raw.index`, ...files], "raw", { LD_LIBRARY_PATH: OPENMP_BLAS });

const estimated = estimatedIndexSizeBytes(key, c.n, c.d) ?? 0;
const batchMb = (Math.min(1e9, parseMemory(current) - estimated) / 1024 ** 2);
console.log(`\n${name}: ${c.n}×${c.d}, key ${key}, ${trainSize} training vectors`);
console.log(`  raw python3-faiss : ${raw.wall.toFixed(1)} s, peak RSS ${raw.rssMb.toFixed(0)} MB   (${raw.out.trim().split("\n").find((l) => l.startsWith("train"))})`);
console.log(`  ours build_index  : ${ours.wall.toFixed(1)} s, peak RSS ${ours.rssMb.toFixed(0)} MB (of which tuning + fast metrics ${extra.toFixed(1)} s)`);
const steps = [["sample", "-> Extract training vectors"], ["train", "-> Training the index"], ["add", "-> Adding the vectors"], ["write", "Saving the index"]];
console.log(`                      ${steps.map(([short, label]) => `${short} ${stepSecs(label!).toFixed(1)} s`).join(", ")}`);
console.log(`  wall ratio        : ${(ours.wall / raw.wall).toFixed(2)}× total, ${((ours.wall - extra) / raw.wall).toFixed(2)}× for train + add + write (target ≤ 1.10)`);
console.log(`  RSS               : ${ours.rssMb.toFixed(0)} MB vs target ≤ estimated index ${(estimated / 1024 ** 2).toFixed(0)} MB + one batch ${batchMb.toFixed(0)} MB + 400 MB = ${(estimated / 1024 ** 2 + batchMb + 400).toFixed(0)} MB`);
if (!process.argv.includes("--keep")) rmSync(dir, { recursive: true, force: true });
