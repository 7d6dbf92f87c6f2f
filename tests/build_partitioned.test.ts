/**
 * build_partitioned_indexes on one machine: Python AutoFaiss's own test (partitions of 1, 2 and 3 rows,
 * threshold 3, 2 splits) and a realistic one with a pre-trained index, checked with python3-faiss.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parquetReadObjects } from "hyparquet";
import { Index } from "../ffi/faiss.ts";
import type { IndexInfos } from "../lib/commands/build_index.ts";
import { buildPartitionedIndexes, type ChildBuild } from "../lib/commands/build_partitioned_indexes.ts";
import { searchIndex } from "../lib/commands/search.ts";
import { writeNpy } from "../lib/io/npy_writer.ts";
import { FileSource } from "../lib/io/source.ts";
import { admits, concurrentBuilds, partitionName, partitionReservation, planPartitions, threadsPerBuild } from "../lib/plan/partitions.ts";
import { rowsOf, writeParquet } from "./fixtures/io/parquet.ts";
import { runCli } from "./helpers/cli.ts";
import { bruteForce, clusteredData } from "./helpers/data.ts";
import { assertPythonFaiss, pythonPartIds } from "./helpers/python_oracle.ts";

let dir = "";
const at = (...p: string[]) => join(dir, ...p);

async function idsOf(folder: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const f of readdirSync(folder).sort()) {
    const src = await FileSource.open(join(folder, f));
    try {
      out.push(...(await parquetReadObjects({ file: src })).map((r) => r.id));
    } finally {
      await src.close();
    }
  }
  return out;
}

before(() => {
  assertPythonFaiss();
  dir = mkdtempSync(join(tmpdir(), "autofaiss-partitioned-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("plan", () => {
  test("partition names and output paths; big partitions first, then small, each in input order", () => {
    assert.equal(partitionName("s3://bucket/emb/partnerId=123/"), "partnerId=123");
    assert.equal(partitionName("emb/a"), "a");
    const jobs = planPartitions(
      [{ partition: "p/a", rows: 1, dim: 4 }, { partition: "p/b", rows: 3, dim: 4 }, { partition: "p/c", rows: 2, dim: 4 }, { partition: "p/d", rows: 9, dim: 4 }],
      "out/",
      3,
      2,
    );
    assert.deepEqual(jobs.map((j) => [j.name, j.big, j.parts]), [["b", true, 2], ["d", true, 2], ["a", false, 1], ["c", false, 1]]);
    assert.deepEqual(jobs[0].indexFiles, ["out/b/knn.index01", "out/b/knn.index02"]);
    assert.deepEqual([jobs[2].indexFiles, jobs[2].infosPath, jobs[2].idsPath], [["out/a/knn.index"], "out/a/index_infos.json", "out/a/ids"]);
  });
});

describe("sharing the machine between concurrent small-partition builds", () => {
  test("builds at once: bounded by cores, maximum_nb_threads and the partitions; threads shared evenly", () => {
    assert.equal(concurrentBuilds(2, 256, 5), 2);
    assert.equal(concurrentBuilds(8, 3, 5), 3);
    assert.equal(concurrentBuilds(8, 256, 2), 2);
    assert.equal(concurrentBuilds(1, 256, 0), 1);
    assert.equal(threadsPerBuild(8, 3), 2);
    assert.equal(threadsPerBuild(2, 2), 1);
    assert.equal(threadsPerBuild(1, 4), 1);
  });

  test("reservation: build memory + 256 MiB of batch room, at most the budget; admission keeps the sum within the budget", () => {
    const MiB = 2 ** 20;
    assert.equal(partitionReservation(10 * MiB, 1024 * MiB), 266 * MiB);
    assert.equal(partitionReservation(900 * MiB, 1024 * MiB), 1024 * MiB);
    const budget = 600 * MiB;
    // nothing running: always starts, even a reservation of the whole budget
    assert.equal(admits({ running: 0, reserved: 0, slots: 2, reservation: budget, currentMemoryAvailable: budget }), true);
    assert.equal(admits({ running: 1, reserved: 300 * MiB, slots: 2, reservation: 300 * MiB, currentMemoryAvailable: budget }), true);
    assert.equal(admits({ running: 1, reserved: 300 * MiB, slots: 2, reservation: 300 * MiB + 1, currentMemoryAvailable: budget }), false);
    // no free slot
    assert.equal(admits({ running: 2, reserved: 2, slots: 2, reservation: 1, currentMemoryAvailable: budget }), false);
  });
});

describe("build_partitioned_indexes", () => {
  test("Python AutoFaiss's test: partitions of 1, 2 and 3 rows, threshold 3, 2 splits, memory-mappable, d=3, ids in input order", async () => {
    const sizes = { "partnerId=123": 1, "partnerId=44": 2, "partnerId=22": 3 } as Record<string, number>;
    let next = 0;
    const idsIn: Record<string, bigint[]> = {};
    for (const [name, n] of Object.entries(sizes)) {
      mkdirSync(at("emb", name), { recursive: true });
      const vectors = Float32Array.from({ length: n * 3 }, (_, i) => ((i * 7919 + next * 31) % 13) - 6);
      idsIn[name] = Array.from({ length: n }, (_, i) => BigInt(100 * (next + 1) + i));
      writeParquet(at("emb", name, "0.parquet"), { vectors: rowsOf(vectors, 3), extra: [{ name: "id", data: idsIn[name], type: "INT64" }] });
      next++;
    }
    const partitions = Object.keys(sizes).map((name) => at("emb", name));
    const infos = await buildPartitionedIndexes(partitions, {
      outputRootDir: at("out"), idColumns: ["id"], bigIndexThreshold: 3, nbSplitsPerBigIndex: 2, shouldBeMemoryMappable: true,
      metricType: "l2", maxIndexMemoryUsage: "1G", currentMemoryAvailable: "2G",
    });
    assert.equal(infos.length, 3);
    // big first: partnerId=22 as two parts, then the small ones in input order
    const big = infos[0] as Record<string, IndexInfos>;
    assert.deepEqual(Object.keys(big), [at("out", "partnerId=22", "knn.index01"), at("out", "partnerId=22", "knn.index02")]);
    assert.deepEqual(Object.values(big).map((i) => i["nb vectors"]), [2, 1]);
    assert.deepEqual([(infos[1] as IndexInfos).index_path, (infos[2] as IndexInfos).index_path], [
      at("out", "partnerId=123", "knn.index"), at("out", "partnerId=44", "knn.index"),
    ]);
    for (const [name, n] of Object.entries(sizes)) {
      const files = n === 3 ? [at("out", name, "knn.index01"), at("out", name, "knn.index02")] : [at("out", name, "knn.index")];
      const py = pythonPartIds(files);
      assert.equal(py.reduce((s, p) => s + p.ntotal, 0), n, name);
      assert.deepEqual(py.flatMap((p) => p.ids), Array.from({ length: n }, (_, i) => i), name);
      assert.deepEqual(await idsOf(at("out", name, "ids")), idsIn[name], `${name} ids`);
    }
    assert.ok(existsSync(at("out", "partnerId=22", "index_infos.json02")));
  });

  test("realistic: npy partitions, a pre-trained IVF16,Flat reused by all, one big partition split in 2; exact search with every list probed", async () => {
    const d = 16;
    const trainData = clusteredData(2000, d, 10, 40);
    const trainedPath = at("trained.index");
    {
      using trained = Index.factory(d, "IVF16,Flat", "l2");
      trained.train(trainData);
      trained.write(trainedPath);
    }
    const sizes = [1200, 3500, 800];
    const data = sizes.map((n, i) => clusteredData(n, d, 10, 41 + i));
    const partitions = sizes.map((_, i) => at("npy", `part=${i}`));
    data.forEach((x, i) => {
      mkdirSync(partitions[i], { recursive: true });
      writeNpy(join(partitions[i], "0.npy"), x, d);
    });
    const infos = await buildPartitionedIndexes(partitions, {
      outputRootDir: at("npy-out"), fileFormat: "npy", indexKey: "IVF16,Flat", indexPath: trainedPath, indexParam: "nprobe=16",
      bigIndexThreshold: 3000, nbSplitsPerBigIndex: 2, metricType: "l2", maxIndexMemoryUsage: "1G", currentMemoryAvailable: "2G",
    });
    assert.deepEqual(infos.map((i) => Object.keys(i).includes("index_key") ? "one" : "parts"), ["parts", "one", "one"]);
    const sha = pythonPartIds([trainedPath])[0].centroids_sha;
    const queries = clusteredData(20, d, 10, 50);
    for (const [i, p] of partitions.entries()) {
      const base = at("npy-out", `part=${i}`, "knn.index");
      const files = i === 1 ? [`${base}01`, `${base}02`] : [base];
      const py = pythonPartIds(files);
      assert.ok(py.every((f) => f.centroids_sha === sha), `${p}: not the pre-trained centroids`);
      assert.deepEqual(py.flatMap((f) => f.ids), Array.from({ length: sizes[i] }, (_, j) => j));
      const truth = bruteForce(data[i], queries, d, 5, "l2").labels;
      const lines: string[] = [];
      writeNpy(at("q.npy"), queries, d);
      await searchIndex({ indexPath: base, queries: at("q.npy"), k: 5, write: (l) => lines.push(l) });
      const found = lines.map((l) => JSON.parse(l).ids as number[]);
      let hits = 0;
      found.forEach((row, q) => (hits += row.filter((id) => truth[q].includes(id)).length));
      // all 16 lists probed: exact search up to float rounding ties
      assert.ok(hits >= 0.99 * 20 * 5, `${p}: ${hits} of 100 true neighbours`);
    }
  });

  test("small partitions are built at once in child processes: two builds overlap in time, each with cores / 2 threads", async () => {
    const d = 16;
    const partitions = [0, 1].map((i) => at("conc", `part=${i}`));
    partitions.forEach((p, i) => {
      mkdirSync(p, { recursive: true });
      writeNpy(join(p, "0.npy"), clusteredData(3000, d, 10, 60 + i), d);
    });
    const runs: ChildBuild[] = [];
    const infos = await buildPartitionedIndexes(partitions, {
      outputRootDir: at("conc-out"), fileFormat: "npy", indexKey: "IVF16,Flat", metricType: "l2", nbCores: 2,
      maxIndexMemoryUsage: "1G", currentMemoryAvailable: "4G", onChildBuild: (r) => runs.push(r),
    });
    assert.deepEqual(infos.map((i) => (i as IndexInfos)["nb vectors"]), [3000, 3000]);
    assert.deepEqual(runs.map((r) => r.partition).sort(), partitions);
    assert.equal(new Set(runs.map((r) => r.pid)).size, 2);
    assert.ok(runs.every((r) => r.pid !== process.pid && r.threads === 1));
    const [a, b] = runs;
    assert.ok(a.startMs < b.endMs && b.startMs < a.endMs, `builds did not overlap: ${JSON.stringify(runs)}`);
    for (const p of partitions) {
      using index = Index.read(join(at("conc-out"), p.split("/").at(-1)!, "knn.index"));
      assert.equal(index.ntotal, 3000);
    }
  });

  test("a memory budget that admits one build at a time: the child builds run one after another", async () => {
    const partitions = [0, 1].map((i) => at("conc", `part=${i}`)); // written by the previous test
    const runs: ChildBuild[] = [];
    // each reservation is the partition's build memory (under 1 MB here) + 256 MiB of batch room:
    // one fits in 400 MiB, two do not
    await buildPartitionedIndexes(partitions, {
      outputRootDir: at("seq-out"), fileFormat: "npy", indexKey: "IVF16,Flat", metricType: "l2", nbCores: 2,
      maxIndexMemoryUsage: "100M", currentMemoryAvailable: "400M", onChildBuild: (r) => runs.push(r),
    });
    assert.equal(runs.length, 2);
    assert.ok(runs.every((r) => r.reservation > 256 * 2 ** 20 && r.reservation < 257 * 2 ** 20), JSON.stringify(runs));
    const [first, second] = runs.sort((x, y) => x.startMs - y.startMs);
    assert.ok(second.startMs >= first.endMs, `builds overlapped: ${JSON.stringify(runs)}`);
  });

  test("through the CLI with --nb_cores=1 (one build at a time, in this process): the list of infos as JSON on stdout", async () => {
    const partitions = [0, 1].map((i) => at("conc", `part=${i}`)); // written by the tests above
    const r = await runCli(
      "build_partitioned_indexes", `[${partitions.join(",")}]`, at("cli-out"), "--file_format=npy", "--index_key=IVF4,Flat",
      "--metric_type=l2", "--nb_cores=1", "--max_index_memory_usage=100M", "--current_memory_available=1G",
    );
    assert.equal(r.code, 0, r.err);
    const infos = JSON.parse(r.out) as IndexInfos[];
    assert.deepEqual(infos.map((i) => [i.index_path, i.index_key, i["nb vectors"]]), [
      [at("cli-out", "part=0", "knn.index"), "IVF4,Flat", 3000],
      [at("cli-out", "part=1", "knn.index"), "IVF4,Flat", 3000],
    ]);
  });

  test("validation errors are one line, before any build", async () => {
    const cases: Array<[Parameters<typeof buildPartitionedIndexes>[1], string[], string]> = [
      [{ outputRootDir: at("v") }, [], "partitions: expected a non-empty list of partition folders"],
      [{ outputRootDir: "" }, ["a"], 'output_root_dir can\'t be None or empty; Got ""'],
      [{ outputRootDir: at("v"), embeddingColumnName: "" }, ["a"], 'embedding_column_name can\'t be None or empty; Got ""'],
      [{ outputRootDir: at("v"), nbSplitsPerBigIndex: 0 }, ["a"], "nb_splits_per_big_index: expected an integer >= 1, got 0"],
      [{ outputRootDir: at("v"), bigIndexThreshold: 0 }, ["a"], "big_index_threshold: expected an integer >= 1, got 0"],
      [{ outputRootDir: at("v"), maximumNbThreads: 0 }, ["a"], "maximum_nb_threads: expected an integer >= 1, got 0"],
      [{ outputRootDir: at("v"), indexPath: "t.index" }, ["a"], "index_path: a pre-trained index needs index_key (its factory string) too"],
      [{ outputRootDir: at("v") }, ["x/a", "y/a/"], 'partitions: x/a and y/a/ both end in "a" (each partition\'s output folder is named by its last path component)'],
    ];
    for (const [o, partitions, message] of cases) await assert.rejects(buildPartitionedIndexes(partitions, o), { name: "BuildError", message });
    await assert.rejects(
      buildPartitionedIndexes([at("npy", "part=0")], { outputRootDir: at("v"), fileFormat: "npy", indexKey: "IVF16,Bogus" }),
      /could not parse|Bogus/,
    );
    assert.equal(existsSync(at("v")), false);
    // a pre-trained index that does not fit the data is named with what is wrong
    {
      using wrongDim = Index.factory(8, "IVF2,Flat", "l2");
      wrongDim.train(clusteredData(100, 8, 2, 1));
      wrongDim.write(at("wrong-dim.index"));
    }
    await assert.rejects(
      buildPartitionedIndexes([at("npy", "part=0")], {
        outputRootDir: at("v"), fileFormat: "npy", indexKey: "IVF2,Flat", indexPath: at("wrong-dim.index"), metricType: "l2",
        maxIndexMemoryUsage: "1G", currentMemoryAvailable: "2G",
      }),
      { name: "BuildError", message: `index_path: ${at("wrong-dim.index")}: the pre-trained index has dimension 8, the embeddings 16` },
    );
    const r = await runCli("build_partitioned_indexes", "[p]", "out", "--index_path=t.index");
    assert.deepEqual([r.code, r.err], [1, "autofaiss build_partitioned_indexes: error: index_path: a pre-trained index needs index_key (its factory string) too\n"]);
  });
});
