import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { estimatedIndexSizeBytes, pythonEstimatedIndexSizeBytes } from "../lib/plan/index_metadata.ts";
import {
  optimalIndexKeys,
  optimalIvfKeys,
  optimalNbClusters,
  noIndexFitsMessage,
  optimalQuantizationKeys,
  type SelectionOptions,
  smallestWorkableBudget,
} from "../lib/plan/selection.ts";
import { parseMemory } from "../lib/plan/units.ts";

const GiB = 2 ** 30;

describe("optimalNbClusters (Python get_optimal_nb_clusters, half-to-even rounding)", () => {
  const cases: Array<[number, number[]]> = [
    [10, [16, 32, 16, 13]],
    [1000, [128, 256, 128, 126]],
    [5000, [256, 512, 256, 283]],
    [10000, [512, 1024, 512, 400]],
    [50000, [1024, 2048, 1024, 894]],
    [100000, [1024, 2048, 1024, 1265]],
    [999999, [4096, 8192, 4096, 4000]],
    // log2(4·√n) is exactly x.5: half-to-even picks the even exponent (JS Math.round would not).
    [8192, [256, 512, 256, 362]],
    [131072, [1024, 2048, 1024, 1448]],
    [512, [64, 128, 64, 91]],
    [2, [4, 8, 4, 6]],
    [2000, [128, 256, 128, 179]],
    [1_000_000, [16384, 65536]],
    [9_999_999, [16384, 65536]],
    [10_000_000, [65536, 131072, 262144]],
    [299_999_999, [65536, 131072, 262144]],
    [300_000_000, [131072, 262144, 65536, 1048576]],
    [5_550_336_490, [131072, 262144, 65536, 1048576]],
  ];
  for (const [n, want] of cases) {
    test(`n=${n} → [${want}]`, () => assert.deepEqual(optimalNbClusters(n), want));
  }
  test("optimalIvfKeys keeps Python's duplicates", () =>
    assert.deepEqual(optimalIvfKeys(5000), ["IVF256,Flat", "IVF512,Flat", "IVF256,Flat", "IVF283,Flat"]));
});

describe("optimalQuantizationKeys (exactly Python get_optimal_quantization)", () => {
  test("largest PQ first, then cluster counts in preference order; IVF_HNSW32 from 1000 clusters", () =>
    assert.deepEqual(optimalQuantizationKeys(100000, 100).slice(0, 5), [
      "OPQ64_128,IVF1024_HNSW32,PQ64x8",
      "OPQ64_128,IVF2048_HNSW32,PQ64x8",
      "OPQ64_128,IVF1024_HNSW32,PQ64x8",
      "OPQ64_128,IVF1265_HNSW32,PQ64x8",
      "OPQ48_144,IVF1024_HNSW32,PQ48x8",
    ]));
  test("small cluster counts use a flat coarse quantizer", () =>
    assert.deepEqual(optimalQuantizationKeys(20000, 16, { forceQuantizationValue: 8 }), [
      "OPQ8_24,IVF512,PQ8x8",
      "OPQ8_24,IVF1024_HNSW32,PQ8x8",
      "OPQ8_24,IVF512,PQ8x8",
      "OPQ8_24,IVF566,PQ8x8",
    ]));
  test("y = (min(d // pq, 6) + 1)·pq may exceed d (d=64, pq=48 → 96; d=768, pq=256 → 1024)", () => {
    assert.ok(optimalQuantizationKeys(2e7, 64).includes("OPQ48_96,IVF65536_HNSW32,PQ48x8"));
    assert.equal(optimalQuantizationKeys(2e7, 768)[0], "OPQ256_1024,IVF65536_HNSW32,PQ256x8");
    assert.equal(optimalQuantizationKeys(2e7, 4096)[0], "OPQ256_1792,IVF65536_HNSW32,PQ256x8");
  });
  test("pq must be strictly below d", () => {
    assert.deepEqual(optimalQuantizationKeys(2e7, 4), []);
    assert.deepEqual(
      optimalQuantizationKeys(2e7, 5).map((k) => k.split(",")[2]),
      ["PQ4x8", "PQ4x8", "PQ4x8"],
    );
  });
  test("budget keeps n·(pq+8) ≤ budget, boundary included", () => {
    // 20M×64: PQ4 needs 20M·12 = 240,000,000 bytes of codes + ids.
    assert.equal(optimalQuantizationKeys(2e7, 64, { budgetBytes: 240_000_000 }).length, 3);
    assert.equal(optimalQuantizationKeys(2e7, 64, { budgetBytes: 239_999_999 }).length, 0);
  });
});

/** A selection case: Python 2.18.0's values (obtained by running the Python code) and ours, with the reason they differ. */
interface Row {
  n: number;
  d: number;
  budget: string;
  flags: SelectionOptions;
  python: { key?: string; count: number; size?: number; keys?: string[] };
  ours: { key?: string; count: number; size?: number; keys?: string[] };
  why?: string;
}

const MMAP = { shouldBeMemoryMappable: true };
const ROWS: Row[] = [
  { n: 500, d: 128, budget: "16G", flags: {}, python: { key: "Flat", count: 1, size: 256000 }, ours: { key: "Flat", count: 1, size: 256000 } },
  {
    n: 500, d: 128, budget: "16G", flags: MMAP,
    python: { key: "IVF1,Flat", count: 1, size: 256512 }, ours: { key: "IVF1,Flat", count: 1, size: 260520 },
    why: "size: IVF-Flat ids (8n) and list table counted",
  },
  {
    n: 5000, d: 128, budget: "16G", flags: {},
    python: { key: "HNSW15", count: 1, size: 3160000 }, ours: { key: "HNSW15", count: 1, size: 3241437 },
    why: "size: HNSW upper levels, levels and offsets counted",
  },
  {
    n: 5000, d: 128, budget: "16G", flags: MMAP,
    python: { key: "IVF256,Flat", count: 4, size: 2691072 }, ours: { key: "IVF256,Flat", count: 3, size: 2733120 },
    why: "count: duplicate IVF256 removed; size: ids counted",
  },
  {
    n: 100000, d: 128, budget: "16G", flags: {},
    python: { key: "HNSW32", count: 1, size: 76800000 }, ours: { key: "HNSW32", count: 1, size: 78412912 },
    why: "size: HNSW upper levels counted",
  },
  {
    n: 100000, d: 128, budget: "16G", flags: MMAP,
    python: { key: "IVF1024,Flat", count: 4, size: 51724288 }, ours: { key: "IVF1024,Flat", count: 3, size: 52532480 },
    why: "count: duplicate removed; size: ids counted",
  },
  {
    n: 100000, d: 768, budget: "100M", flags: {},
    python: { key: "OPQ256_1024,IVF1024_HNSW32,PQ256x8", count: 36, size: 30856448 },
    ours: { key: "OPQ256_1024,IVF1024_HNSW32,PQ256x8", count: 27, size: 35075469 },
    why: "count: 9 duplicates removed; size: OPQ 4·d·out_d, centroids in out_d, codebooks",
  },
  {
    n: 500000, d: 512, budget: "1G", flags: {},
    python: { key: "HNSW12", count: 1, size: 1072000000 }, ours: { key: "HNSW10", count: 1, size: 1072222231 },
    why: "key: HNSW12 really takes 1,080,181,827 B > 1 GiB, HNSW10 is the largest M that fits",
  },
  {
    n: 999999, d: 512, budget: "50G", flags: MMAP,
    python: { key: "IVF4096,Flat", count: 4, size: 2056386560 }, ours: { key: "IVF4096,Flat", count: 3, size: 2064419320 },
    why: "count: duplicate removed; size: ids counted",
  },
  {
    n: 1_000_000, d: 512, budget: "50G", flags: MMAP,
    python: { key: "OPQ256_768,IVF16384_HNSW32,PQ256x8", count: 18, size: 302535168 },
    ours: { key: "OPQ256_768,IVF16384_HNSW32,PQ256x8", count: 18, size: 321280587 },
    why: "size: OPQ matrix, centroids in out_d, HNSW quantizer levels, codebooks",
  },
  {
    n: 1_000_000, d: 512, budget: "50G", flags: { ...MMAP, useGpu: true },
    python: { key: "IVF16384,Flat", count: 2, size: 2081554432 }, ours: { key: "IVF16384,Flat", count: 2, size: 2089685504 },
    why: "size: ids counted",
  },
  {
    n: 10_000_000, d: 512, budget: "16G", flags: {},
    python: { key: "OPQ256_768,IVF65536_HNSW32,PQ256x8", count: 27, size: 2791781376 },
    ours: { key: "OPQ256_768,IVF65536_HNSW32,PQ256x8", count: 27, size: 2862044433 },
    why: "size: OPQ matrix, centroids in out_d, HNSW quantizer levels, codebooks",
  },
  {
    n: 10_000_000, d: 768, budget: "4G", flags: {},
    python: { key: "OPQ256_1024,IVF65536_HNSW32,PQ256x8", count: 27, size: 2859152384 },
    ours: { key: "OPQ256_1024,IVF65536_HNSW32,PQ256x8", count: 27, size: 2930988305 },
    why: "size: OPQ matrix, centroids in out_d, HNSW quantizer levels, codebooks",
  },
  {
    n: 100_000_000, d: 512, budget: "16G", flags: {},
    python: { key: "OPQ128_640,IVF65536_HNSW32,PQ128x8", count: 24, size: 13751322624 },
    ours: { key: "OPQ128_640,IVF65536_HNSW32,PQ128x8", count: 24, size: 13788096785 },
    why: "size: OPQ matrix, centroids in out_d, HNSW quantizer levels, codebooks",
  },
  {
    n: 400_000_000, d: 512, budget: "16G", flags: {},
    python: { key: "OPQ32_224,IVF131072_HNSW32,PQ32x8", count: 20, size: 16302018560 },
    ours: { key: "OPQ32_224,IVF131072_HNSW32,PQ32x8", count: 19, size: 16154845721 },
    why: "count: OPQ32 with 2^20 clusters really exceeds 16 GiB; size: centroids in out_d=224 < d",
  },
  {
    n: 1_000_000_000, d: 768, budget: "50G", flags: {},
    python: { key: "OPQ32_224,IVF131072_HNSW32,PQ32x8", count: 20, size: 40436236288 },
    ours: { key: "OPQ32_224,IVF131072_HNSW32,PQ32x8", count: 20, size: 40155075097 },
    why: "size: centroids in out_d=224 < d",
  },
  {
    n: 5_550_336_490, d: 768, budget: "200G", flags: {},
    python: { key: "OPQ24_168,IVF131072_HNSW32,PQ24x8", count: 16, size: 178046991424 },
    ours: { key: "OPQ24_168,IVF131072_HNSW32,PQ24x8", count: 16, size: 177736253273 },
    why: "size: centroids in out_d=168 < d",
  },
  { n: 20_000_000, d: 64, budget: "100M", flags: {}, python: { count: 0 }, ours: { count: 0 } },
  {
    n: 300000, d: 512, budget: "1G", flags: MMAP,
    python: { key: "IVF2048,Flat", count: 4, size: 618594304 }, ours: { key: "IVF2048,Flat", count: 3, size: 621010688 },
    why: "count: duplicate removed; size: ids counted",
  },
  {
    n: 300000, d: 512, budget: "1G", flags: { ...MMAP, makeDirectMap: true },
    python: { key: "IVF2048,Flat", count: 4, size: 620994304 }, ours: { key: "IVF2048,Flat", count: 3, size: 623410688 },
    why: "count: duplicate removed; size: ids counted",
  },
  {
    n: 2000, d: 16, budget: "1G", flags: MMAP,
    python: { count: 4, keys: ["IVF128,Flat", "IVF256,Flat", "IVF128,Flat", "IVF179,Flat"] },
    ours: { count: 3, keys: ["IVF128,Flat", "IVF256,Flat", "IVF179,Flat"] },
    why: "count: duplicate removed",
  },
];

function describeRow(r: Row): string {
  const flags = Object.entries(r.flags).filter(([, v]) => v).map(([k]) => k).join("+") || "–";
  return `${r.n}×${r.d} ${r.budget} ${flags}`;
}

function checkRow(r: Row, pythonCompatible: boolean): void {
  const want = pythonCompatible ? r.python : r.ours;
  const size = pythonCompatible ? pythonEstimatedIndexSizeBytes : estimatedIndexSizeBytes;
  const keys = optimalIndexKeys(r.n, r.d, parseMemory(r.budget), { ...r.flags, pythonCompatible });
  assert.equal(keys.length, want.count);
  if (want.keys) assert.deepEqual(keys, want.keys);
  if (want.key) assert.equal(keys[0], want.key);
  if (want.size !== undefined) assert.equal(size(keys[0], r.n, r.d, r.flags.makeDirectMap), want.size);
}

describe("Python's own results: python-compatible selection and Python size estimate (exact)", () => {
  for (const r of ROWS) {
    test(`${describeRow(r)} → ${r.python.key ?? r.python.keys?.[0] ?? "(empty list)"} ×${r.python.count}`, () => checkRow(r, true));
  }
});

describe("the same cases, default selection and corrected size (intended differences named)", () => {
  for (const r of ROWS) {
    const same = JSON.stringify(r.python) === JSON.stringify(r.ours);
    const name = `${describeRow(r)} → ${r.ours.key ?? r.ours.keys?.[0] ?? "(empty list)"} ×${r.ours.count}`;
    test(same ? `${name} (same as Python)` : `${name} (${r.why})`, () => {
      checkRow(r, false);
      if (r.ours.size !== undefined) assert.ok(r.ours.size <= parseMemory(r.budget), "corrected size fits the budget");
    });
  }
});

describe("selection rules, in Python's order", () => {
  test("HNSW wins whenever it fits, whatever n (500M×64, 200G → HNSW21)", () => {
    assert.deepEqual(optimalIndexKeys(5e8, 64, 200 * GiB, { pythonCompatible: true }), ["HNSW21"]);
    const ours = optimalIndexKeys(5e8, 64, 200 * GiB);
    assert.equal(ours.length, 1);
    assert.match(ours[0], /^HNSW(1[0-9]|2[01])$/);
    const m = Number(ours[0].slice(4));
    assert.ok(estimatedIndexSizeBytes(ours[0], 5e8, 64)! <= 200 * GiB);
    assert.ok(estimatedIndexSizeBytes(`HNSW${m + 1}`, 5e8, 64)! > 200 * GiB);
  });
  test("HNSW M is capped at 32", () => assert.deepEqual(optimalIndexKeys(20000, 8, 16 * GiB), ["HNSW32"]));
  test("forcePq bypasses the budget in Python", () =>
    assert.deepEqual(optimalIndexKeys(20000, 64, 1, { forcePq: 16, pythonCompatible: true }), optimalQuantizationKeys(20000, 64, { forceQuantizationValue: 16 })));
  test("forcePq candidates must fit by default", () => {
    assert.deepEqual(optimalIndexKeys(20000, 64, 1, { forcePq: 16 }), []);
    assert.deepEqual(optimalIndexKeys(20000, 64, 16 * GiB, { forcePq: 16 }), ["OPQ16_80,IVF512,PQ16x8", "OPQ16_80,IVF1024_HNSW32,PQ16x8", "OPQ16_80,IVF566,PQ16x8"]);
  });
  test("small sets ignore the budget in Python but not by default", () => {
    assert.deepEqual(optimalIndexKeys(500, 128, 1024, { pythonCompatible: true }), ["Flat"]);
    assert.deepEqual(optimalIndexKeys(500, 128, 1024), []);
    assert.deepEqual(optimalIndexKeys(5000, 128, 1024, { pythonCompatible: true }), ["HNSW15"]);
    assert.deepEqual(optimalIndexKeys(5000, 128, 1024), []);
  });
  test("thresholds are options", () => {
    assert.deepEqual(optimalIndexKeys(500, 128, 16 * GiB, { flatThreshold: 100 }), ["HNSW15"]);
    assert.deepEqual(optimalIndexKeys(5000, 128, 16 * GiB, { quantizationThreshold: 1000 }), ["HNSW32"]);
  });
  test("every default candidate fits the budget by the corrected estimate (grid)", () => {
    for (const n of [10, 999, 5000, 20000, 300000, 999999, 3_000_000, 5e7, 5e8]) {
      for (const d of [8, 64, 512, 1024]) {
        for (const budget of ["1M", "100M", "1G", "16G", "200G"]) {
          for (const flags of [{}, MMAP, { ...MMAP, useGpu: true }, { makeDirectMap: true }]) {
            const b = parseMemory(budget);
            for (const key of optimalIndexKeys(n, d, b, flags)) {
              assert.ok(estimatedIndexSizeBytes(key, n, d, "makeDirectMap" in flags)! <= b, `${n}×${d} ${budget} ${key}`);
            }
          }
        }
      }
    }
  });
  test("default candidates are a duplicate-free subset of Python's when the rule is the same", () => {
    const py = optimalIndexKeys(3_000_000, 512, 16 * GiB, { pythonCompatible: true });
    const ours = optimalIndexKeys(3_000_000, 512, 16 * GiB);
    assert.equal(new Set(ours).size, ours.length);
    assert.ok(ours.every((k) => py.includes(k)));
  });
});

describe("Python AutoFaiss's tests/unit/test_optimize.py", () => {
  test("every key returned with should_be_memory_mappable contains IVF (empty list allowed)", () => {
    for (const n of [10, 900, 9000, 90000, 900000, 9_000_000]) {
      for (const d of [10, 100]) {
        for (const budget of ["1K", "1M", "1G"]) {
          for (const pythonCompatible of [true, false]) {
            for (const key of optimalIndexKeys(n, d, parseMemory(budget), { shouldBeMemoryMappable: true, pythonCompatible })) {
              assert.ok(key.includes("IVF"), `${n}×${d} ${budget}: ${key}`);
            }
          }
        }
      }
    }
  });
  for (const pythonCompatible of [true, false]) {
    const mode = pythonCompatible ? "python-compatible" : "default";
    test(`d=512, 50G, memory-mappable (${mode})`, () => {
      const b = parseMemory("50G");
      assert.equal(optimalIndexKeys(999_999, 512, b, { ...MMAP, pythonCompatible })[0], "IVF4096,Flat");
      assert.equal(optimalIndexKeys(1_000_000, 512, b, { ...MMAP, pythonCompatible })[0], "OPQ256_768,IVF16384_HNSW32,PQ256x8");
      assert.equal(optimalIndexKeys(1_000_000, 512, b, { ...MMAP, useGpu: true, pythonCompatible })[0], "IVF16384,Flat");
    });
  }
});

describe("smallestWorkableBudget", () => {
  const works = (n: number, d: number, b: number, o: SelectionOptions) => optimalIndexKeys(n, d, b, o).length > 0;
  test("20M×64 (where Python returns an empty list under 100M), python-compatible: 240,000,000 = 20M·(4+8)", () => {
    const o = { pythonCompatible: true };
    assert.equal(works(2e7, 64, parseMemory("100M"), o), false);
    const x = smallestWorkableBudget(2e7, 64, o)!;
    assert.equal(x, 240_000_000);
    assert.equal(works(2e7, 64, x, o), true);
    assert.equal(works(2e7, 64, x - 1, o), false);
    assert.deepEqual(optimalIndexKeys(2e7, 64, x, o), ["OPQ4_28,IVF65536_HNSW32,PQ4x8", "OPQ4_28,IVF131072_HNSW32,PQ4x8", "OPQ4_28,IVF262144_HNSW32,PQ4x8"]);
  });
  test("20M×64, default: the corrected size of the cheapest PQ4 candidate", () => {
    const x = smallestWorkableBudget(2e7, 64)!;
    assert.equal(works(2e7, 64, x, {}), true);
    assert.equal(works(2e7, 64, x - 1, {}), false);
    assert.deepEqual(optimalIndexKeys(2e7, 64, x), ["OPQ4_28,IVF65536_HNSW32,PQ4x8"]);
    assert.equal(x, estimatedIndexSizeBytes("OPQ4_28,IVF65536_HNSW32,PQ4x8", 2e7, 64));
  });
  test("boundary holds for other shapes and flags", () => {
    const shapes: Array<[number, number, SelectionOptions]> = [
      [500, 128, {}], [5000, 128, MMAP], [300000, 512, { ...MMAP, makeDirectMap: true }], [5e8, 64, {}],
      [3_000_000, 768, MMAP], [1e9, 1024, {}], [50000, 512, {}],
    ];
    for (const [n, d, o] of shapes) {
      for (const pythonCompatible of [true, false]) {
        const opts = { ...o, pythonCompatible };
        const x = smallestWorkableBudget(n, d, opts);
        assert.ok(x !== null && x >= 0);
        assert.equal(works(n, d, x, opts), true, `${n}×${d}`);
        if (x > 0) assert.equal(works(n, d, x - 1, opts), false, `${n}×${d}`);
      }
    }
  });
  test("0 when Python ignores the budget (n < 1000)", () => assert.equal(smallestWorkableBudget(500, 128, { pythonCompatible: true }), 0));
  test("null when no budget works: memory-mappable, n ≥ 1M and d ≤ 4 (no PQ size below d)", () =>
    assert.equal(smallestWorkableBudget(2e7, 4, MMAP), null));
});

describe("noIndexFitsMessage", () => {
  test("names budget, shape and the smallest workable budget", () => {
    assert.equal(
      noIndexFitsMessage(2e7, 64, parseMemory("100M"), { pythonCompatible: true }),
      "selection: no index fits max_index_memory_usage=100.0MB for 20000000×64 vectors; the smallest budget that works is 228.9MB (240000000B)",
    );
    const x = smallestWorkableBudget(2e7, 64)!;
    assert.ok(noIndexFitsMessage(2e7, 64, parseMemory("100M")).endsWith(`(${x}B)`));
    assert.equal(optimalIndexKeys(2e7, 64, parseMemory(`${x}B`)).length, 1);
  });
  test("says so when no budget works", () =>
    assert.equal(
      noIndexFitsMessage(2e7, 4, GiB, MMAP),
      "selection: no index fits max_index_memory_usage=1.0GB for 20000000×4 vectors; no budget works with these options",
    ));
});
