/**
 * The three phases of a distributed build (plan_build, add_shard, merge_shards) on a local folder:
 * same neighbours as one index filled in a single add from the same trained index, and the faults
 * of issue 14 (re-runs, duplicates, a task killed before publishing, missing/foreign/damaged shards).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Index } from "../ffi/faiss.ts";
import { addShard, KILL_BEFORE_PUBLISH_ENV } from "../lib/commands/add_shard.ts";
import { buildIndex } from "../lib/commands/build_index.ts";
import { mergeShards } from "../lib/commands/merge_shards.ts";
import { planDistributedBuild } from "../lib/commands/plan_build.ts";
import { searchIndex } from "../lib/commands/search.ts";
import { silentReporter } from "../lib/reporter.ts";
import { writeNpy } from "../lib/io/npy_writer.ts";
import { parquetReadObjects } from "hyparquet";
import { clusteredData } from "./helpers/data.ts";
import { rowsOf, writeParquet } from "./fixtures/io/parquet.ts";
import { runCli } from "./helpers/cli.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const d = 16;
const SIZES = [3000, 4000, 2000];
const N = SIZES.reduce((a, b) => a + b, 0);
const KEY = "IVF32,Flat";

describe("distributed phases on a local folder", () => {
  let dir = "";
  let emb = "";
  const all = clusteredData(N, d, 20, 5);
  const queries = clusteredData(40, d, 20, 6);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "autofaiss-dist-"));
    emb = join(dir, "emb");
    let off = 0;
    SIZES.forEach((n, i) => {
      writeNpy(join(emb, `part-${i}.npy`), all.subarray(off * d, (off + n) * d), d);
      off += n;
    });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A plan of 3 shards in a fresh T; returns T and the output paths. */
  async function planned(name: string, extra: Record<string, unknown> = {}) {
    const t = join(dir, name, "T");
    const out = join(dir, name, "out");
    const { plan, reused } = await planDistributedBuild(emb, {
      temporaryIndicesFolder: t, indexKey: KEY, metricType: "l2", nbShards: 3,
      indexPath: join(out, "knn.index"), indexInfosPath: join(out, "index_infos.json"), ...extra,
    });
    return { t, out, plan, reused };
  }

  test("CLI: plan_build prints S, add_shard by --shard and by JOB_COMPLETION_INDEX, merge_shards; same neighbours as one add", async () => {
    const t = join(dir, "cli", "T");
    const out = join(dir, "cli", "out");
    const planned = await runCli("plan_build", emb, `--index_path=${join(out, "knn.index")}`, `--index_infos_path=${join(out, "index_infos.json")}`,
      `--index_key=${KEY}`, "--metric_type=l2", "--nb_shards=3", `--temporary_indices_folder=${t}`);
    assert.equal(planned.err, "");
    assert.equal(planned.code, 0);
    assert.equal(planned.out, "3\n");
    assert.deepEqual(readdirSync(t).sort(), ["plan.json", "trained.index"]);
    const plan = JSON.parse(readFileSync(join(t, "plan.json"), "utf8"));
    assert.deepEqual(plan.shards, [{ start: 0, end: 3000 }, { start: 3000, end: 6000 }, { start: 6000, end: 9000 }]);
    assert.deepEqual(plan.inputs.files.map((f: { rows: number; startRow: number }) => [f.rows, f.startRow]), [[3000, 0], [4000, 3000], [2000, 7000]]);
    assert.equal(plan.indexKey, KEY);
    // The reference: the same trained index filled by one sequential add (what a local build does).
    const reference = Index.read(join(t, "trained.index"));

    assert.equal((await runCli("add_shard", `--temporary_indices_folder=${t}`, "--shard=0")).code, 0);
    assert.equal((await runCli("add_shard", `--temporary_indices_folder=${t}`, "--shard=2")).code, 0);
    process.env.JOB_COMPLETION_INDEX = "1";
    try {
      const viaEnv = await runCli("add_shard", `--temporary_indices_folder=${t}`);
      assert.equal(viaEnv.code, 0, viaEnv.err);
      assert.ok(viaEnv.logs.some((l) => l.endsWith("Shard 1 of 3 (from JOB_COMPLETION_INDEX): rows [3000, 6000)")), viaEnv.logs.join("\n"));
    } finally {
      delete process.env.JOB_COMPLETION_INDEX;
    }
    assert.deepEqual(readdirSync(join(t, "shards")).sort(), [
      "shard-0000.done", "shard-0000.index", "shard-0001.done", "shard-0001.index", "shard-0002.done", "shard-0002.index",
    ]);
    const merged = await runCli("merge_shards", `--temporary_indices_folder=${t}`);
    assert.equal(merged.code, 0, merged.err);
    assert.deepEqual(readdirSync(out).sort(), ["index_infos.json", "knn.index"]);
    assert.deepEqual(readdirSync(t), ["merged.json"], "T keeps only the merged marker");
    const infos = JSON.parse(readFileSync(join(out, "index_infos.json"), "utf8"));
    assert.equal(infos.index_key, KEY);
    assert.equal(infos["nb vectors"], N);
    assert.equal(infos.index_path, join(out, "knn.index"));

    const built = Index.read(join(out, "knn.index"));
    try {
      reference.add(all);
      for (const idx of [built, reference]) idx.ivf()!.nprobe = 8;
      const a = built.search(queries, 10);
      const b = reference.search(queries, 10);
      assert.deepEqual(a.labels, b.labels);
      assert.deepEqual(a.distances, b.distances);
      assert.equal(built.ntotal, N);
    } finally {
      built.free();
      reference.free();
    }
    // A finished merge re-run is a no-op.
    const again = await runCli("merge_shards", `--temporary_indices_folder=${t}`);
    assert.equal(again.code, 0, again.err);
    assert.ok(again.logs.some((l) => l.includes("was already merged into")), again.logs.join("\n"));
    // A new plan in the same folder is not mistaken for the merged one.
    const replanned = await runCli("plan_build", emb, `--index_path=${join(out, "knn.index")}`, `--index_infos_path=${join(out, "index_infos.json")}`,
      `--index_key=${KEY}`, "--metric_type=l2", "--nb_shards=1", `--temporary_indices_folder=${t}`);
    assert.equal(replanned.code, 0, replanned.err);
    assert.deepEqual(readdirSync(t).sort(), ["plan.json", "trained.index"]);
    await assert.rejects(mergeShards({ temporaryIndicesFolder: t }), {
      message: `merge_shards: ${t}: shards not done: 0 of 1 (no shards/shard-0000.done); run add_shard for them`,
    });
  });

  test("re-running plan_build or a done add_shard is a no-op; other options in the same folder are refused", async () => {
    const first = await planned("rerun");
    assert.equal(first.reused, false);
    const trainedMtime = statSync(join(first.t, "trained.index")).mtimeMs;
    const second = await planned("rerun");
    assert.equal(second.reused, true);
    assert.equal(second.plan.hash, first.plan.hash);
    assert.equal(statSync(join(first.t, "trained.index")).mtimeMs, trainedMtime);
    await assert.rejects(planned("rerun", { maxIndexQueryTimeMs: 5 }), {
      message: `temporary_indices_folder: ${join(first.t, "plan.json")} is the plan of another build (hash ${first.plan.hash.slice(0, 12)}…: other inputs or options); remove ${first.t} or choose another folder`,
    });

    const done = await addShard({ temporaryIndicesFolder: first.t, shard: 1 });
    assert.equal(done.skipped, false);
    const indexMtime = statSync(join(first.t, "shards", "shard-0001.index")).mtimeMs;
    const redo = await addShard({ temporaryIndicesFolder: first.t, shard: 1 });
    assert.equal(redo.skipped, true);
    assert.deepEqual(redo.done, done.done);
    assert.equal(statSync(join(first.t, "shards", "shard-0001.index")).mtimeMs, indexMtime);
  });

  test("a shard run twice (its marker lost) leaves one copy of its ids; the merge holds every id once", async () => {
    const { t, out } = await planned("twice");
    for (const shard of [0, 1, 2]) await addShard({ temporaryIndicesFolder: t, shard });
    rmSync(join(t, "shards", "shard-0002.done"));
    const again = await addShard({ temporaryIndicesFolder: t, shard: 2 });
    assert.equal(again.skipped, false);
    assert.deepEqual(readdirSync(join(t, "shards")).filter((n) => n.startsWith("shard-0002")).sort(), ["shard-0002.done", "shard-0002.index"]);
    const { index } = await mergeShards({ temporaryIndicesFolder: t });
    try {
      assert.equal(index!.ntotal, N);
      // Every id once: each vector's nearest neighbour among N distinct ids is itself.
      index!.ivf()!.nprobe = 32;
      const probe = all.subarray(6000 * d, 6010 * d);
      const { labels } = index!.search(probe, 1);
      assert.deepEqual([...labels], Array.from({ length: 10 }, (_, i) => BigInt(6000 + i)));
    } finally {
      index?.free();
    }
    assert.ok(existsSync(join(out, "knn.index")));
  });

  test("a task killed after staging its index publishes nothing visible; merge names the shard; a retry completes it", async () => {
    const { t } = await planned("killed");
    await addShard({ temporaryIndicesFolder: t, shard: 0 });
    await addShard({ temporaryIndicesFolder: t, shard: 2 });
    const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"
      ? [process.execPath, "main.ts"]
      : [process.execPath, "run", "-A", "main.ts"];
    const killed = spawnSync(runtime[0], [...runtime.slice(1), "add_shard", `--temporary_indices_folder=${t}`, "--shard=1"], {
      cwd: ROOT, env: { ...process.env, [KILL_BEFORE_PUBLISH_ENV]: "1" }, encoding: "utf8",
    });
    assert.equal(killed.signal, "SIGKILL", killed.stderr);
    const names = readdirSync(join(t, "shards")).sort();
    assert.deepEqual(names.filter((n) => !n.startsWith(".")), ["shard-0000.done", "shard-0000.index", "shard-0002.done", "shard-0002.index"]);
    assert.equal(names.filter((n) => n.startsWith(".shard-0001.index.tmp-")).length, 1, names.join(", "));
    await assert.rejects(mergeShards({ temporaryIndicesFolder: t }), {
      message: `merge_shards: ${t}: shards not done: 1 of 3 (no shards/shard-0001.done); run add_shard for them`,
    });
    assert.equal((await addShard({ temporaryIndicesFolder: t, shard: 1 })).skipped, false);
    const { index } = await mergeShards({ temporaryIndicesFolder: t });
    assert.equal(index!.ntotal, N);
    index!.free();
  });

  test("merge refuses a foreign shard file, a marker of another plan and a damaged shard, naming each", async () => {
    const a = await planned("foreign-a");
    const b = await planned("foreign-b", { maxIndexQueryTimeMs: 7 });
    for (const shard of [0, 1, 2]) {
      await addShard({ temporaryIndicesFolder: a.t, shard });
      await addShard({ temporaryIndicesFolder: b.t, shard });
    }
    writeFileSync(join(a.t, "shards", "shard-0003.index"), "x");
    await assert.rejects(mergeShards({ temporaryIndicesFolder: a.t }), {
      message: `merge_shards: ${a.t}: shards/shard-0003.index is not a shard of this plan (nb_shards=3: shard-0000 … shard-0002)`,
    });
    rmSync(join(a.t, "shards", "shard-0003.index"));

    copyFileSync(join(b.t, "shards", "shard-0001.done"), join(a.t, "shards", "shard-0001.done"));
    await assert.rejects(mergeShards({ temporaryIndicesFolder: a.t }), {
      message: `merge_shards: ${a.t}: shards/shard-0001.done belongs to another plan (plan hash ${b.plan.hash.slice(0, 12)}…, this plan ${a.plan.hash.slice(0, 12)}…): run add_shard again for shard 1`,
    });
    // add_shard sees the foreign marker and redoes the shard.
    assert.equal((await addShard({ temporaryIndicesFolder: a.t, shard: 1 })).skipped, false);

    const shard2 = join(a.t, "shards", "shard-0002.index");
    const bytes = readFileSync(shard2);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(shard2, bytes);
    await assert.rejects(mergeShards({ temporaryIndicesFolder: a.t }), (e: Error) =>
      /^merge_shards: shards\/shard-0002\.index: checksum [0-9a-f]{12}… \(\d+ bytes\) is not the one its done marker records \([0-9a-f]{12}…, \d+ bytes\): run add_shard --shard=2 again$/.test(e.message));
    assert.deepEqual(readdirSync(a.out), [], "nothing was published");
  });

  test("id_columns: one ids file per shard, a shard run twice leaves one copy, the mapping reads back in row order", async () => {
    const pq = join(dir, "pq");
    mkdirSync(pq);
    let off = 0;
    SIZES.forEach((n, i) => {
      writeParquet(join(pq, `part-${i}.parquet`), {
        vectors: rowsOf(all.subarray(off * d, (off + n) * d), d),
        extra: [{ name: "id", type: "STRING", data: Array.from({ length: n }, (_, k) => `doc-${off + k}`) }],
        rowGroupSize: 1000,
      });
      off += n;
    });
    const t = join(dir, "ids", "T");
    const idsPath = join(dir, "ids", "out", "ids");
    await planDistributedBuild(pq, {
      temporaryIndicesFolder: t, indexKey: KEY, metricType: "l2", nbShards: 3, fileFormat: "parquet", idColumns: ["id"], idsPath,
      indexPath: join(dir, "ids", "out", "knn.index"), indexInfosPath: join(dir, "ids", "out", "index_infos.json"),
    });
    for (const shard of [0, 1, 2]) await addShard({ temporaryIndicesFolder: t, shard });
    rmSync(join(t, "shards", "shard-0001.done"));
    assert.equal((await addShard({ temporaryIndicesFolder: t, shard: 1 })).skipped, false);
    assert.deepEqual(readdirSync(join(t, "shards")).filter((n) => n.includes(".ids.")).sort(), [
      "shard-0000.ids.parquet", "shard-0001.ids.parquet", "shard-0002.ids.parquet",
    ]);
    const { index } = await mergeShards({ temporaryIndicesFolder: t });
    index!.free();
    const files = readdirSync(idsPath).sort();
    assert.deepEqual(files.map((f) => f.slice(0, 13)), ["part-00000000", "part-00000001", "part-00000002"]);
    const rowsRead: Record<string, unknown>[] = [];
    for (const f of files) {
      const buf = readFileSync(join(idsPath, f));
      rowsRead.push(...await parquetReadObjects({ file: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) }));
    }
    assert.equal(rowsRead.length, N);
    rowsRead.forEach((r, i) => {
      assert.equal(Number(r.i), i);
      assert.equal(r.id, `doc-${i}`);
    });
  });

  test("nb_indices_to_keep=2: parts merged from whole shards (a two-stage merge for part 1) equal a local 2-part build from the same trained index", async () => {
    const t = join(dir, "nparts", "T");
    const out = join(dir, "nparts", "out");
    const { plan } = await planDistributedBuild(emb, {
      temporaryIndicesFolder: t, indexKey: KEY, metricType: "l2", nbShards: 5, nbIndicesToKeep: 2, indexParam: "nprobe=8",
      indexPath: join(out, "knn.index"), indexInfosPath: join(out, "index_infos.json"),
    });
    // Parts as a local 2-part build ([0,4500) [4500,9000)); 3 shards split part 1, 2 split part 2.
    assert.deepEqual(plan.parts.map((p) => [p.rows, p.shards, p.indexPath]), [
      [{ start: 0, end: 4500 }, { start: 0, end: 3 }, join(out, "knn.index01")],
      [{ start: 4500, end: 9000 }, { start: 3, end: 5 }, join(out, "knn.index02")],
    ]);
    assert.deepEqual(plan.shards, [
      { start: 0, end: 1500 }, { start: 1500, end: 3000 }, { start: 3000, end: 4500 }, { start: 4500, end: 6750 }, { start: 6750, end: 9000 },
    ]);
    const trained = join(dir, "nparts", "trained.index");
    copyFileSync(join(t, "trained.index"), trained);
    for (const shard of [0, 1, 2, 3, 4]) await addShard({ temporaryIndicesFolder: t, shard });
    // Fan-out 2: part 1's 3 shards merge in two stages (groups 0..1 and 2), part 2's 2 shards in one.
    const logs: string[] = [];
    const reporter = { ...silentReporter, info: (m: string) => logs.push(m) };
    const result = await mergeShards({ temporaryIndicesFolder: t, mergeFanout: 2, reporter });
    assert.equal(result.index, null);
    assert.ok(logs.includes("Part 1: 3 shards > 2: merging in two stages (2 groups, then the groups)"), logs.join("\n"));
    assert.ok(!logs.some((l) => l.startsWith("Part 2:")), logs.join("\n"));
    assert.deepEqual(readdirSync(out).sort(), ["index_infos.json01", "index_infos.json02", "knn.index01", "knn.index02"]);
    assert.deepEqual(readdirSync(t), ["merged.json"], "T keeps only the merged marker (the merge groups are gone)");

    const local = join(dir, "nparts", "local");
    const built = await buildIndex(emb, {
      indexKey: KEY, metricType: "l2", trainedIndexPath: trained, nbIndicesToKeep: 2, indexParam: "nprobe=8",
      indexPath: join(local, "knn.index"), indexInfosPath: join(local, "index_infos.json"),
    });
    assert.equal(built.index, null);
    assert.deepEqual(readdirSync(local).sort(), ["index_infos.json01", "index_infos.json02", "knn.index01", "knn.index02"]);
    // Same infos but the measured speeds; the paths differ only by folder.
    const timing = new Set(["avg_search_speed_ms", "99p_search_speed_ms"]);
    for (const suffix of ["01", "02"]) {
      const a = JSON.parse(readFileSync(join(out, "index_infos.json" + suffix), "utf8"));
      const b = JSON.parse(readFileSync(join(local, "index_infos.json" + suffix), "utf8"));
      assert.deepEqual(Object.keys(a), Object.keys(b));
      assert.equal(a.index_path, join(out, "knn.index" + suffix));
      assert.equal(b.index_path, join(local, "knn.index" + suffix));
      for (const key of Object.keys(a)) if (!timing.has(key) && key !== "index_path") assert.deepEqual(a[key], b[key], `${suffix} ${key}`);
      assert.deepEqual(result.infos[join(out, "knn.index" + suffix)], a);
    }
    assert.equal(JSON.parse(readFileSync(join(out, "index_infos.json02"), "utf8"))["nb vectors"], 4500);
    // The parts searched and merged by the search command give the same neighbours and distances.
    const q = join(dir, "nparts", "q.npy");
    writeNpy(q, queries, d);
    const search = async (base: string) => {
      const lines: string[] = [];
      await searchIndex({ indexPath: join(base, "knn.index"), queries: q, k: 10, write: (l) => lines.push(l) });
      return lines;
    };
    const a = await search(out);
    assert.equal(a.length, 40);
    assert.deepEqual(a, await search(local));
    // …and the same as one index holding every vector from the same trained index.
    const reference = Index.read(trained);
    try {
      reference.add(all);
      reference.ivf()!.nprobe = 8;
      const { labels } = reference.search(queries, 10);
      assert.deepEqual(a.map((l) => JSON.parse(l).ids), Array.from({ length: 40 }, (_, i) => [...labels.subarray(i * 10, i * 10 + 10)].map(Number)));
    } finally {
      reference.free();
    }
  });

  test("bad requests: pyspark, a key without IVF layer, Python's hdfs default folder, an out-of-range shard", async () => {
    const py = await runCli("build_index", emb, "--distributed=pyspark");
    assert.equal(py.code, 1);
    assert.equal(py.err, 'autofaiss build_index: error: distributed: "pyspark" (Spark) is not available in this tool; use --distributed=slurm (a Slurm job array), ' +
      "or run the phases plan_build, add_shard and merge_shards with any scheduler (examples/kubernetes/ for Kubernetes Indexed Jobs)\n");
    const measured = await runCli("build_index", emb, "--distributed=slurm", "--temporary_indices_folder=/tmp/unused", "--selection=measured");
    assert.equal(measured.code, 1);
    assert.match(measured.err, /^autofaiss build_index: error: selection: "measured" is not available with distributed="slurm"; pass --index_key/);
    const report = await runCli("build_index", emb, "--distributed=slurm", "--temporary_indices_folder=/tmp/unused", "--report_path=/tmp/unused.html");
    assert.equal(report.code, 1);
    assert.match(report.err, /^autofaiss build_index: error: report_path: distributed="slurm" builds write no HTML report yet/);
    await assert.rejects(planned("flat", { indexKey: "Flat" }), {
      message: "index_key: distributed builds merge IVF inverted lists, and Flat has no IVF layer (for a flat index use IVF1,Flat, as Python AutoFaiss advises)",
    });
    await assert.rejects(planDistributedBuild(emb, { temporaryIndicesFolder: "hdfs://root/tmp/distributed_autofaiss_indices" }), {
      message: "temporary_indices_folder: hdfs://root/tmp/distributed_autofaiss_indices: only a local or NFS path, or an s3:// URL, is supported (every node must reach it); pass --temporary_indices_folder",
    });
    await assert.rejects(buildIndex(emb, { indexPath: "s3://b/knn.index", indexKey: KEY }), {
      message: "index_path: s3://b/knn.index: a local build writes local files; URL outputs (s3://) are written by distributed builds (--distributed=slurm, merge_shards)",
    });
    if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined") {
      await assert.rejects(planned("mixed", { indexPath: "s3://b/knn.index" }), {
        message: `index_path, index_infos_path: either all on s3:// or all local, got index_path=s3://b/knn.index, index_infos_path=${join(dir, "mixed", "out", "index_infos.json")}`,
      });
    }
    const { t } = await planned("range");
    const bad = await runCli("add_shard", `--temporary_indices_folder=${t}`, "--shard=3");
    assert.equal(bad.code, 1);
    assert.equal(bad.err, "autofaiss add_shard: error: add_shard: --shard=3 is outside the plan's shards 0..2 (nb_shards=3)\n");
    const none = await runCli("merge_shards", `--temporary_indices_folder=${join(dir, "nothing")}`);
    assert.equal(none.err, `autofaiss merge_shards: error: merge_shards: ${join(dir, "nothing", "plan.json")} not found: run plan_build with --temporary_indices_folder=${join(dir, "nothing")} first\n`);
  });
});
