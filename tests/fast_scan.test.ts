/**
 * Fast-scan PQ (`PQ<m>x4fs`, `IVF<c>,PQ<m>x4fs`) with k > 20 on tied distances. FAISS 1.7.3 picks
 * a reservoir for k > 20 whose partition (utils/partitioning.cpp, the path of a build without
 * AVX2, as Debian's libfaiss.a) fails `assert(n_eq == 0)` and aborts the process when many
 * quantized distances tie: the build's one-query k=40 latency searches died on PQ16x4fs over
 * 784-d Fashion-MNIST. Every index ffi/ creates or reads keeps its top k in a heap instead
 * (native autofaiss_fast_scan_use_heap); these searches would abort this test process without it.
 * Data: three distinct vectors, repeated, so every distance ties with hundreds of others.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Index } from "../ffi/faiss.ts";
import { buildIndex } from "../lib/commands/build_index.ts";
import { assertPythonFaiss, PYTHON } from "./helpers/python_oracle.ts";

const D = 16;
const N = 2000;
const K = 40;
/** Row i is pattern i % 3: 0 everywhere, or (i % 3) on odd dimensions. */
const tied = Float32Array.from({ length: N * D }, (_, p) => (Math.floor(p / D) % 3) * ((p % D) % 2));

describe("fast-scan PQ, k = 40 on tied distances", () => {
  for (const key of ["PQ8x4fs", "IVF4,PQ8x4fs", "PCA8,PQ4x4fs,RFlat"]) {
    test(`${key}: a one-query search returns the query's pattern, no abort`, () => {
      using index = Index.factory(D, key, "l2");
      index.train(tied);
      index.add(tied);
      for (const row of [0, 1, 2]) {
        const { labels } = index.search(tied.subarray(row * D, (row + 1) * D), K);
        assert.deepEqual(Array.from(labels, (l) => Number(l) % 3), new Array(K).fill(row), `row ${row}`);
      }
    });
  }

  let dir = "";
  before(() => {
    assertPythonFaiss();
    dir = mkdtempSync(join(tmpdir(), "autofaiss-fast-scan-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("buildIndex PQ8x4fs (latency searches at k = 40) writes an index that searches with the heap", async () => {
    const path = join(dir, "knn.index");
    const { index, infos } = await buildIndex({ vectors: tied, dim: D }, {
      indexKey: "PQ8x4fs", metricType: "l2", indexPath: path, indexInfosPath: join(dir, "infos.json"),
      currentMemoryAvailable: "1G", maxIndexMemoryUsage: "100M", nbCores: 1,
    });
    index.free();
    assert.equal(infos.index_key, "PQ8x4fs");
    // implem 12 (bbs = 32): FAISS's heap search, stored in the file; 0 would let FAISS pick the reservoir
    const implem = execFileSync(PYTHON, ["-c", `import faiss; print(faiss.downcast_index(faiss.read_index(${JSON.stringify(path)})).implem)`], {
      encoding: "utf8",
    });
    assert.equal(implem.trim(), "12");
  });
});
