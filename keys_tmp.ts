import { buildIndex } from "./lib/commands/build_index.ts";
import { readIdxImages } from "./tasks/convert_fashion_mnist.ts";
const D = 64, N = Number(process.env.N ?? 2000);
const { vectors } = readIdxImages("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
const base = new Float32Array(N * D);
for (let r = 0; r < N; r++) for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) { let s = 0; for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) s += vectors[r * 784 + (2 + 3 * y + dy) * 28 + 2 + 3 * x + dx]; base[r * D + y * 8 + x] = s / 9; }
for (const key of process.argv.slice(3)) {
  const t0 = performance.now();
  const times: string[] = [];
  const reporter = { info() {}, warning() {}, error() {}, progress: () => ({ update() {}, finish() {} }), timed: async (name: string, _l: number, f: () => unknown) => { const t = performance.now(); const r = await f(); times.push(`${name.slice(0, 30)}=${((performance.now() - t) / 1000).toFixed(2)}`); return r; } } as any;
  try {
    const { index, infos } = await buildIndex({ vectors: base, dim: D }, { indexKey: key, metricType: process.argv[2], saveOnDisk: false, indexPath: null, currentMemoryAvailable: "2G", maxIndexMemoryUsage: "1G", nbCores: 1, maxIndexQueryTimeMs: 1, reporter });
    index.free();
    console.log(key, ((performance.now() - t0) / 1000).toFixed(2), infos.index_param, times.filter((t) => !t.endsWith("=0.00")).join(" "));
  } catch (e) { console.log(key, "ERR", (e as Error).message); }
}
