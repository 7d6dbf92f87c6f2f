/**
 * AVX2 vs GENERIC FAISS on real data: the same operations through native/build/libfaiss_c_avx2.so and
 * native/build/libfaiss_c.so, each case in a child process per variant (a process opens one library,
 * chosen with AUTOFAISS_FAISS_LIB), the variants back to back, and the whole sequence repeated
 * (--repeat, best time kept: the machine may be shared). Prints seconds, the ratio GENERIC / AVX2,
 * recall@10 of each variant against exact neighbours (both variants must find the same quality) and
 * the load average before and after.
 *
 *   bun tasks/bench_avx2.ts [--cases=hnsw_add,ivfpq_train,ivfpq_add,pq4fs_search] [--repeat=2]
 *                           [--hnsw_n=20000] [--ivf_n=60000] [--queries=1000]
 *
 * Data: Fashion-MNIST (Debian's dataset-fashion-mnist): 60,000 × 784 train images as the base, the
 * 10,000 test images as queries (pixel values 0..255, as ann-benchmarks).
 * Cases (FAISS threads: all cores, as a build uses them):
 *   hnsw_add      HNSW32: add the first --hnsw_n base vectors (one call; graph construction = fvec_L2sqr)
 *   ivfpq_train   IVF1024,PQ28x8 (dsub 28, polysemous training off as in autofaiss): train on the first
 *                 --ivf_n base vectors (at least 39,936: FAISS wants 39 points per centroid)
 *   ivfpq_add     the same trained index: add the --ivf_n (quantizer assignment + PQ compute_codes)
 *   pq4fs_search  PQ56x4fs (fast-scan, dsub 14): search the 10,000 queries, k = 10
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";

const root = resolve(import.meta.dirname ?? ".", "..");
const arg = (name: string, dflt: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;

const CASES = ["hnsw_add", "ivfpq_train", "ivfpq_add", "pq4fs_search"] as const;
type Case = typeof CASES[number];
const K = 10;
const IVFPQ_KEY = "IVF1024,PQ28x8";
const PQ4FS_KEY = "PQ56x4fs";

interface ChildResult {
  seconds: Record<string, number>;
  recall: number;
  compileOptions: string;
}

const childCase = arg("child", "");
if (childCase !== "") {
  const { buildInfo, Index } = await import("../ffi/faiss.ts");
  const { readIdxImages } = await import("./convert_fashion_mnist.ts");
  const which = childCase as Case;
  const nq = Number(arg("queries", "1000"));
  const base = readIdxImages("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
  const test = readIdxImages("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
  const d = base.dim;
  const n = Math.min(Number(which === "hnsw_add" ? arg("hnsw_n", "20000") : which === "ivfpq_train" ? arg("ivf_n", "60000") : base.rows), base.rows);
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
// ivfpq_add is timed in the ivfpq_train child (the add needs the trained index): one child for both.
const children = [...new Set(wanted.map((c) => (c === "ivfpq_add" ? "ivfpq_train" : c)))];

const fmtLoad = () => loadavg().map((l) => l.toFixed(2)).join(" ");
console.log(`bench_avx2: Fashion-MNIST 60,000 × 784, cases ${wanted.join(", ")}, ${repeat} round(s), load average ${fmtLoad()}`);
const best: Record<string, Record<string, number>> = { GENERIC: {}, AVX2: {} };
const recalls: Record<string, Record<string, number>> = { GENERIC: {}, AVX2: {} };
for (let round = 1; round <= repeat; round++) {
  for (const child of children) {
    // Alternate which variant goes first, so a load change favours neither.
    const order = (round % 2 === 1 ? ["GENERIC", "AVX2"] : ["AVX2", "GENERIC"]) as (keyof typeof libs)[];
    for (const variant of order) {
      const r = spawnSync(process.execPath, [...(process.execPath.endsWith("deno") ? ["run", "-A"] : []), "tasks/bench_avx2.ts", `--child=${child}`, ...process.argv.slice(2).filter((a) => !a.startsWith("--child"))], {
        cwd: root,
        env: { ...process.env, AUTOFAISS_FAISS_LIB: libs[variant] },
        encoding: "utf8",
        maxBuffer: 64 * 2 ** 20,
      });
      if (r.status !== 0) throw new Error(`bench_avx2: ${variant} ${child} failed (${r.signal ?? `exit ${r.status}`}): ${r.stderr}`);
      const res: ChildResult = JSON.parse(r.stdout.trim().split("\n").pop()!);
      if (!res.compileOptions.includes(variant)) throw new Error(`bench_avx2: ${libs[variant]} reports "${res.compileOptions}", expected ${variant}`);
      for (const [c, s] of Object.entries(res.seconds)) {
        best[variant][c] = Math.min(best[variant][c] ?? Infinity, s);
        recalls[variant][c] = res.recall;
      }
      console.log(`  round ${round} ${variant.padEnd(7)} ${Object.entries(res.seconds).map(([c, s]) => `${c} ${s.toFixed(2)} s`).join(", ")}; recall@10 ${res.recall.toFixed(4)}; load ${fmtLoad()}`);
    }
  }
}

console.log(`\n| case | GENERIC s | AVX2 s | GENERIC / AVX2 | recall@10 GENERIC | recall@10 AVX2 |`);
console.log(`| --- | --- | --- | --- | --- | --- |`);
for (const c of wanted) {
  const g = best.GENERIC[c], a = best.AVX2[c];
  console.log(`| ${c} | ${g.toFixed(2)} | ${a.toFixed(2)} | ${(g / a).toFixed(2)}× | ${recalls.GENERIC[c].toFixed(4)} | ${recalls.AVX2[c].toFixed(4)} |`);
}
console.log(`(best of ${repeat}; load average at the end ${fmtLoad()}; 2 cores)`);
