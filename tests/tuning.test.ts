import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  backoffSequence,
  clampK,
  coverageTarget,
  discreteBinarySearch,
  largestWithinBound,
  measurementBudgetMs,
  tunableParameter,
  tuneParameters,
  type LatencyPhase,
  type TunableParameter,
  type TuningEvent,
} from "../lib/plan/tuning.ts";
import {
  latencySummary,
  mean,
  quantileLinear,
  runSpeedTest,
  speedTestSearches,
} from "../lib/measure/latency_stats.ts";

// ---------------------------------------------------------------------------------------------
// Family table

describe("tunableParameter", () => {
  const cases: [key: string, family: string, name: string, lo: number, hi: number, boost: number, v: number, param: string][] = [
    // one row per family of the tunableParameter table
    ["HNSW32", "HNSW", "efSearch", 16, 16383, 6, 40, "efSearch=40"],
    ["HNSW15", "HNSW", "efSearch", 16, 16383, 6, 16, "efSearch=16"],
    ["IVF512,Flat", "IVF,Flat", "nprobe", 1, 512, 6, 7, "nprobe=7"],
    ["IVF65536,Flat", "IVF,Flat", "nprobe", 1, 65536, 6, 9000, "nprobe=9000"],
    ["OPQ64_256,IVF1024,PQ64x8", "IVF,PQ", "nprobe", 1, 1024, 6, 3, "nprobe=3,ht=2048"],
    ["OPQ256_1024,IVF65536_HNSW32,PQ256x8", "IVF_HNSW,PQ", "nprobe", 16, 6144, 12, 20, "nprobe=20,efSearch=40,ht=2048"],
    ["OPQ24_168,IVF131072_HNSW32,PQ24x8", "IVF_HNSW,PQ", "nprobe", 16, 6144, 12, 16, "nprobe=16,efSearch=32,ht=2048"],
    ["Pad128,IVF4096_HNSW32,PQ64", "IVF_HNSW,PQ", "nprobe", 16, 4096, 12, 16, "nprobe=16,efSearch=32,ht=2048"],
    // fixed: IVF_HNSW,Flat is an IVF (Python tuned efSearch 16…16383 as for HNSW)
    ["IVF4096_HNSW32,Flat", "IVF_HNSW,Flat", "nprobe", 16, 4096, 12, 30, "nprobe=30,efSearch=60"],
    // fixed: nlist < 16 no longer gives an empty range
    ["IVF8_HNSW32,Flat", "IVF_HNSW,Flat", "nprobe", 8, 8, 12, 8, "nprobe=8,efSearch=16"],
    ["OPQ16_64,IVF10_HNSW32,PQ16x8", "IVF_HNSW,PQ", "nprobe", 10, 10, 12, 10, "nprobe=10,efSearch=20,ht=2048"],
    // families Python refused
    ["IVF256,PQ16x4fs", "IVF,PQfs", "nprobe", 1, 256, 6, 5, "nprobe=5"],
    ["OPQ32_128,IVF100000,PQ32x4fsr", "IVF,PQfs", "nprobe", 1, 6144, 6, 5, "nprobe=5"],
    ["IVF256,PQ16", "IVF,PQ", "nprobe", 1, 256, 6, 5, "nprobe=5,ht=2048"],
    ["IVF1024,SQ8", "IVF,SQ", "nprobe", 1, 1024, 6, 2, "nprobe=2"],
    ["PCAR64,IVF1024,SQfp16", "IVF,SQ", "nprobe", 1, 1024, 6, 2, "nprobe=2"],
    ["IVF1024,PQ16x4fs,RFlat", "IVF,PQfs", "nprobe", 1, 1024, 6, 2, "nprobe=2"],
    ["IVF16384_HNSW32,SQ8", "IVF_HNSW,SQ", "nprobe", 16, 6144, 12, 16, "nprobe=16,efSearch=32"],
    ["HNSW32,Flat", "HNSW", "efSearch", 16, 16383, 6, 64, "efSearch=64"],
    ["HNSW32_PQ16", "HNSW", "efSearch", 16, 16383, 6, 64, "efSearch=64"],
    ["HNSW16,SQ8", "HNSW", "efSearch", 16, 16383, 6, 64, "efSearch=64"],
  ];
  for (const [key, family, name, lo, hi, boost, v, param] of cases) {
    test(key, () => {
      const t = tunableParameter(key);
      assert.equal(t.kind, "tunable");
      const p = t as TunableParameter;
      assert.deepEqual(
        { family: p.family, name: p.name, lo: p.values.lo, hi: p.values.hi, boost: p.boost, param: p.format(v) },
        { family, name, lo, hi, boost, param },
      );
    });
  }

  test("nothing to tune for exhaustive indices", () => {
    for (const key of ["Flat", "PCA64,Flat", "IDMap,Flat", "IDMap2,Flat", "PQ16", "OPQ16_64,PQ16x4fs", "SQ8", "L2norm,Flat"]) {
      assert.deepEqual(tunableParameter(key), { kind: "none" }, key);
    }
  });

  test("unknown families ask the caller to keep FAISS defaults", () => {
    for (const key of ["IVF1024,LSQ8x8", "IVF1024", "IVF1024,Flat,Foo"]) {
      assert.deepEqual(
        tunableParameter(key),
        { kind: "unknown", reason: `we don't have heuristics for that kind or index (${key})` },
        key,
      );
    }
  });

  test("factory families beyond the selection's: LSH exhaustive, NSG said out loud, IMI and IVF-NSG tune nprobe", () => {
    assert.deepEqual(tunableParameter("LSH"), { kind: "none" });
    assert.deepEqual(tunableParameter("PCA32,LSHrt,RFlat"), { kind: "none" });
    for (const key of ["NSG32,Flat", "NSG16_SQ8", "NSG"]) {
      assert.deepEqual(tunableParameter(key), {
        kind: "unknown",
        reason: "FAISS 1.7.3 cannot set NSG's search_L through ParameterSpace, so it stays at 16",
      }, key);
    }
    const imi = tunableParameter("IMI2x8,PQ16");
    assert.equal(imi.kind, "tunable");
    if (imi.kind !== "tunable") return;
    assert.deepEqual([imi.family, imi.name, imi.values, imi.nlist, imi.format(7)], ["IVF,PQ", "nprobe", { lo: 1, hi: 6144 }, 65536, "nprobe=7,ht=2048"]);
    const nsg = tunableParameter("IVF1024_NSG32,Flat");
    assert.equal(nsg.kind, "tunable");
    if (nsg.kind !== "tunable") return;
    assert.deepEqual([nsg.family, nsg.values, nsg.format(9)], ["IVF,Flat", { lo: 1, hi: 1024 }, "nprobe=9"]);
    const sq = tunableParameter("HNSW32_SQ8");
    assert.equal(sq.kind === "tunable" && sq.format(40), "efSearch=40");
    const rf = tunableParameter("PCA32,IVF64,SQ8,RFlat");
    assert.equal(rf.kind === "tunable" && rf.format(5), "nprobe=5");
  });

  test("nlist from the index wins over the key", () => {
    const t = tunableParameter("IVF1024,Flat", 2048) as TunableParameter;
    assert.deepEqual([t.nlist, t.values.lo, t.values.hi], [2048, 1, 2048]);
    const h = tunableParameter("IVF1024_HNSW32,PQ16x8", 4) as TunableParameter;
    assert.deepEqual([h.nlist, h.values.lo, h.values.hi], [4, 4, 4]);
    assert.equal((tunableParameter("HNSW32", 77) as TunableParameter).nlist, undefined);
    assert.throws(() => tunableParameter("IVF1024,Flat", 0), {
      message: "tuning: nlist must be an integer >= 1 (got 0 for key IVF1024,Flat)",
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Small helpers

describe("helpers", () => {
  test("coverageTarget and clampK", () => {
    assert.equal(coverageTarget(1), 0.99);
    assert.equal(coverageTarget(0.99), 0.99);
    assert.equal(coverageTarget(0.5), 0.475);
    assert.equal(coverageTarget(0), 0);
    assert.equal(clampK(20, 5), 5);
    assert.equal(clampK(20, 100), 20);
    assert.equal(clampK(20, 0), 0);
  });

  test("measurementBudgetMs", () => {
    assert.equal(measurementBudgetMs("coarse", 10, 6), 150);
    assert.equal(measurementBudgetMs("precise", 10, 6), 900);
    assert.equal(measurementBudgetMs("precise", 10, 12), 1000);
    assert.equal(measurementBudgetMs("coarse", 100, 6), 1000);
    assert.equal(measurementBudgetMs("coarse", 100, 6, 5000), 1500);
  });

  test("discreteBinarySearch: lower bound, O(log n) calls, never evaluates n", async () => {
    for (let n = 0; n <= 40; n++) {
      for (let t = 0; t <= n; t++) {
        let calls = 0;
        const r = await discreteBinarySearch((i) => {
          calls++;
          assert.ok(i >= 0 && i < n, `evaluated ${i} with n=${n}`);
          return i >= t;
        }, n);
        assert.equal(r, t);
        assert.ok(calls <= Math.ceil(Math.log2(n + 1)), `n=${n} t=${t}: ${calls} calls`);
      }
    }
    assert.equal(await discreteBinarySearch(async (i) => i >= 3, 10), 3);
  });

  test("backoffSequence follows Python's floor((1 - 0.95) * rank) steps down to 0", () => {
    assert.deepEqual(backoffSequence(0), [0]);
    assert.deepEqual(backoffSequence(3), [3, 2, 1, 0]);
    assert.deepEqual(backoffSequence(45).slice(0, 6), [45, 43, 41, 39, 38, 37]);
    for (const best of [1, 19, 20, 21, 100, 447, 16367]) {
      const seq = backoffSequence(best);
      assert.equal(seq[0], best);
      assert.equal(seq.at(-1), 0);
      for (let i = 1; i < seq.length; i++) {
        assert.equal(seq[i], seq[i - 1] - Math.max(1, Math.floor((1 - 0.95) * seq[i - 1])));
      }
    }
    // ~150 steps from the top of the efSearch range: Python measures each one, 1 s apiece
    assert.equal(backoffSequence(16367).length, 162);
  });
});

// ---------------------------------------------------------------------------------------------
// The search

const family = (lo: number, hi: number): TunableParameter => ({
  kind: "tunable",
  family: "test",
  name: "nprobe",
  values: { lo, hi },
  boost: 6,
  format: (v) => `nprobe=${v}`,
});
const HNSW = tunableParameter("HNSW32") as TunableParameter;

type Curve = (v: number) => number;
const one: Curve = () => 1;

/** Runs tuneParameters on noise-free curves and checks every measurement stays in range. */
async function tune(
  fam: TunableParameter,
  opts: { coverage?: Curve; coarse: Curve; precise?: Curve; bound: number; k?: number; ntotal?: number },
) {
  const events: TuningEvent[] = [];
  const ks: number[] = [];
  const result = await tuneParameters({
    family: fam,
    measureCoverage: (v, k) => {
      ks.push(k);
      assert.ok(v >= fam.values.lo && v <= fam.values.hi, `coverage of ${v} out of range`);
      return (opts.coverage ?? one)(v);
    },
    measureLatencyMs: async (v: number, phase: LatencyPhase) => {
      assert.ok(v >= fam.values.lo && v <= fam.values.hi, `latency of ${v} out of range`);
      return phase === "coarse" ? opts.coarse(v) : (opts.precise ?? opts.coarse)(v);
    },
    maxLatencyMs: opts.bound,
    k: opts.k ?? 20,
    ntotal: opts.ntotal ?? 1_000_000,
    onProgress: (e) => events.push(e),
  });
  return { result, events, ks };
}

/** Reference: the coverage step and the latency search by definition, with the coverage fix and the back-off walked step by step to rank 0. */
function reference(lo: number, hi: number, C: Curve, Lc: Curve, Lp: Curve, bound: number) {
  const maxC = C(hi);
  const target = maxC < 0.99 ? 0.95 * maxC : 0.99;
  let covMin = hi;
  for (let v = lo; v <= hi; v++) if (C(v) >= target) { covMin = v; break; }
  let best = covMin;
  for (let v = hi; v >= covMin; v--) if (Lc(v) < bound) { best = v; break; }
  if (best === covMin) return { value: best, reachedMinimum: Lc(covMin) >= bound, covMin };
  let r = best - covMin;
  while (Lp(covMin + r) >= bound && r > 0) r -= Math.max(1, Math.floor((1 - 0.95) * r));
  return { value: covMin + r, reachedMinimum: r === 0 && Lp(covMin) >= bound, covMin };
}

/** Python 2.18.0's measurement counts (coverage bisection incl. the max, bisection, linear back-off). */
function pythonCalls(n: number, _coarseBest: number, preciseSteps: number) {
  const log = (m: number) => Math.ceil(Math.log2(m + 1));
  return { coverage: 1 + log(n), coarse: log(n), precise: 1 + preciseSteps };
}

describe("tuneParameters", () => {
  test("largest value within the bound: efSearch, latency 0.1 ms per unit, bound 10 ms", async () => {
    const { result } = await tune(HNSW, { coarse: (v) => 0.1 * v, bound: 10 });
    assert.equal(result.value, 99);
    assert.equal(result.param, "efSearch=99");
    assert.equal(result.reachedMinimum, false);
    assert.equal(result.coverageMinimum, 16);
    assert.equal(result.latencyMs, 0.1 * 99);
    // Python: 15 coverage + 14 coarse + 1 precise measurements
    assert.deepEqual(result.calls, { coverage: 1, coarse: 4, precise: 1 });
    assert.deepEqual(
      result.trace.map((s) => [s.phase, s.value]),
      [["coverage", 16], ["coarse", 16383], ["coarse", 16], ["coarse", 100], ["coarse", 99], ["precise", 99]],
    );
  });

  test("coverage has priority: the coverage minimum even when slower than the bound", async () => {
    const { result, events } = await tune(family(1, 1000), {
      coverage: (v) => (v >= 500 ? 1 : 0.5),
      coarse: (v) => v * 0.1,
      bound: 10,
    });
    assert.equal(result.value, 500);
    assert.equal(result.coverageMinimum, 500);
    assert.equal(result.reachedMinimum, true);
    assert.equal(result.calls.precise, 0);
    assert.deepEqual(events.at(-1), { type: "latency-bound-unreachable", value: 500, latencyMs: 50 });
  });

  test("coverage off-by-one fixed: the first value meeting the target is the minimum", async () => {
    // Python would return 36 (one below the first satisfying value) when every value is too slow.
    const { result } = await tune(family(1, 100), { coverage: (v) => (v >= 37 ? 1 : 0.5), coarse: () => 99, bound: 10 });
    assert.equal(result.coverageMinimum, 37);
    assert.equal(result.value, 37);
    assert.equal(result.param, "nprobe=37");
    assert.equal(result.reachedMinimum, true);
  });

  test("coverage below 0.99 everywhere: target 0.95 × max, warning event", async () => {
    const { result, events } = await tune(family(1, 100), {
      coverage: (v) => (v >= 60 ? 0.5 : 0.4),
      coarse: () => 1,
      bound: 10,
    });
    assert.equal(result.coverageMinimum, 60);
    assert.equal(result.value, 100);
    assert.deepEqual(
      events.find((e) => e.type === "coverage-below-target"),
      { type: "coverage-below-target", maxCoverage: 0.5, target: 0.475, expectedNeighbours: 10 },
    );
  });

  test("k > ntotal is clamped and the clamped k is used for coverage", async () => {
    const { result, events, ks } = await tune(family(1, 10), { coarse: () => 1, bound: 10, k: 20, ntotal: 5 });
    assert.equal(result.k, 5);
    assert.deepEqual(new Set(ks), new Set([5]));
    assert.deepEqual(events[0], { type: "k-clamped", requestedK: 20, k: 5, ntotal: 5 });
  });

  test("empty index (ntotal = 0): no coverage step", async () => {
    const { result } = await tune(family(1, 10), { coarse: () => 1, bound: 10, ntotal: 0 });
    assert.equal(result.k, 0);
    assert.equal(result.calls.coverage, 0);
    assert.equal(result.value, 10);
  });

  test("flat curves: all fast → the largest value; all slow → the smallest, reachedMinimum", async () => {
    const fast = await tune(HNSW, { coarse: () => 0.01, bound: 10 });
    assert.equal(fast.result.value, 16383);
    assert.equal(fast.result.reachedMinimum, false);
    assert.deepEqual(fast.result.calls, { coverage: 1, coarse: 1, precise: 1 });
    const slow = await tune(HNSW, { coarse: () => 50, bound: 10 });
    assert.equal(slow.result.value, 16);
    assert.equal(slow.result.reachedMinimum, true);
    assert.equal(slow.result.latencyMs, 50);
    assert.deepEqual(slow.result.calls, { coverage: 1, coarse: 2, precise: 0 });
  });

  test("a latency exactly at the bound is too slow (Python: measured >= max_speed_ms)", async () => {
    const { result } = await tune(family(1, 100), { coarse: (v) => v, bound: 40 });
    assert.equal(result.value, 39);
  });

  test("a value range of one", async () => {
    const fam = tunableParameter("IVF8_HNSW32,Flat") as TunableParameter;
    const fast = await tune(fam, { coarse: () => 1, bound: 10 });
    assert.deepEqual([fast.result.value, fast.result.param, fast.result.reachedMinimum], [8, "nprobe=8,efSearch=16", false]);
    assert.deepEqual(fast.result.calls, { coverage: 1, coarse: 1, precise: 0 });
    const slow = await tune(fam, { coarse: () => 11, bound: 10 });
    assert.deepEqual([slow.result.value, slow.result.reachedMinimum], [8, true]);
  });

  test("precise phase slower than the coarse one: backs off along Python's 5 % steps", async () => {
    // coarse: 0.01 ms/unit → best 999; precise 3× slower → only ≤ 333 passes; Python walks ~22 steps
    const { result } = await tune(family(1, 5000), { coarse: (v) => 0.01 * v, precise: (v) => 0.03 * v, bound: 10 });
    const want = reference(1, 5000, one, (v) => 0.01 * v, (v) => 0.03 * v, 10);
    assert.equal(result.value, want.value);
    assert.ok(result.value <= 333 && result.value > 300, `${result.value}`);
    const steps = backoffSequence(999 - 1).findIndex((r) => 0.03 * (1 + r) < 10);
    assert.ok(steps > 15, `python would take ${steps + 1} precise calls`);
    assert.ok(result.calls.precise <= 2 * Math.ceil(Math.log2(steps + 1)) + 1, `${result.calls.precise} precise calls`);
  });

  test("precise phase never fast enough: back-off reaches the coverage minimum", async () => {
    const { result, events } = await tune(family(1, 1000), {
      coverage: (v) => (v >= 10 ? 1 : 0),
      coarse: (v) => 0.01 * v,
      precise: () => 20,
      bound: 10,
    });
    assert.equal(result.value, 10);
    assert.equal(result.reachedMinimum, true);
    assert.deepEqual(events.at(-1), { type: "latency-bound-unreachable", value: 10, latencyMs: 20 });
  });

  test("rejects a bad bound, k or ntotal; a bad measurement names the call", async () => {
    const base = { family: family(1, 3), measureCoverage: () => 1, measureLatencyMs: () => 1, k: 1, ntotal: 3 };
    await assert.rejects(tuneParameters({ ...base, maxLatencyMs: 0 }), {
      message: "tuning: maxLatencyMs must be a finite number > 0 (got 0)",
    });
    await assert.rejects(tuneParameters({ ...base, maxLatencyMs: 1, k: -1 }), {
      message: "tuning: k must be a non-negative integer (got -1)",
    });
    await assert.rejects(tuneParameters({ ...base, maxLatencyMs: 1, measureLatencyMs: () => Number.NaN }), {
      message: "tuning: measureLatencyMs(3, coarse) returned NaN (expected ms >= 0)",
    });
    await assert.rejects(tuneParameters({ ...base, maxLatencyMs: 1, family: family(5, 4) }), {
      message: "tuning: family test has an empty or invalid range 5..4",
    });
  });

  describe("matches the definition on a grid of monotone curves, in O(log range) calls", () => {
    const shapes: [string, (a: number, b: number) => Curve][] = [
      ["linear", (a, b) => (v) => a + b * v],
      ["quadratic", (a, b) => (v) => a + b * v * v * 1e-3],
      ["sqrt", (a, b) => (v) => a + b * 30 * Math.sqrt(v)],
      ["log", (a, b) => (v) => a + b * 100 * Math.log(v)],
      ["exponential", (a, b) => (v) => a + b * Math.exp(v / 700)],
      ["step", (a, b) => (v) => (v < 3000 * b ? a : a + 50)],
      ["staircase", (a, b) => (v) => a + Math.floor(v * b / 37)],
    ];
    const coverages: [string, Curve][] = [
      ["full", one],
      ["step@40", (v) => (v >= 40 ? 1 : 0.3)],
      ["ramp", (v) => Math.min(1, v / 2000)],
      ["capped", (v) => Math.min(0.6, v / 100)],
    ];
    const ranges: [number, number][] = [[16, 16383], [1, 1024], [16, 6144], [1, 2], [5, 5]];
    for (const [shapeName, shape] of shapes) {
      test(shapeName, async () => {
        for (const [lo, hi] of ranges) {
          const n = hi - lo + 1;
          for (const [covName, C] of coverages) {
            for (const [a, b] of [[0.05, 0.001], [0.5, 0.01], [2, 0.5]]) {
              for (const bound of [1, 3, 10, 50]) {
                for (const slowdown of [1, 1.04, 1.5]) {
                  const Lc = shape(a, b);
                  const Lp = (v: number) => slowdown * Lc(v);
                  const what = `${shapeName} ${lo}..${hi} cov=${covName} a=${a} b=${b} bound=${bound} x${slowdown}`;
                  const { result } = await tune(family(lo, hi), { coverage: C, coarse: Lc, precise: Lp, bound });
                  const want = reference(lo, hi, C, Lc, Lp, bound);
                  assert.deepEqual(
                    [result.value, result.reachedMinimum, result.coverageMinimum],
                    [want.value, want.reachedMinimum, want.covMin],
                    what,
                  );
                  const log = Math.ceil(Math.log2(n + 1));
                  assert.ok(result.calls.coverage <= 2 + log, `${what}: ${result.calls.coverage} coverage calls`);
                  assert.ok(result.calls.coarse <= Math.ceil(Math.log2(Math.max(1, hi - lo))) + 6, `${what}: ${result.calls.coarse} coarse calls`);
                  assert.ok(result.calls.precise <= 1 + 2 * Math.ceil(Math.log2(backoffSequence(n).length + 1)), `${what}: precise`);
                  if (slowdown === 1) assert.ok(result.calls.precise <= 1, `${what}: ${result.calls.precise} precise calls`);
                }
              }
            }
          }
        }
      });
    }
  });

  test("fewer measurements than Python on typical efSearch and nprobe curves", async () => {
    const cases: [TunableParameter, Curve, number, number][] = [
      // family, latency curve, bound, max coarse calls
      [HNSW, (v) => 0.3 + 0.02 * v, 10, 4],
      [HNSW, (v) => 0.3 + 0.5 * Math.sqrt(v), 10, 8],
      [HNSW, (v) => 0.2 + 0.02 * Math.min(v, 3000), 10, 5], // saturates when efSearch ≥ ntotal
      [tunableParameter("IVF4096,Flat") as TunableParameter, (v) => 0.1 + 0.04 * v, 5, 4],
      [tunableParameter("OPQ64_256,IVF65536_HNSW32,PQ64x8") as TunableParameter, (v) => 0.5 + 0.003 * v, 10, 4],
    ];
    for (const [fam, curve, bound, maxCoarse] of cases) {
      const { result } = await tune(fam, { coarse: curve, bound });
      const py = pythonCalls(fam.values.hi - fam.values.lo + 1, result.value, 0);
      assert.ok(result.calls.coarse <= maxCoarse, `${fam.family}: ${result.calls.coarse} coarse calls (Python ${py.coarse})`);
      assert.equal(result.calls.coverage, 1, `${fam.family}: Python ${py.coverage} coverage calls`);
      assert.equal(result.calls.precise, 1);
    }
  });
});

describe("largestWithinBound", () => {
  test("boundary of step and linear curves", async () => {
    assert.deepEqual(await largestWithinBound((v) => v * 0.1, 1, 1000, 10), { value: 99, withinBound: true });
    assert.deepEqual(await largestWithinBound((v) => (v > 700 ? 99 : 0), 1, 1000, 10), { value: 700, withinBound: true });
    assert.deepEqual(await largestWithinBound(() => 99, 1, 1000, 10), { value: 1, withinBound: false });
    assert.deepEqual(await largestWithinBound(() => 0, 1, 1000, 10), { value: 1000, withinBound: true });
    assert.deepEqual(await largestWithinBound((v) => (v >= 2 ? Infinity : 0), 1, 1000, 10), { value: 1, withinBound: true });
  });

  test("every boundary of a worst-case curve within ⌈log2 n⌉ + 6 calls", async () => {
    // a latency that jumps from ~0 to a huge value makes interpolation useless: bisection must take over
    const n = 5000;
    for (let edge = 1; edge <= n; edge += 37) {
      for (const [lowMs, highMs] of [[0, 1e9], [9.999, 1e9], [0, 10]]) {
        let calls = 0;
        const r = await largestWithinBound((v) => {
          calls++;
          return v <= edge ? lowMs : highMs;
        }, 1, n, 10);
        assert.deepEqual(r, { value: edge, withinBound: true });
        assert.ok(calls <= Math.ceil(Math.log2(n - 1)) + 6, `edge ${edge}: ${calls} calls`);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Latency statistics (lib/latency_stats.ts)

describe("latency statistics", () => {
  test("mean and numpy-linear quantiles (values from numpy 2.4)", () => {
    const a = [0.31, 0.12, 5.2, 0.3, 0.29, 0.33, 1.7, 0.28, 0.27, 0.41, 0.5];
    assert.equal(quantileLinear([1, 2, 3, 4], 0.99), 3.9699999999999998);
    assert.equal(quantileLinear(a, 0.99), 4.850000000000001);
    assert.equal(quantileLinear(a, 0.5), 0.31);
    assert.equal(quantileLinear([7], 0.99), 7);
    assert.equal(quantileLinear([3, 1], 0), 1);
    assert.equal(quantileLinear([3, 1], 1), 3);
    assert.equal(mean(a), 0.8827272727272727);
    assert.deepEqual(latencySummary(Float64Array.of(1, 2, 3, 4)), { avgMs: 2.5, p99Ms: 3.9699999999999998 });
    assert.ok(Number.isNaN(mean([])));
    assert.throws(() => quantileLinear([1], 1.5), { message: "latency: quantile must be in [0, 1] (got 1.5)" });
  });

  test("speedTestSearches cycles the queries to at least 2000 searches", () => {
    assert.equal(speedTestSearches(1000), 2000);
    assert.equal(speedTestSearches(3000), 3000);
    assert.equal(speedTestSearches(3), 2001);
    assert.equal(speedTestSearches(7), 2002);
    assert.equal(speedTestSearches(1), 2000);
    assert.equal(speedTestSearches(4000), 4000);
  });

  test("runSpeedTest stops after the timeout and cycles queries", () => {
    let clock = 0;
    const seen: number[] = [];
    const total = runSpeedTest({
      nQueries: 3,
      searchOne: (i) => {
        seen.push(i);
        clock += 2;
      },
      now: () => clock,
      timeoutMs: 9,
    });
    assert.deepEqual(seen, [0, 1, 2, 0, 1]);
    assert.deepEqual(total, { searches: 5, elapsedMs: 10, msPerQuery: 2 });

    clock = 0;
    const each = runSpeedTest({ nQueries: 3, searchOne: (i) => (clock += i + 1), now: () => clock, timeoutMs: 9, perSearch: true });
    // 1+2+3+1+2 = 9 is not past the 9 ms timeout yet: the sixth search runs
    assert.deepEqual(Array.from(each.samplesMs!), [1, 2, 3, 1, 2, 3]);
    assert.equal(each.searches, 6);
    assert.equal(each.msPerQuery, 2);
  });

  test("runSpeedTest stops when the cycled list is exhausted", () => {
    let clock = 0;
    const r = runSpeedTest({ nQueries: 600, searchOne: () => (clock += 0.001), now: () => clock, timeoutMs: 1e9 });
    assert.equal(r.searches, 2400);
  });
});
