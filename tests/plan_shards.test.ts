/** lib/plan/shards.ts: shard counts, ranges, files per range, the task's shard index, plan.json hashing, shard checks. */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  canonicalJson,
  checkShardCount,
  checkShardNames,
  defaultShardCount,
  type DistributedPlanBody,
  filesForRange,
  MERGE_FANOUT,
  mergeStageGroups,
  parsePlan,
  type PlanInputFile,
  resolveShardIndex,
  sealPlan,
  shardDoneMismatch,
  shardFiles,
  shardName,
  shardThreads,
  shardLayout,
} from "../lib/plan/shards.ts";
import { partRanges } from "../lib/plan/parts.ts";

test("defaultShardCount: at most 10M vectors per shard, at least nb_indices_to_keep, at most count", () => {
  const cases: Array<[count: number, keep: number, expected: number]> = [
    [1, 1, 1],
    [10_000_000, 1, 1],
    [10_000_001, 1, 2],
    [25_000_000, 1, 3],
    [200_000_000, 1, 20],
    [1000, 4, 4],
    [3, 4, 3],
    [25_000_000, 5, 5],
    [0, 1, 1],
  ];
  for (const [count, keep, expected] of cases) assert.equal(defaultShardCount(count, keep), expected, `count=${count} keep=${keep}`);
});

test("checkShardCount: refuses non-integers, empty shards and fewer shards than parts, naming the rule", () => {
  assert.equal(checkShardCount(4, 100, 2), 4);
  assert.throws(() => checkShardCount(0, 100, 1), { message: "nb_shards: expected an integer >= 1, got 0" });
  assert.throws(() => checkShardCount(1.5, 100, 1), { message: "nb_shards: expected an integer >= 1, got 1.5" });
  assert.throws(() => checkShardCount(101, 100, 1), { message: "nb_shards: 101 shards for 100 vectors would leave empty shards (expected at most 100)" });
  assert.throws(() => checkShardCount(2, 100, 3), { message: "nb_shards: 2 shards cannot make nb_indices_to_keep=3 parts (expected at least 3)" });
});

test("shardLayout, one part: Python's _batch_loader split of all rows (the parts' partRanges, one function)", () => {
  const one = (count: number, n: number) => shardLayout([{ start: 0, end: count }], n);
  assert.deepEqual(one(7, 3), { shards: [{ start: 0, end: 3 }, { start: 3, end: 5 }, { start: 5, end: 7 }], partShards: [{ start: 0, end: 3 }] });
  assert.deepEqual(one(8, 4).shards, [{ start: 0, end: 2 }, { start: 2, end: 4 }, { start: 4, end: 6 }, { start: 6, end: 8 }]);
  assert.deepEqual(one(5, 1).shards, [{ start: 0, end: 5 }]);
  // Python's test_batch_loader, every total in 2..199 and n in 1..total-1: n ranges that touch, cover [0, total), none empty.
  for (let total = 2; total < 200; total++) {
    for (let n = 1; n < total; n++) {
      const r = one(total, n).shards;
      assert.equal(r.length, n);
      assert.equal(r[0].start, 0);
      assert.equal(r[n - 1].end, total);
      for (let b = 0; b < n; b++) {
        assert.ok(r[b].end > r[b].start, `total=${total} n=${n} range ${b} empty`);
        if (b > 0) assert.equal(r[b].start, r[b - 1].end);
      }
    }
  }
});

test("shardLayout, N parts: each part is whole contiguous shards that split exactly a local N-part build's rows", () => {
  // 7 rows in 2 parts ([0,4) [4,7), as build_index --nb_indices_to_keep=2), 3 shards: 2 for part 1, 1 for part 2.
  assert.deepEqual(shardLayout(partRanges(7, 2), 3), {
    shards: [{ start: 0, end: 2 }, { start: 2, end: 4 }, { start: 4, end: 7 }],
    partShards: [{ start: 0, end: 2 }, { start: 2, end: 3 }],
  });
  // Every count, part count and shard count with parts <= shards <= count: no empty shard, parts' rows kept.
  for (let count = 1; count <= 40; count++) {
    for (let parts = 1; parts <= count; parts++) {
      for (let n = parts; n <= count; n++) {
        const rows = partRanges(count, parts);
        const { shards, partShards } = shardLayout(rows, n);
        assert.equal(shards.length, n);
        assert.deepEqual(partShards, partRanges(n, parts));
        for (const [p, g] of partShards.entries()) {
          assert.ok(g.end > g.start, `count=${count} parts=${parts} n=${n}: part ${p} has no shard`);
          assert.equal(shards[g.start].start, rows[p].start);
          assert.equal(shards[g.end - 1].end, rows[p].end);
        }
        for (let b = 0; b < n; b++) {
          assert.ok(shards[b].end > shards[b].start, `count=${count} parts=${parts} n=${n}: shard ${b} empty`);
          if (b > 0) assert.equal(shards[b].start, shards[b - 1].end);
        }
      }
    }
  }
  assert.throws(() => shardLayout([{ start: 0, end: 1 }, { start: 1, end: 5 }], 4), {
    message: "shards: part 0 (rows [0, 1)) cannot be split into 2 non-empty shards",
  });
});

test("mergeStageGroups: one stage up to 100 shards (Python's stage-2 fan-out), else 100 contiguous groups", () => {
  assert.equal(MERGE_FANOUT, 100);
  assert.deepEqual(mergeStageGroups({ start: 5, end: 105 }), [{ start: 5, end: 105 }]);
  const groups = mergeStageGroups({ start: 10, end: 260 });
  assert.equal(groups.length, 100);
  assert.deepEqual(groups.slice(0, 2), [{ start: 10, end: 13 }, { start: 13, end: 16 }]); // 250 = 50 groups of 3 + 50 of 2
  assert.deepEqual(groups[49], { start: 157, end: 160 });
  assert.deepEqual(groups[50], { start: 160, end: 162 });
  assert.deepEqual(groups[99], { start: 258, end: 260 });
  assert.deepEqual(mergeStageGroups({ start: 0, end: 7 }, 3), [{ start: 0, end: 3 }, { start: 3, end: 5 }, { start: 5, end: 7 }]);
});

const FILES: PlanInputFile[] = [
  { location: "/e/0.npy", rows: 100, startRow: 0, size: 12928, mtimeMs: 1 },
  { location: "/e/1.npy", rows: 100, startRow: 100, size: 12928, mtimeMs: 2 },
  { location: "/e/2.npy", rows: 50, startRow: 200, size: 6528, mtimeMs: 3 },
];

test("filesForRange: only the files holding the range, and the range relative to the first of them", () => {
  assert.deepEqual(filesForRange(FILES, { start: 0, end: 100 }), { files: [FILES[0]], start: 0, end: 100 });
  assert.deepEqual(filesForRange(FILES, { start: 150, end: 250 }), { files: [FILES[1], FILES[2]], start: 50, end: 150 });
  assert.deepEqual(filesForRange(FILES, { start: 99, end: 101 }), { files: [FILES[0], FILES[1]], start: 99, end: 101 });
  assert.deepEqual(filesForRange(FILES, { start: 200, end: 250 }), { files: [FILES[2]], start: 0, end: 50 });
  assert.throws(() => filesForRange(FILES, { start: 250, end: 260 }), { message: "shards: no input file holds rows [250, 260)" });
});

test("resolveShardIndex: --shard first, then SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX", () => {
  const all = { SLURM_ARRAY_TASK_ID: "1", JOB_COMPLETION_INDEX: "2", AWS_BATCH_JOB_ARRAY_INDEX: "3" };
  assert.deepEqual(resolveShardIndex(0, all, 4), { shard: 0, source: "--shard" });
  assert.deepEqual(resolveShardIndex(null, all, 4), { shard: 1, source: "SLURM_ARRAY_TASK_ID" });
  assert.deepEqual(resolveShardIndex(null, { JOB_COMPLETION_INDEX: "2", AWS_BATCH_JOB_ARRAY_INDEX: "3" }, 4), { shard: 2, source: "JOB_COMPLETION_INDEX" });
  assert.deepEqual(resolveShardIndex(null, { AWS_BATCH_JOB_ARRAY_INDEX: "3" }, 4), { shard: 3, source: "AWS_BATCH_JOB_ARRAY_INDEX" });
  assert.deepEqual(resolveShardIndex(null, { SLURM_ARRAY_TASK_ID: "", JOB_COMPLETION_INDEX: "0" }, 4), { shard: 0, source: "JOB_COMPLETION_INDEX" });
  assert.throws(() => resolveShardIndex(null, {}, 4), {
    message: "add_shard: no shard index: pass --shard=i or run as an array task (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX unset)",
  });
  assert.throws(() => resolveShardIndex(null, { JOB_COMPLETION_INDEX: "4" }, 4), {
    message: "add_shard: JOB_COMPLETION_INDEX=4 is outside the plan's shards 0..3 (nb_shards=4)",
  });
  assert.throws(() => resolveShardIndex(null, { SLURM_ARRAY_TASK_ID: "-1" }, 4), {
    message: 'add_shard: SLURM_ARRAY_TASK_ID="-1" is not a shard index (expected an integer in 0..3)',
  });
  assert.throws(() => resolveShardIndex(7, {}, 4), { message: "add_shard: --shard=7 is outside the plan's shards 0..3 (nb_shards=4)" });
});

test("shard names: 4 digits, wider past 10000 shards", () => {
  assert.equal(shardName(3, 4), "shard-0003");
  assert.equal(shardName(9999, 10000), "shard-9999");
  assert.equal(shardName(7, 10001), "shard-00007");
  assert.deepEqual(shardFiles(2, 10), { index: "shards/shard-0002.index", ids: "shards/shard-0002.ids.parquet", done: "shards/shard-0002.done" });
});

function body(): DistributedPlanBody {
  return {
    format: "autofaiss-distributed-plan",
    version: 2,
    inputs: { fileFormat: "npy", embeddingColumnName: null, idColumns: null, count: 250, dimension: 32, files: FILES },
    indexKey: "IVF16,Flat",
    metricType: "l2",
    settings: {} as DistributedPlanBody["settings"],
    trained: { file: "trained.index", bytes: 4242, sha256: "ab".repeat(32) },
    adding: { readBatchRows: 1000, addCallRows: 2000 },
    shards: shardLayout([{ start: 0, end: 250 }], 3).shards,
    parts: [{ indexPath: "/o/knn.index", indexInfosPath: "/o/infos.json", rows: { start: 0, end: 250 }, shards: { start: 0, end: 3 } }],
  };
}

test("plan.json: the hash covers the content in canonical key order; an edit or another version is refused", () => {
  assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: null }], e: undefined }), '{"a":[{"c":null,"d":2}],"b":1}');
  const plan = sealPlan(body());
  assert.match(plan.hash, /^[0-9a-f]{64}$/);
  // Same content, keys in another order: same hash.
  const reordered = JSON.parse(canonicalJson(body()));
  assert.equal(sealPlan(reordered).hash, plan.hash);
  assert.deepEqual(parsePlan(JSON.stringify(plan, null, 2), "T/plan.json"), plan);
  const edited = { ...plan, indexKey: "IVF32,Flat" };
  assert.throws(() => parsePlan(JSON.stringify(edited), "T/plan.json"), (e: Error) => {
    const m = /^plan: T\/plan\.json: content hash ([0-9a-f]{64}) does not match its content \(([0-9a-f]{64})\): the file was edited or damaged$/.exec(e.message);
    return m !== null && m[1] === plan.hash && m[2] !== plan.hash;
  });
  assert.throws(() => parsePlan("{", "T/plan.json"), /^DistributedError: plan: T\/plan.json: not JSON/);
  assert.throws(() => parsePlan('{"format":"x"}', "T/plan.json"), { message: 'plan: T/plan.json: format is not "autofaiss-distributed-plan" (not written by plan_build)' });
  assert.throws(() => parsePlan(JSON.stringify({ ...plan, version: 1 }), "T/plan.json"), { message: "plan: T/plan.json: version 1, expected 2" });
});

test("shardDoneMismatch: a marker of another plan, another range or a short index is named", () => {
  const plan = sealPlan(body());
  const ok = {
    format: "autofaiss-shard-done", planHash: plan.hash, shard: 1, start: 84, end: 167, ntotal: 83,
    index: { name: "shards/shard-0001.index", bytes: 1, sha256: "x" }, ids: null,
  };
  assert.deepEqual(plan.shards[1], { start: 84, end: 167 });
  assert.equal(shardDoneMismatch(ok, plan, 1, "shards/shard-0001.done"), null);
  assert.equal(
    shardDoneMismatch({ ...ok, planHash: "f".repeat(64) }, plan, 1, "shards/shard-0001.done"),
    `shards/shard-0001.done belongs to another plan (plan hash ffffffffffff…, this plan ${plan.hash.slice(0, 12)}…): run add_shard again for shard 1`,
  );
  assert.equal(shardDoneMismatch(ok, plan, 2, "shards/shard-0002.done"), "shards/shard-0002.done: records shard 1 rows [84, 167), the plan has shard 2 rows [167, 250)");
  assert.equal(shardDoneMismatch({ ...ok, ntotal: 80 }, plan, 1, "d"), "d: the shard's index holds 80 vectors, the plan expects 83");
  assert.equal(shardDoneMismatch({ hello: 1 }, plan, 1, "d"), "d: not a done marker written by add_shard");
});

test("checkShardNames: names the first foreign file, then the missing shards; temporaries are ignored", () => {
  const done = (i: number) => [`shard-000${i}.index`, `shard-000${i}.done`];
  assert.equal(checkShardNames([...done(0), ...done(1), ...done(2), ".shard-0001.index.tmp-vm-12"], 3, false), null);
  assert.equal(checkShardNames([...done(0), ...done(1), ...done(2), ...done(3)], 3, false), "shards/shard-0003.done is not a shard of this plan (nb_shards=3: shard-0000 … shard-0002)");
  assert.equal(checkShardNames([...done(0), "shard-0002.index"], 3, false), "shards not done: 1, 2 of 3 (no shards/shard-0001.done); run add_shard for them");
  assert.equal(checkShardNames([...done(0), "shard-0000.ids.parquet"], 1, true), null);
  assert.equal(checkShardNames([...done(0), "shard-0000.ids.parquet"], 1, false), "shards/shard-0000.ids.parquet is not a shard of this plan (nb_shards=1: shard-0000 … shard-0000)");
});

test("shardThreads: --nb_cores, then SLURM_CPUS_PER_TASK, then the plan's nb_cores, then every core", () => {
  const slurm = { SLURM_CPUS_PER_TASK: "3" };
  assert.deepEqual(shardThreads(2, slurm, 8), { threads: 2, source: "--nb_cores" });
  assert.deepEqual(shardThreads(null, slurm, 8), { threads: 3, source: "SLURM_CPUS_PER_TASK" });
  assert.deepEqual(shardThreads(null, { SLURM_CPUS_PER_TASK: "" }, 8), { threads: 8, source: "the plan's nb_cores" });
  assert.deepEqual(shardThreads(null, {}, null), { threads: 0, source: "every core" });
  assert.throws(() => shardThreads(null, { SLURM_CPUS_PER_TASK: "0" }, null), {
    message: 'add_shard: SLURM_CPUS_PER_TASK="0" is not a CPU count (expected an integer >= 1)',
  });
  assert.throws(() => shardThreads(null, { SLURM_CPUS_PER_TASK: "2(x3)" }, null), {
    message: 'add_shard: SLURM_CPUS_PER_TASK="2(x3)" is not a CPU count (expected an integer >= 1)',
  });
});
