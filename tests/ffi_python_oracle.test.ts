import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Index } from "../ffi/faiss.ts";
import { clusteredData } from "./helpers/data.ts";
import { assertPythonFaiss, pythonSearch } from "./helpers/python_oracle.ts";

describe("indices we write load in python3-faiss and search identically", () => {
  const d = 32;
  const base = clusteredData(4000, d, 20, 11);
  const queries = clusteredData(30, d, 20, 12);
  let dir = "";
  before(() => {
    assertPythonFaiss();
    dir = mkdtempSync(join(tmpdir(), "autofaiss-oracle-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const cases = [
    { key: "Flat", metric: "l2" as const, params: "" },
    { key: "HNSW16", metric: "ip" as const, params: "efSearch=40" },
    { key: "IVF32,Flat", metric: "ip" as const, params: "nprobe=4", mmap: true },
    { key: "IVF32_HNSW16,PQ8", metric: "l2" as const, params: "nprobe=6,efSearch=12" },
  ];
  for (const c of cases) {
    test(`${c.key} (${c.metric})`, () => {
      using index = Index.factory(d, c.key, c.metric);
      index.setPolysemousTraining(false); // tens of seconds for PQ8 otherwise; search uses ht off anyway
      if (!index.isTrained) index.train(base);
      index.add(base);
      index.setParameters(c.params);
      const path = join(dir, `${c.key.replace(/\W/g, "_")}.index`);
      index.write(path);
      const ours = index.search(queries, 10);
      for (const mmap of c.mmap ? [false, true] : [false]) {
        const py = pythonSearch(path, queries, d, 10, { mmap });
        assert.equal(py.ntotal, 4000);
        assert.equal(py.metric, c.metric === "ip" ? 0 : 1);
        assert.deepEqual(py.labels.flat(), Array.from(ours.labels, Number), "same neighbours (search parameters persisted)");
        py.distances.flat().forEach((v, i) => {
          assert.ok(Math.abs(v - ours.distances[i]) <= 1e-4 * Math.max(1, Math.abs(v)), `distance ${i}: ${v} vs ${ours.distances[i]}`);
        });
      }
    });
  }
});
