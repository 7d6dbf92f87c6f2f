import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { TopK, type Metric } from "../lib/measure/topk.ts";
import { seededRandom } from "./helpers/data.ts";

const FLT_MAX = 3.4028234663852886e38;

/** Deterministic PRNG so failures reproduce. */
const rng = seededRandom;

function distance(metric: Metric, x: Float32Array, y: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += metric === "ip" ? x[i] * y[i] : (x[i] - y[i]) ** 2;
  return Math.fround(s);
}

/**
 * Simulates a FAISS flat search of `queries` over `rows`: the best `kb` per query, labels local to the
 * batch, -1 padded. Like FAISS's heaps it keeps the smaller id when tied distances straddle the cut,
 * but the order of tied entries inside the reported row is shuffled, which the merge must not rely on.
 */
function flatSearch(metric: Metric, queries: Float32Array[], rows: Float32Array[], kb: number, next: () => number) {
  const distances = new Float32Array(queries.length * kb);
  const labels = new BigInt64Array(queries.length * kb).fill(-1n);
  queries.forEach((q, qi) => {
    const scored = rows.map((r, i) => ({ d: distance(metric, q, r), i, noise: 0 }));
    scored.sort((a, b) => (metric === "ip" ? b.d - a.d : a.d - b.d) || a.i - b.i);
    const kept = scored.slice(0, kb);
    for (const s of kept) s.noise = next();
    kept.sort((a, b) => (metric === "ip" ? b.d - a.d : a.d - b.d) || a.noise - b.noise);
    kept.forEach((s, j) => {
      distances[qi * kb + j] = s.d;
      labels[qi * kb + j] = BigInt(s.i);
    });
    for (let j = kept.length; j < kb; j++) distances[qi * kb + j] = metric === "ip" ? -FLT_MAX : FLT_MAX;
  });
  return { distances, labels, k: kb };
}

/** Reference: full sort of every row by (distance, label), first k, -1 padded. */
function bruteForce(metric: Metric, queries: Float32Array[], rows: Float32Array[], k: number) {
  const labels: number[] = [];
  const dists: number[] = [];
  for (const q of queries) {
    const scored = rows.map((r, i) => ({ d: distance(metric, q, r), i }));
    scored.sort((a, b) => (metric === "ip" ? b.d - a.d : a.d - b.d) || a.i - b.i);
    for (let j = 0; j < k; j++) {
      labels.push(j < scored.length ? scored[j].i : -1);
      dists.push(j < scored.length ? scored[j].d : metric === "ip" ? -FLT_MAX : FLT_MAX);
    }
  }
  return { labels, dists };
}

function vectors(next: () => number, n: number, d: number, integer: boolean): Float32Array[] {
  // small integer coordinates produce many exact distance ties
  return Array.from({ length: n }, () =>
    Float32Array.from({ length: d }, () => (integer ? Math.floor(next() * 3) - 1 : next() * 2 - 1)),
  );
}

function assertSame(top: TopK, want: { labels: number[]; dists: number[] }, what: string) {
  const labels = top.labels();
  const dists = top.distances();
  assert.deepEqual(Array.from(labels, Number), want.labels, `${what}: labels`);
  assert.deepEqual(Array.from(dists), want.dists.map(Math.fround), `${what}: distances`);
  assert.deepEqual(Array.from(top.labelsInt32()), want.labels, `${what}: int32 labels`);
}

describe("TopK against a full sort", () => {
  for (const metric of ["ip", "l2"] as const) {
    for (const ties of [false, true]) {
      test(`${metric}, ${ties ? "many ties" : "continuous"}: random batch sizes, k up to 40`, () => {
        const next = rng((metric === "ip" ? 7 : 11) + (ties ? 100 : 0));
        for (let c = 0; c < 40; c++) {
          const n = 1 + Math.floor(next() * 120);
          const d = 1 + Math.floor(next() * 6);
          const nq = 1 + Math.floor(next() * 8);
          const k = 1 + Math.floor(next() * 40);
          const rows = vectors(next, n, d, ties);
          const queries = vectors(next, nq, d, ties);
          const top = new TopK(nq, k, metric);
          const batch = 1 + Math.floor(next() * 50);
          for (let start = 0; start < n; start += batch) {
            // production asks each batch for k results; a wider batch must give the same answer
            const kb = next() < 0.7 ? k : k + Math.floor(next() * 5);
            top.push(flatSearch(metric, queries, rows.slice(start, start + batch), kb, next), start);
          }
          assertSame(top, bruteForce(metric, queries, rows, k), `case ${c} n=${n} k=${k} batch=${batch}`);
        }
      });
    }
  }

  test("batches narrower than k: exact top-k of what the batches reported", () => {
    const next = rng(5);
    const rows = vectors(next, 30, 3, true);
    const queries = vectors(next, 4, 3, true);
    const top = new TopK(4, 10, "l2");
    const reported: { d: number; l: number }[][] = [[], [], [], []];
    for (let start = 0; start < 30; start += 10) {
      // each batch of 10 rows reports only its best 3 → 9 entries per query survive
      const res = flatSearch("l2", queries, rows.slice(start, start + 10), 3, next);
      for (let i = 0; i < res.labels.length; i++) {
        reported[Math.floor(i / 3)].push({ d: res.distances[i], l: Number(res.labels[i]) + start });
      }
      top.push(res, start);
    }
    const want = reported.flatMap((r) => {
      r.sort((a, b) => a.d - b.d || a.l - b.l);
      return [...r.map((e) => e.l), -1];
    });
    assert.deepEqual(Array.from(top.labels(), Number), want);
  });

  test("k larger than the database pads with -1 and ∓FLT_MAX", () => {
    for (const metric of ["ip", "l2"] as const) {
      const next = rng(3);
      const rows = vectors(next, 5, 2, false);
      const queries = vectors(next, 3, 2, false);
      const top = new TopK(3, 8, metric);
      top.push(flatSearch(metric, queries, rows.slice(0, 2), 8, next), 0);
      top.push(flatSearch(metric, queries, rows.slice(2), 8, next), 2);
      assertSame(top, bruteForce(metric, queries, rows, 8), metric);
      assert.equal(top.labels()[5], -1n);
      assert.equal(top.distances()[7], Math.fround(metric === "ip" ? -FLT_MAX : FLT_MAX));
    }
  });

  test("nothing pushed: all padding; Int32 labels accepted; offsets beyond 2^31 kept exactly", () => {
    const top = new TopK(2, 2, "ip");
    assert.deepEqual(Array.from(top.labels()), [-1n, -1n, -1n, -1n]);
    top.push({ distances: Float32Array.of(3, 1, 2, 2), labels: Int32Array.of(1, 0, 0, 1), k: 2 }, 2 ** 32);
    assert.deepEqual(Array.from(top.labels()), [2n ** 32n + 1n, 2n ** 32n, 2n ** 32n, 2n ** 32n + 1n]);
    assert.throws(() => top.labelsInt32(), { message: "topk: label 4294967297 does not fit in int32 (query 0, rank 0)" });
  });

  test("rejects malformed batches", () => {
    const top = new TopK(2, 3, "l2");
    assert.throws(() => top.push({ distances: new Float32Array(5), labels: new BigInt64Array(6), k: 3 }, 0), {
      message: "topk: batch holds 5 distances and 6 labels, expected nq=2 × k=3 = 6",
    });
    assert.throws(() => top.push({ distances: new Float32Array(6), labels: new BigInt64Array(6), k: 3 }, -1), {
      message: "topk: labelOffset must be a non-negative safe integer (got -1)",
    });
    assert.throws(() => new TopK(1, 0, "l2"), { message: "topk: k must be an integer >= 1 (got 0)" });
  });
});
