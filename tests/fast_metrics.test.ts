/**
 * The reconstruction error of fast metrics: 100 × mean ‖x − decode(encode(x))‖ / mean ‖x‖ over the
 * rows it encodes, all of them without a time bound, the first block of
 * RECONSTRUCTION_BLOCK_ROWS when the bound is already spent; 0 for an index without a codec.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Index } from "../ffi/faiss.ts";
import { RECONSTRUCTION_BLOCK_ROWS, reconstructionErrorPercent } from "../lib/measure/fast_metrics.ts";
import { clusteredData } from "./helpers/data.ts";

/** The error over `rows` rows of `x`, from one round trip of FAISS's own, summed in float64 here. */
function expected(index: Index, x: Float32Array, rows: number): number {
  const d = index.d;
  const part = x.subarray(0, rows * d);
  const back = index.saRoundTrip(part);
  let err = 0, norm = 0;
  for (let i = 0; i < rows; i++) {
    let e = 0, m = 0;
    for (let j = i * d; j < (i + 1) * d; j++) {
      e += (part[j] - back[j]) ** 2;
      m += part[j] ** 2;
    }
    err += Math.sqrt(e);
    norm += Math.sqrt(m);
  }
  return (100 * err) / norm;
}

describe("reconstructionErrorPercent", () => {
  const d = 16, n = 3000;
  const x = clusteredData(n, d, 20, 41);
  const queries = x.subarray(0, 1000 * d);

  test("every row without a bound; the first block when the bound is spent", () => {
    using index = Index.factory(d, "IVF16,PQ4x8", "l2");
    index.setPolysemousTraining(false); // seconds of training nobody needs here
    index.train(x);
    index.add(x);
    const all = reconstructionErrorPercent(index, queries);
    assert.ok(all > 0, "a lossy codec");
    assert.ok(Math.abs(all - expected(index, queries, 1000)) < 1e-9 * all, `${all}`);
    const first = reconstructionErrorPercent(index, queries, { timeoutMs: 0 });
    assert.ok(Math.abs(first - expected(index, queries, RECONSTRUCTION_BLOCK_ROWS)) < 1e-9 * first, `${first}`);
    assert.notEqual(first, all, "a mean over fewer rows");
  });

  test("an index without a standalone codec (HNSW) counts as exact", () => {
    using index = Index.factory(d, "HNSW8", "l2");
    index.add(x);
    assert.equal(reconstructionErrorPercent(index, queries, { timeoutMs: 0 }), 0);
  });
});
