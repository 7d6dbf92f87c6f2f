/**
 * Which OpenBLAS variant and thread setting to ship: times the training of an OPQ + IVF_HNSW + PQ
 * index (the slowest thing autofaiss does) with each, in one run, and prints the ratios to ours.
 *   bun tasks/bench_blas.ts [--n=100000] [--d=128] [--key=OPQ16_128,IVF1024_HNSW32,PQ16x8] [--timeout=900]
 * Data: 100k×128 synthetic clustered vectors (threading behaviour does not depend on the values).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";

const root = resolve(import.meta.dirname ?? ".", "..");
const arg = (name: string, dflt: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? dflt;

if (process.argv.includes("--child")) {
  // Child: one configuration, library from AUTOFAISS_FAISS_LIB.
  const { Index, setNumThreads, numThreads } = await import("../ffi/faiss.ts");
  const { clusteredData } = await import("../tests/helpers/data.ts");
  const n = Number(arg("n", "100000"));
  const d = Number(arg("d", "128"));
  if (process.env.BENCH_SET_THREADS === "1") setNumThreads(0);
  const x = clusteredData(n, d, 200, 1);
  using index = Index.factory(d, arg("key", ""), "l2");
  index.setPolysemousTraining(false);
  const t = performance.now();
  index.train(x);
  console.log(JSON.stringify({ seconds: (performance.now() - t) / 1000, ompThreads: numThreads() }));
  process.exit(0);
}

const n = arg("n", "100000");
const d = arg("d", "128");
const key = arg("key", "OPQ16_128,IVF1024_HNSW32,PQ16x8");
const timeoutS = Number(arg("timeout", "900"));
const libs: Record<string, string> = {
  openmp: resolve(root, "native/build/bench/openmp/libfaiss_c.so"),
  pthread: resolve(root, "native/build/bench/pthread/libfaiss_c.so"),
};
for (const [blas, path] of Object.entries(libs)) {
  if (existsSync(path)) continue;
  const r = spawnSync("node_modules/.bin/bun", ["tasks/build_native.ts", `--blas=${blas}`, `--out=${path}`, "--no-test"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) process.exit(1);
}

const configs = [
  { name: "OpenMP OpenBLAS, shared OpenMP pool (shipped)", lib: libs.openmp, env: {}, setThreads: true },
  { name: "pthread OpenBLAS, 1 BLAS thread", lib: libs.pthread, env: {}, setThreads: true },
  { name: "pthread OpenBLAS, default BLAS threads", lib: libs.pthread, env: {}, setThreads: false },
];
console.log(`training ${key} on ${n}×${d}, ${configs.length} configurations, timeout ${timeoutS} s each`);
const results: { name: string; seconds: number | null }[] = [];
for (const c of configs) {
  const r = spawnSync("node_modules/.bin/bun", ["tasks/bench_blas.ts", "--child", `--n=${n}`, `--d=${d}`, `--key=${key}`], {
    cwd: root,
    env: { ...process.env, ...c.env, AUTOFAISS_FAISS_LIB: c.lib, BENCH_SET_THREADS: c.setThreads ? "1" : "0" },
    encoding: "utf8",
    timeout: timeoutS * 1000,
  });
  const line = (r.stdout ?? "").trim().split("\n").pop() ?? "";
  const seconds = r.status === 0 ? (JSON.parse(line).seconds as number) : null;
  results.push({ name: c.name, seconds });
  console.log(`${c.name}: ${seconds === null ? `> ${timeoutS} s (stopped)` : `${seconds.toFixed(1)} s`}`);
}
const base = results[0].seconds;
if (base) {
  for (const r of results) console.log(`  ${r.name}: ${r.seconds === null ? `> ${(timeoutS / base).toFixed(1)}` : (r.seconds / base).toFixed(2)}× shipped`);
}
