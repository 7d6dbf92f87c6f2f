import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetReadObjects } from "hyparquet";
import { BuildError, buildIndex, type IndexInfos } from "../lib/commands/build_index.ts";
import { Index } from "../ffi/faiss.ts";
import { writeNpy } from "../lib/io/npy_writer.ts";
import { parseMemory } from "../lib/plan/units.ts";
import { optimalTrainSize } from "../lib/plan/training_plan.ts";
import { bruteForce, clusteredData, recallAtK, rows } from "./helpers/data.ts";
import { assertPythonFaiss, pythonSearch } from "./helpers/python_oracle.ts";
import { writeParquet, rowsOf } from "./fixtures/io/parquet.ts";
import { runCli } from "./helpers/cli.ts";

const INFO_KEYS = [
  "index_key", "index_param", "index_path", "size in bytes", "avg_search_speed_ms", "99p_search_speed_ms",
  "reconstruction error %", "nb vectors", "vectors dimension", "compression ratio",
];

function assertSaneInfos(infos: IndexInfos, n: number, d: number, indexPath: string | null) {
  assert.deepEqual(Object.keys(infos), INFO_KEYS, "every key of Python's index_infos.json, in Python's order");
  assert.equal(infos["nb vectors"], n);
  assert.equal(infos["vectors dimension"], d);
  assert.equal(infos.index_path, indexPath);
  if (indexPath) assert.equal(infos["size in bytes"], statSync(indexPath).size);
  assert.ok(infos.avg_search_speed_ms > 0 && infos.avg_search_speed_ms <= infos["99p_search_speed_ms"]);
  // Only called for HNSW15, whose storage keeps the raw vectors (no standalone codec: 0, as in Python).
  assert.equal(infos["reconstruction error %"], 0);
  assert.ok(Math.abs(infos["compression ratio"] - (4 * n * d) / infos["size in bytes"]) < 1e-9);
}

describe("build_index end to end", () => {
  const d = 24;
  const parts = [clusteredData(2500, d, 20, 21), clusteredData(1500, d, 20, 22), clusteredData(2000, d, 20, 23)];
  const all = new Float32Array(6000 * d);
  parts.reduce((off, p) => (all.set(p, off), off + p.length), 0);
  const queries = clusteredData(50, d, 20, 24);
  const truthL2 = bruteForce(all, queries, d, 10, "l2").labels;
  let dir = "";

  before(() => {
    assertPythonFaiss();
    dir = mkdtempSync(join(tmpdir(), "autofaiss-build-"));
    // Folder A: files 0 and 1 (names sort in the data's order); folder B: file 2; folder C: empty.
    mkdirSync(join(dir, "a"));
    mkdirSync(join(dir, "b"));
    mkdirSync(join(dir, "empty"));
    writeNpy(join(dir, "a", "part-00.npy"), parts[0], d);
    writeNpy(join(dir, "a", "part-01.npy"), parts[1], d);
    writeNpy(join(dir, "b", "part-00.npy"), parts[2], d);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("npy: list of folders with an empty one; default selection; python3-faiss agrees", async () => {
    const indexPath = join(dir, "out", "knn.index");
    const infosPath = join(dir, "out", "index_infos.json");
    const { index, infos } = await buildIndex([join(dir, "a"), join(dir, "empty"), join(dir, "b")], {
      indexPath, indexInfosPath: infosPath, metricType: "l2", maxIndexMemoryUsage: "1G", currentMemoryAvailable: "2G",
    });
    try {
      assert.equal(infos.index_key, "HNSW15", "n < 10,000 → HNSW15 (Python's small-set rule)");
      assert.match(infos.index_param, /^efSearch=\d+$/);
      assertSaneInfos(infos, 6000, d, indexPath);
      assert.deepEqual(JSON.parse(readFileSync(infosPath, "utf8")), infos, "index_infos.json holds the returned infos");
      assert.match(readFileSync(infosPath, "utf8"), /^\{"index_key": "HNSW15", "index_param": /, "Python's json.dumps layout");
      assert.deepEqual(readdirSync(join(dir, "out")).sort(), ["index_infos.json", "knn.index"], "no temporary files left");

      const ours = index.search(queries, 10);
      assert.ok(recallAtK(ours.labels, truthL2, 10) >= 0.95, "recall@10 ≥ 0.95");
      const py = pythonSearch(indexPath, queries, d, 10);
      assert.equal(py.ntotal, 6000);
      assert.deepEqual(py.labels.flat(), Array.from(ours.labels, Number), "same neighbours in python3-faiss (efSearch persisted)");
    } finally {
      index.free();
    }
  });

  test("the CLI logs Python's timer blocks, in order and indented, then the summary", async () => {
    const indexPath = join(dir, "cli", "knn.index");
    const r = await runCli("build_index", `--embeddings=${join(dir, "a")}`, `--index_path=${indexPath}`,
      `--index_infos_path=${join(dir, "cli", "infos.json")}`, "--index_key=IVF32,Flat", "--metric_type=l2",
      "--max_index_memory_usage=1G", "--current_memory_available=2G");
    assert.equal(r.code, 0, r.err);
    const messages = r.logs.map((l) => l.replace(/^.*? \[[A-Z]+\]: /, ""));
    const finished = messages.flatMap((m) => {
      const f = /^(\t*)>>> Finished "(.*)" in \d+\.\d{4} secs$/.exec(m);
      return f ? [`${f[1]!.length} ${f[2]}`] : [];
    });
    // Python's order, except that selection runs before the memory check: the check
    // estimates the key that selection picked (a deliberate fix).
    assert.deepEqual(finished, [
      "0 Reading total number of vectors and dimension",
      "1 Compute estimated construction time of the index",
      "1 Selecting most promising index types given data characteristics",
      "1 Checking that your have enough memory available to create the index",
      "2 -> Instanciate the index IVF32,Flat",
      "2 -> Extract training vectors",
      `2 -> Training the index with ${optimalTrainSize(4000, "IVF32,Flat", parseMemory("2G"), d)} vectors of dim 24`,
      "2 -> Adding the vectors to the index",
      "1 Creating the index",
      `1 Computing best hyperparameters for index ${indexPath}`,
      "1 Compute fast metrics",
      "1 Saving the index on local disk",
      "0 Launching the whole pipeline",
    ]);
    const open = messages.indexOf("}");
    assert.ok(open > 0 && messages.slice(0, open).includes("{"), "the summary block closes the log");
    assert.match(messages.find((m) => m.startsWith("\tindex_key: ")) ?? "", /^\tindex_key: IVF32,Flat$/);
    // Python floats keep their ".0" (IVF-Flat stores vectors exactly); ints do not
    assert.ok(messages.includes("\treconstruction error %: 0.0"), messages.join("\n"));
    assert.ok(messages.includes("\tnb vectors: 4000"));
  });

  for (const c of [
    { key: "Flat", min: 1.0 },
    { key: "IVF32,Flat", min: 0.95 },
    { key: "IVF32_HNSW16,Flat", min: 0.95 },
  ]) {
    test(`index_key=${c.key}: recall@10 ≥ ${c.min} against brute force`, async () => {
      const { index, infos } = await buildIndex([join(dir, "a"), join(dir, "b")], {
        indexKey: c.key, saveOnDisk: false, indexPath: null, metricType: "l2", maxIndexMemoryUsage: "1G", currentMemoryAvailable: "2G",
      });
      try {
        assert.equal(index.ntotal, 6000);
        assert.equal(infos.index_key, c.key);
        const recall = recallAtK(index.search(queries, 10).labels, truthL2, 10);
        assert.ok(recall >= c.min, `recall@10 = ${recall}`);
      } finally {
        index.free();
      }
    });
  }

  test("PQ family: builds, reports recall and reconstruction error", async () => {
    const { index, infos } = await buildIndex([join(dir, "a"), join(dir, "b")], {
      indexKey: "OPQ8_24,IVF32,PQ8x8", saveOnDisk: false, indexPath: null, metricType: "l2", currentMemoryAvailable: "2G", maxIndexMemoryUsage: "1G",
    });
    try {
      assert.match(infos.index_param, /^nprobe=\d+,ht=2048$/);
      const recall = recallAtK(index.search(queries, 10).labels, truthL2, 10);
      // The reference: the same key built by plain FAISS calls (train on every vector, FAISS defaults
      // but polysemous training off, as the build does), searched with the tuned parameters.
      using plain = Index.factory(d, "OPQ8_24,IVF32,PQ8x8", "l2");
      plain.setPolysemousTraining(false);
      plain.train(all);
      plain.add(all);
      plain.setParameters(infos.index_param);
      const plainRecall = recallAtK(plain.search(queries, 10).labels, truthL2, 10);
      console.log(`OPQ8_24,IVF32,PQ8x8 on 6000×24: recall@10 = ${recall.toFixed(3)} (plain FAISS ${plainRecall.toFixed(3)}), ` +
        `reconstruction error ${infos["reconstruction error %"].toFixed(2)}%`);
      assert.ok(infos["reconstruction error %"] > 0, "a lossy codec has a non-zero reconstruction error");
      // k-means and PQ training depend on the sample order, so the two differ by noise: 0.05 of 500 hits.
      assert.ok(recall >= plainRecall - 0.05, `recall@10 = ${recall}, plain FAISS ${plainRecall}`);
    } finally {
      index.free();
    }
  });

  test("OPQ with more training rows than the rotation takes: the rotation trains on a sample of its own first", async () => {
    // 70,000 rows and IVF1024 (100 training rows per list): the 70,000-row training sample is above
    // the 32,768 rows the OPQ rotation trains on, so the rotation gets its own sample, read and trained first.
    const n = 70_000, dim = 16, key = "OPQ4_16,IVF1024,PQ4x8";
    const data = clusteredData(n, dim, 200, 31);
    const big = join(dir, "big");
    mkdirSync(big, { recursive: true });
    writeNpy(join(big, "part-00.npy"), data, dim);
    const indexPath = join(dir, "big-out", "knn.index");
    const r = await runCli("build_index", `--embeddings=${big}`, `--index_path=${indexPath}`,
      `--index_infos_path=${join(dir, "big-out", "infos.json")}`, `--index_key=${key}`, "--metric_type=l2",
      "--max_index_memory_usage=1G", "--current_memory_available=4G", "--verbose=20");
    assert.equal(r.code, 0, r.err);
    const messages = r.logs.map((l) => l.replace(/^.*? \[[A-Z]+\]: /, ""));
    const at = (m: string) => messages.findIndex((x) => x.includes(m));
    const rotation = at(">>> Finished \"-> Training the OPQ rotation with 32768 vectors of dim 16\"");
    const sample = at("-> Extract training vectors");
    const training = at(">>> Finished \"-> Training the index with 70000 vectors of dim 16\"");
    assert.ok(rotation > 0 && sample > rotation && training > sample, messages.join("\n"));
    assert.ok(messages.some((m) => m.startsWith("Training OPQ rotation: ") && m.includes("outer iteration 25/25")), "the rotation's bar");
    // the second training does not train the rotation again: no rotation bar after the training sample
    assert.equal(messages.slice(sample).some((m) => m.startsWith("Training OPQ rotation: ")), false);
    // recall against plain FAISS trained in one call on all rows (its OPQ draws its own 65,536)
    const queries = clusteredData(200, dim, 200, 32);
    const truth = bruteForce(data, queries, dim, 10, "l2").labels;
    const infos = JSON.parse(readFileSync(join(dir, "big-out", "infos.json"), "utf8")) as IndexInfos;
    using built = Index.read(indexPath);
    built.setParameters(infos.index_param);
    using plain = Index.factory(dim, key, "l2");
    plain.setPolysemousTraining(false);
    plain.train(data);
    plain.add(data);
    plain.setParameters(infos.index_param);
    const recall = recallAtK(built.search(queries, 10).labels, truth, 10);
    const plainRecall = recallAtK(plain.search(queries, 10).labels, truth, 10);
    console.log(`${key} on ${n}×${dim}: recall@10 ${recall.toFixed(3)} (plain FAISS ${plainRecall.toFixed(3)}) at ${infos.index_param}`);
    // 2,000 hits: trainings on different samples differ by noise
    assert.ok(recall >= plainRecall - 0.03, `recall@10 = ${recall}, plain FAISS ${plainRecall}`);
  });

  test("inner product with an in-memory array (no temporary files)", async () => {
    const before = readdirSync(tmpdir()).length;
    const { index, infos } = await buildIndex({ vectors: all, dim: d }, { saveOnDisk: false, indexPath: null, indexKey: "IVF16,Flat" });
    try {
      assert.equal(index.metric, "ip");
      assert.equal(infos["nb vectors"], 6000);
      assert.ok(readdirSync(tmpdir()).length <= before, "nothing written to the temp folder");
      const truthIp = bruteForce(all, queries, d, 10, "ip").labels;
      assert.ok(recallAtK(index.search(queries, 10).labels, truthIp, 10) >= 0.95);
    } finally {
      index.free();
    }
  });

  test("parquet folder with id columns writes the ids mapping", async () => {
    const pq = join(dir, "pq");
    mkdirSync(pq);
    let id = 0;
    parts.forEach((p, i) => {
      const n = p.length / d;
      writeParquet(join(pq, `part-${i}.parquet`), {
        vectors: rowsOf(p, d),
        extra: [{ name: "id", type: "STRING", data: Array.from({ length: n }, () => `doc-${id++}`) }],
        rowGroupSize: 1000,
      });
    });
    const idsPath = join(dir, "ids");
    const { index, infos } = await buildIndex(pq, {
      fileFormat: "parquet", idColumns: ["id"], idsPath, indexPath: join(dir, "pq.index"), indexInfosPath: join(dir, "pq.json"),
      indexKey: "IVF16,Flat", metricType: "l2", currentMemoryAvailable: "2G", maxIndexMemoryUsage: "1G",
    });
    try {
      assert.equal(infos["nb vectors"], 6000);
      const files = readdirSync(idsPath).filter((f) => f.endsWith(".parquet")).sort();
      assert.ok(files.length >= 1);
      const rowsRead: Record<string, unknown>[] = [];
      for (const f of files) {
        const buf = readFileSync(join(idsPath, f));
        rowsRead.push(...await parquetReadObjects({ file: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) }));
      }
      rowsRead.sort((a, b) => Number(a.i) - Number(b.i));
      assert.equal(rowsRead.length, 6000);
      rowsRead.forEach((r, i) => {
        assert.equal(Number(r.i), i);
        assert.equal(r.id, `doc-${i}`);
      });
    } finally {
      index.free();
    }
  });
});

describe("build_index budgets and bad input", () => {
  // 12,000 × 16: small enough that OPQ training (its cost is mostly per-iteration overhead) stays short.
  const d = 16;
  const data = clusteredData(12000, d, 40, 31);
  let dir = "";
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "autofaiss-budget-"));
    writeNpy(join(dir, "emb", "part.npy"), data, d);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("the serialized index never exceeds max_index_memory_usage", async () => {
    for (const budget of ["400KB", "250KB"]) {
      const { index, infos } = await buildIndex(join(dir, "emb"), {
        indexPath: join(dir, `b${budget}.index`), indexInfosPath: join(dir, `b${budget}.json`),
        maxIndexMemoryUsage: budget, currentMemoryAvailable: "2G", metricType: "l2",
      });
      index.free();
      assert.ok(infos["size in bytes"] <= parseMemory(budget), `${infos.index_key}: ${infos["size in bytes"]} > ${budget}`);
      assert.match(infos.index_key, /^OPQ\d+_\d+,IVF\d+,PQ\d+x8$/, "raw vectors (750 KiB) do not fit: quantized");
    }
  });

  test("a budget too small names the smallest budget that works", async () => {
    await assert.rejects(
      buildIndex(join(dir, "emb"), { saveOnDisk: false, indexPath: null, maxIndexMemoryUsage: "100KB", currentMemoryAvailable: "2G" }),
      (e: unknown) => e instanceof BuildError && /no index fits max_index_memory_usage=100\.0KB for 12000×16 vectors; the smallest budget that works is [\d.]+KB \(\d+B\)/.test(e.message),
    );
  });

  test("the 10% RAM headroom rule", async () => {
    await assert.rejects(
      buildIndex(join(dir, "emb"), { saveOnDisk: false, indexPath: null, maxIndexMemoryUsage: "4G", currentMemoryAvailable: "4G" }),
      (e: unknown) => e instanceof BuildError && /You do not have enough memory to build this index/.test(e.message),
    );
  });

  test("an invalid index_key gives FAISS's message", async () => {
    await assert.rejects(
      buildIndex(join(dir, "emb"), { saveOnDisk: false, indexPath: null, indexKey: "IVF16,Bogus", currentMemoryAvailable: "2G", maxIndexMemoryUsage: "1G" }),
      // a dry factory call refuses it before any vector is read, naming the key and quoting FAISS
      (e: unknown) => e instanceof BuildError &&
        e.message === `index_key "IVF16,Bogus": FAISS 1.7.3 rejects it for d=16, metric ip: 'index_ivf' failed: could not parse code description Bogus in IVF16,Bogus`,
    );
  });

  test("an unwritable index_path fails before any work is done", async () => {
    const blocker = join(dir, "a-file");
    writeFileSync(blocker, "x");
    // The embeddings folder does not exist: the path check must come first.
    await assert.rejects(
      buildIndex(join(dir, "does-not-exist"), { indexPath: join(blocker, "knn.index"), indexInfosPath: join(dir, "i.json") }),
      (e: unknown) => e instanceof BuildError && e.message.startsWith(`index_path: cannot write ${join(blocker, "knn.index")}`),
    );
    assert.equal(existsSync(join(dir, "i.json")), false);
  });

  test("a bad metric and a bad memory string are clear errors", async () => {
    await assert.rejects(buildIndex(join(dir, "emb"), { saveOnDisk: false, indexPath: null, metricType: "cosine" }), /metric_type: expected "ip" or "l2", got "cosine"/);
    await assert.rejects(buildIndex(join(dir, "emb"), { saveOnDisk: false, indexPath: null, maxIndexMemoryUsage: "100" }), /max_index_memory_usage: expected a memory string like 16G or 512MB, got "100"/);
  });
});

// Keep the FAISS index wrapper referenced for `using` type-checking in both runtimes.
void Index;
void rows;
