/**
 * Measured selection against FAISS: small synthetic data, few candidates, so each test takes seconds.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildIndex } from "../lib/commands/build_index.ts";
import { measuredSelection, splitSample } from "../lib/measure/measured_selection.ts";
import { type Candidate, type CandidateList, selectionCandidates } from "../lib/plan/candidates.ts";
import { rotationSpec, usesRotationAhead } from "../lib/plan/measured_choice.ts";
import { trainingLevers } from "../lib/plan/training_plan.ts";
import { Index } from "../ffi/faiss.ts";
import { rRecallAtR } from "../lib/measure/recall.ts";
import { type BuildReporter, silentReporter } from "../lib/reporter.ts";
import { clusteredData } from "./helpers/data.ts";

const d = 16;

function candidate(key: string, rank: number, heuristic = false): Candidate {
  return { key, rank, estimatedBytes: 1000 * rank, bitsPerDimension: 1, codec: "PQ", graph: "IVF", refine: false, heuristic, reason: "test" };
}

function list(keys: string[]): CandidateList {
  return { heuristicKey: keys[0], candidates: keys.map((k, i) => candidate(k, i + 1, i === 0)), dropped: [] };
}

describe("splitSample", () => {
  test("interleaves held-out queries over the sample; no row in both", () => {
    const v = Float32Array.from({ length: 10 * 2 }, (_, i) => Math.floor(i / 2)); // row r = [r, r]
    const { base, queries } = splitSample(v, 2, 3);
    // query rows floor((j + 0.5)·10/3) = 1, 5, 8
    assert.deepEqual([...queries], [1, 1, 5, 5, 8, 8]);
    assert.deepEqual([...base], [0, 0, 2, 2, 3, 3, 4, 4, 6, 6, 7, 7, 9, 9]);
  });
});

describe("measuredSelection", () => {
  const n = 4000;
  const { base, queries } = splitSample(clusteredData(n + 200, d, 20, 5), d, 200);

  test("8-bit scalar codes beat 4-sub-quantizer PQ: chosen over the heuristic key; refinement gets k_factor", async () => {
    const report = await measuredSelection(list(["IVF64,PQ4x8", "IVF64,SQ8", "IVF64,PQ8x4fs,RFlat"]), base, queries, d, {
      n, metric: "l2", maxQueryTimeMs: 50, minNearestNeighbors: 10, maxIndexMemoryBytes: 1e9, timeBudgetSeconds: 600,
    });
    assert.deepEqual(report.candidates.map((c) => c.status), ["measured", "measured", "measured"]);
    const [pq, sq8, rf] = report.candidates;
    for (const c of report.candidates) {
      assert.ok(c.recall! >= 0 && c.recall! <= 1, `${c.key} recall ${c.recall}`);
      assert.ok(c.latencyMs! > 0);
      assert.equal(c.sampleKey, c.key); // the sample is the whole data: nothing scaled
    }
    // 2 bits per dimension vs 8: the PQ misses neighbours SQ8 finds
    assert.ok(sq8.recall! >= pq.recall! + 0.05, `SQ8 ${sq8.recall} vs PQ4 ${pq.recall}`);
    assert.ok(rf.param!.startsWith("k_factor_rf=16,nprobe="), rf.param ?? "");
    assert.ok(rf.recall! > pq.recall!, `refined ${rf.recall} vs PQ4 ${pq.recall}`);
    assert.notEqual(report.chosenKey, "IVF64,PQ4x8");
    assert.equal(report.heuristicKey, "IVF64,PQ4x8");
    assert.equal(report.sampleRows, n);
    assert.equal(report.queries, 200);
    assert.equal(report.presetParam, report.chosenKey.endsWith(",RFlat") ? "k_factor_rf=16" : "");
  });

  test("a key FAISS rejects is reported, not thrown; the time budget skips the rest", async () => {
    let t = 0;
    const report = await measuredSelection(list(["IVF64,SQ8", "IVF64,PQ5x8", "IVF64,SQ4", "IVF64,SQfp16"]), base, queries, d, {
      n, metric: "l2", maxQueryTimeMs: 50, minNearestNeighbors: 10, maxIndexMemoryBytes: 1e9, timeBudgetSeconds: 40,
      // every clock read is 5 s later: the 4th candidate starts at 50 s of a 40 s budget
      clock: () => (t += 5),
    });
    const [sq8, pq5, sq4, fp16] = report.candidates;
    assert.equal(sq8.status, "measured");
    assert.equal(pq5.status, "rejected");
    assert.match(pq5.note!, /^FAISS 1\.7\.3 rejects IVF64,PQ5x8: /);
    assert.equal(sq4.status, "measured");
    assert.equal(fp16.status, "skipped");
    assert.match(fp16.note!, /^predicted \d+\.\d s, 0\.0 s of the 40\.0 s time budget left$/);
    assert.equal(report.chosenKey, "IVF64,SQ8"); // SQ4 does not beat it by 0.01
  });

  test("a candidate skipped for time comes with the budget that measures it, and that budget does", async () => {
    const keys = ["IVF64,SQ8", "IVF64,SQ4", "IVF64,SQfp16"];
    const options = { n, metric: "l2" as const, maxQueryTimeMs: 50, minNearestNeighbors: 10, maxIndexMemoryBytes: 1e9 };
    const logs: string[] = [];
    const tight = await measuredSelection(list(keys), base, queries, d, { ...options, timeBudgetSeconds: 1e-6, log: { ...silentReporter, info: (m) => logs.push(m) } });
    assert.deepEqual(tight.candidates.map((c) => c.status), ["measured", "skipped", "skipped"]);
    assert.equal(tight.budgetHint?.key, "IVF64,SQ4"); // the highest-ranked one skipped
    assert.ok(tight.budgetHint!.seconds >= 10 && tight.budgetHint!.seconds % 10 === 0, `${tight.budgetHint!.seconds}`);
    assert.ok(logs.some((l) => l.includes(`--selection_time_budget=${tight.budgetHint!.seconds} is predicted to measure it`)), logs.join("\n"));
    const given = await measuredSelection(list(keys), base, queries, d, { ...options, timeBudgetSeconds: tight.budgetHint!.seconds });
    assert.equal(given.candidates[1].status, "measured");
    assert.equal(given.budgetHint, null); // nothing skipped for time
  });

  test("a heuristic whose sample search probes most of the sample's lists is kept, and nothing else is measured", async () => {
    // the full data is 10× the sample: IVF64 becomes IVF6 on it, and a 50 ms bound lets the tuner probe all 6
    const report = await measuredSelection(list(["IVF64,PQ4x8", "IVF64,SQ8", "IVF64,SQ4"]), base, queries, d, {
      n: 10 * n, metric: "l2", maxQueryTimeMs: 50, minNearestNeighbors: 10, maxIndexMemoryBytes: 1e9, timeBudgetSeconds: 600,
    });
    const [heuristic, sq8, sq4] = report.candidates;
    assert.equal(heuristic.sampleKey, "IVF6,PQ4x8");
    assert.equal(heuristic.status, "measured");
    assert.match(heuristic.param!, /^nprobe=6(,|$)/);
    assert.equal(heuristic.saturated, true);
    assert.match(heuristic.note!, /probed most of the sample's lists/);
    for (const c of [sq8, sq4]) {
      assert.equal(c.status, "skipped", c.key);
      assert.match(c.note!, /^the heuristic's sample search probed most of the sample's lists \(nprobe=6.*\): the sample cannot rank candidates/);
    }
    assert.equal(report.chosenKey, "IVF64,PQ4x8");
    assert.match(report.reason, /cannot rank candidates at this latency bound/);
  });

  test("a rotation trained ahead: copied into the candidates that have it; a candidate with another rotation is charged its seconds", async () => {
    const key = "OPQ4_16,IVF64,PQ4x8";
    // a rotation of other data, so that a copy of it and one trained on the sample give different indices
    using owner = Index.factory(d, key, "l2");
    assert.equal(await owner.trainTransformsWithProgress(clusteredData(n, d, 20, 77), trainingLevers(key)), true);
    const rotation = { spec: "OPQ4_16", rows: n, owner, seconds: 1000 };
    const report = await measuredSelection(list(["OPQ4_16,IVF64,PQ4x8", "OPQ8_16,IVF64,PQ8x8", "IVF64,SQ8", "OPQ4_16,IVF64,PQ4x4fs"]), base, queries, d, {
      n, metric: "l2", maxQueryTimeMs: 50, minNearestNeighbors: 10, maxIndexMemoryBytes: 1e9, timeBudgetSeconds: 600,
    }, rotation);
    const [heuristic, otherRotation, sq8, sibling] = report.candidates;
    assert.deepEqual([heuristic.status, otherRotation.status, sq8.status, sibling.status], ["measured", "skipped", "measured", "measured"]);
    assert.match(otherRotation.note!, /^predicted \d+\.\d s \+ the 1000\.0 s of the OPQ4_16 rotation, spent for nothing if it won, /);
    // the heuristic was measured on the copied rotation: the same index built by hand on it scores the
    // same recall at the same parameters, and one whose rotation trains on the sample does not
    const recallWith = async (copy: boolean) => {
      using index = Index.factory(d, key, "l2");
      index.setPolysemousTraining(false);
      if (copy) index.copyTransformsFrom(owner);
      await index.trainWithProgress(base, trainingLevers(key));
      index.add(base);
      index.setParameters(heuristic.param!);
      using flat = Index.factory(d, "Flat", "l2");
      flat.add(base);
      return rRecallAtR({ labels: index.search(queries, 10).labels, k: 10 }, { labels: flat.search(queries, 10).labels, k: 10 }, 10);
    };
    assert.equal(await recallWith(true), heuristic.recall);
    assert.notEqual(await recallWith(false), heuristic.recall);
    assert.deepEqual(report.rotation, { spec: "OPQ4_16", rows: n, seconds: 1000, reusedByBuild: usesRotationAhead(report.chosenKey, rotation) });
  });

  test("automatic budget: when the heuristic and the cheapest other candidate would not fit it together, nothing is measured", async () => {
    // Fashion-MNIST's shape at 20M: the heuristic OPQ128_896 key on a 10,000-row sample costs about a
    // third of its full build (the rotation's SVDs do not shrink with the rows). Zero rows suffice:
    // the decision comes from the work model before any FAISS call.
    const fd = 784;
    const candidates = selectionCandidates(60_000, fd, 20 * 2 ** 20);
    const sample = new Float32Array(10_000 * fd);
    const auto = await measuredSelection(candidates, sample, new Float32Array(500 * fd), fd, {
      n: 60_000, metric: "l2", maxQueryTimeMs: 1, minNearestNeighbors: 10, maxIndexMemoryBytes: 20 * 2 ** 20, timeBudgetSeconds: null,
    });
    assert.equal(auto.chosenKey, "OPQ128_896,IVF1024_HNSW32,PQ128x8");
    assert.equal(auto.budgetSeconds, null);
    assert.ok(auto.candidates.length > 1);
    for (const c of auto.candidates) {
      assert.equal(c.status, "skipped", c.key);
      assert.match(c.note!, /^measuring the heuristic key on 10000 sampled vectors would cost ~3\d% of its full training and adding and the cheapest other candidate \(IVF1024_HNSW32,PQ\d+x4fs\) ~0%: together over the automatic time budget's 25%$/);
    }
    assert.match(auto.reason, /give --selection_time_budget to measure/);
  });
});

describe("build_index --selection=measured", () => {
  test("builds the chosen key; index_infos keeps Python's keys; the report is returned", async () => {
    const n = 12_000;
    const vectors = clusteredData(n, d, 30, 9);
    const dir = mkdtempSync(join(tmpdir(), "measured-selection-"));
    const reportPath = join(dir, "report.html");
    // 1 MiB: HNSW does not fit, IVF512,Flat (the heuristic) does
    const { index, infos, selection } = await buildIndex({ vectors, dim: d }, {
      saveOnDisk: false, indexPath: null, metricType: "l2", maxIndexMemoryUsage: "1M", maxIndexQueryTimeMs: 2, nbCores: 1,
      selection: "measured", selectionTimeBudget: 10, reportPath,
    });
    try {
      assert.ok(selection);
      assert.equal(infos.index_key, selection.chosenKey);
      assert.equal(selection.heuristicKey, "IVF512,Flat");
      assert.equal(selection.candidates[0].key, "IVF512,Flat");
      assert.equal(selection.candidates[0].status, "measured");
      assert.equal(selection.candidates[0].sampleKey, "IVF427,Flat"); // 512 · 10,000 / 12,000 lists: same vectors per list
      assert.equal(selection.sampleRows, 10_000);
      // 10,000 16-d vectors scan in far less than 2 ms: the heuristic's sample search probes every list,
      // which predicts nothing of the full index's, so no other candidate is measured against it
      assert.equal(selection.candidates[0].saturated, true);
      assert.equal(selection.candidates[0].param, "nprobe=427");
      assert.deepEqual(new Set(selection.candidates.slice(1).map((c) => c.status)), new Set(["skipped"]));
      assert.equal(selection.chosenKey, "IVF512,Flat");
      for (const c of selection.candidates) assert.ok(c.estimatedBytes <= 2 ** 20, c.key);
      assert.equal(index.ntotal, n);
      assert.deepEqual(Object.keys(infos), [
        "index_key", "index_param", "index_path", "size in bytes", "avg_search_speed_ms", "99p_search_speed_ms",
        "reconstruction error %", "nb vectors", "vectors dimension", "compression ratio",
      ]);
      assert.ok(infos["size in bytes"] <= 2 ** 20, `${infos["size in bytes"]}`);
      const html = readFileSync(reportPath, "utf8");
      assert.ok(html.includes(`<strong id="chosen-key">${infos.index_key}</strong>`));
      for (const c of selection.candidates) assert.ok(html.includes(`<code>${c.key}</code>`), c.key);
      assert.ok(html.includes("Measuring candidate index types on a sample</text>"), "phase timings");
    } finally {
      index.free();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a heuristic that saturates its sample is measured again on a larger one", async () => {
    // 10,000 sampled 32-d PQ codes scan in far less than 1 ms: the heuristic probes every list of the first sample
    const n = 60_000, dim = 32;
    const logs: string[] = [];
    const result = await buildIndex({ vectors: clusteredData(n, dim, 50, 3), dim }, {
      saveOnDisk: false, indexPath: null, metricType: "l2", maxIndexMemoryUsage: "1536K", maxIndexQueryTimeMs: 1, nbCores: 1,
      selection: "measured", selectionTimeBudget: 600, reporter: { ...silentReporter, info: (m) => logs.push(m) },
    });
    try {
      const sel = result.selection!;
      assert.equal(sel.resampled?.fromRows, 10_000);
      assert.ok(sel.resampled!.probedShare >= 0.5, `${sel.resampled!.probedShare}`);
      assert.ok(sel.sampleRows > 10_000 && sel.sampleRows <= n - sel.queries, `${sel.sampleRows}`);
      assert.ok(logs.some((l) => l.endsWith(`measuring again on ${sel.sampleRows} sampled vectors`)), logs.join("\n"));
      // measured again with as many vectors per list as the full index: more lists on more rows
      // (whether the tuner then probes under half of them depends on this machine's timings)
      const heuristic = sel.candidates.find((c) => c.heuristic)!;
      assert.equal(heuristic.status, "measured");
      const lists = (key: string) => Number(/IVF(\d+)/.exec(key)![1]);
      assert.equal(lists(heuristic.sampleKey!), Math.round((lists(heuristic.key) * sel.sampleRows) / n));
      assert.ok(lists(heuristic.sampleKey!) > Math.round((lists(heuristic.key) * 10_000) / n));
      assert.ok(sel.seconds > sel.resampled!.seconds);
    } finally {
      result.index?.free();
    }
  });

  test("an OPQ heuristic: its rotation trains once, on the build's own rotation sample, and the build reuses it; the index is heuristic selection's", async () => {
    const n = 60_000, dim = 32;
    const vectors = clusteredData(n, dim, 50, 3);
    const logs: string[] = [];
    const reporter: BuildReporter = {
      ...silentReporter,
      info: (m) => logs.push(m),
      timed: async (label, _indent, fn) => {
        logs.push(label);
        return await fn();
      },
    };
    // one thread: the HNSW coarse quantizer's graph is the same in two builds only when built sequentially
    const bounds = { saveOnDisk: false, indexPath: null, metricType: "l2", maxIndexMemoryUsage: "1536K", maxIndexQueryTimeMs: 1, nbCores: 1 } as const;
    // the automatic budget (a given one trains a rotation this large a share of the build in the sample);
    // 10,000 32-d PQ codes scan in far less than 1 ms, so the heuristic's sample search saturates and
    // it is kept
    const measured = await buildIndex({ vectors, dim }, { ...bounds, selection: "measured", selectionTimeBudget: null, reporter });
    const heuristic = await buildIndex({ vectors, dim }, { ...bounds, selection: "heuristic" });
    try {
      const sel = measured.selection!;
      const spec = rotationSpec(sel.heuristicKey!);
      assert.match(spec ?? "", /^OPQ\d+_\d+$/, sel.heuristicKey!);
      assert.equal(sel.chosenKey, sel.heuristicKey);
      assert.equal(sel.candidates[0].status, "measured");
      assert.equal(sel.candidates[0].saturated, true);
      assert.deepEqual(sel.rotation, { spec, rows: 32_768, seconds: sel.rotation!.seconds, reusedByBuild: true });
      assert.ok(sel.rotation!.seconds > 0);
      // one rotation training in the whole run: the selection's; the build copies it
      assert.deepEqual(logs.filter((l) => / rotation with \d+ vectors/.test(l)), [
        `-> Training the ${spec} rotation with 32768 vectors of dim ${dim}, for the selection and the build`,
      ]);
      assert.equal(logs.filter((l) => l.startsWith(`-> Reusing the ${spec} rotation trained for the selection`)).length, 1);
      // the same rows and seed as the build's own rotation sample: the very index heuristic selection builds
      assert.equal(measured.infos.index_key, heuristic.infos.index_key);
      // the file also stores the search parameters each build tuned by timing (nprobe, efSearch):
      // set both alike, then every byte of the training and the data must agree
      measured.index.setParameters(heuristic.infos.index_param);
      assert.deepEqual(measured.index.toBytes(), heuristic.index.toBytes());
    } finally {
      measured.index.free();
      heuristic.index.free();
    }
  });
});
