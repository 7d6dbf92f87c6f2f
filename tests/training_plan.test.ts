import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { estimatedIndexSizeBytes, trainingMemoryBytes } from "../lib/plan/index_metadata.ts";
import {
  ADD_CALL_BYTES,
  addCallRows,
  constructionTimeEstimate,
  estimateMemoryForIndexCreation,
  headroomOk,
  memoryAvailableForAdding,
  nbClustersOfKey,
  needsTraining,
  optimalBatchSize,
  optimalTrainSize,
  rotationSampleRows,
  trainingLevers,
} from "../lib/plan/training_plan.ts";
import { parseMemory } from "../lib/plan/units.ts";

const GiB = 2 ** 30;

describe("needsTraining / nbClustersOfKey", () => {
  const cases: Array<[string, boolean]> = [
    ["Flat", false], ["HNSW32", false], ["IVF1,Flat", true], ["OPQ16_64,IVF256,PQ16x8", true], ["IMI2x8,PQ16", true], ["PQ16", false],
  ];
  for (const [key, want] of cases) test(`needsTraining(${key}) === ${want}`, () => assert.equal(needsTraining(key), want));
  const clusters: Array<[string, number]> = [
    ["IVF4096,Flat", 4096], ["OPQ24_168,IVF131072_HNSW32,PQ24x8", 131072], ["IMI2x8,PQ16", 65536], ["IMI2x10,Flat", 2 ** 20],
  ];
  for (const [key, want] of clusters) test(`nbClustersOfKey(${key}) === ${want}`, () => assert.equal(nbClustersOfKey(key), want));
  test("keys without IVF/IMI are rejected", () =>
    assert.throws(() => nbClustersOfKey("HNSW32"), { message: 'training plan: index key "HNSW32" has no IVF<c> or IMI<a>x<b> part' }));
});

describe("optimalTrainSize (Python get_optimal_train_size)", () => {
  for (const pythonCompatible of [true, false]) {
    const o = { pythonCompatible };
    const mode = pythonCompatible ? "python-compatible" : "default";
    test(`IVF16384,Flat, 10M×512, 32G → 1,638,400 (100/cluster) [${mode}]`, () =>
      assert.equal(optimalTrainSize(10_000_000, "IVF16384,Flat", parseMemory("32G"), 512, o), 1_638_400));
    test(`OPQ24_168,IVF131072_HNSW32,PQ24x8, 5e9×768, 24G → 4,063,232 (31/cluster) [${mode}]`, () =>
      assert.equal(optimalTrainSize(5e9, "OPQ24_168,IVF131072_HNSW32,PQ24x8", parseMemory("24G"), 768, o), 4_063_232));
    test(`IVF1,Flat, 50k, no memory → 100 [${mode}]`, () => assert.equal(optimalTrainSize(50000, "IVF1,Flat", undefined, undefined, o), 100));
  }
  test("never more than n", () => assert.equal(optimalTrainSize(1000, "IVF1024,Flat"), 1000));
  test("memory is ignored without a dimension", () => assert.equal(optimalTrainSize(1e9, "IVF1024,Flat", 1024), 102_400));
  test("1K of memory forces the 31-per-cluster floor", () => assert.equal(optimalTrainSize(1e9, "IVF1024,Flat", 1024, 64), 31 * 1024));
  test("IMI clusters are 2^(a·b)", () => assert.equal(optimalTrainSize(1e9, "IMI2x8,PQ16"), 6_553_600));
  test("points·clusters rounds half to even (40.25 × 2 = 80.5 → 80)", () => {
    // m(100) for IVF2,Flat at d=1 is 1.5·4·100 + 4·2 = 608 bytes; 24472 / 608 = 40.25 points per cluster.
    assert.equal(optimalTrainSize(1e8, "IVF2,Flat", 24472, 1, { pythonCompatible: true }), 80);
    assert.equal(optimalTrainSize(1e8, "IVF2,Flat", 24472, 1), 80);
  });
  test("IVFc_HNSWm,Flat: memory-limited by its IVF training model (Python would divide by zero)", () => {
    const key = "IVF4096_HNSW32,Flat";
    assert.equal(optimalTrainSize(5e6, key, parseMemory("1K"), 64), 31 * 4096);
    assert.equal(optimalTrainSize(5e6, key, parseMemory("1K"), 64, { pythonCompatible: true }), 100 * 4096);
    assert.equal(optimalTrainSize(5e6, key), 409_600);
  });
});

describe("optimalBatchSize (Python get_optimal_batch_size)", () => {
  const cases: Array<[number, number, number]> = [
    [512, 32 * GiB, 488_281], [64, 2 * GiB, 3_906_250], [512, parseMemory("1M"), 512], [100, 400, 1], [100, 0, 1], [3, 1e9, 83_333_333],
  ];
  for (const [d, mem, want] of cases) test(`d=${d}, mem=${mem} → ${want}`, () => assert.equal(optimalBatchSize(d, mem), want));
});

describe("addCallRows: FAISS sees at most ADD_CALL_BYTES of input per add call", () => {
  for (const d of [1, 3, 128, 768, 4096, 20_000_000]) {
    test(`d=${d}`, () => {
      const rows = addCallRows(d);
      assert.ok(Number.isInteger(rows) && rows >= 1);
      if (rows > 1) assert.ok(rows * 4 * d <= ADD_CALL_BYTES && (rows + 1) * 4 * d > ADD_CALL_BYTES, "largest slice within the cap");
    });
  }
});

describe("memoryAvailableForAdding (one-decimal round trip)", () => {
  test("32G − 1G index → 31.0GB", () =>
    assert.deepEqual(memoryAvailableForAdding(32 * GiB, GiB), { bytes: 31 * GiB, text: "31.0GB", clamped: false }));
  test("precision is lost to one decimal: 2.04 GiB → 2.0GB", () =>
    assert.deepEqual(memoryAvailableForAdding(3.04 * GiB, GiB), { bytes: 2 * GiB, text: "2.0GB", clamped: false }));
  test("the index share is divided by the number of parts", () =>
    assert.deepEqual(memoryAvailableForAdding(16 * GiB, 10 * GiB, 3), { bytes: 12.7 * GiB, text: "12.7GB", clamped: false }));
  test("negative memory is clamped to 0 and flagged (Python would build an unparsable -1.5GB)", () =>
    assert.deepEqual(memoryAvailableForAdding(GiB, 2.5 * GiB), { bytes: 0, text: "0.0B", clamped: true }));
  test("exactly zero is not clamped", () =>
    assert.deepEqual(memoryAvailableForAdding(GiB, GiB), { bytes: 0, text: "0.0B", clamped: false }));
});

describe("estimateMemoryForIndexCreation (Python estimate_memory_required_for_index_creation)", () => {
  const py = { pythonCompatible: true };
  test("(1000, 512, HNSW15) → 2,384,800 with the Python estimate", () =>
    assert.equal(estimateMemoryForIndexCreation(1000, 512, "HNSW15", py), 2_384_800));
  test("(10M, 512, OPQ256_768,IVF65536_HNSW32,PQ256x8) → 7,156,531,456 (training dominates)", () => {
    const key = "OPQ256_768,IVF65536_HNSW32,PQ256x8";
    assert.equal(estimateMemoryForIndexCreation(10_000_000, 512, key, py), 7_156_531_456);
    assert.equal(estimateMemoryForIndexCreation(10_000_000, 512, key), 7_156_531_456);
  });
  test("(5,550,336,490, 768, OPQ24_168,IVF131072_HNSW32,PQ24x8, k=10) → 19,862,650,904", () => {
    const key = "OPQ24_168,IVF131072_HNSW32,PQ24x8";
    assert.equal(estimateMemoryForIndexCreation(5_550_336_490, 768, key, { ...py, nbIndicesToKeep: 10 }), 19_862_650_904);
    assert.equal(estimateMemoryForIndexCreation(5_550_336_490, 768, key, { nbIndicesToKeep: 10 }), 19_862_650_904);
  });
  test("corrected estimate: S + min(0.1·S, 1e9) with the corrected S", () => {
    const s = estimatedIndexSizeBytes("HNSW15", 1000, 512)!;
    assert.equal(estimateMemoryForIndexCreation(1000, 512, "HNSW15"), Math.trunc(s + 0.1 * s));
    assert.equal(estimateMemoryForIndexCreation(1000, 512, "HNSW15"), 2_402_723);
  });
  test("the biggest of k parts is S // k + S % k; direct map counted (python-compatible)", () => {
    assert.equal(estimateMemoryForIndexCreation(1e6, 128, "IVF1024,Flat", { ...py, nbIndicesToKeep: 3 }), 222_093_858);
    assert.equal(estimateMemoryForIndexCreation(1e6, 128, "IVF1024,Flat", { ...py, makeDirectMap: true }), 572_576_716);
  });
  test("the add overhead is capped at 1e9", () => {
    const s = estimatedIndexSizeBytes("HNSW32", 1e8, 512)!;
    assert.equal(estimateMemoryForIndexCreation(1e8, 512, "HNSW32"), s + 1e9);
  });
  test("unmodelled keys count their training memory only", () =>
    assert.equal(estimateMemoryForIndexCreation(1e6, 64, "IVF256,LSQ8x8"), 500_000_000));
  test("unmodelled keys use a measured size when given one", () =>
    assert.equal(estimateMemoryForIndexCreation(1e6, 64, "IVF256,LSQ8x8", { indexSizeBytes: 6e9 }), 6e9 + 6e8));
  test("IVF256,SQ8 is modelled: size 72,068,096 + 10 % beats SQ training on 32,768 vectors", () => {
    // size: centroids 4·256·64 + list sizes 8·256 + ids 8n + SQ trained 2·64·4 + codes 64n (n = 1e6)
    assert.equal(estimatedIndexSizeBytes("IVF256,SQ8", 1e6, 64), 72_068_096);
    // training: 1.5·4·64·32768 + 4·256·64 + 64 = 12,648,512, below 72,068,096 · 1.1
    assert.equal(trainingMemoryBytes("IVF256,SQ8", 64, 32768), 12_648_512);
    assert.equal(estimateMemoryForIndexCreation(1e6, 64, "IVF256,SQ8"), 79_274_905);
  });
  test("IVFc_HNSWm,Flat is sized as IVF-Flat, not as HNSW with M = c", () => {
    const key = "IVF4096_HNSW32,Flat";
    const s = estimatedIndexSizeBytes(key, 5e6, 64)!;
    const train = trainingMemoryBytes(key, 64, 31 * 4096);
    assert.equal(estimateMemoryForIndexCreation(5e6, 64, key), Math.trunc(Math.max(s + Math.min(0.1 * s, 1e9), train)));
    assert.ok(estimateMemoryForIndexCreation(5e6, 64, key, py) > 100 * estimateMemoryForIndexCreation(5e6, 64, key));
  });
});

describe("headroomOk (index budget leaves 10 % of RAM free)", () => {
  const cases: Array<[string, string, number, boolean]> = [
    ["4G", "4G", 1, false], // the README example fails
    ["32G", "16G", 1, true],
    ["10G", "9G", 1, true], // exactly 10 % left
    ["10G", "9.5G", 1, false],
    ["4G", "4G", 2, true], // N-part builds skip the check
    ["4G", "8G", 10, true],
  ];
  for (const [current, max, k, want] of cases) {
    test(`current=${current}, max=${max}, parts=${k} → ${want}`, () => assert.equal(headroomOk(parseMemory(current), parseMemory(max), k), want));
  }
});

describe("constructionTimeEstimate (Python get_estimated_construction_time_infos)", () => {
  test("1e8×512", () => {
    const t = constructionTimeEstimate(1e8, 512);
    assert.equal(t.text, "-> Train: 16.7 minutes\n-> Add: 9.5 minutes\nTotal: 26.2 minutes");
    assert.equal(t.trainSeconds, 1000);
    assert.equal(t.addSeconds, (450 * 4 * 1e8 * 512) / (150 * GiB));
    assert.equal(t.totalSeconds, t.trainSeconds + t.addSeconds);
  });
  test("indent prefixes every line with tabs", () =>
    assert.equal(constructionTimeEstimate(1e8, 512, 1).text, "\t-> Train: 16.7 minutes\n\t-> Add: 9.5 minutes\n\tTotal: 26.2 minutes"));
  test("tiny and huge inputs use seconds and hours", () => {
    assert.equal(constructionTimeEstimate(1000, 10).text, "-> Train: 16.7 minutes\n-> Add: 0.0 seconds\nTotal: 16.7 minutes");
    assert.equal(constructionTimeEstimate(5_550_336_490, 768).text, "-> Train: 16.7 minutes\n-> Add: 13.2 hours\nTotal: 13.5 hours");
  });
});

describe("trainingLevers: how FAISS's training runs for a key", () => {
  const cases: [string, ReturnType<typeof trainingLevers>][] = [
    ["Flat", {}],
    ["HNSW32", {}],
    ["IVF1024,Flat", {}],
    ["IVF256,SQ8", {}],
    ["PQ16", { directSubspace: true }],
    ["IVF1024,PQ32x8", { directSubspace: true }],
    ["IVF256,PQ16x4fs", { directSubspace: true }],
    ["HNSW16_PQ16", { directSubspace: true }],
    ["IVF256,Flat,Refine(PQ8)", { directSubspace: true }],
    ["OPQ48_144,IVF2048_HNSW32,PQ48x8", { directSubspace: true, opqNiter: 25, opqMaxTrainPoints: 32_768 }],
    ["OPQ16_64,IVF256,Flat", { directSubspace: true, opqNiter: 25, opqMaxTrainPoints: 32_768 }],
    // the coarse k-means through an HNSW over the centroids, 5 iterations, from 8,192 lists on
    // (measured at 8,192 and 16,384)
    ["OPQ32_96,IVF16384_HNSW32,PQ32x8", { directSubspace: true, opqNiter: 25, opqMaxTrainPoints: 32_768, ivfHnswAssignM: 32, ivfNiter: 5 }],
    ["IVF65536,Flat", { ivfHnswAssignM: 32, ivfNiter: 5 }],
    ["IVF8192,PQ16", { directSubspace: true, ivfHnswAssignM: 32, ivfNiter: 5 }],
    ["IVF4096,PQ16", { directSubspace: true }],
    ["IMI2x8,PQ8", { directSubspace: true }],
  ];
  for (const [key, want] of cases) test(key, () => assert.deepEqual(trainingLevers(key), want));
});

describe("rotationSampleRows: when an OPQ rotation trains on a sample of its own", () => {
  test("one OPQ transform and more training rows than the rotation's 32,768: a 32,768-row sample", () => {
    assert.equal(rotationSampleRows("OPQ64_192,IVF2048_HNSW32,PQ64x8", 200_000), 32_768);
    assert.equal(rotationSampleRows("OPQ16,PQ16", 32_769), 32_768);
    // Fashion-MNIST's 60,000 rows, below FAISS's own 65,536 but above ours
    assert.equal(rotationSampleRows("OPQ128_896,IVF1024_HNSW32,PQ128x8", 60_000), 32_768);
  });
  test("OPQ trains on all of a sample that small anyway: no second sample", () => {
    assert.equal(rotationSampleRows("OPQ64_192,IVF256,PQ64x8", 32_768), null);
    assert.equal(rotationSampleRows("OPQ64_192,IVF256,PQ64x8", 25_600), null);
  });
  test("no OPQ, or another transform before or beside it: trained inside the sample, as FAISS does", () => {
    assert.equal(rotationSampleRows("IVF4096,PQ32x8", 409_600), null);
    assert.equal(rotationSampleRows("PCA64,IVF4096,Flat", 409_600), null);
    assert.equal(rotationSampleRows("PCAR96,OPQ32_96,IVF4096,PQ32", 409_600), null);
  });
});
