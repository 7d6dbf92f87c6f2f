/**
 * The tuner on real FAISS indices (issue 5): after `tuneIndex`, the chosen value meets the
 * neighbour-coverage target (within 0.02) and its latency, measured again here, is within the bound
 * (≤ 1.05 × bound + 0.25 ms) unless the smallest allowed value was reached.
 *
 * Latency is re-measured as the best of five runs: load on a shared machine only ever adds time,
 * so the minimum is the index's own latency. Bounds are generous where they do not need to bite.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Index, setNumThreads } from "../ffi/faiss.ts";
import { runSpeedTest, SPEED_TEST_K } from "../lib/measure/latency_stats.ts";
import { tuneIndex } from "../lib/commands/tune_index.ts";
import { COVERAGE_QUERIES, coverageTarget, tunableParameter, type TunableParameter } from "../lib/plan/tuning.ts";
import type { BuildReporter } from "../lib/reporter.ts";
import { clusteredData } from "./helpers/data.ts";

const d = 32;
const K = 20; // min_nearest_neighbors_to_retrieve

function collectingReporter(): BuildReporter & { lines: string[]; warnings: string[] } {
  const lines: string[] = [];
  const warnings: string[] = [];
  return {
    lines,
    warnings,
    debug: () => {},
    info: (m) => lines.push(m),
    warning: (m) => warnings.push(m),
    error: (m) => lines.push(m),
    timed: async (_label, _indent, fn) => await fn(),
    progress: () => ({ update: () => {}, finish: () => {} }),
  };
}

/** Fraction of non -1 labels for the first 100 reconstructed vectors, k = 20 (what the tuner measures). */
function coverage(index: Index, param: string): number {
  index.setParameters(param);
  const q = index.reconstructN(0, Math.min(index.ntotal, COVERAGE_QUERIES));
  const { labels } = index.search(q, K);
  return labels.filter((l) => l !== -1n).length / labels.length;
}

/** Best of five single-query latency runs (k = 40, ≤ 300 ms each), ms per query. */
function latencyMs(index: Index, param: string): number {
  index.setParameters(param);
  const q = index.reconstructN(0, Math.min(index.ntotal, 1000));
  const rows = Array.from({ length: q.length / d }, (_, i) => q.subarray(i * d, (i + 1) * d));
  const dist = new Float32Array(SPEED_TEST_K);
  const lab = new BigInt64Array(SPEED_TEST_K);
  let best = Infinity;
  for (let run = 0; run < 5; run++) {
    const r = runSpeedTest({
      nQueries: rows.length,
      searchOne: (i) => index.searchInto(rows[i], SPEED_TEST_K, dist, lab),
      now: () => performance.now(),
      timeoutMs: 300,
    });
    best = Math.min(best, r.msPerQuery);
  }
  return best;
}

async function checkTuned(index: Index, key: string, boundMs: number) {
  const family = tunableParameter(key, index.ivf()?.nlist) as TunableParameter;
  assert.equal(family.kind, "tunable");
  const log = collectingReporter();
  const t0 = performance.now();
  const { param, tuning } = await tuneIndex(index, key, { saveOnDisk: false, maxIndexQueryTimeMs: boundMs, reporter: log });
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(tuning, "tuned, not given");
  assert.equal(param, family.format(tuning.value));
  assert.ok(tuning.value >= family.values.lo && tuning.value <= family.values.hi);
  assert.ok(log.lines.includes(`The optimal hyperparameters are ${param}.`));
  assert.ok(log.lines.some((l) => l.startsWith(`tuning ${family.name}=`)), "progress lines name the value tried");

  // The tuner's target: 0.99, or 0.95 × the largest value's coverage when that is below 0.99.
  const low = coverage(index, family.format(family.values.lo));
  const target = low >= 0.99 ? 0.99 : coverageTarget(coverage(index, family.format(family.values.hi)));
  const cov = coverage(index, param);
  assert.ok(cov >= target - 0.02, `coverage ${cov} ≥ target ${target} − 0.02`);
  const ms = latencyMs(index, param);
  if (!tuning.reachedMinimum) assert.ok(ms <= 1.05 * boundMs + 0.25, `latency ${ms} ms ≤ 1.05 × ${boundMs} + 0.25`);
  console.log(`${key}, bound ${boundMs} ms: ${param} in ${seconds.toFixed(1)} s, coverage ${cov.toFixed(3)}, ${ms.toFixed(3)} ms/query, calls ${JSON.stringify(tuning.calls)}`);
  return { tuning, family, cov, ms };
}

describe("tuning real indices", () => {
  // One thread: OPQ training with two busy OpenMP threads on a shared 2-core machine is ~10× slower,
  // and single-query searches do not use more than one anyway.
  before(() => setNumThreads(1));
  after(() => setNumThreads(0));

  test("HNSW32: the 20 ms bound bites (n = 5000): largest efSearch within it", async () => {
    const x = clusteredData(5000, d, 20, 1);
    using index = Index.factory(d, "HNSW32", "l2");
    index.add(x);
    const { tuning, family } = await checkTuned(index, "HNSW32", 20);
    assert.ok(tuning.value > family.values.lo, "efSearch above the minimum: the bound is far above efSearch=16's latency");
    assert.equal(tuning.coverageMinimum, 16, "HNSW returns k neighbours at any efSearch");
  });

  test("IVF256,Flat: coverage has priority (lists shorter than k at nprobe=1), then a tight bound", async () => {
    const x = clusteredData(4000, d, 20, 2);
    using index = Index.factory(d, "IVF256,Flat", "l2");
    index.train(x);
    index.add(x);
    assert.ok(coverage(index, "nprobe=1") < 0.99, "one list does not hold 20 neighbours");
    const generous = await checkTuned(index, "IVF256,Flat", 20);
    assert.ok(generous.tuning.coverageMinimum > 1, "the coverage step raised the minimum nprobe");
    assert.equal(generous.tuning.value, 256, "a 20 ms bound allows every list");
    const tight = await checkTuned(index, "IVF256,Flat", 0.1);
    assert.ok(tight.tuning.value >= tight.tuning.coverageMinimum);
  });

  test("OPQ8_32,IVF64_HNSW16,PQ8: nprobe with efSearch = 2 × nprobe and ht=2048", async () => {
    const x = clusteredData(4000, d, 20, 3);
    using index = Index.factory(d, "OPQ8_32,IVF64_HNSW16,PQ8", "l2");
    index.setPolysemousTraining(false);
    index.train(x.subarray(0, 2500 * d));
    index.add(x);
    const { tuning } = await checkTuned(index, "OPQ8_32,IVF64_HNSW16,PQ8", 20);
    assert.ok(tuning.value >= 16 && tuning.value <= 64, "range min(16, nlist) … nlist");
    assert.match(tuning.param, /^nprobe=(\d+),efSearch=(\d+),ht=2048$/);
    const [, nprobe, ef] = /^nprobe=(\d+),efSearch=(\d+)/.exec(tuning.param)!;
    assert.equal(Number(ef), 2 * Number(nprobe));
  });
});
