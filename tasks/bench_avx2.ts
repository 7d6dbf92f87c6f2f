/**
 * AVX2 vs GENERIC FAISS on real data: the same operations through native/build/libfaiss_c_avx2.so and
 * native/build/libfaiss_c.so, each case in a child process per variant (a process opens one library,
 * chosen with AUTOFAISS_FAISS_LIB), the variants back to back, and the whole sequence repeated
 * (--repeat, best time kept: the machine may be shared). Prints seconds, the ratio GENERIC / AVX2,
 * recall@10 of each variant against exact neighbours (both variants must find the same quality) and
 * the load average before and after.
 *
 *   bun tasks/bench_avx2.ts [--cases=hnsw_add,ivfpq_train,ivfpq_add,pq4fs_search,ivfpq4_train,ivfpq4_train_levers,ivfpq4_add]
 *                           [--repeat=2] [--hnsw_n=20000] [--ivf_n=60000] [--queries=1000] [--ivfpq4_shape=pool196|crop128]
 *
 * Data: Fashion-MNIST (Debian's dataset-fashion-mnist): 60,000 × 784 train images as the base, the
 * 10,000 test images as queries (pixel values 0..255, as ann-benchmarks).
 * Cases (FAISS threads: all cores, as a build uses them):
 *   hnsw_add      HNSW32: add the first --hnsw_n base vectors (one call; graph construction = fvec_L2sqr)
 *   ivfpq_train   IVF1024,PQ28x8 (dsub 28, polysemous training off as in autofaiss): train on the first
 *                 --ivf_n base vectors (at least 39,936: FAISS wants 39 points per centroid)
 *   ivfpq_add     the same trained index: add the --ivf_n (quantizer assignment + PQ compute_codes)
 *   pq4fs_search  PQ56x4fs (fast-scan, dsub 14): search the 10,000 queries, k = 10
 *   ivfpq4_train  the issue's IVF-PQ shape, 4 dimensions per sub-vector (SIFT's 128-d PQ32x8): the images
 *                 averaged over 2 × 2 pixel blocks (14 × 14 = 196-d), IVF1024,PQ49x8, trained on the first
 *                 --ivf_n, FAISS's own training (plain train)
 *   ivfpq4_train_levers  the same key trained as build_index trains it (trainingLevers: the direct
 *                 sub-space k-means)
 *   ivfpq4_add    the trained index: add the --ivf_n (index.add: the direct IVF-PQ encoding)
 *                 --ivfpq4_shape=crop128: the central 16 × 8 pixels instead (128-d, IVF1024,PQ32x8: SIFT's key)
 * hnsw_add and the ivfpq4 cases also run Debian's python3-faiss (stock GENERIC FAISS,
 * tasks/bench/stock_micro.py: plain train and FAISS's own add) twice, with Debian's default BLAS (pthread
 * OpenBLAS) and with the OpenMP OpenBLAS our library links: the FAISS a user of Python AutoFaiss on Debian runs.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";

const root = resolve(import.meta.dirname ?? ".", "..");
const arg = (name: string, dflt: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;

const CASES = ["hnsw_add", "ivfpq_train", "ivfpq_add", "pq4fs_search", "ivfpq4_train", "ivfpq4_train_levers", "ivfpq4_add"] as const;
type Case = typeof CASES[number];
const K = 10;
const IVFPQ_KEY = "IVF1024,PQ28x8";
const PQ4FS_KEY = "PQ56x4fs";
/** --ivfpq4_shape: pool196 (default) or crop128, the central 16 × 8 pixels of each image: SIFT's 128
 *  dimensions with `IVF1024,PQ32x8`, its very key. Both have 4 dimensions per sub-vector. */
const IVFPQ4_SHAPE = arg("ivfpq4_shape", "pool196");
if (!["pool196", "crop128"].includes(IVFPQ4_SHAPE)) throw new Error(`bench_avx2: --ivfpq4_shape: "${IVFPQ4_SHAPE}" (expected pool196 or crop128)`);
const IVFPQ4_KEY = IVFPQ4_SHAPE === "crop128" ? "IVF1024,PQ32x8" : "IVF1024,PQ49x8";
/** The OpenMP OpenBLAS our library links statically; the stock runs load its shared build from here. */
const OPENMP_BLAS = "/usr/lib/x86_64-linux-gnu/openblas-openmp";

/** The central 16 rows × 8 columns of each 28 × 28 image (tasks/bench/stock_micro.py crops the same way). */
function crop128(images: { vectors: Float32Array; rows: number }): { vectors: Float32Array; rows: number; dim: number } {
  const out = new Float32Array(images.rows * 128);
  for (let r = 0; r < images.rows; r++) {
    for (let i = 0; i < 16; i++) {
      for (let j = 0; j < 8; j++) out[r * 128 + i * 8 + j] = images.vectors[r * 784 + (6 + i) * 28 + 10 + j];
    }
  }
  return { vectors: out, rows: images.rows, dim: 128 };
}

/** Images averaged over 2 × 2 pixel blocks: 28 × 28 → 14 × 14 (tasks/bench/stock_micro.py pools the same way). */
function pool2x2(images: { vectors: Float32Array; rows: number }): { vectors: Float32Array; rows: number; dim: number } {
  const out = new Float32Array(images.rows * 196);
  for (let r = 0; r < images.rows; r++) {
    const src = images.vectors.subarray(r * 784, r * 784 + 784);
    for (let i = 0; i < 14; i++) {
      for (let j = 0; j < 14; j++) {
        const a = 2 * i * 28 + 2 * j;
        out[r * 196 + i * 14 + j] = (src[a] + src[a + 1] + src[a + 28] + src[a + 29]) / 4;
      }
    }
  }
  return { vectors: out, rows: images.rows, dim: 196 };
}

interface ChildResult {
  seconds: Record<string, number>;
  recall: number;
  compileOptions: string;
}

const childCase = arg("child", "");
if (childCase !== "") {
  const { buildInfo, Index } = await import("../ffi/faiss.ts");
  const { readIdxImages } = await import("./convert_fashion_mnist.ts");
  const { trainingLevers } = await import("../lib/plan/training_plan.ts");
  const which = childCase as Case;
  const nq = Number(arg("queries", "1000"));
  const reshaped = which === "ivfpq4_train"; // pooled or cropped per --ivfpq4_shape
  const reshape = IVFPQ4_SHAPE === "crop128" ? crop128 : pool2x2;
  const read = (path: string) => (reshaped ? reshape(readIdxImages(path)) : readIdxImages(path));
  const base = read("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
  const test = read("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
  const d = base.dim;
  const n = Math.min(Number(which === "hnsw_add" ? arg("hnsw_n", "20000") : which === "ivfpq_train" || reshaped ? arg("ivf_n", "60000") : base.rows), base.rows);
  const x = base.vectors.subarray(0, n * d);
  const q = test.vectors.subarray(0, nq * d);
  const time = (fn: () => void) => {
    const t = performance.now();
    fn();
    return (performance.now() - t) / 1000;
  };

  // Exact neighbours of the first nq queries, through the same library (IndexFlat is exact).
  const truth = (() => {
    using flat = Index.factory(d, "Flat", "l2");
    flat.add(x);
    return flat.search(q, K).labels;
  })();
  const recall = (labels: BigInt64Array) => {
    let hits = 0;
    for (let i = 0; i < nq; i++) {
      const t = new Set(truth.subarray(i * K, i * K + K));
      for (let j = 0; j < K; j++) if (t.has(labels[i * K + j])) hits++;
    }
    return hits / (nq * K);
  };

  const seconds: Record<string, number> = {};
  let found: BigInt64Array;
  if (which === "hnsw_add") {
    using index = Index.factory(d, "HNSW32", "l2");
    seconds.hnsw_add = time(() => index.add(x));
    index.setParameters("efSearch=64");
    found = index.search(q, K).labels;
  } else if (which === "ivfpq_train" || which === "ivfpq_add") {
    using index = Index.factory(d, IVFPQ_KEY, "l2");
    index.setPolysemousTraining(false);
    seconds.ivfpq_train = time(() => index.train(x));
    seconds.ivfpq_add = time(() => index.add(x));
    index.setParameters("nprobe=16");
    found = index.search(q, K).labels;
  } else if (which === "ivfpq4_train") {
    // The plain training first (the issue's measurement), then build_index's on a second index;
    // recall is the second one's after the direct-encoding add.
    {
      using plain = Index.factory(d, IVFPQ4_KEY, "l2");
      plain.setPolysemousTraining(false);
      seconds.ivfpq4_train = time(() => plain.train(x));
    }
    using index = Index.factory(d, IVFPQ4_KEY, "l2");
    index.setPolysemousTraining(false);
    seconds.ivfpq4_train_levers = time(() => index.trainWithLevers(x, trainingLevers(IVFPQ4_KEY)));
    seconds.ivfpq4_add = time(() => index.add(x));
    index.setParameters("nprobe=16");
    found = index.search(q, K).labels;
  } else {
    using index = Index.factory(d, PQ4FS_KEY, "l2");
    index.train(x);
    index.add(x);
    const all = test.vectors;
    seconds.pq4fs_search = time(() => index.search(all, K));
    found = index.search(q, K).labels;
  }
  const result: ChildResult = { seconds, recall: recall(found), compileOptions: buildInfo()?.compileOptions ?? "?" };
  console.log(JSON.stringify(result));
  process.exit(0);
}

const wanted = arg("cases", CASES.join(",")).split(",") as Case[];
for (const c of wanted) if (!CASES.includes(c)) throw new Error(`bench_avx2: --cases: unknown case "${c}" (expected ${CASES.join(", ")})`);
const repeat = Number(arg("repeat", "2"));
const libs = {
  GENERIC: join(root, "native/build/libfaiss_c.so"),
  AVX2: join(root, "native/build/libfaiss_c_avx2.so"),
} as const;
for (const path of Object.values(libs)) {
  if (!existsSync(path)) throw new Error(`bench_avx2: ${path} is missing (bun tasks/build_native.ts builds both variants)`);
}
// ivfpq_add is timed in the ivfpq_train child (the add needs the trained index): one child for both;
// the same for the ivfpq4 cases.
const childOf = (c: Case) => (c === "ivfpq_add" ? "ivfpq_train" : c.startsWith("ivfpq4") ? "ivfpq4_train" : c);
const children = [...new Set(wanted.map(childOf))];

const fmtLoad = () => loadavg().map((l) => l.toFixed(2)).join(" ");
console.log(`bench_avx2: Fashion-MNIST 60,000 × 784, cases ${wanted.join(", ")} (ivfpq4: ${IVFPQ4_SHAPE}, ${IVFPQ4_KEY}), ${repeat} round(s), load average ${fmtLoad()}`);

/** One way to run a child: our library in one variant, or Debian's python3-faiss with one BLAS. */
interface Runner {
  name: string;
  /** What the child's compile options must contain (the library really loaded). */
  expect: string;
  command: (child: string) => [string, string[]];
  env: Record<string, string>;
}
const ours = (variant: keyof typeof libs): Runner => ({
  name: variant,
  expect: variant,
  command: (child) => [process.execPath, [...(process.execPath.endsWith("deno") ? ["run", "-A"] : []), "tasks/bench_avx2.ts", `--child=${child}`, ...process.argv.slice(2).filter((a) => !a.startsWith("--child"))]],
  env: { AUTOFAISS_FAISS_LIB: libs[variant] },
});
const stock = (name: string, env: Record<string, string>): Runner => ({
  name,
  expect: "stock",
  command: (child) => ["/usr/bin/python3", ["tasks/bench/stock_micro.py", child, child === "hnsw_add" ? arg("hnsw_n", "20000") : arg("ivf_n", "60000"), arg("queries", "1000"), IVFPQ4_SHAPE]],
  env,
});
const STOCK_RUNNERS = [stock("stock", {}), stock("stock-omp", { LD_LIBRARY_PATH: OPENMP_BLAS })];
/** Children tasks/bench/stock_micro.py also runs. */
const STOCK_CHILDREN = ["hnsw_add", "ivfpq4_train"];
const runnersOf = (child: string): Runner[] => [ours("GENERIC"), ours("AVX2"), ...(STOCK_CHILDREN.includes(child) ? STOCK_RUNNERS : [])];

const best: Record<string, Record<string, number>> = {};
const recalls: Record<string, Record<string, number>> = {};
for (let round = 1; round <= repeat; round++) {
  for (const child of children) {
    // Alternate the order, so a load change favours no runner.
    const runners = round % 2 === 1 ? runnersOf(child) : runnersOf(child).reverse();
    for (const runner of runners) {
      const [cmd, args] = runner.command(child);
      const r = spawnSync(cmd, args, { cwd: root, env: { ...process.env, ...runner.env }, encoding: "utf8", maxBuffer: 64 * 2 ** 20 });
      if (r.status !== 0) throw new Error(`bench_avx2: ${runner.name} ${child} failed (${r.signal ?? `exit ${r.status}`}): ${r.stderr}`);
      const res: ChildResult = JSON.parse(r.stdout.trim().split("\n").pop()!);
      if (!res.compileOptions.includes(runner.expect)) throw new Error(`bench_avx2: ${runner.name} reports "${res.compileOptions}", expected ${runner.expect}`);
      for (const [c, s] of Object.entries(res.seconds)) {
        (best[runner.name] ??= {})[c] = Math.min(best[runner.name][c] ?? Infinity, s);
        (recalls[runner.name] ??= {})[c] = res.recall;
      }
      console.log(`  round ${round} ${runner.name.padEnd(9)} ${Object.entries(res.seconds).map(([c, s]) => `${c} ${s.toFixed(2)} s`).join(", ")}; recall@10 ${res.recall.toFixed(4)}; load ${fmtLoad()}`);
    }
  }
}

const fmt = (v: number | undefined, digits: number) => (v === undefined ? "–" : v.toFixed(digits));
console.log(`\n| case | GENERIC s | AVX2 s | GENERIC / AVX2 | stock s (pthread / OpenMP BLAS) | best stock / AVX2 | recall@10 GENERIC / AVX2 / stock |`);
console.log(`| --- | --- | --- | --- | --- | --- | --- |`);
for (const c of wanted) {
  const g = best.GENERIC[c], a = best.AVX2[c];
  const sp = best.stock?.[c], so = best["stock-omp"]?.[c];
  const bestStock = sp === undefined && so === undefined ? undefined : Math.min(sp ?? Infinity, so ?? Infinity);
  const stockCell = bestStock === undefined ? "–" : `${fmt(sp, 2)} / ${fmt(so, 2)}`;
  const ratio = bestStock === undefined ? "–" : `${(bestStock / a).toFixed(2)}×`;
  console.log(`| ${c} | ${g.toFixed(2)} | ${a.toFixed(2)} | ${(g / a).toFixed(2)}× | ${stockCell} | ${ratio} | ${recalls.GENERIC[c].toFixed(4)} / ${recalls.AVX2[c].toFixed(4)} / ${fmt(recalls.stock?.[c], 4)} |`);
}
console.log(`(best of ${repeat}; load average at the end ${fmtLoad()}; 2 cores; stock = Debian's python3-faiss, plain train and FAISS's own add)`);
