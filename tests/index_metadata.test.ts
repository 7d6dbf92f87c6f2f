import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  estimatedIndexSizeBytes,
  hnswGraphBytes,
  parseIndexKey,
  parsePythonIndexKey,
  pythonEstimatedIndexSizeBytes,
  pythonTrainingMemoryBytes,
  trainingMemoryBytes,
} from "../lib/plan/index_metadata.ts";

describe("parsePythonIndexKey (Python's regex order)", () => {
  const cases: Array<[string, ReturnType<typeof parsePythonIndexKey>]> = [
    ["OPQ256_768,IVF16384,PQ256x8", { type: "OPQ_IVF_PQ", params: { mOpq: 256, outD: 768, ncentroids: 16384, pq: 256, nbits: 8 } }],
    ["OPQ16_64,IVF256,PQ16x4fs", { type: "OPQ_IVF_PQ", params: { mOpq: 16, outD: 64, ncentroids: 256, pq: 16, nbits: 4 } }],
    ["OPQ16_64,IVF256,PQ16", { type: "OPQ_IVF_PQ", params: { mOpq: 16, outD: 64, ncentroids: 256, pq: 16, nbits: 8 } }],
    [
      "OPQ256_768,IVF65536_HNSW32,PQ256x8",
      { type: "OPQ_IVF_HNSW_PQ", params: { mOpq: 256, outD: 768, ncentroids: 65536, mHnsw: 32, pq: 256, nbits: 8 } },
    ],
    ["Pad128,IVF4096_HNSW32,PQ64x4", { type: "PAD_IVF_HNSW_PQ", params: { outD: 128, ncentroids: 4096, mHnsw: 32, pq: 64, nbits: 4 } }],
    ["HNSW15", { type: "HNSW", params: { mHnsw: 15 } }],
    // Python's bug, kept in the Python model: its `HNSW\d+` pattern also matches IVF_HNSW keys, and M is
    // the first integer of the key.
    ["IVF4096_HNSW32,Flat", { type: "HNSW", params: { mHnsw: 4096 } }],
    ["IVF1,Flat", { type: "IVF_FLAT", params: { ncentroids: 1 } }],
    ["Flat", { type: "FLAT", params: {} }],
    ["IVF256,PQ16", { type: "NOT_SUPPORTED", params: {} }],
    ["IVF256,SQ8", { type: "NOT_SUPPORTED", params: {} }],
    ["flat", { type: "NOT_SUPPORTED", params: {} }],
  ];
  for (const [key, want] of cases) {
    test(key, () => assert.deepEqual(parsePythonIndexKey(key), want));
  }
});

describe("pythonEstimatedIndexSizeBytes (Python's model, exact)", () => {
  const cases: Array<[string, number, number, boolean, number]> = [
    ["Flat", 500, 128, false, 4 * 500 * 128],
    ["HNSW15", 5000, 128, false, 4 * 5000 * 128 + 8 * 5000 * 15],
    ["IVF1024,Flat", 100000, 128, false, 4 * 100000 * 128 + 4 * 1024 * 128],
    ["IVF2048,Flat", 300000, 512, true, 8 * 300000 + 4 * 300000 * 512 + 4 * 2048 * 512],
    [
      "OPQ256_768,IVF65536_HNSW32,PQ256x8",
      10_000_000,
      512,
      false,
      10_000_000 * (256 + 8) + 4 * 65536 * 512 + 8 * 65536 * 32 + 4 * 256 * 768,
    ],
    ["OPQ16_64,IVF256,PQ16x4", 20000, 64, true, 8 * 20000 + 20000 * (8 + 8) + 4 * 256 * 64 + 4 * 16 * 64],
    ["Pad128,IVF4096_HNSW32,PQ64", 20000, 100, false, 20000 * (64 + 8) + 4 * 4096 * 100 + 8 * 4096 * 32],
    ["IVF4096_HNSW32,Flat", 1000, 64, false, 4 * 1000 * 64 + 8 * 1000 * 4096],
    ["IVF256,PQ16", 1000, 64, false, -1],
  ];
  for (const [key, n, d, dm, want] of cases) {
    test(`${key} n=${n} d=${d}${dm ? " direct map" : ""} = ${want}`, () =>
      assert.equal(pythonEstimatedIndexSizeBytes(key, n, d, dm), want));
  }
});

describe("parseIndexKey (corrected structural parsing)", () => {
  const cases: Array<[string, Omit<ReturnType<typeof parseIndexKey>, "key">]> = [
    ["Flat", { family: "FLAT" }],
    ["HNSW32", { family: "HNSW_FLAT", hnswM: 32 }],
    ["HNSW32,Flat", { family: "HNSW_FLAT", hnswM: 32 }],
    ["IVF4096,Flat", { family: "IVF_FLAT", ncentroids: 4096 }],
    ["IVF4096_HNSW32,Flat", { family: "IVF_FLAT", ncentroids: 4096, quantizerHnswM: 32 }],
    ["IVF256,PQ16", { family: "IVF_PQ", ncentroids: 256, pq: { m: 16, nbits: 8, fastScan: false } }],
    ["IVF256,PQ16x4fs", { family: "IVF_PQ", ncentroids: 256, pq: { m: 16, nbits: 4, fastScan: true } }],
    ["IVF256,PQ16x4fsr", { family: "IVF_PQ", ncentroids: 256, pq: { m: 16, nbits: 4, fastScan: true } }],
    [
      "OPQ16_64,IVF65536_HNSW32,PQ16x4fs",
      {
        family: "IVF_PQ",
        transform: { kind: "OPQ", m: 16, outD: 64 },
        ncentroids: 65536,
        quantizerHnswM: 32,
        pq: { m: 16, nbits: 4, fastScan: true },
      },
    ],
    [
      "OPQ32,IVF1024,PQ32x10",
      { family: "IVF_PQ", transform: { kind: "OPQ", m: 32, outD: undefined }, ncentroids: 1024, pq: { m: 32, nbits: 10, fastScan: false } },
    ],
    [
      "Pad128,IVF4096_HNSW32,PQ64",
      {
        family: "IVF_PQ",
        transform: { kind: "Pad", outD: 128 },
        ncentroids: 4096,
        quantizerHnswM: 32,
        pq: { m: 64, nbits: 8, fastScan: false },
      },
    ],
    ["PQ16", { family: "PQ", pq: { m: 16, nbits: 8, fastScan: false } }],
    ["PQ32x4fs", { family: "PQ", pq: { m: 32, nbits: 4, fastScan: true } }],
    ["PQ16x8fs", { family: "UNSUPPORTED" }],
    ["IVF256,SQ8", { family: "UNSUPPORTED" }],
    ["IMI2x8,PQ16", { family: "UNSUPPORTED" }],
    ["HNSW32,PQ16", { family: "UNSUPPORTED" }],
    ["IVF256", { family: "UNSUPPORTED" }],
    ["flat", { family: "UNSUPPORTED" }],
    ["", { family: "UNSUPPORTED" }],
  ];
  for (const [key, want] of cases) {
    test(key === "" ? "(empty key)" : key, () => assert.deepEqual(parseIndexKey(key), { key, ...want }));
  }
});

describe("hnswGraphBytes", () => {
  test("level 0 (2M links) + expected upper levels (M/(M−1) links) + levels + offsets", () =>
    assert.equal(hnswGraphBytes(1000, 32), 1000 * (4 * (64 + 32 / 31) + 4 + 8) + 8));
  test("M = 1 has no upper levels (no division by zero)", () => assert.equal(hnswGraphBytes(10, 1), 10 * (4 * 2 + 12) + 8));
});

describe("estimatedIndexSizeBytes (corrected model; each case names the fix it shows)", () => {
  const hnsw = hnswGraphBytes;
  const cases: Array<[string, string, number, number, boolean, number | null]> = [
    ["Flat is unchanged", "Flat", 500, 128, false, 4 * 500 * 128],
    ["HNSW counts upper levels, levels and offsets", "HNSW15", 5000, 128, false, Math.ceil(4 * 5000 * 128 + hnsw(5000, 15))],
    ["HNSWm,Flat is the same index as HNSWm", "HNSW15,Flat", 5000, 128, false, Math.ceil(4 * 5000 * 128 + hnsw(5000, 15))],
    [
      "IVF-Flat counts the 8-byte ids and the list-length table",
      "IVF1024,Flat",
      100000,
      128,
      false,
      4 * 100000 * 128 + 8 * 100000 + 4 * 1024 * 128 + 8 * 1024,
    ],
    [
      "IVF-Flat with direct map adds 8 bytes per vector",
      "IVF2048,Flat",
      300000,
      512,
      true,
      4 * 300000 * 512 + 8 * 300000 + 8 * 300000 + 4 * 2048 * 512 + 8 * 2048,
    ],
    [
      "IVFc_HNSWm,Flat is IVF-Flat with an HNSW quantizer (python: HNSW with M = c)",
      "IVF4096_HNSW32,Flat",
      1_000_000,
      64,
      false,
      Math.ceil(4 * 1e6 * 64 + 8 * 1e6 + 4 * 4096 * 64 + hnsw(4096, 32) + 8 * 4096),
    ],
    [
      "OPQ matrix is 4·d·out_d, centroids in out_d, PQ codebooks counted",
      "OPQ256_768,IVF65536_HNSW32,PQ256x8",
      10_000_000,
      512,
      false,
      Math.ceil(4 * 512 * 768 + 4 * 65536 * 768 + hnsw(65536, 32) + 8 * 65536 + 1e7 * (256 + 8) + 4 * 768 * 256),
    ],
    [
      "OPQ without _y keeps d; IVF-PQ without OPQ is modelled",
      "OPQ32,IVF1024,PQ32",
      100000,
      128,
      false,
      4 * 128 * 128 + 4 * 1024 * 128 + 8 * 1024 + 100000 * (32 + 8) + 4 * 128 * 256,
    ],
    ["IVF-PQ with 10-bit codes", "IVF1024,PQ32x10", 100000, 128, false, 4 * 1024 * 128 + 8 * 1024 + 100000 * (40 + 8) + 4 * 128 * 1024],
    [
      "IVF-PQ fast-scan: n·M/2 code bytes, ids, worst-case one padded 32-block per list, 4-bit codebooks",
      "IVF1024,PQ32x4fs",
      100000,
      128,
      false,
      4 * 1024 * 128 + 8 * 1024 + 100000 * (16 + 8) + 1024 * 32 * 16 + 4 * 128 * 16,
    ],
    [
      "fast-scan rounds an odd M up to even",
      "IVF16,PQ15x4fs",
      1000,
      60,
      false,
      4 * 16 * 60 + 8 * 16 + 1000 * (8 + 8) + 16 * 32 * 8 + 4 * 60 * 16,
    ],
    [
      "Pad: int32 map, centroids and codebooks in the padded dimension",
      "Pad128,IVF4096_HNSW32,PQ64",
      20000,
      100,
      false,
      Math.ceil(4 * 128 + 4 * 4096 * 128 + hnsw(4096, 32) + 8 * 4096 + 20000 * (64 + 8) + 4 * 128 * 256),
    ],
    ["standalone PQ: codes + codebooks, no ids", "PQ16", 1000, 64, false, 1000 * 16 + 4 * 64 * 256],
    ["standalone PQ fast-scan: codes padded to 32-vector blocks", "PQ16x4fs", 1000, 64, false, 1024 * 8 + 4 * 64 * 16],
    ["families without a formula have no estimate (the build measures them)", "IVF256,LSQ8x8", 1000, 64, false, null],
    ["IVF-SQ8: centroids, list sizes, ids, SQ min/range, 1 byte per component", "IVF256,SQ8", 1000, 64, false, 4 * 256 * 64 + 8 * 256 + 8 * 1000 + 2 * 64 * 4 + 1000 * 64],
  ];
  for (const [why, key, n, d, dm, want] of cases) {
    test(`${why}: ${key}`, () => assert.equal(estimatedIndexSizeBytes(key, n, d, dm), want));
  }
  test("above the Python estimate when no OPQ shrinks the dimension", () => {
    const keys = ["IVF1,Flat", "HNSW32", "IVF4096,Flat", "OPQ128_896,IVF256,PQ128x8", "OPQ256_1024,IVF65536_HNSW32,PQ256x8"];
    for (const key of keys) {
      for (const dm of [false, true]) {
        assert.ok(estimatedIndexSizeBytes(key, 1_000_000, 768, dm)! > pythonEstimatedIndexSizeBytes(key, 1_000_000, 768, dm), key);
      }
    }
  });
  test("below the Python estimate when OPQ reduces 768 → 168 (python counts centroids in d)", () => {
    const key = "OPQ24_168,IVF131072_HNSW32,PQ24x8";
    assert.ok(estimatedIndexSizeBytes(key, 1_000_000, 768)! < pythonEstimatedIndexSizeBytes(key, 1_000_000, 768));
  });
});

describe("training memory (Python's heuristic)", () => {
  const opq = (d: number, outD: number, m: number, t: number) => {
    const n = Math.min(65536, t);
    const dd = Math.max(d, outD);
    return 4 * (2 * outD * n + dd * n + 4 * dd * dd) + m * n;
  };
  const cases: Array<[string, number, number, number]> = [
    ["Flat", 128, 1000, 0],
    ["HNSW32", 128, 1000, 0],
    ["IVF16384,Flat", 512, 100, 1.5 * 4 * 512 * 100 + 4 * 16384 * 512],
    ["OPQ16_64,IVF256,PQ16x8", 64, 25600, 1.5 * 4 * 64 * 25600 + opq(64, 64, 16, 25600) + 4 * 256 * 64 + 16],
    [
      "OPQ256_768,IVF65536_HNSW32,PQ256x8",
      512,
      2_031_616,
      1.5 * 4 * 512 * 2_031_616 + opq(512, 768, 256, 2_031_616) + 4 * 65536 * 512 + (4 * 65536 * 512 + 8 * 65536 * 32) + 256,
    ],
    ["Pad128,IVF4096_HNSW32,PQ64x4", 100, 1000, 1.5 * 4 * 100 * 1000 + 4 * 4096 * 100 + (4 * 4096 * 100 + 8 * 4096 * 32) + 32],
    ["IVF256,LSQ8x8", 64, 1000, 500_000_000],
  ];
  for (const [key, d, t, want] of cases) {
    test(`python and corrected agree: ${key} d=${d} t=${t}`, () => {
      assert.equal(pythonTrainingMemoryBytes(key, d, t), want);
      assert.equal(trainingMemoryBytes(key, d, t), want);
    });
  }
  test("IVFc_HNSWm,Flat: python 0 (classified as HNSW), corrected counts the IVF-HNSW training", () => {
    assert.equal(pythonTrainingMemoryBytes("IVF4096_HNSW32,Flat", 64, 1000), 0);
    assert.equal(trainingMemoryBytes("IVF4096_HNSW32,Flat", 64, 1000), 1.5 * 4 * 64 * 1000 + 4 * 4096 * 64 + (4 * 4096 * 64 + 8 * 4096 * 32));
  });
  test("IVF-PQ without OPQ: python 500,000,000 (unsupported), corrected models it", () => {
    assert.equal(pythonTrainingMemoryBytes("IVF256,PQ16x4fs", 64, 1000), 500_000_000);
    assert.equal(trainingMemoryBytes("IVF256,PQ16x4fs", 64, 1000), 1.5 * 4 * 64 * 1000 + 4 * 256 * 64 + 8);
  });
});
