/**
 * Tuning benchmark (issue 5): wall time of `tuneIndex` and the value it chooses, then the chosen
 * value's single-query latency measured independently (k = 40, like fast metrics).
 *
 *   bun tasks/bench_tune.ts [--case=hnsw|ivf|all] [--ivf-n=1000000] [--threads=N]
 *
 * - hnsw: HNSW32 on 20,000 × 64, bound 10 ms. Python AutoFaiss took 78 s on a 2-core machine and
 *   chose efSearch=447. Data: the first 20,000 Fashion-MNIST images (run
 *   tasks/convert_fashion_mnist.ts first) projected to 64 dimensions by a seeded Gaussian random
 *   projection, which keeps their neighbourhood structure; falls back to synthetic clustered data.
 * - ivf: IVF4096,Flat on n × 128 synthetic clustered vectors (default n = 1,000,000), bound 10 ms.
 *
 * Without --threads each case runs with all cores (as Python measures) and then with one thread.
 * A one-query search uses one thread either way (FAISS parallelises over queries), but with two
 * OpenMP threads on a busy 2-core machine every search pays a fork/join that the other work delays:
 * efSearch=16 takes ~0.13 ms with one thread and 1–12 ms with two, which is what the tuner then sees.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";
import { Index, numThreads, setNumThreads } from "../ffi/faiss.ts";
import { openCollection } from "../lib/io/collection.ts";
import { singleQueryLatency } from "../lib/measure/fast_metrics.ts";
import type { BuildReporter } from "../lib/reporter.ts";
import { tuneIndex } from "../lib/commands/tune_index.ts";
import { clusteredData, gaussian, seededRandom } from "../tests/helpers/data.ts";

const root = resolve(import.meta.dirname ?? ".", "..");
const PYTHON_HNSW_SECONDS = 78; // Python AutoFaiss tuning this data, measured on a 2-core machine
const PYTHON_HNSW_VALUE = "efSearch=447";
const FASHION = resolve(root, ".cache/data/fashion-mnist/base/base.npy");

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const which = arg("case", "all");
const ivfN = Number(arg("ivf-n", "1000000"));
const threadSettings = process.argv.some((a) => a.startsWith("--threads=")) ? [Number(arg("threads", "0"))] : [0, 1];

const quiet: BuildReporter = {
  debug: () => {},
  info: (m) => process.env.BENCH_VERBOSE && console.log(`  ${m}`),
  warning: (m) => console.log(`  warning: ${m}`),
  error: (m) => console.log(`  error: ${m}`),
  timed: async (_l, _i, fn) => await fn(),
  progress: () => ({ update: () => {}, finish: () => {} }),
};

/** Rows × dIn → rows × dOut with a seeded N(0, 1/dOut) matrix (Johnson–Lindenstrauss). */
function project(x: Float32Array, rows: number, dIn: number, dOut: number): Float32Array {
  const g = gaussian(seededRandom(64));
  const m = Float32Array.from({ length: dIn * dOut }, () => g() / Math.sqrt(dOut));
  const out = new Float32Array(rows * dOut);
  for (let i = 0; i < rows; i++) {
    for (let k = 0; k < dIn; k++) {
      const v = x[i * dIn + k];
      if (v === 0) continue; // Fashion-MNIST is half background
      const mk = k * dOut;
      for (let j = 0; j < dOut; j++) out[i * dOut + j] += v * m[mk + j];
    }
  }
  return out;
}

async function hnswData(n: number, d: number): Promise<{ x: Float32Array; source: string }> {
  if (existsSync(FASHION)) {
    await using embs = await openCollection(FASHION);
    const raw = (await embs.read(0, n)).vectors;
    return { x: project(raw, n, embs.dimension, d), source: `Fashion-MNIST first ${n} × ${embs.dimension}, random projection to ${d}` };
  }
  return { x: clusteredData(n, d, 100, 5), source: `synthetic clustered (run tasks/convert_fashion_mnist.ts for Fashion-MNIST)` };
}

async function bench(label: string, key: string, d: number, x: Float32Array, boundMs: number, trainRows: number) {
  const n = x.length / d;
  let t = performance.now();
  using index = Index.factory(d, key, "l2");
  if (!index.isTrained) index.train(x.subarray(0, Math.min(n, trainRows) * d));
  index.add(x);
  const buildS = (performance.now() - t) / 1000;
  t = performance.now();
  const { param, tuning } = await tuneIndex(index, key, { saveOnDisk: false, maxIndexQueryTimeMs: boundMs, reporter: quiet });
  const tuneS = (performance.now() - t) / 1000;
  const lat = singleQueryLatency(index, x.subarray(0, Math.min(n, 1000) * d), { timeoutMs: 5000 });
  console.log(`${label}`);
  console.log(`  build ${buildS.toFixed(1)} s; tuning ${tuneS.toFixed(1)} s → ${param} (calls ${JSON.stringify(tuning?.calls)})`);
  console.log(`  chosen value, measured again on ${lat.searches} raw queries: avg ${lat.avgMs.toFixed(3)} ms, p99 ${lat.p99Ms.toFixed(3)} ms (bound ${boundMs} ms)`);
  return { tuneS, param, lat };
}

const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "deno";
const hnsw = which === "hnsw" || which === "all" ? await hnswData(20_000, 64) : null;
let ivfData: Float32Array | null = null;
if (which === "ivf" || which === "all") {
  const t = performance.now();
  ivfData = clusteredData(ivfN, 128, 1000, 9);
  console.log(`ivf data: synthetic clustered ${ivfN} × 128 (generated in ${((performance.now() - t) / 1000).toFixed(1)} s)`);
}
for (const threads of threadSettings) {
  setNumThreads(threads);
  console.log(`\nbench_tune (${runtime}): FAISS threads ${numThreads() ?? "?"}`);
  if (hnsw) {
    console.log(`hnsw data: ${hnsw.source}`);
    const r = await bench("HNSW32, 20,000 × 64, bound 10 ms", "HNSW32", 64, hnsw.x, 10, 0);
    console.log(`  vs Python: ${PYTHON_HNSW_SECONDS} s → ${PYTHON_HNSW_VALUE}; our time is ${(r.tuneS / PYTHON_HNSW_SECONDS).toFixed(3)} × Python's`);
  }
  if (ivfData) {
    // Python trains IVF4096 on at most 4096 × 39 ≈ 160k vectors (k-means' max points per centroid × nlist).
    await bench(`IVF4096,Flat, ${ivfN} × 128, bound 10 ms`, "IVF4096,Flat", 128, ivfData, 10, 4096 * 39);
  }
}
