import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { baseDim, parseFactoryKey, trainingSteps } from "../lib/plan/factory_key.ts";
import { addsInOneCall, DATA_STEP_TRAIN_POINTS, keyLimitProblem, optimalTrainSize, trainingCentroids } from "../lib/plan/training_plan.ts";

describe("parseFactoryKey (FAISS 1.7.3 index_factory grammar)", () => {
  const cases: Array<[string, number, object]> = [
    ["Flat", 64, { transforms: [], base: { family: "Flat" } }],
    ["PQ16", 64, { transforms: [], base: { family: "PQ", codec: { kind: "PQ", m: 16, nbits: 8, fastScan: false } } }],
    ["PQ8x6", 64, { transforms: [], base: { family: "PQ", codec: { kind: "PQ", m: 8, nbits: 6, fastScan: false } } }],
    ["PQ16x4fs", 64, { transforms: [], base: { family: "PQ", codec: { kind: "PQ", m: 16, nbits: 4, fastScan: true } } }],
    ["SQ6", 64, { transforms: [], base: { family: "SQ", codec: { kind: "SQ", type: "SQ6" } } }],
    ["SQfp16", 64, { transforms: [], base: { family: "SQ", codec: { kind: "SQ", type: "SQfp16" } } }],
    ["LSHrt", 64, { transforms: [], base: { family: "LSH", rotate: true, trainThresholds: true } }],
    ["HNSW", 64, { transforms: [], base: { family: "HNSW", m: 32, storage: { kind: "Flat" } } }],
    ["HNSW16_SQ8", 64, { transforms: [], base: { family: "HNSW", m: 16, storage: { kind: "SQ", type: "SQ8" } } }],
    ["HNSW16,PQ8", 64, { transforms: [], base: { family: "HNSW", m: 16, storage: { kind: "PQ", m: 8, nbits: 8, fastScan: false } } }],
    ["NSG32,Flat", 64, { transforms: [], base: { family: "NSG", r: 32, storage: { kind: "Flat" } } }],
    ["IVF64,SQfp16", 64, { transforms: [], base: { family: "IVF", nlist: 64, quantizer: { kind: "Flat" }, codec: { kind: "SQ", type: "SQfp16" } } }],
    ["IVF64_HNSW,PQ8x4fsr", 64, {
      transforms: [],
      base: { family: "IVF", nlist: 64, quantizer: { kind: "HNSW", m: 32 }, codec: { kind: "PQ", m: 8, nbits: 4, fastScan: true, byResidual: true } },
    }],
    ["IVF256_NSG32,Flat", 64, { transforms: [], base: { family: "IVF", nlist: 256, quantizer: { kind: "NSG", r: 32 }, codec: { kind: "Flat" } } }],
    ["IMI2x8,PQ16", 64, { transforms: [], base: { family: "IVF", nlist: 65536, quantizer: { kind: "IMI", nbits: 8 }, codec: { kind: "PQ", m: 16, nbits: 8, fastScan: false } } }],
    ["OPQ16,PQ16", 64, { transforms: [{ kind: "OPQ", m: 16, outD: 64 }], base: { family: "PQ", codec: { kind: "PQ", m: 16, nbits: 8, fastScan: false } } }],
    ["PCAR32,L2norm,IVF64,Flat", 64, {
      transforms: [{ kind: "PCA", outD: 32, whiten: false, rotate: true }, { kind: "L2norm" }],
      base: { family: "IVF", nlist: 64, quantizer: { kind: "Flat" }, codec: { kind: "Flat" } },
    }],
    ["RR,Pad80,Flat", 64, { transforms: [{ kind: "RR", outD: 64 }, { kind: "Pad", outD: 80 }], base: { family: "Flat" } }],
    ["Pad32,Flat", 64, { transforms: [{ kind: "Pad", outD: 64 }], base: { family: "Flat" } }],
    ["IVF64,PQ8,RFlat", 64, {
      transforms: [],
      base: { family: "IVF", nlist: 64, quantizer: { kind: "Flat" }, codec: { kind: "PQ", m: 8, nbits: 8, fastScan: false } },
      refine: { kind: "RFlat" },
    }],
    ["RQ4x8", 64, { transforms: [], base: { family: "other", text: "RQ4x8" } }],
    ["IVF64,Blah", 64, { transforms: [], base: { family: "other", text: "IVF64,Blah" } }],
  ];
  for (const [key, d, want] of cases) {
    test(key, () => assert.deepEqual(parseFactoryKey(key, d), { key, ...want }));
  }
  test("Refine(<key>) parses its inner key at the input dimension", () => {
    const fk = parseFactoryKey("PCA16,PQ4,Refine(SQ8)", 64);
    assert.deepEqual(fk.refine, { kind: "Refine", index: { key: "SQ8", transforms: [], base: { family: "SQ", codec: { kind: "SQ", type: "SQ8" } } } });
    assert.equal(baseDim(fk, 64), 16);
  });
});

describe("training rule (FAISS minimums)", () => {
  test("k-means runs per family", () => {
    assert.deepEqual(trainingSteps(parseFactoryKey("OPQ16_32,IVF64_HNSW32,PQ16x4fs", 64)).kmeans.map((r) => r.k), [256, 64, 16]);
    assert.deepEqual(trainingSteps(parseFactoryKey("IMI2x6,PQ8", 64)).kmeans.map((r) => r.k), [64, 256]);
    assert.deepEqual(trainingSteps(parseFactoryKey("HNSW32", 64)), { kmeans: [], dataSteps: [] });
    assert.deepEqual(trainingSteps(parseFactoryKey("SQfp16", 64)), { kmeans: [], dataSteps: [] });
    assert.deepEqual(trainingSteps(parseFactoryKey("PCA32,SQ8", 64)).dataSteps, ["PCA", "SQ8"]);
  });
  const sizes: Array<[string, number, number, string]> = [
    ["PQ16", 1e6, 25_600, "100 × 256 centroids per 8-bit sub-quantizer"],
    ["PQ16x4fs", 1e6, 1_600, "100 × 16 centroids of a 4-bit sub-quantizer"],
    ["PQ8x10", 1e6, 102_400, "100 × 1024"],
    ["IVF64,PQ16", 1e6, 25_600, "PQ's 256 centroids beat 64 lists"],
    ["IVF4096,PQ16", 1e7, 409_600, "4096 lists beat PQ's 256"],
    ["OPQ8,IVF16,Flat", 1e6, 25_600, "OPQ trains an 8-bit PQ"],
    ["SQ8", 1e6, DATA_STEP_TRAIN_POINTS, "SQ ranges: the fixed data-step sample"],
    ["HNSW32_SQ8", 1e6, DATA_STEP_TRAIN_POINTS, "HNSW storage is trained like SQ8"],
    ["IVF16,SQ8", 1e6, DATA_STEP_TRAIN_POINTS, "16 lists need 1,600 < the SQ sample"],
    ["PQ16", 5000, 5000, "never more than n"],
    ["RR64,Flat", 1e6, 1, "a random rotation trains without data"],
    ["RQ4x8", 1e6, DATA_STEP_TRAIN_POINTS, "unknown family: 25,600 (8-bit codebook) < the data-step sample"],
  ];
  for (const [key, n, want, why] of sizes) {
    test(`${key}, n=${n}: ${want} (${why})`, () => assert.equal(optimalTrainSize(n, key, undefined, 64), want));
  }
  test("the memory bound lowers every family to 31 per centroid, as for IVF", () =>
    assert.equal(optimalTrainSize(1e9, "PQ16", 1024, 64), 31 * 256));
  test("trainingCentroids keeps Python's IMI count", () => assert.deepEqual(trainingCentroids("IMI2x8,PQ16"), { centroids: 65536, dataStep: false }));
});

describe("FAISS 1.7.3 limits the factory does not report", () => {
  test("HNSW_PQ / NSG_PQ are built with L2 whatever the metric", () => {
    assert.equal(
      keyLimitProblem("HNSW32_PQ16", 64, "ip", 1000),
      "HNSW_PQ: FAISS 1.7.3 builds IndexHNSWPQ with the L2 metric whatever metric_type says; use l2, or HNSW<m>_SQ8 / HNSW<m>,Flat for ip",
    );
    assert.equal(keyLimitProblem("HNSW32_PQ16", 64, "l2", 1000), null);
    assert.match(keyLimitProblem("NSG32,PQ8", 64, "ip", 1000)!, /^NSG_PQ: FAISS 1\.7\.3 builds IndexNSGPQ with the L2 metric/);
  });
  test("NSG needs 115 points (NNDescent divides by zero below)", () => {
    assert.equal(keyLimitProblem("NSG32", 64, "l2", 114), "NSG needs at least 115 vectors (FAISS 1.7.3's NNDescent graph build divides by zero below that), got 114");
    assert.equal(keyLimitProblem("NSG32", 64, "l2", 115), null);
    assert.equal(
      keyLimitProblem("IVF64_NSG32,Flat", 64, "l2", 1e6),
      "IVF<c>_NSG<r> needs at least 115 lists (FAISS 1.7.3's NNDescent graph build over the centroids divides by zero below that), got 64",
    );
    assert.equal(keyLimitProblem("IVF256_NSG32,Flat", 64, "l2", 1e6), null);
  });
  test("NSG gets every vector in one add call", () => {
    assert.equal(addsInOneCall("NSG32,Flat"), true);
    assert.equal(addsInOneCall("PCA32,NSG16_SQ8"), true);
    assert.equal(addsInOneCall("IVF256_NSG32,Flat"), false);
    assert.equal(addsInOneCall("HNSW32"), false);
  });
});
