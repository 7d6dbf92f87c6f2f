/**
 * The main job on the sample data: `autofaiss build_index` on Fashion-MNIST (60,000 × 784, from
 * Debian's dataset-fashion-mnist, converted to .npy), then the recall@10 of the written index
 * against exact neighbours for 1,000 of the test images.
 *   bun tasks/demo.ts [extra build_index flags, e.g. --max_index_memory_usage=50MB]
 */
import { resolve } from "node:path";
import process from "node:process";
import { Index } from "../ffi/faiss.ts";
import { openCollection } from "../lib/io/collection.ts";
import { main } from "../lib/cli/main.ts";
import { convertFashionMnist } from "./convert_fashion_mnist.ts";

const NB_QUERIES = 1000;
const K = 10;
const out = resolve(".cache/demo");

const data = resolve(".cache/data/fashion-mnist");
const { base, queries } = convertFashionMnist(data);
const indexPath = `${out}/knn.index`;
const argv = [
  "build_index", `--embeddings=${resolve(base, "..")}`, `--index_path=${indexPath}`,
  `--index_infos_path=${out}/index_infos.json`, "--metric_type=l2", ...process.argv.slice(2),
];
console.log(`$ autofaiss ${argv.join(" ")}`);
const code = await main(argv);
if (code !== 0) process.exit(code);

// Recall of what was written, against exact L2 neighbours.
await using qs = await openCollection(queries);
const q = (await qs.read(0, NB_QUERIES)).vectors;
await using bs = await openCollection(base);
using exact = Index.factory(bs.dimension, "Flat", "l2");
for await (const b of bs.batches(20_000, { reuse: true })) exact.add(b.vectors);
const truth = exact.search(q, K).labels;
using index = Index.read(indexPath);
const found = index.search(q, K).labels;
let hits = 0;
for (let i = 0; i < NB_QUERIES; i++) {
  const want = new Set(truth.subarray(i * K, i * K + K));
  for (const l of found.subarray(i * K, i * K + K)) if (want.has(l)) hits++;
}
console.log(`recall@${K} of ${indexPath} = ${(hits / (NB_QUERIES * K)).toFixed(4)} (${NB_QUERIES} Fashion-MNIST test images, exact L2 ground truth)`);
