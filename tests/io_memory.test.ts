import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { EmbeddingReadError } from "../lib/io/errors.ts";
import { firstNonFinite } from "../lib/io/float.ts";
import { collectionFromArray } from "../lib/io/memory.ts";
import { createRng, sampleRowIndices } from "../lib/io/sample.ts";
import { matrix } from "./fixtures/io/npy.ts";

describe("seeded sampling (pure)", () => {
  test("the generator is reproducible and in [0, 1)", () => {
    const a = createRng(42), b = createRng(42), c = createRng(43);
    const xs = Array.from({ length: 1000 }, () => a());
    assert.deepEqual(xs, Array.from({ length: 1000 }, () => b()));
    assert.notDeepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => c()));
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.03, String(mean));
  });

  test("golden values: same on every runtime", () => {
    assert.deepEqual(Array.from(sampleRowIndices(100, 5, 42)), GOLDEN_100_5_42);
    assert.deepEqual(Array.from(sampleRowIndices(10 ** 12, 3, 1)), GOLDEN_1E12_3_1);
  });

  test("distinct, sorted, in range; n >= total gives every row; n = 0 gives none", () => {
    for (const [total, n] of [[10, 9], [1000, 1000 - 1], [1000, 10], [5_000_000, 2000]] as const) {
      const s = sampleRowIndices(total, n, 3);
      assert.equal(s.length, n);
      for (let i = 1; i < s.length; i++) assert.ok(s[i]! > s[i - 1]!);
      assert.ok(s[0]! >= 0 && s[s.length - 1]! < total);
    }
    assert.deepEqual(Array.from(sampleRowIndices(4, 9, 1)), [0, 1, 2, 3]);
    assert.deepEqual(Array.from(sampleRowIndices(4, 0, 1)), []);
    assert.throws(() => sampleRowIndices(10, -1, 1), { message: "sample: n -1 is not a row count" });
  });

  test("every row has inclusion probability n/N (chi-square over 20 cells)", () => {
    const total = 200, n = 20, trials = 4000;
    const hits = new Float64Array(total);
    for (let t = 0; t < trials; t++) for (const r of sampleRowIndices(total, n, t)) hits[r]!++;
    // group into 20 cells of 10 rows; expected count per cell = trials * n / 20
    const expected = (trials * n) / 20;
    let chi2 = 0;
    for (let cell = 0; cell < 20; cell++) {
      const got = hits.subarray(cell * 10, cell * 10 + 10).reduce((a, b) => a + b, 0);
      chi2 += (got - expected) ** 2 / expected;
    }
    assert.ok(chi2 < 43.8, `chi2 ${chi2} (p = 0.001 critical value for 19 dof is 43.8)`);
  });
});

describe("in-memory collection", () => {
  test("same interface as files: count, batches, read, sample, ids", async () => {
    const m = matrix(50, 3);
    const ids = { uid: Array.from({ length: 50 }, (_, i) => `u${i}`) };
    const coll = collectionFromArray(m, 3, { ids });
    assert.equal(coll.count, 50);
    assert.equal(coll.dimension, 3);
    assert.deepEqual(coll.idColumns, [{ name: "uid" }]);
    const starts: number[] = [];
    for await (const b of coll.batches(20)) {
      starts.push(b.startId);
      assert.deepEqual(b.vectors, m.subarray(b.startId * 3, (b.startId + b.rows) * 3));
      assert.deepEqual(b.ids!.uid, ids.uid.slice(b.startId, b.startId + b.rows));
      b.vectors.fill(0); // batches are copies: the user's array is untouched
    }
    assert.deepEqual(starts, [0, 20, 40]);
    const reused = new Set<ArrayBufferLike>();
    for await (const b of coll.batches(20, { reuse: true, start: 5 })) {
      reused.add(b.vectors.buffer);
      assert.deepEqual(b.vectors, m.subarray(b.startId * 3, (b.startId + b.rows) * 3));
    }
    assert.equal(reused.size, 1);
    assert.deepEqual(m, matrix(50, 3));
    const s = await coll.sample(7, 9);
    assert.deepEqual(s.positions, sampleRowIndices(50, 7, 9));
    for (let k = 0; k < 7; k++) {
      assert.deepEqual(s.vectors.subarray(k * 3, k * 3 + 3), m.subarray(s.positions[k]! * 3, s.positions[k]! * 3 + 3));
      assert.equal(s.ids!.uid![k], `u${s.positions[k]}`);
    }
    assert.deepEqual((await coll.read(48, 50)).vectors, m.subarray(144));
    await assert.rejects(coll.read(10, 51), { message: "embedding collection: row range [10, 51) is outside [0, 50)" });
    await coll.close();
  });

  test("bad arrays are refused; NaN is found with its row", async () => {
    assert.throws(() => collectionFromArray(new Float32Array(10), 3), {
      message: "embedding array: <in-memory array>: length 10 is not a multiple of dimension 3",
    });
    assert.throws(() => collectionFromArray(new Float32Array(0), 3), {
      message: "embedding files: no embeddings found in <in-memory array> (the array has 0 rows)",
    });
    assert.throws(() => collectionFromArray(new Float32Array(6), 0), {
      message: "embedding array: <in-memory array>: dimension must be an integer >= 1, got 0",
    });
    assert.throws(() => collectionFromArray(new Float32Array(6), 3, { ids: { k: [1] } }), {
      message: "embedding array: <in-memory array>: id column 'k' has 1 values (expected 2, one per row)",
    });
    const m = matrix(10, 2);
    m[13] = -Infinity;
    const coll = collectionFromArray(m, 2, { name: "queries" });
    await assert.rejects(coll.read(0, 10), (e: unknown) => {
      assert.ok(e instanceof EmbeddingReadError);
      assert.equal(e.message, "embedding array: queries: row 6 has -Infinity at component 1 (expected finite values; NaN/Inf poison k-means training)");
      assert.equal(e.row, 6);
      return true;
    });
    await coll.read(0, 6);
    await assert.rejects(coll.sample(10, 1), { message: /row 6 has -Infinity/ });
  });

  test("firstNonFinite finds the first NaN/Inf in a range", () => {
    const v = new Float32Array([1, 2, NaN, 4, Infinity]);
    assert.equal(firstNonFinite(v), 2);
    assert.equal(firstNonFinite(v, 3), 4);
    assert.equal(firstNonFinite(v, 0, 2), -1);
    assert.equal(firstNonFinite(new Float32Array([-0, 0, 3.4e38, -3.4e38])), -1);
  });
});

const GOLDEN_100_5_42 = [1, 7, 10, 63, 88];
const GOLDEN_1E12_3_1 = [470582418019, 568605994833, 889393936767];
