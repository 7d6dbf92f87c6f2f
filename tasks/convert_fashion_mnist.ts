/**
 * Converts Debian's dataset-fashion-mnist (gzipped IDX, uint8 28×28 images) to float32 .npy:
 *   <out>/base/base.npy       60,000 × 784 (train split: the vectors to index)
 *   <out>/queries.npy         10,000 × 784 (test split: the natural query set)
 * Pixel values stay 0..255, as in ann-benchmarks' fashion-mnist-784-euclidean.
 *
 *   bun tasks/convert_fashion_mnist.ts [--out=.cache/data/fashion-mnist]
 * Prints the output folder. Skips work when both files exist.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { gunzipSync } from "node:zlib";
import { writeNpy } from "../lib/io/npy_writer.ts";

const SOURCE_DIR = "/usr/share/datasets/fashion-mnist";
const IDX_IMAGES_MAGIC = 0x00000803; // uint8 data, 3 dimensions

export function readIdxImages(path: string): { vectors: Float32Array; rows: number; dim: number } {
  if (!existsSync(path)) {
    throw new Error(`fashion-mnist: ${path} is missing (apt-get install dataset-fashion-mnist)`);
  }
  const raw = gunzipSync(readFileSync(path));
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const magic = view.getUint32(0, false);
  if (magic !== IDX_IMAGES_MAGIC) {
    throw new Error(`fashion-mnist: ${path}: magic 0x${magic.toString(16)}, expected 0x803 (uint8 images)`);
  }
  const rows = view.getUint32(4, false);
  const dim = view.getUint32(8, false) * view.getUint32(12, false);
  const pixels = raw.subarray(16);
  if (pixels.length !== rows * dim) {
    throw new Error(`fashion-mnist: ${path}: ${pixels.length} pixel bytes, expected ${rows}×${dim}`);
  }
  return { vectors: Float32Array.from(pixels), rows, dim };
}

export function convertFashionMnist(out: string): { base: string; queries: string } {
  const base = join(out, "base", "base.npy");
  const queries = join(out, "queries.npy");
  if (!existsSync(base)) {
    const t = readIdxImages(join(SOURCE_DIR, "train-images-idx3-ubyte.gz"));
    writeNpy(base, t.vectors, t.dim);
  }
  if (!existsSync(queries)) {
    const q = readIdxImages(join(SOURCE_DIR, "t10k-images-idx3-ubyte.gz"));
    writeNpy(queries, q.vectors, q.dim);
  }
  return { base, queries };
}

if (import.meta.main) {
  const arg = process.argv.find((a) => a.startsWith("--out="));
  const out = resolve(arg ? arg.slice(6) : ".cache/data/fashion-mnist");
  convertFashionMnist(out);
  console.log(out);
}
