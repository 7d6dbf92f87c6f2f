/**
 * The build plan (lib/plan/build_plan.ts) and `build_index --dry_run`. Expected values are worked
 * out by hand from the rules in the comments, not by the functions under test.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { BuildError, type BuildSettings, planBuild } from "../lib/plan/build_plan.ts";
import { writeNpy } from "../lib/io/npy_writer.ts";
import { Index } from "../ffi/faiss.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

const SETTINGS: BuildSettings = {
  indexPath: "/out/knn.index",
  indexInfosPath: "/out/index_infos.json",
  idsPath: null,
  saveOnDisk: true,
  indexKey: "IVF16,Flat",
  indexParam: null,
  maxIndexQueryTimeMs: 10,
  maxIndexMemoryUsage: "100M",
  maxIndexMemoryUsageGiven: true,
  minNearestNeighborsToRetrieve: 20,
  currentMemoryAvailable: "1G",
  useGpu: false,
  metricType: "L2",
  nbCores: 2,
  makeDirectMap: false,
  shouldBeMemoryMappable: false,
  distributed: null,
  nbIndicesToKeep: 1,
  trainSeed: 7,
  trainedIndexPath: null,
};

describe("planBuild", () => {
  test("IVF16,Flat on 2000 × 16: training, batch and add-call sizes", () => {
    const plan = planBuild(SETTINGS, { count: 2000, dimension: 16 });
    assert.equal(plan.indexKey, "IVF16,Flat");
    assert.equal(plan.indexKeySource, "index_key");
    assert.equal(plan.metricType, "l2");
    assert.equal(plan.threads, 2);
    assert.equal(plan.memory.currentMemoryAvailable, 1073741824); // 1 GiB
    assert.equal(plan.memory.maxIndexMemoryUsage, 104857600); // 100 MiB
    assert.equal(plan.memory.maxIndexMemoryUsageLowered, false);
    // 100 training points per IVF cluster, memory is plentiful: 16 × 100 rows of 16 float32
    assert.deepEqual(plan.training, { needed: true, vectors: 1600, bytes: 102400, seed: 7 });
    // Python's batch: min(memory for adding, 1e9 bytes) / (4 × 16) = 15,625,000 rows; read as two halves;
    // FAISS add calls of 64 MiB / 64 bytes = 1,048,576 rows
    assert.deepEqual(plan.adding, { batchSize: 15625000, readBatchRows: 7812500, addCallRows: 1048576 });
    assert.deepEqual(plan.outputs, { saveOnDisk: true, indexPath: "/out/knn.index", indexInfosPath: "/out/index_infos.json", idsPath: null });
    assert.deepEqual(plan.tuning, { maxIndexQueryTimeMs: 10, minNearestNeighborsToRetrieve: 20 });
    assert.equal(plan.decisions[0], "There are 2000 embeddings of dim 16");
    assert.equal(plan.decisions.at(-1), "Using a batch size of 15625000 (memory overhead 953.7MB)");
    assert.ok(plan.decisions.includes("Will use 1600 vectors to train the index, that will use 100.0KB of memory"));
  });

  test("an index budget left at its default is lowered to 90% of the RAM budget", () => {
    const plan = planBuild({ ...SETTINGS, maxIndexMemoryUsage: "32GB", maxIndexMemoryUsageGiven: false }, { count: 2000, dimension: 16 });
    assert.equal(plan.memory.maxIndexMemoryUsage, 966367641); // floor(0.9 × 2^30)
    assert.equal(plan.memory.maxIndexMemoryUsageLowered, true);
    assert.equal(plan.decisions[0], "max_index_memory_usage defaults to 921.6MB (90% of current_memory_available)");
  });

  test("a key that needs no training plans none", () => {
    const plan = planBuild({ ...SETTINGS, indexKey: "HNSW32" }, { count: 2000, dimension: 16 });
    assert.deepEqual(plan.training, { needed: false, vectors: null, bytes: null, seed: 7 });
    assert.ok(plan.decisions.includes("The index needs no training"));
  });

  test("nb_indices_to_keep=3: three parts with contiguous rows and README names, IVF only, headroom rule skipped", () => {
    // 1G of 1G would fail the 10% headroom rule for one index; N parts skip it (Python does too)
    const s = { ...SETTINGS, nbIndicesToKeep: 3, indexKey: null, maxIndexMemoryUsage: "1G" };
    const plan = planBuild(s, { count: 2000, dimension: 16 });
    assert.deepEqual(plan.parts, [
      { indexPath: "/out/knn.index01", indexInfosPath: "/out/index_infos.json01", rows: { start: 0, end: 667 } },
      { indexPath: "/out/knn.index02", indexInfosPath: "/out/index_infos.json02", rows: { start: 667, end: 1334 } },
      { indexPath: "/out/knn.index03", indexInfosPath: "/out/index_infos.json03", rows: { start: 1334, end: 2000 } },
    ]);
    // parts hold global ids (add_with_ids): the key is an IVF one even where HNSW or Flat would be chosen
    assert.match(plan.indexKey, /IVF/);
    assert.equal(planBuild({ ...s, nbIndicesToKeep: 1, maxIndexMemoryUsage: "100M" }, { count: 2000, dimension: 16 }).indexKey.includes("IVF"), false);
    assert.deepEqual(plan.decisions.slice(-3), [
      "Part 1 of 3: rows [0, 667) -> /out/knn.index01",
      "Part 2 of 3: rows [667, 1334) -> /out/knn.index02",
      "Part 3 of 3: rows [1334, 2000) -> /out/knn.index03",
    ]);
    // the pre-check counts the largest part: less memory than one index of the same rows
    const one = planBuild({ ...SETTINGS, indexKey: "IVF16,Flat" }, { count: 1_000_000, dimension: 16 });
    const four = planBuild({ ...SETTINGS, indexKey: "IVF16,Flat", nbIndicesToKeep: 4 }, { count: 1_000_000, dimension: 16 });
    assert.ok(four.memory.neededToBuild < one.memory.neededToBuild, `${four.memory.neededToBuild} < ${one.memory.neededToBuild}`);
    // never more parts than vectors
    const capped = planBuild({ ...SETTINGS, nbIndicesToKeep: 8 }, { count: 3, dimension: 16 });
    assert.deepEqual(capped.parts.map((p) => p.indexPath), ["/out/knn.index01", "/out/knn.index02", "/out/knn.index03"]);
    assert.ok(capped.decisions.includes("nb_indices_to_keep=8 but there are only 3 vectors: writing 3 parts"));
    // one index: one part, the index itself
    assert.deepEqual(planBuild(SETTINGS, { count: 2000, dimension: 16 }).parts, [
      { indexPath: "/out/knn.index", indexInfosPath: "/out/index_infos.json", rows: { start: 0, end: 2000 } },
    ]);
  });

  test("refusals are BuildErrors with the build's messages", () => {
    const data = { count: 2000, dimension: 16 };
    assert.throws(() => planBuild({ ...SETTINGS, metricType: "cosine" }, data), {
      name: "BuildError",
      message: 'metric_type: expected "ip" or "l2", got "cosine"',
    });
    assert.throws(() => planBuild({ ...SETTINGS, maxIndexMemoryUsage: "1G" }, data), {
      name: "BuildError",
      message: "You do not have enough memory to build this index, please increase current_memory_available or decrease " +
        "max_index_memory_usage (max_index_memory_usage=1.0GB must leave 10% of current_memory_available=1.0GB free)",
    });
    assert.throws(() => planBuild({ ...SETTINGS, nbIndicesToKeep: 0 }, data), { message: "nb_indices_to_keep: expected an integer >= 1, got 0" });
    assert.throws(() => planBuild({ ...SETTINGS, nbIndicesToKeep: 2, saveOnDisk: false }, data), {
      message: "nb_indices_to_keep=2 writes 2 index files: save_on_disk must be true",
    });
    assert.throws(() => planBuild({ ...SETTINGS, indexPath: null }, data), {
      message: "index_path and index_infos_path are required when save_on_disk is true",
    });
    assert.throws(
      () => planBuild({ ...SETTINGS, indexKey: null, maxIndexMemoryUsage: "100K" }, { count: 12000, dimension: 16 }),
      (e: unknown) =>
        e instanceof BuildError &&
        /^selection: no index fits max_index_memory_usage=100\.0KB for 12000×16 vectors; the smallest budget that works is [\d.]+KB \(\d+B\)$/
          .test(e.message),
    );
  });
});

/** Runs `main.ts build_index <args> --dry_run` under the current runtime. */
function dryRun(args: string[], env: Record<string, string> = {}) {
  const argv = ["main.ts", "build_index", ...args, "--dry_run"];
  const isDeno = "Deno" in globalThis;
  return spawnSync(process.execPath, isDeno ? ["run", "-A", ...argv] : argv, { cwd: ROOT, encoding: "utf8", env: { ...process.env, ...env } });
}

describe("build_index --dry_run", () => {
  let dir = "";
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "autofaiss-dry-run-"));
    // Every value is NaN: reading any row would fail the NaN check, so success means only the
    // header was read.
    writeNpy(join(dir, "emb", "a.npy"), new Float32Array(2000 * 16).fill(NaN), 16);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("a selected key: prints the plan as JSON and exits 0, without FAISS, training data or writes", () => {
    const out = join(dir, "out");
    // AUTOFAISS_FAISS_LIB points nowhere: loading FAISS would fail.
    const r = dryRun(
      [join(dir, "emb"), `--index_path=${join(out, "knn.index")}`, `--index_infos_path=${join(out, "infos.json")}`,
        "--current_memory_available=1G", "--max_index_memory_usage=100M", "--metric_type=l2"],
      { AUTOFAISS_FAISS_LIB: join(dir, "no-such-libfaiss_c.so") },
    );
    assert.equal(r.stderr, "");
    assert.equal(r.status, 0);
    const plan = JSON.parse(r.stdout);
    // below 10,000 vectors the selection's first candidate is HNSW15 (Python's rule); it needs no training
    assert.equal(plan.indexKey, "HNSW15");
    assert.equal(plan.indexKeySource, "selected");
    assert.equal(plan.vectors, 2000);
    assert.equal(plan.dimension, 16);
    assert.deepEqual(plan.training, { needed: false, vectors: null, bytes: null, seed: 0 });
    assert.equal(plan.memory.estimatedIndexSizeSource, "formula");
    assert.equal(plan.outputs.indexPath, join(out, "knn.index"));
    assert.equal(existsSync(out), false, "the output folder was created");
  });

  test("--selection=measured: the dry run says the build may choose another key than the heuristic one shown", () => {
    const r = dryRun([join(dir, "emb"), "--nosave_on_disk", "--max_index_memory_usage=100M", "--metric_type=l2", "--selection=measured"],
      { AUTOFAISS_FAISS_LIB: join(dir, "no-such-libfaiss_c.so") });
    assert.equal(r.status, 0, r.stderr);
    const plan = JSON.parse(r.stdout);
    assert.equal(plan.indexKey, "HNSW15");
    assert.equal(
      plan.decisions.at(-1),
      "selection=measured: the build measures candidates on a sample and may choose another key than HNSW15, the heuristic one shown here",
    );
  });

  test("a given key is checked by FAISS, without training data or writes", () => {
    const out = join(dir, "out");
    const r = dryRun([
      join(dir, "emb"), `--index_path=${join(out, "knn.index")}`, `--index_infos_path=${join(out, "infos.json")}`,
      "--index_key=IVF16,Flat", "--current_memory_available=1G", "--max_index_memory_usage=100M", "--metric_type=l2",
    ]);
    assert.equal(r.stderr, "");
    assert.equal(r.status, 0);
    const plan = JSON.parse(r.stdout);
    assert.equal(plan.indexKey, "IVF16,Flat");
    assert.deepEqual(plan.training, { needed: true, vectors: 1600, bytes: 102400, seed: 0 });
    assert.deepEqual(plan.adding, { batchSize: 15625000, readBatchRows: 7812500, addCallRows: 1048576 });
    assert.equal(existsSync(out), false, "the output folder was created");
  });

  test("a key FAISS rejects: one line naming the key and FAISS's message, exit 1", () => {
    const r = dryRun([join(dir, "emb"), "--index_key=PQ5", "--metric_type=l2", "--nosave_on_disk"]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      "autofaiss build_index: error: index_key \"PQ5\": FAISS 1.7.3 rejects it for d=16, metric l2: 'd % M == 0' failed: The dimension of the vector (d) should be a multiple of the number of subquantizers (M)\n",
    );
  });

  test("a family without a size formula: the estimate is measured (LSH is linear in n: exact)", () => {
    const r = dryRun([join(dir, "emb"), "--index_key=LSH", "--metric_type=l2", "--nosave_on_disk"]);
    assert.equal(r.stderr, "");
    assert.equal(r.status, 0);
    const plan = JSON.parse(r.stdout);
    assert.equal(plan.memory.estimatedIndexSizeSource, "measured");
    // the oracle: a real LSH index over 2000 vectors of dim 16, serialized
    using lsh = Index.factory(16, "LSH", "l2");
    lsh.add(new Float32Array(2000 * 16).map((_, i) => Math.sin(i)));
    assert.equal(plan.memory.estimatedIndexSize, lsh.serializedSize());
  });

  test("--nb_indices_to_keep: the plan lists the parts and their row ranges", () => {
    const out = join(dir, "out");
    const r = dryRun(
      [join(dir, "emb"), `--index_path=${join(out, "knn.index")}`, `--index_infos_path=${join(out, "infos.json")}`,
        "--index_key=IVF16,Flat", "--current_memory_available=1G", "--max_index_memory_usage=100M", "--metric_type=l2",
        "--nb_indices_to_keep=2"],
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).parts, [
      { indexPath: join(out, "knn.index01"), indexInfosPath: join(out, "infos.json01"), rows: { start: 0, end: 1000 } },
      { indexPath: join(out, "knn.index02"), indexInfosPath: join(out, "infos.json02"), rows: { start: 1000, end: 2000 } },
    ]);
    assert.equal(existsSync(out), false, "the output folder was created");
  });
});
