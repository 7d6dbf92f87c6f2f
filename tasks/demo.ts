/**
 * The main job on the sample data: Fashion-MNIST (60,000 × 784) converted to .npy, indexed, and
 * the result's recall@10 measured against exact neighbours for 1,000 of the test images.
 *   bun tasks/demo.ts
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Index } from "../ffi/faiss.ts";
import { convertFashionMnist } from "./convert_fashion_mnist.ts";

const NB_QUERIES = 1000;
const K = 10;

function loadNpy(path: string): { x: Float32Array; dim: number } {
  const bytes = readFileSync(path);
  const headerLen = bytes.readUInt16LE(8);
  const header = bytes.subarray(10, 10 + headerLen).toString("latin1");
  const dim = Number(/\(\d+, (\d+)\)/.exec(header)![1]);
  const data = bytes.subarray(10 + headerLen);
  return { x: new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)), dim };
}

const out = resolve(".cache/data/fashion-mnist");
const { base, queries } = convertFashionMnist(out);
const b = loadNpy(base);
const q = loadNpy(queries);
const qs = q.x.subarray(0, NB_QUERIES * q.dim);

let t = performance.now();
using index = Index.factory(b.dim, "HNSW32", "l2");
index.add(b.x);
index.setParameters("efSearch=64");
console.log(`built HNSW32 on ${index.ntotal} × ${index.d} in ${((performance.now() - t) / 1000).toFixed(1)} s`);

using exact = Index.factory(b.dim, "Flat", "l2");
exact.add(b.x);
const truth = exact.search(qs, K).labels;
t = performance.now();
const found = index.search(qs, K).labels;
const ms = (performance.now() - t) / NB_QUERIES;
let hits = 0;
for (let i = 0; i < NB_QUERIES; i++) {
  const want = new Set(truth.subarray(i * K, i * K + K));
  for (const l of found.subarray(i * K, i * K + K)) if (want.has(l)) hits++;
}
console.log(`recall@${K} = ${(hits / (NB_QUERIES * K)).toFixed(4)} over ${NB_QUERIES} queries, ${ms.toFixed(3)} ms/query`);
