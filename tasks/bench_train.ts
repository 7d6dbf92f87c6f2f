/**
 * Training levers against today's training (FAISS's defaults, polysemous training off as build_index
 * does), in one run on the same sample: training wall time, its ratio to today's, and recall@10
 * against exact neighbours after adding every vector, searched with the SAME parameters for every
 * variant (so a recall change is the training's, not the tuning's).
 *
 *   bun tasks/bench_train.ts [--key=OPQ64_192,IVF1024_HNSW32,PQ64x8] [--n=100000] [--d=128] [--metric=ip]
 *                            [--params=nprobe=16,efSearch=32] [--variants=today,direct,...] [--phases] [--queries=500]
 *
 * --phases also times the OPQ matrix alone (the key's first stage over Flat), today's way and ours, to
 * show where the time goes. Run it on an otherwise idle machine.
 * Data: synthetic clustered vectors (tests/helpers/data.ts), queries from the same clusters, another seed;
 * or --data=fmnist: Fashion-MNIST (Debian's dataset-fashion-mnist), 60,000 × 784, --queries test images as queries.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";
import { convertFashionMnist } from "./convert_fashion_mnist.ts";
import { Index, type TrainingLevers, buildInfo } from "../ffi/faiss.ts";
import { optimalTrainSize, trainingLevers } from "../lib/plan/training_plan.ts";
import { clusteredData } from "../tests/helpers/data.ts";

const arg = (name: string, dflt: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const key = arg("key", "OPQ64_192,IVF1024_HNSW32,PQ64x8");
let n = Number(arg("n", "100000"));
let d = Number(arg("d", "128"));
const metric = arg("metric", "ip") as "ip" | "l2";
const params = arg("params", "nprobe=16,efSearch=32");
// 1,000 queries move recall@10 by ±0.004 between two trainings of the same variant at recall ≈ 0.3, so
// a 0.005 limit wants 10,000 (Fashion-MNIST's test split has exactly that many)
const nq = Number(arg("queries", "500"));
const K = 10;

/** Each variant: the levers it trains with (null: today's plain faiss train). */
const VARIANTS: Record<string, TrainingLevers | null> = {
  today: null,
  direct: { directSubspace: true },
  "direct+opq25": { directSubspace: true, opqNiter: 25 },
  "direct+opq10": { directSubspace: true, opqNiter: 10 },
  "direct+ivf10": { directSubspace: true, ivfNiter: 10 },
  "direct+hnsw": { directSubspace: true, ivfHnswAssignM: 32 },
  plan: trainingLevers(key),
  "plan+hnsw": { ...trainingLevers(key), ivfHnswAssignM: 32 },
  "plan+ivf5": { ...trainingLevers(key), ivfNiter: 5 },
  "plan+ivf50pts": { ...trainingLevers(key), ivfMaxPointsPerCentroid: 50 },
  "plan+opq32k": { ...trainingLevers(key), opqMaxTrainPoints: 32768 },
  "plan+opq16k": { ...trainingLevers(key), opqMaxTrainPoints: 16384 },
  "plan+opq64k": { ...trainingLevers(key), opqMaxTrainPoints: 65536 },
  "plan+pq10": { ...trainingLevers(key), pqNiter: 10 },
};
const names = arg("variants", "today,direct,direct+opq25,direct+opq10,plan").split(",");
for (const v of names) if (!(v in VARIANTS)) throw new Error(`bench_train: --variants: unknown "${v}" (expected some of ${Object.keys(VARIANTS).join(", ")})`);

/** --data=fmnist: Fashion-MNIST (60,000 × 784 base, the first --queries test images as queries; --n and --d ignored). */
function fashionMnist(): { base: Float32Array; queries: Float32Array; d: number } {
  const dir = convertFashionMnist(resolve(import.meta.dirname ?? ".", "../.cache/data/fashion-mnist"));
  const load = (path: string) => {
    const buf = readFileSync(path);
    const headerLen = buf.readUInt16LE(8);
    const body = buf.subarray(10 + headerLen);
    return new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
  };
  return { base: load(dir.base), queries: load(dir.queries).subarray(0, nq * 784), d: 784 };
}
const real = arg("data", "synthetic") === "fmnist" ? fashionMnist() : null;
if (real) {
  n = real.base.length / real.d;
  d = real.d;
}
const base = real?.base ?? clusteredData(n, d, 500, 11);
const queries = real?.queries ?? clusteredData(nq, d, 500, 987_654);
const trainSize = Math.min(n, optimalTrainSize(n, key, 16 * 2 ** 30, d));
// The sample build_index would take is uniform and seeded; the first rows are as random here.
const sample = base.subarray(0, trainSize * d);

function exact(): number[][] {
  using flat = Index.factory(d, "Flat", metric);
  flat.add(base);
  const r = flat.search(queries, K);
  return Array.from({ length: nq }, (_, q) => Array.from(r.labels.subarray(q * K, (q + 1) * K), Number));
}

function recallOf(index: Index, gt: number[][]): number {
  const r = index.search(queries, K);
  let hits = 0;
  for (let q = 0; q < nq; q++) {
    const want = new Set(gt[q]);
    for (let j = 0; j < K; j++) if (want.has(Number(r.labels[q * K + j]))) hits++;
  }
  return hits / (nq * K);
}

function train(k: string, levers: TrainingLevers | null, x: Float32Array): { index: Index; secs: number } {
  const index = Index.factory(d, k, metric);
  index.setPolysemousTraining(false);
  const t0 = performance.now();
  if (levers === null) index.train(x);
  else index.trainWithLevers(x, levers);
  return { index, secs: (performance.now() - t0) / 1000 };
}

const info = buildInfo();
console.log(`faiss ${info?.faissVersion} (${info?.compileOptions}), key ${key}, ${n}×${d} ${metric}, ${trainSize} training vectors, search ${params}`);
const gt = exact();
const rows: { name: string; secs: number; addSecs: number; recall: number }[] = [];
for (const name of names) {
  const levers = VARIANTS[name];
  console.log(`${name}: levers ${JSON.stringify(levers)}`);
  const { index, secs } = train(key, levers, sample);
  const t0 = performance.now();
  index.add(base);
  const addSecs = (performance.now() - t0) / 1000;
  index.setParameters(params);
  const recall = recallOf(index, gt);
  index.free();
  rows.push({ name, secs, addSecs, recall });
  console.log(`  train ${secs.toFixed(1)} s, add ${addSecs.toFixed(1)} s, recall@10 ${recall.toFixed(4)}`);
}
const ref = rows.find((r) => r.name === "today") ?? rows[0];
console.log(`\nvariant          train s  ratio   add s  recall@10  Δ recall (vs ${ref.name})`);
for (const r of rows) {
  const delta = r.recall - ref.recall;
  console.log(`${r.name.padEnd(16)} ${r.secs.toFixed(1).padStart(7)}  ${(r.secs / ref.secs).toFixed(2).padStart(5)}× ${r.addSecs.toFixed(1).padStart(6)}  ${r.recall.toFixed(4)}     ${delta >= 0 ? "+" : ""}${delta.toFixed(4)}${delta < -0.005 ? "  (over the 0.005 limit)" : ""}`);
}
if (process.argv.includes("--phases") && key.startsWith("OPQ")) {
  const opqKey = `${key.split(",")[0]},Flat`;
  for (const [name, levers] of [["today", null], ["direct", { directSubspace: true }]] as const) {
    const { index, secs } = train(opqKey, levers, sample);
    index.free();
    console.log(`phase: ${opqKey} alone (OPQ training), ${name}: ${secs.toFixed(1)} s`);
  }
}
