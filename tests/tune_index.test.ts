/**
 * `autofaiss tune_index` through the CLI: logs, the written index and its persisted
 * parameters, index_param applied verbatim, unknown families, and the errors a user can hit.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Index } from "../ffi/faiss.ts";
import { clusteredData } from "./helpers/data.ts";
import { runCli } from "./helpers/cli.ts";

const run = runCli;

/** The message part of Python-format log lines ("2024-… [INFO]: message" → "message"). */
const messages = (logs: string[]) => logs.map((l) => l.replace(/^.*? \[[A-Z]+\]: /, ""));

describe("tune_index CLI", () => {
  const d = 16;
  const x = clusteredData(3000, d, 12, 7);
  let dir = "";
  let ivfPath = "";
  let hnswPath = "";

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "autofaiss-tune-"));
    ivfPath = join(dir, "ivf.index");
    hnswPath = join(dir, "hnsw.index");
    using ivf = Index.factory(d, "IVF64,Flat", "l2");
    ivf.train(x);
    ivf.add(x);
    ivf.write(ivfPath);
    using hnsw = Index.factory(d, "HNSW16", "ip");
    hnsw.add(x);
    hnsw.write(hnswPath);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("IVF64,Flat: tunes nprobe, logs like Python, writes the index with nprobe persisted", async () => {
    const out = join(dir, "out", "tuned.index");
    const r = await run("tune_index", ivfPath, "IVF64,Flat", `--output_index_path=${out}`, "--max_index_query_time_ms=20");
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, "");
    const m = messages(r.logs);
    const line = m.find((l) => l.startsWith("The optimal hyperparameters are "));
    assert.match(line ?? "", /^The optimal hyperparameters are nprobe=\d+\.$/);
    const nprobe = Number(/nprobe=(\d+)/.exec(line!)![1]);
    assert.ok(m.includes("The index with these parameters has been saved on disk."));
    assert.ok(m.some((l) => /^Compute best hyperparameters \d\d\/\d\d\/\d{4}, /.test(l)), "Python's Timeit label");
    assert.ok(m.some((l) => /^tuning nprobe=\d+ \((coverage|coarse|precise)\): /.test(l)), "progress at INFO");
    using tuned = Index.read(out);
    assert.equal(tuned.ntotal, 3000);
    assert.equal(tuned.ivf()!.nprobe, nprobe, "nprobe survives the reload");
    assert.deepEqual(readdirSync(join(dir, "out")), ["tuned.index"], "no temporary file left");
  });

  test("index_param is applied verbatim, without tuning", async () => {
    const out = join(dir, "param.index");
    const r = await run("tune_index", ivfPath, "IVF64,Flat", "--index_param=nprobe=7", `--output_index_path=${out}`);
    assert.equal(r.code, 0, r.err);
    const m = messages(r.logs);
    assert.ok(m.includes("The optimal hyperparameters are nprobe=7."));
    assert.ok(!m.some((l) => l.startsWith("tuning ") || l.startsWith("Compute best hyperparameters")), "no tuning");
    using tuned = Index.read(out);
    assert.equal(tuned.ivf()!.nprobe, 7);
  });

  test("HNSW (inner product) with --nosave_on_disk: tuned, nothing written", async () => {
    const out = join(dir, "never.index");
    const r = await run("tune_index", hnswPath, "HNSW16", `--output_index_path=${out}`, "--nosave_on_disk", "--max_index_query_time_ms=50");
    assert.equal(r.code, 0, r.err);
    const m = messages(r.logs);
    assert.ok(m.some((l) => /^The optimal hyperparameters are efSearch=\d+\.$/.test(l)));
    assert.ok(!m.includes("The index with these parameters has been saved on disk."));
    assert.equal(existsSync(out), false);
  });

  test("a key without a heuristic keeps FAISS's defaults with a warning (Python: NotImplementedError)", async () => {
    // NSG: FAISS 1.7.3's ParameterSpace cannot set its search_L (LSH, used here before, is now
    // known as exhaustive: nothing to tune).
    const path = join(dir, "nsg.index");
    {
      using nsg = Index.factory(d, "NSG16,Flat", "l2");
      nsg.add(x.subarray(0, 500 * d));
      nsg.write(path);
    }
    const r = await run("tune_index", path, "NSG16,Flat", "--nosave_on_disk");
    assert.equal(r.code, 0, r.err);
    assert.ok(r.logs.some((l) =>
      l.includes("[WARNING]: no tuning heuristic for index key NSG16,Flat (FAISS 1.7.3 cannot set NSG's search_L through ParameterSpace, so it stays at 16)")));
    assert.ok(messages(r.logs).includes("The optimal hyperparameters are ."));
  });

  test("Flat: nothing to tune", async () => {
    const path = join(dir, "flat.index");
    {
      using flat = Index.factory(d, "Flat", "l2");
      flat.add(x);
      flat.write(path);
    }
    const r = await run("tune_index", path, "Flat", "--nosave_on_disk");
    assert.equal(r.code, 0, r.err);
    assert.ok(messages(r.logs).includes("The optimal hyperparameters are ."));
  });

  test("errors: one line, exit 1", async () => {
    const missing = join(dir, "missing.index");
    let r = await run("tune_index", missing, "IVF64,Flat");
    assert.equal(r.code, 1);
    assert.ok(r.err.startsWith(`autofaiss tune_index: error: index_path: cannot read ${missing}: `), r.err);

    // An index that cannot decode its vectors: FAISS 1.7.3 would abort the process in reconstruct_n.
    const idmap = join(dir, "idmap.index");
    {
      using index = Index.factory(d, "IDMap,HNSW16", "l2");
      index.addWithIds(x, BigInt64Array.from({ length: 3000 }, (_, i) => BigInt(10 * i)));
      index.write(idmap);
    }
    r = await run("tune_index", idmap, "IDMap,HNSW16", "--nosave_on_disk");
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      new RegExp(`^autofaiss tune_index: error: cannot reconstruct vectors from ${idmap} \\(IndexIDMapTemplate\\(metric=1\\)\\) to use as tuning queries: .*reconstruct not implemented.*; pass index_param to set the search parameters without tuning\\n$`),
    );
    r = await run("tune_index", idmap, "IDMap,HNSW16", "--nosave_on_disk", "--index_param=efSearch=64");
    assert.equal(r.code, 0, "the suggested way out works: FAISS sets efSearch through the id map");
    r = await run("tune_index", idmap, "IDMap,HNSW16", "--nosave_on_disk", "--index_param=nprobe=3");
    assert.equal(r.code, 1, "an HNSW has no nprobe: FAISS refuses the parameter");
    assert.match(r.err, /^autofaiss tune_index: error: index_param "nprobe=3" cannot be applied to .*idmap\.index \(IndexIDMapTemplate\(metric=1\)\): .*nprobe/);

    // The key does not describe the index: an HNSW index tuned as IVF.
    r = await run("tune_index", hnswPath, "IVF64,Flat", "--nosave_on_disk");
    assert.equal(r.code, 1);
    assert.match(r.err, /^autofaiss tune_index: error: index_key "IVF64,Flat" does not describe .*hnsw\.index \(IndexHNSWFlat\(metric=0\)>storage:IndexFlatIP\(metric=0\)\): FAISS .*could not set parameter nprobe/);

    r = await run("tune_index", ivfPath, "IVF64,Flat", "--output_index_path=None");
    assert.equal(r.code, 1);
    assert.equal(r.err, "autofaiss tune_index: error: output_index_path is required when save_on_disk is true\n");
  });
});

describe("tuneIndexParameters with a time budget (build_index: the add phase's time)", () => {
  test("a spent budget halves the precise latency measurements: fewer searches, a parameter still chosen", async () => {
    const { tuneIndexParameters } = await import("../lib/measure/tune_parameters.ts");
    // searches of about a millisecond (every list scanned: 50,000 × 64), so that a measurement ends on
    // its time budget rather than on its 2,000 searches
    const d = 64;
    const x = clusteredData(50_000, d, 20, 51);
    using index = Index.factory(d, "IVF4,Flat", "l2");
    index.train(x);
    index.add(x);
    const options = { maxQueryTimeMs: 10, minNearestNeighbors: 10 };
    const free = await tuneIndexParameters(index, "IVF4,Flat", x, options);
    const spent = await tuneIndexParameters(index, "IVF4,Flat", x, { ...options, budgetMs: 0 });
    assert.match(spent.param, /^nprobe=\d+$/);
    console.log(`precise budget spent: ${spent.searches.calls} searches; unbudgeted: ${free.searches.calls}`);
    // the same coarse steps (150 ms each), then 0.5 s instead of 1 s of precise searches: about 0.56×
    // as many searches here; an ignored budget gives about 1×
    assert.ok(spent.searches.calls < 0.8 * free.searches.calls, `${spent.searches.calls} searches with the budget spent, ${free.searches.calls} without`);
  });
});
