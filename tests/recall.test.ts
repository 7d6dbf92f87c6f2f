import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { oneRecallAtR, rRecallAtR, type LabelMatrix } from "../lib/measure/recall.ts";
import { seededRandom } from "./helpers/data.ts";

const m = (k: number, ...labels: number[]): LabelMatrix => ({ labels: Int32Array.from(labels), k });
const m64 = (k: number, ...labels: number[]): LabelMatrix => ({
  labels: BigInt64Array.from(labels.map((x) => BigInt(x))),
  k,
});

/** Deterministic PRNG so failures reproduce. */
const rng = seededRandom;

describe("oneRecallAtR", () => {
  test("hand-computed: hit inside R, hit outside R, miss, -1 result", () => {
    const gt = m(4, 5, 6, 7, 8, 1, 2, 3, 4, 9, 10, 11, 12, 20, 21, 22, 23);
    const res = m(1, 6, 4, 42, -1);
    assert.equal(oneRecallAtR(res, gt, 1), 0);
    assert.equal(oneRecallAtR(res, gt, 2), 1 / 4);
    assert.equal(oneRecallAtR(res, gt, 4), 2 / 4);
  });

  test("-1 in the ground truth never matches a -1 result", () => {
    assert.equal(oneRecallAtR(m(1, -1, 3), m(3, 1, -1, -1, 3, -1, -1), 3), 0.5);
  });

  test("uses column 0 of wider results; BigInt64 and Int32 mix", () => {
    assert.equal(oneRecallAtR(m64(2, 7, 3, 1, 7), m(2, 3, 7, 7, 1), 2), 1);
    assert.equal(oneRecallAtR(m64(2, 7, 3, 1, 7), m(2, 3, 7, 7, 1), 1), 0);
  });

  test("rejects bad shapes and R", () => {
    assert.throws(() => oneRecallAtR(m(1, 1), m(2, 1, 2), 3), {
      message: "oneRecallAtR: ground truth must have at least R=3 labels per query (got k=2)",
    });
    assert.throws(() => oneRecallAtR(m(1, 1, 2), m(2, 1, 2), 1), {
      message: "oneRecallAtR: results hold 2 labels, expected 1 queries × k=1 = 1",
    });
    assert.throws(() => oneRecallAtR(m(1, 1), m(2, 1, 2), 0), { message: "oneRecallAtR: R must be an integer >= 1 (got 0)" });
  });
});

describe("rRecallAtR", () => {
  test("hand-computed: partial overlap, order does not matter", () => {
    // query 0: top-3 {1,2,3} vs {3,9,1} → 2/3; query 1: {4,5,6} vs {6,5,4} → 1
    const gt = m(4, 1, 2, 3, 99, 4, 5, 6, 98);
    const res = m(3, 3, 9, 1, 6, 5, 4);
    assert.equal(rRecallAtR(res, gt, 3), (2 / 3 + 1) / 2);
    // R=1: only position 1 counts → query 0: 1 vs 3 → 0; query 1: 4 vs 6 → 0
    assert.equal(rRecallAtR(res, gt, 1), 0);
    // R=2: {1,2}∩{3,9}=0; {4,5}∩{6,5}=1 → (0 + 1/2)/2
    assert.equal(rRecallAtR(res, gt, 2), 0.25);
  });

  test("-1 in the ground truth divides by the position of the first -1", () => {
    // only 2 true neighbours exist: the index found both (plus a -1 and a stray label)
    const gt = m(4, 7, 8, -1, -1);
    assert.equal(rRecallAtR(m(4, 8, 7, -1, 5), gt, 4), 1);
    assert.equal(rRecallAtR(m(4, 8, 5, -1, -1), gt, 4), 0.5);
    // R=1 < first -1: divisor is R
    assert.equal(rRecallAtR(m(4, 7, 5, -1, -1), gt, 1), 1);
    // a -1 beyond R still caps the divisor (Python scans the whole 40-wide row)
    assert.equal(rRecallAtR(m(4, 7, 8, 1, 2), m(4, 7, 8, 3, -1), 3), 2 / 3);
    assert.equal(rRecallAtR(m(4, 7, 1, 1, 2), m(4, 7, 8, -1, -1), 3), 1 / 2);
  });

  test("-1 results never count, even against -1 ground truth", () => {
    assert.equal(rRecallAtR(m(3, -1, -1, 4), m(3, 4, -1, -1), 3), 1);
    assert.equal(rRecallAtR(m(3, -1, -1, -1), m(3, 4, -1, -1), 3), 0);
  });

  test("ntotal caps the divisor; ntotal <= 0 gives 1; empty ground-truth row gives 1", () => {
    assert.equal(rRecallAtR(m(4, 1, 2, 3, 4), m(4, 1, 2, 5, 6), 4, { ntotal: 2 }), 1);
    assert.equal(rRecallAtR(m(2, 1, 2), m(2, 3, 4), 2, { ntotal: 0 }), 1);
    assert.equal(rRecallAtR(m(2, 1, 2, 1, 2), m(2, -1, -1, 1, 9), 2), (1 + 0.5) / 2);
  });

  test("duplicates follow Python's incremental count", () => {
    // positions: (5,5) equal → 1; (6,5): 6 not in pred {5}, 5 in true {5} → 2
    assert.equal(rRecallAtR(m(2, 5, 5), m(2, 5, 6), 2), 1);
  });

  test("rejects results narrower than R", () => {
    assert.throws(() => rRecallAtR(m(1, 1), m(2, 1, 2), 2), {
      message: "rRecallAtR: results.k must be >= R (got k=1, R=2)",
    });
  });
});

describe("randomised cross-check against the definitions", () => {
  /** Definition: |set(gt[:R]) ∩ set(res[:R])| without -1, over min(R, ntotal, first -1 of the gt row). */
  function rRecallByDefinition(res: number[][], gt: number[][], R: number, ntotal: number): number {
    let sum = 0;
    for (let q = 0; q < gt.length; q++) {
      const firstMissing = gt[q].indexOf(-1);
      const divisor = Math.min(R, ntotal, firstMissing === -1 ? Infinity : firstMissing);
      const truth = new Set(gt[q].slice(0, R).filter((x) => x !== -1));
      const found = new Set(res[q].slice(0, R).filter((x) => x !== -1));
      let inter = 0;
      for (const x of found) if (truth.has(x)) inter++;
      sum += divisor === 0 ? 1 : inter / divisor;
    }
    return sum / gt.length;
  }
  function oneRecallByDefinition(res: number[][], gt: number[][], R: number): number {
    let hits = 0;
    for (let q = 0; q < gt.length; q++) if (res[q][0] !== -1 && gt[q].slice(0, R).includes(res[q][0])) hits++;
    return hits / gt.length;
  }
  /** A row of k distinct labels from [0, universe), possibly truncated by -1 padding. */
  function row(next: () => number, k: number, universe: number, padFrom: number): number[] {
    const pool = Array.from({ length: universe }, (_, i) => i);
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(next() * (universe - i));
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    return pool.slice(0, k).map((x, i) => (i >= padFrom ? -1 : x));
  }

  test("200 random cases", () => {
    const next = rng(1234);
    for (let c = 0; c < 200; c++) {
      const nq = 1 + Math.floor(next() * 20);
      const gtK = 40;
      const resK = 40;
      const universe = 45 + Math.floor(next() * 40);
      const ntotal = next() < 0.2 ? 1 + Math.floor(next() * 40) : universe;
      const gtRows: number[][] = [];
      const resRows: number[][] = [];
      for (let q = 0; q < nq; q++) {
        const pad = next() < 0.3 ? Math.floor(next() * 41) : gtK;
        gtRows.push(row(next, gtK, universe, pad));
        resRows.push(row(next, resK, universe, next() < 0.3 ? Math.floor(next() * 41) : resK));
      }
      const gt = m(gtK, ...gtRows.flat());
      const res = m64(resK, ...resRows.flat());
      for (const R of [1, 5, 20, 40]) {
        const opts = ntotal === universe ? {} : { ntotal };
        const got = rRecallAtR(res, gt, R, opts);
        const want = rRecallByDefinition(resRows, gtRows, R, ntotal === universe ? Infinity : ntotal);
        assert.ok(Math.abs(got - want) < 1e-12, `case ${c} R=${R}: ${got} vs ${want}`);
        assert.equal(oneRecallAtR(res, gt, R), oneRecallByDefinition(resRows, gtRows, R));
      }
    }
  });
});
