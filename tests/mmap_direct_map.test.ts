/**
 * make_direct_map makes reconstruct(i) work after the index is reloaded, for one index and for the
 * N parts of a split build (the memory-mapped search proof is tests/mmap_rss.test.ts).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Index } from "../ffi/faiss.ts";
import { buildIndex } from "../lib/commands/build_index.ts";
import { partPaths } from "../lib/plan/parts.ts";
import { clusteredData, seededRandom } from "./helpers/data.ts";
import { pythonPartIds } from "./helpers/python_oracle.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
let dir = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "autofaiss-mmap-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("make_direct_map", () => {
  test("reconstruct(i) works after reloading the written index (IVF-Flat: the exact vector)", async () => {
    const d = 8;
    const data = clusteredData(500, d, 4, 9);
    const indexPath = join(dir, "dm", "knn.index");
    const r = await buildIndex({ vectors: data, dim: d }, {
      indexKey: "IVF4,Flat", indexParam: "nprobe=4", makeDirectMap: true, metricType: "l2",
      indexPath, indexInfosPath: join(dir, "dm", "infos.json"), maxIndexMemoryUsage: "1G", currentMemoryAvailable: "2G",
    });
    r.index.free();
    using reloaded = Index.read(indexPath);
    for (const i of [0, 17, 499]) assert.deepEqual(reloaded.reconstruct(i), data.subarray(i * d, (i + 1) * d));
    // without a direct map FAISS refuses, so the check above is not vacuous
    using plain = Index.factory(d, "IVF4,Flat", "l2");
    plain.train(data);
    plain.add(data);
    assert.throws(() => plain.reconstruct(0), /direct map/);
  });

  test("N parts: every part reconstructs its global ids after reload (part 1 array map, later parts hash map); python3-faiss opens them", async () => {
    const d = 8;
    const data = clusteredData(700, d, 4, 10);
    const indexPath = join(dir, "dm3", "knn.index");
    const r = await buildIndex({ vectors: data, dim: d }, {
      indexKey: "IVF4,Flat", indexParam: "nprobe=4", makeDirectMap: true, metricType: "l2", nbIndicesToKeep: 3,
      indexPath, indexInfosPath: join(dir, "dm3", "infos.json"), maxIndexMemoryUsage: "1G", currentMemoryAvailable: "2G",
    });
    assert.equal(r.index, null);
    const ranges = [[0, 234], [234, 467], [467, 700]];
    partPaths(indexPath, 3).forEach((p, part) => {
      using reloaded = Index.read(p);
      const [start, end] = ranges[part];
      for (const i of [start, start + 1, end - 1]) assert.deepEqual(reloaded.reconstructId(i), data.subarray(i * d, (i + 1) * d), `part ${part + 1} id ${i}`);
      // ids outside the part are not there
      assert.throws(() => reloaded.reconstructId(end === 700 ? 0 : end), { name: "FaissError" });
    });
    assert.deepEqual(pythonPartIds(partPaths(indexPath, 3)).map((p) => p.ntotal), [234, 233, 233]);
  });
});
