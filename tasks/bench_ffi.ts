/**
 * FFI overhead of one call: median time of `search` (1 query, k = 10, Flat 1000 × 16) and of a
 * trivial getter, from JS and from C, in one run. Run under each runtime:
 *   bun tasks/bench_ffi.ts        deno run -A tasks/bench_ffi.ts
 */
import { execFileSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { Index, setNumThreads } from "../ffi/faiss.ts";
import { faissLibrary } from "../ffi/library.ts";

const root = resolve(import.meta.dirname ?? ".", "..");
const CALLS = 20_000;
const D = 16;
const N = 1000;
const K = 10;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

setNumThreads(1);
const x = Float32Array.from({ length: N * D }, (_, i) => ((i * 7919) % 1000) / 1000);
using index = Index.factory(D, "Flat", "l2");
index.add(x);
const rows = Array.from({ length: N }, (_, i) => x.subarray(i * D, (i + 1) * D));
const distances = new Float32Array(K);
const labels = new BigInt64Array(K);

function time(fn: (i: number) => void): number {
  for (let i = 0; i < 2000; i++) fn(i);
  const t: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const s = performance.now();
    fn(i);
    t.push(performance.now() - s);
  }
  return median(t) * 1e6; // ns
}

const searchAlloc = time((i) => index.search(rows[i % N], K));
const searchInto = time((i) => index.searchInto(rows[i % N], K, distances, labels));
const getter = time(() => index.ntotal);
const empty = new Float32Array(0);
const searchEmpty = time(() => index.searchInto(empty, K, distances, labels)); // n = 0: marshalling only

const lib = faissLibrary().path;
const bin = resolve(root, "native/build/bench_search");
execFileSync("gcc", ["-O2", "-o", bin, resolve(root, "native/bench_search.c"), lib, `-Wl,-rpath,${dirname(lib)}`]);
// The C baseline is noisy on a shared 2-core machine: best of 3 runs.
const cRuns = [0, 1, 2].map(() => execFileSync(bin, { encoding: "utf8", env: { OMP_NUM_THREADS: "1" } }).trim().split(" ").map(Number));
const [cSearch, cEmpty, cGetter] = [0, 1, 2].map((j) => Math.min(...cRuns.map((r) => r[j])));

const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "deno";
console.log(`${runtime}: median of ${CALLS} calls (ns)`);
console.log(`  search 1 query, k=${K}, Flat ${N}×${D}: JS search() ${searchAlloc.toFixed(0)}, JS searchInto() ${searchInto.toFixed(0)}, C ${cSearch}`);
console.log(`  search with n = 0 (the call alone):     JS ${searchEmpty.toFixed(0)}, C ${cEmpty}`);
console.log(`  getter faiss_Index_ntotal:               JS ${getter.toFixed(0)}, C ${cGetter}`);
console.log(`  FFI overhead per search call: ${(searchEmpty - cEmpty).toFixed(0)} ns (${((searchEmpty - cEmpty) / cSearch * 100).toFixed(1)}% of a 1-query search)`);
