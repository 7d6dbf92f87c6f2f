/**
 * `score_index` (Python's fast and medium metrics): exact ground truth in bounded memory with the index's metric,
 * recalls equal to an independent brute-force computation, the ground-truth cache (hit, invalidation,
 * bypass, never in the data folder), npy and parquet inputs, and the memory headroom rule.
 *
 * Two data sets, both checked against a float64 brute force computed here:
 * - integers (rounded clustered data) for IVF: FAISS computes their distances exactly in float32, so
 *   the comparison is exact; small integers tie a lot, which checks that the ground truth keeps the
 *   smaller row numbers among tied neighbours whatever the batch size;
 * - floats for Flat: no ties, so FAISS's own flat search (which breaks ties arbitrarily) returns the
 *   exact top-R sets and scores 1.0 (its top-R sets equal the float64 ones on this seeded data).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Index, type Metric } from "../ffi/faiss.ts";
import { main } from "../lib/cli/main.ts";
import { collectionFromArray } from "../lib/io/memory.ts";
import { writeNpy } from "../lib/io/npy_writer.ts";
import { defaultCacheDir, readGroundTruth, writeGroundTruth } from "../lib/measure/ground_truth_cache.ts";
import { exactNeighbours, groundTruthBatchRows } from "../lib/measure/ground_truth.ts";
import { bruteForce, clusteredData } from "./helpers/data.ts";
import { assertPythonFaiss, PYTHON } from "./helpers/python_oracle.ts";
import { rowsOf, writeParquet } from "./fixtures/io/parquet.ts";

const d = 16;
const N = 3000;
const NQ = 500;
const FAST_KEYS = [
  "size in bytes", "avg_search_speed_ms", "99p_search_speed_ms", "reconstruction error %", "nb vectors",
  "vectors dimension", "compression ratio",
];
const RECALL_KEYS = ["1-recall@20", "1-recall@40", "20-recall@20", "40-recall@40"] as const;

async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const logs: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), logSink: (l) => logs.push(l), stderrIsTTY: false });
  return { code, out: out.join(""), err: err.join(""), logs, messages: logs.map((l) => l.replace(/^.*? \[[A-Z]+\]: /, "")) };
}

/** Recalls computed here from scratch: float64 brute force + the index's own k=1 and k=40 results. */
function expectedRecalls(index: Index, base: Float32Array, metric: Metric): Record<(typeof RECALL_KEYS)[number], number> {
  const q = base.subarray(0, NQ * d);
  const gt = bruteForce(base, q, d, 40, metric).labels;
  const top1 = index.search(q, 1).labels;
  const top40 = index.search(q, 40).labels;
  const one = (R: number) => gt.reduce((s, row, i) => s + (row.slice(0, R).includes(Number(top1[i])) ? 1 : 0), 0) / NQ;
  const inter = (R: number) =>
    gt.reduce((s, row, i) => {
      const found = new Set(Array.from(top40.subarray(i * 40, i * 40 + R), Number).filter((l) => l >= 0));
      return s + row.slice(0, R).filter((l) => found.has(l)).length / R;
    }, 0) / NQ;
  return { "1-recall@20": one(20), "1-recall@40": one(40), "20-recall@20": inter(20), "40-recall@40": inter(40) };
}

describe("score_index", () => {
  const floats = clusteredData(N, d, 12, 31);
  const base = floats.map(Math.round);
  let dir = "";
  let data = "";
  let floatData = "";
  let cache = "";
  const indexPath = (name: string) => join(dir, "indices", `${name}.index`);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "autofaiss-score-"));
    data = join(dir, "data");
    floatData = join(dir, "float-data");
    cache = join(dir, "cache");
    mkdirSync(data);
    mkdirSync(floatData);
    mkdirSync(join(dir, "indices"));
    writeNpy(join(data, "part-0.npy"), base.subarray(0, 1200 * d), d);
    writeNpy(join(data, "part-1.npy"), base.subarray(1200 * d), d);
    writeNpy(join(floatData, "part-0.npy"), floats.subarray(0, 2000 * d), d);
    writeNpy(join(floatData, "part-1.npy"), floats.subarray(2000 * d), d);
    for (const metric of ["l2", "ip"] as const) {
      using flat = Index.factory(d, "Flat", metric);
      flat.add(floats);
      flat.write(indexPath(`flat-${metric}`));
      using ivf = Index.factory(d, "IVF32,Flat", metric);
      ivf.train(base);
      ivf.add(base);
      ivf.setParameters("nprobe=1");
      ivf.write(indexPath(`ivf-${metric}`));
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("batch rows: three copies of a batch fit the memory, at most 1e9 bytes per batch, at least one row", () => {
    assert.equal(groundTruthBatchRows(12 * 1024 ** 2, 128), 8192);
    assert.equal(groundTruthBatchRows(64 * 1024 ** 3, 128), Math.floor(1e9 / 512));
    assert.equal(groundTruthBatchRows(10, 128), 1);
  });

  test("cache folder: XDG_CACHE_HOME (absolute only), else HOME/.cache", () => {
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: "/var/cache", HOME: "/home/u" }), "/var/cache/autofaiss");
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: "relative", HOME: "/home/u" }), "/home/u/.cache/autofaiss");
    assert.equal(defaultCacheDir({ HOME: "/home/u" }), "/home/u/.cache/autofaiss");
    assert.throws(() => defaultCacheDir({}), /neither XDG_CACHE_HOME nor HOME is set; pass cache_dir or use_cache=False/);
  });

  test("cache file: int32 (500, 40) .npy that numpy reads; a wrong shape or a truncated file is ignored", () => {
    assertPythonFaiss();
    const path = join(dir, "gt-check.gt");
    const labels = Int32Array.from({ length: NQ * 40 }, (_, i) => (i % 41 === 0 ? -1 : i));
    writeGroundTruth(path, labels, NQ, 40);
    assert.deepEqual(readGroundTruth(path, NQ, 40), labels);
    const py = execFileSync(PYTHON, ["-c", `import numpy as np; a = np.load(${JSON.stringify(path)}); print(a.dtype, a.shape, a[0, 0], a[1, 2], a[-1, -1])`], {
      encoding: "utf8",
    });
    assert.equal(py.trim(), `int32 (500, 40) -1 42 ${NQ * 40 - 1}`);
    const why: string[] = [];
    assert.equal(readGroundTruth(path, NQ, 20, (w) => why.push(w)), null);
    truncateSync(path, 1000);
    assert.equal(readGroundTruth(path, NQ, 40, (w) => why.push(w)), null);
    assert.equal(why.length, 2);
    assert.match(why[1], /gt-check\.gt: 1000 bytes, expected an int32 \.npy of shape \(500, 40\) \(80128 bytes\)/);
    assert.equal(readGroundTruth(join(dir, "absent.gt"), NQ, 40), null);
  });

  for (const metric of ["l2", "ip"] as const) {
    test(`exact neighbours (${metric}) equal brute force whatever the batch size`, async () => {
      const q = base.subarray(0, 60 * d);
      const bf = bruteForce(base, q, d, 41, metric);
      const ties = bf.scores.filter((row) => row[39] === row[40]).length;
      assert.ok(ties >= 5, `${ties} queries have a tie across rank 40: the case under test`);
      const truth = bf.labels.map((row) => row.slice(0, 40)).flat();
      await using embs = collectionFromArray(base, d);
      for (const memoryBytes of [3 * 64 * 7, 3 * 64 * 97, 3 * 64 * 1000, 1e9]) {
        const gt = await exactNeighbours(embs, q, { metric, memoryBytes });
        assert.deepEqual(Array.from(gt), truth, `batches of ${groundTruthBatchRows(memoryBytes, d)} rows`);
      }
    });
  }

  for (const c of [
    { name: "flat-l2", metric: "l2" as const, flat: true },
    { name: "flat-ip", metric: "ip" as const, flat: true },
    { name: "ivf-l2", metric: "l2" as const, flat: false },
    { name: "ivf-ip", metric: "ip" as const, flat: false },
  ]) {
    test(`${c.name}: recalls equal the brute-force computation${c.flat ? " (1.0)" : " (IVF, nprobe=1)"}`, async () => {
      const out = join(dir, `infos-${c.name}.json`);
      // 400K minus the ~200 KB index leaves ~1,000-row batches: the ground truth is merged over 3 batches.
      const r = await run("score_index", indexPath(c.name), c.flat ? floatData : data, `--output_index_info_path=${out}`, "--current_memory_available=400K", `--cache_dir=${cache}`);
      assert.equal(r.code, 0, r.err);
      const infos = JSON.parse(readFileSync(out, "utf8"));
      assert.deepEqual(Object.keys(infos), [...FAST_KEYS, ...RECALL_KEYS]);
      assert.match(readFileSync(out, "utf8"), /^\{"size in bytes": \d+, "avg_search_speed_ms": /);
      assert.equal(infos["nb vectors"], N);
      using index = Index.read(indexPath(c.name));
      const expected = expectedRecalls(index, c.flat ? floats : base, c.metric);
      for (const k of RECALL_KEYS) assert.equal(infos[k], expected[k], k);
      if (c.flat) for (const k of RECALL_KEYS) assert.equal(infos[k], 1);
      else assert.ok(infos["40-recall@40"] < 1, "nprobe=1 misses neighbours in other lists");
      for (const line of ["Intermediate recap:", "Performances recap:", "{", "}"]) assert.ok(r.messages.includes(line), line);
      assert.ok(r.messages.includes(`\t40-recall@40: ${expected["40-recall@40"]}`));
    });
  }

  test("cache: second run reuses it, a touched file invalidates it, --nouse_cache / --no-cache bypass it; data folder untouched", async () => {
    const cacheDir = join(dir, "cache-flow");
    const dataBefore = readdirSync(data).sort();
    const score = (...extra: string[]) => run("score_index", indexPath("ivf-l2"), data, "--nosave_on_disk", `--cache_dir=${cacheDir}`, ...extra);
    const cachedLine = (m: string[]) => m.find((l) => l.startsWith("Cached the ground truth in "));

    const first = await score();
    assert.equal(first.code, 0, first.err);
    const written = cachedLine(first.messages);
    assert.ok(written?.startsWith(`Cached the ground truth in ${cacheDir}/ground_truth-`), String(written));
    assert.deepEqual(readdirSync(cacheDir).length, 1);
    const file = readdirSync(cacheDir)[0];
    assert.match(file, /^ground_truth-[0-9a-f]{64}\.gt$/);

    const second = await score();
    assert.ok(second.messages.includes(`Using the cached ground truth ${join(cacheDir, file)}`));
    assert.ok(!second.messages.some((l) => l.startsWith("\t-> Compute small ground truth")), "not recomputed");
    assert.deepEqual(second.messages.filter((l) => /recall@/.test(l)), first.messages.filter((l) => /recall@/.test(l)));

    // Same bytes, new mtime: the key changes, the ground truth is recomputed into a second file.
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(data, "part-1.npy"), later, later);
    const third = await score();
    assert.ok(cachedLine(third.messages), "recomputed after the data changed");
    assert.equal(readdirSync(cacheDir).length, 2);

    for (const flag of ["--nouse_cache", "--no-cache", "--use_cache=False"]) {
      const bypass = join(dir, `cache-bypass${flag}`);
      const r = await run("score_index", indexPath("ivf-l2"), data, "--nosave_on_disk", `--cache_dir=${bypass}`, flag);
      assert.equal(r.code, 0, r.err);
      assert.ok(r.messages.includes("Ground-truth cache not used (use_cache=False)"), flag);
      assert.equal(existsSync(bypass), false, `${flag}: no cache folder created`);
    }
    assert.deepEqual(readdirSync(data).sort(), dataBefore, "nothing written next to the embeddings");
  });

  test("a corrupt cache file is ignored with a warning and rewritten", async () => {
    const cacheDir = join(dir, "cache-corrupt");
    const score = () => run("score_index", indexPath("flat-l2"), data, "--nosave_on_disk", `--cache_dir=${cacheDir}`);
    assert.equal((await score()).code, 0);
    const file = join(cacheDir, readdirSync(cacheDir)[0]);
    truncateSync(file, 100);
    const r = await score();
    assert.equal(r.code, 0, r.err);
    assert.ok(r.logs.some((l) => l.includes("[WARNING]: ignoring an invalid ground-truth cache file: ")));
    assert.ok(r.messages.some((l) => l.startsWith("Cached the ground truth in ")));
    assert.equal(readFileSync(file).length, 80128);
  });

  test("parquet input gives the npy results", async () => {
    const pq = join(dir, "parquet");
    mkdirSync(pq);
    writeParquet(join(pq, "part-0.parquet"), { vectors: rowsOf(base.subarray(0, 1700 * d), d), column: "embedding" });
    writeParquet(join(pq, "part-1.parquet"), { vectors: rowsOf(base.subarray(1700 * d), d), column: "embedding" });
    const recalls = async (...args: string[]) => {
      const r = await run("score_index", indexPath("ivf-ip"), ...args, "--nosave_on_disk", `--cache_dir=${join(dir, "cache-pq")}`);
      assert.equal(r.code, 0, r.err);
      return r.messages.filter((l) => /recall@/.test(l));
    };
    const fromNpy = await recalls(data);
    assert.equal(fromNpy.length, 4 * 1, "one recap with the recalls");
    assert.deepEqual(await recalls(pq, "--file_format=parquet"), fromNpy);
    assert.deepEqual(await recalls(pq, "--file_format=parquet", "--embedding_column_name=embedding"), fromNpy);
  });

  test("memory headroom: Python's message, one error line, exit 1, no JSON", async () => {
    const out = join(dir, "no-infos.json");
    const r = await run("score_index", indexPath("flat-l2"), data, `--output_index_info_path=${out}`, "--current_memory_available=200K", `--cache_dir=${cache}`);
    assert.equal(r.code, 1);
    assert.ok(r.messages.includes("Intermediate recap:"), "fast metrics come first, as in Python");
    // The index file is 192,045 bytes; the rule needs current ≥ size / 0.9 = 213,384 bytes.
    const size = readFileSync(indexPath("flat-l2")).length;
    assert.equal(size, 192_045);
    assert.ok(r.messages.includes("Not enough memory, at least 208.4KB is needed, please increase current_memory_available"));
    assert.equal(
      r.err,
      "autofaiss score_index: error: Not enough memory, at least 208.4KB is needed, please increase current_memory_available " +
        "(200.0KB minus the 187.5KB index leaves less than 10% for the exact neighbours)\n",
    );
    assert.equal(existsSync(out), false);
  });

  test("errors: dimension mismatch, missing index", async () => {
    const other = join(dir, "other-dim");
    mkdirSync(other);
    writeNpy(join(other, "x.npy"), new Float32Array(8 * 10), 8);
    let r = await run("score_index", indexPath("flat-l2"), other, "--nosave_on_disk", `--cache_dir=${cache}`);
    assert.equal(r.code, 1);
    assert.equal(r.err, "autofaiss score_index: error: embeddings: dimension 8 differs from the index's dimension 16\n");
    const missing = join(dir, "missing.index");
    r = await run("score_index", missing, data, "--nosave_on_disk");
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`^autofaiss score_index: error: index_path: cannot read ${missing}: `));
  });
});
