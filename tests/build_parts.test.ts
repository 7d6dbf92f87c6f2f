/**
 * `build_index --nb_indices_to_keep N` on one machine: N part files with contiguous global ids,
 * trained once, README names (knn.index01 …), each readable by python3-faiss, and searching the
 * parts merged gives what the single index built from the same training gives.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildIndex, type IndexInfos } from "../lib/commands/build_index.ts";
import { searchIndex } from "../lib/commands/search.ts";
import { writeNpy } from "../lib/io/npy_writer.ts";
import { partPaths } from "../lib/plan/parts.ts";
import { clusteredData } from "./helpers/data.ts";
import { runCli } from "./helpers/cli.ts";
import { assertPythonFaiss, pythonPartIds } from "./helpers/python_oracle.ts";
import { rowsOf, writeParquet } from "./fixtures/io/parquet.ts";

const d = 16;
const n = 3001;
const data = clusteredData(n, d, 12, 31);
const queries = clusteredData(40, d, 12, 32);
let dir = "";
const at = (...p: string[]) => join(dir, ...p);

async function searchLines(indexPath: string, opts: { idsPath?: string; k?: number } = {}): Promise<string[]> {
  const lines: string[] = [];
  await searchIndex({ indexPath, queries: at("q.npy"), k: opts.k ?? 10, idsPath: opts.idsPath, write: (l) => lines.push(l) });
  return lines;
}

const common = {
  metricType: "l2",
  indexKey: "IVF16,Flat",
  indexParam: "nprobe=4",
  maxIndexMemoryUsage: "1G",
  currentMemoryAvailable: "2G",
} as const;

before(() => {
  assertPythonFaiss();
  dir = mkdtempSync(join(tmpdir(), "autofaiss-parts-"));
  mkdirSync(at("emb"));
  mkdirSync(at("pq"));
  writeNpy(at("emb", "0.npy"), data.subarray(0, 1000 * d), d);
  writeNpy(at("emb", "1.npy"), data.subarray(1000 * d), d);
  writeNpy(at("q.npy"), queries, d);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("nb_indices_to_keep: N parts", () => {
  test("3 parts vs one index from the same training: same neighbours merged; ids 0..n-1 once; python3-faiss opens every part", async () => {
    const single = await buildIndex(at("emb"), { ...common, indexPath: at("one", "knn.index"), indexInfosPath: at("one", "index_infos.json") });
    assert.notEqual(single.index, null);
    single.index!.free();
    const split = await buildIndex(at("emb"), { ...common, indexPath: at("three", "knn.index"), indexInfosPath: at("three", "index_infos.json"), nbIndicesToKeep: 3 });
    assert.equal(split.index, null);
    assert.deepEqual(readdirSync(at("three")).sort(), [
      "index_infos.json01", "index_infos.json02", "index_infos.json03", "knn.index01", "knn.index02", "knn.index03",
    ]);
    const paths = partPaths(at("three", "knn.index"), 3);
    const infos = split.infos as Record<string, IndexInfos>;
    assert.deepEqual(Object.keys(infos), paths);
    // Python's split of 3001 rows in 3: 1001, 1000, 1000
    assert.deepEqual(paths.map((p) => infos[p]["nb vectors"]), [1001, 1000, 1000]);
    paths.forEach((p, i) => {
      const onDisk = JSON.parse(readFileSync(`${at("three", "index_infos.json")}0${i + 1}`, "utf8"));
      assert.equal(onDisk.index_path, p);
      assert.equal(onDisk.index_param, "nprobe=4");
      assert.equal(onDisk["nb vectors"], infos[p]["nb vectors"]);
    });

    const py = pythonPartIds(paths);
    const one = pythonPartIds([at("one", "knn.index")])[0];
    assert.deepEqual(py.map((p) => [p.ntotal, p.d, p.nlist]), [[1001, d, 16], [1000, d, 16], [1000, d, 16]]);
    // contiguous ranges: part 1 holds 0..1000, part 2 1001..2000, part 3 2001..3000
    assert.deepEqual(py.map((p) => [p.ids[0], p.ids[p.ids.length - 1], p.ids.length]), [[0, 1000, 1001], [1001, 2000, 1000], [2001, 3000, 1000]]);
    assert.deepEqual(py.flatMap((p) => p.ids), Array.from({ length: n }, (_, i) => i));
    // trained once, and the same training as the single build (same sample seed)
    assert.ok(py.every((p) => p.centroids_sha === one.centroids_sha));

    // Same lists, same nprobe: the merged parts return the single index's neighbours.
    const a = (await searchLines(at("one", "knn.index"))).map((l) => JSON.parse(l));
    const b = (await searchLines(at("three", "knn.index"))).map((l) => JSON.parse(l));
    assert.equal(b.length, 40);
    b.forEach((row, q) => {
      assert.deepEqual(row.distances, a[q].distances, `query ${q} distances`);
      assert.deepEqual([...row.ids].sort((x: number, y: number) => x - y), [...a[q].ids].sort((x: number, y: number) => x - y), `query ${q} ids`);
    });
  });

  test("names are zero-padded to the width of N: 10 parts are 01 … 10; more parts than rows are capped", async () => {
    const small = clusteredData(40, d, 3, 5);
    await buildIndex({ vectors: small, dim: d }, { ...common, indexKey: "IVF2,Flat", indexParam: "nprobe=2", indexPath: at("ten", "knn.index"), indexInfosPath: at("ten", "infos.json"), nbIndicesToKeep: 10 });
    assert.deepEqual(readdirSync(at("ten")).filter((f) => f.startsWith("knn")).sort(), partPaths("knn.index", 10));
    assert.ok(existsSync(at("ten", "infos.json10")));
    const tiny = clusteredData(3, d, 1, 6);
    const r = await buildIndex({ vectors: tiny, dim: d }, { ...common, indexKey: "IVF1,Flat", indexParam: "nprobe=1", indexPath: at("capped", "knn.index"), indexInfosPath: at("capped", "i.json"), nbIndicesToKeep: 8 });
    assert.deepEqual(Object.keys(r.infos), partPaths(at("capped", "knn.index"), 3));
  });

  test("parquet with id columns: one ids mapping for all parts, search --ids_path returns the original ids", async () => {
    const ids = Array.from({ length: 500 }, (_, i) => `item-${1000 + i}`);
    writeParquet(at("pq", "a.parquet"), { vectors: rowsOf(data.subarray(0, 500 * d), d), extra: [{ name: "key", data: ids, type: "STRING" }] });
    const r = await buildIndex(at("pq"), {
      ...common, fileFormat: "parquet", idColumns: ["key"], idsPath: at("pq-out", "ids"),
      indexPath: at("pq-out", "knn.index"), indexInfosPath: at("pq-out", "infos.json"), nbIndicesToKeep: 2,
    });
    assert.equal(r.index, null);
    const plain = (await searchLines(at("pq-out", "knn.index"), { k: 5 })).map((l) => JSON.parse(l));
    const mapped = (await searchLines(at("pq-out", "knn.index"), { k: 5, idsPath: at("pq-out", "ids") })).map((l) => JSON.parse(l));
    assert.deepEqual(mapped.map((m) => m.ids), plain.map((p) => p.ids.map((i: number) => ids[i])));
  });

  test("through the CLI: N recaps, exit 0", async () => {
    const r = await runCli(
      "build_index", at("emb"), `--index_path=${at("cli", "knn.index")}`, `--index_infos_path=${at("cli", "index_infos.json")}`,
      "--index_key=IVF8,Flat", "--index_param=nprobe=2", "--metric_type=ip", "--nb_indices_to_keep=2", "--max_index_memory_usage=1G", "--current_memory_available=2G",
    );
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(readdirSync(at("cli")).sort(), ["index_infos.json01", "index_infos.json02", "knn.index01", "knn.index02"]);
    assert.equal(r.logs.filter((l) => l.includes("nb vectors")).length, 2);
  });

  test("refused before training: no add_with_ids (Flat), no save_on_disk, N < 1", async () => {
    await assert.rejects(buildIndex(at("emb"), { ...common, indexKey: "Flat", indexPath: at("x", "knn.index"), indexInfosPath: at("x", "i.json"), nbIndicesToKeep: 2 }), {
      name: "BuildError",
      message: 'nb_indices_to_keep=2: index_key "Flat" cannot store global ids (add_with_ids); use an IVF key such as IVF1,Flat',
    });
    await assert.rejects(buildIndex(at("emb"), { ...common, saveOnDisk: false, indexPath: null, nbIndicesToKeep: 2 }), {
      message: "nb_indices_to_keep=2 writes 2 index files: save_on_disk must be true",
    });
    await assert.rejects(buildIndex(at("emb"), { ...common, indexPath: at("x", "knn.index"), nbIndicesToKeep: 0 }), { message: "nb_indices_to_keep: expected an integer >= 1, got 0" });
    assert.equal(existsSync(at("x", "knn.index01")), false);
  });
});
