/**
 * N-part builds and the search command, in one run on the same data:
 * - build_index of 300k × 128 into IVF1024,Flat as 1, 2, 4 and 8 parts: wall time and peak RSS
 *   (`/usr/bin/time -v`), printed as ratios against the 1-part build;
 * - `autofaiss search` of the 1-part and the 4-part outputs versus a python3-faiss script that
 *   searches the same files and merges parts with numpy (tasks/bench/raw_faiss_search.py):
 *   queries per second of the whole process (start-up, reading, search, merge, JSON lines), as ratios.
 *   bun tasks/bench_parts.ts [--n=300000] [--queries=10000] [--parts=1,2,4,8] [--keep]
 * Data: synthetic clustered float32 vectors in 4 .npy files. On a shared machine the figures are noisy:
 * the load average is printed with them.
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { NpyWriter, writeNpy } from "../lib/io/npy_writer.ts";
import { partPaths } from "../lib/plan/parts.ts";
import { clusteredData } from "../tests/helpers/data.ts";

const root = resolve(import.meta.dirname ?? ".", "..");
const arg = (name: string, dflt: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? dflt;
const n = Number(arg("n", "300000"));
const d = 128;
const nq = Number(arg("queries", "10000"));
const partCounts = arg("parts", "1,2,4,8").split(",").map(Number);
const KEY = "IVF1024,Flat";
const NPROBE = 16;
const K = 10;
// The RAM budget: batches are sized from it (Python's rule), so it bounds the reader's buffers too.
const CURRENT = "1G";
const dir = resolve(root, ".cache/bench", `parts-${n}x${d}`);
const emb = join(dir, "emb");
const queries = join(dir, "queries.npy");

function generate(): void {
  if (existsSync(emb) && readdirSync(emb).length) return;
  mkdirSync(emb, { recursive: true });
  const files = 4;
  const per = Math.ceil(n / files);
  for (let f = 0; f < files; f++) {
    const rows = Math.min(per, n - f * per);
    const w = new NpyWriter(join(emb, `part-${f}.npy`), rows, d);
    for (let r = 0; r < rows; r += 50_000) w.write(clusteredData(Math.min(50_000, rows - r), d, 500, 1000 * f + r));
    w.close();
  }
  writeNpy(queries, clusteredData(nq, d, 500, 999_999), d);
}

/** Runs `cmd` under `/usr/bin/time -v` (report and output to files: see tasks/bench_build.ts). */
function timed(cmd: string, args: string[], label: string): { wall: number; rssMb: number } {
  console.log(`$ ${cmd} ${args.join(" ")}`);
  const report = join(dir, `${label}.time.txt`);
  const log = join(dir, `${label}.log`);
  const fd = openSync(log, "w");
  let r;
  try {
    r = spawnSync("/usr/bin/time", ["-v", "-o", report, cmd, ...args], { cwd: root, stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd);
  }
  const times = existsSync(report) ? readFileSync(report, "utf8") : "";
  const exit = /Exit status: (\d+)/.exec(times)?.[1];
  if (exit !== "0" || r.status !== 0) {
    throw new Error(`bench_parts: ${cmd} failed (exit ${exit ?? r.status}); log ${log}:\n${readFileSync(log, "utf8").slice(-2000)}`);
  }
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (.*)/.exec(times)![1].split(":").map(Number).reduce((a, b) => a * 60 + b, 0);
  return { wall, rssMb: Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(times)![1]) / 1024 };
}

const load = () => loadavg().map((x) => x.toFixed(1)).join(" ");
generate();
console.log(`data: ${n} x ${d} in ${emb}; ${KEY}; current_memory_available=${CURRENT}; load average before: ${load()}`);

const builds: { parts: number; wall: number; rssMb: number }[] = [];
for (const parts of partCounts) {
  const out = join(dir, `out${parts}`);
  rmSync(out, { recursive: true, force: true });
  const t = timed("node_modules/.bin/bun", [
    "main.ts", "build_index", `--embeddings=${emb}`, `--index_path=${out}/knn.index`, `--index_infos_path=${out}/index_infos.json`,
    `--index_key=${KEY}`, `--index_param=nprobe=${NPROBE}`, "--metric_type=l2", `--current_memory_available=${CURRENT}`,
    `--nb_indices_to_keep=${parts}`,
  ], `build${parts}`);
  builds.push({ parts, ...t });
}
const one = builds.find((b) => b.parts === 1) ?? builds[0];
console.log(`\nbuild (load average after: ${load()})`);
console.log("parts  wall s  peak RSS MB  wall/1-part  RSS/1-part");
for (const b of builds) {
  console.log(`${String(b.parts).padStart(5)}  ${b.wall.toFixed(1).padStart(6)}  ${b.rssMb.toFixed(0).padStart(11)}  ${(b.wall / one.wall).toFixed(2).padStart(11)}  ${(b.rssMb / one.rssMb).toFixed(2).padStart(10)}`);
}

console.log(`\nsearch: ${nq} queries, k=${K}, nprobe=${NPROBE} (whole process: start-up, read, search, merge, JSON lines)`);
console.log("parts  ours q/s  python q/s  ours/python  same ids");
for (const parts of [1, 4].filter((p) => partCounts.includes(p))) {
  const base = join(dir, `out${parts}`, "knn.index");
  const files = parts === 1 ? [base] : partPaths(base, parts);
  const oursOut = join(dir, `search${parts}.ours.jsonl`);
  const pyOut = join(dir, `search${parts}.py.jsonl`);
  const ours = timed("sh", ["-c", `node_modules/.bin/bun main.ts search --index_path=${base} --queries=${queries} --k=${K} --index_param=nprobe=${NPROBE} > ${oursOut}`], `search${parts}.ours`);
  const py = timed("/usr/bin/python3", [join(root, "tasks/bench/raw_faiss_search.py"), queries, String(K), String(NPROBE), pyOut, ...files], `search${parts}.py`);
  // Distances print differently (Python's repr of float32 → float64 is the same value); compare parsed.
  const a = readFileSync(oursOut, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const b = readFileSync(pyOut, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const sameIds = a.length === b.length && a.every((row, q) => JSON.stringify([...row.ids].sort()) === JSON.stringify([...b[q].ids].sort()));
  const qps = (w: number) => nq / w;
  console.log(`${String(parts).padStart(5)}  ${qps(ours.wall).toFixed(0).padStart(8)}  ${qps(py.wall).toFixed(0).padStart(10)}  ${(py.wall / ours.wall).toFixed(2).padStart(11)}  ${sameIds ? "yes" : "NO"}`);
}
console.log(`load average after: ${load()}`);
if (!process.argv.includes("--keep")) for (const p of partCounts) rmSync(join(dir, `out${p}`), { recursive: true, force: true });
