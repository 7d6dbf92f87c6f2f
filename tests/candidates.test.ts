import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { generatedKeys, opqOutputDim, plainPqMValues, reducingOpqDim, selectionCandidates } from "../lib/plan/candidates.ts";
import { estimatedIndexSizeBytes } from "../lib/plan/index_metadata.ts";
import { optimalIndexKeys } from "../lib/plan/selection.ts";

const MiB = 2 ** 20;

describe("generatedKeys", () => {
  test("20000×64: HNSW and IVF512 families, PQ and fast-scan with and without OPQ, RFlat", () => {
    const keys = generatedKeys(20_000, 64);
    for (
      const k of [
        "HNSW32", "HNSW16", "IVF512,Flat", "IVF512,SQfp16", "IVF512,SQ8", "IVF512,SQ4", "HNSW32_SQ8", "HNSW16_SQ4",
        "OPQ48_96,IVF512,PQ48x8", "OPQ48_96,IVF512,PQ48x4fs", "IVF512,PQ32x8", "IVF512,PQ32x4fs", "IVF512,PQ32x4fs,RFlat",
        "IVF512,PQ8x4fs",
      ]
    ) assert.ok(keys.includes(k), k);
    // 31 keys plus the reducing rotations of m = 24 (64 → 48) and m = 8 (64 → 32), each with 8-bit and fast-scan codes
    assert.equal(keys.length, 35);
    assert.ok(keys.includes("OPQ24_48,IVF512,PQ24x8") && keys.includes("OPQ8_32,IVF512,PQ8x4fs"));
    // m = 16 and 32 reach d at 4 dimensions per code or below: no reduction, Python's rotation only
    assert.ok(!keys.some((k) => /^OPQ(16|32)_64,/.test(k)));
    // 48 does not divide 64: FAISS asserts d % M == 0 for plain PQ, so only OPQ48 (96 = 2·48) is tried
    assert.ok(!keys.includes("IVF512,PQ48x8"));
    // m ≥ d is never tried
    assert.ok(!keys.some((k) => /PQ(64|96|128|192|256)x/.test(k)));
  });
  test("from 1000 lists the coarse quantizer is HNSW32 (as Python)", () => {
    assert.ok(generatedKeys(100_000, 128).includes("IVF1024_HNSW32,PQ64x4fs"));
  });
  test("ivfOnly / should_be_memory_mappable: no HNSW index, no refinement", () => {
    for (const o of [{ ivfOnly: true }, { shouldBeMemoryMappable: true }]) {
      const keys = generatedKeys(20_000, 64, o);
      // 35 minus HNSW32, HNSW16, six HNSW_SQ keys and three RFlat keys
      assert.equal(keys.length, 24);
      assert.deepEqual(keys.filter((k) => k.startsWith("HNSW") || k.includes("RFlat")), []);
    }
  });
  test("below 10,000 vectors no PQ (too few points for 256 centroids per sub-quantizer); below 1000 nothing", () => {
    assert.deepEqual(generatedKeys(5000, 64), [
      "HNSW32", "HNSW16", "IVF256,Flat", "IVF256,SQfp16", "HNSW32_SQfp16", "HNSW16_SQfp16",
      "IVF256,SQ8", "HNSW32_SQ8", "HNSW16_SQ8", "IVF256,SQ4", "HNSW32_SQ4", "HNSW16_SQ4",
    ]);
    assert.deepEqual(generatedKeys(999, 64), []);
  });
  test("plain PQ: the listed m dividing d, and every divisor leaving 2 to 8 dimensions per code", () => {
    // 784 = 2⁴·7²: of the list only 16 and 8 divide it; 392, 196, 112, 98 leave 2, 4, 7, 8 dimensions
    assert.deepEqual(plainPqMValues(784), [392, 196, 112, 98, 16, 8]);
    assert.deepEqual(plainPqMValues(64), [32, 16, 8]);
    // 100: 50 (2), 25 (4), 20 (5); 10 leaves 10 dimensions and is not in the list
    assert.deepEqual(plainPqMValues(100), [50, 25, 20]);
    const keys = generatedKeys(60_000, 784);
    for (const k of ["IVF1024_HNSW32,PQ196x8", "IVF1024_HNSW32,PQ392x4fs", "IVF1024_HNSW32,PQ98x4fs,RFlat"]) assert.ok(keys.includes(k), k);
    assert.ok(!keys.includes("IVF1024_HNSW32,PQ49x8")); // 16 dimensions per code
  });
  test("OPQ output dimension: Python's (min(⌊d/m⌋, 6) + 1)·m", () => {
    assert.equal(opqOutputDim(784, 128), 896);
    assert.equal(opqOutputDim(784, 64), 448);
    assert.equal(opqOutputDim(64, 48), 96);
    assert.equal(opqOutputDim(128, 64), 192);
  });
  test("reducing OPQ: 4 dimensions per code (FAISS's OPQ{m}_{4m}) or fewer within d; none that does not reduce", () => {
    assert.equal(reducingOpqDim(784, 128), 512);
    assert.equal(reducingOpqDim(784, 192), 768); // 3 dimensions per code: 4·192 > 784
    assert.equal(reducingOpqDim(784, 256), 768);
    assert.equal(reducingOpqDim(128, 16), 64);
    assert.equal(reducingOpqDim(128, 32), null); // 4·32 = 128: a rotation, not a reduction
    assert.equal(reducingOpqDim(64, 48), null); // 1 dimension per code
    const keys = generatedKeys(60_000, 784);
    for (const k of ["OPQ192_768,IVF1024_HNSW32,PQ192x8", "OPQ192_960,IVF1024_HNSW32,PQ192x8", "OPQ128_512,IVF1024_HNSW32,PQ128x4fs"]) {
      assert.ok(keys.includes(k), k);
    }
  });
});

describe("selectionCandidates", () => {
  test("3 MiB for 20000×64: heuristic first, then most bits per dimension; all fit", () => {
    const r = selectionCandidates(20_000, 64, 3 * MiB);
    assert.equal(r.heuristicKey, "OPQ48_96,IVF512,PQ48x8");
    assert.deepEqual(r.candidates.map((c) => c.key), [
      "OPQ48_96,IVF512,PQ48x8",
      "IVF512,SQfp16", // 16 bits
      "IVF512,SQ8", // 8 bits
      "OPQ32_96,IVF512,PQ32x8", // 4 bits: OPQ before plain PQ
      "IVF512,PQ32x8",
      "IVF512,SQ4", // 4 bits: learned product codebooks before an even scalar grid
      "OPQ48_96,IVF512,PQ48x4fs", // 3 bits: fast-scan before 8-bit PQ
      "OPQ24_48,IVF512,PQ24x8", // the reducing rotation is smaller than Python's
      "OPQ24_72,IVF512,PQ24x8",
      "OPQ32_96,IVF512,PQ32x4fs",
      "IVF512,PQ32x4fs",
      "OPQ16_80,IVF512,PQ16x8",
    ]);
    assert.deepEqual(r.candidates.map((c) => c.rank), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    // IVF512,SQ8 by hand: centroids 512·64·4 + list sizes 8·512 + ids 8·20000 + codes 20000·64 + SQ min/range 2·64·4
    assert.equal(r.candidates[2].estimatedBytes, 131_072 + 4096 + 160_000 + 1_280_000 + 512);
    assert.equal(r.candidates[2].bitsPerDimension, 8);
    assert.equal(r.candidates[6].codec, "OPQ+PQ fast-scan");
    assert.equal(r.candidates[6].bitsPerDimension, 3);
    for (const c of r.candidates) {
      assert.ok(c.estimatedBytes <= 3 * MiB, c.key);
      assert.equal(c.estimatedBytes, estimatedIndexSizeBytes(c.key, 20_000, 64), c.key);
    }
    assert.equal(r.candidates[0].heuristic, true);
    assert.equal(r.candidates.filter((c) => c.heuristic).length, 1);
    assert.equal(r.candidates[1].reason, "SQfp16 codes, 16.00 bits per dimension, searched by IVF; 2.7MB (91% of the budget)");
  });
  test("keys over the budget are dropped before any work, with the estimate in the reason", () => {
    const r = selectionCandidates(20_000, 64, 3 * MiB);
    const flat = r.dropped.find((x) => x.key === "IVF512,Flat");
    assert.deepEqual(flat, {
      key: "IVF512,Flat",
      estimatedBytes: 5_415_168,
      reason: "estimated 5.2MB > max_index_memory_usage 3.0MB",
    });
    assert.ok(r.dropped.some((x) => x.key === "HNSW32" && x.reason.startsWith("estimated ")));
  });
  test("refinement is proposed where memory allows (RFlat keeps 4·n·d bytes of raw vectors)", () => {
    const r = selectionCandidates(20_000, 64, 16 * MiB, { maxCandidates: 40 });
    const rf = r.candidates.find((c) => c.key === "IVF512,PQ32x4fs,RFlat")!;
    const plain = r.candidates.find((c) => c.key === "IVF512,PQ32x4fs")!;
    assert.equal(rf.estimatedBytes - plain.estimatedBytes, 4 * 20_000 * 64);
    assert.equal(rf.refine, true);
    assert.equal(rf.bitsPerDimension, 32);
    // ranked by its codes (2 bits) plus one: after the 4-bit codes, before the 2-bit ones
    assert.ok(rf.rank > r.candidates.find((c) => c.key === "IVF512,SQ4")!.rank);
    assert.ok(rf.rank < plain.rank);
  });
  test("maxCandidates caps the list; the rest is dropped as ranked beyond the cap", () => {
    const r = selectionCandidates(20_000, 64, 16 * MiB, { maxCandidates: 3 });
    assert.deepEqual(r.candidates.map((c) => c.key), ["HNSW32", "HNSW16", "IVF512,Flat"]);
    assert.equal(r.dropped.filter((x) => x.reason === "ranked beyond the 3 candidates kept").length, 32);
    assert.throws(() => selectionCandidates(20_000, 64, MiB, { maxCandidates: 0 }), /maxCandidates must be an integer >= 1 \(got 0\)/);
  });
  test("the heuristic key is the Python-compatible selection's first key, in several regimes", () => {
    for (const [n, d, budget] of [[60_000, 784, 20 * MiB], [100_000, 128, 16 * MiB], [20_000, 64, 16 * MiB], [500, 64, 1024 * MiB]]) {
      const r = selectionCandidates(n, d, budget);
      assert.equal(r.heuristicKey, optimalIndexKeys(n, d, budget)[0]);
      assert.equal(r.candidates[0].key, r.heuristicKey);
    }
  });
  test("below 1000 vectors only the heuristic Flat; nothing fits → empty, heuristicKey null", () => {
    assert.deepEqual(selectionCandidates(500, 64, MiB).candidates.map((c) => c.key), ["Flat"]);
    const none = selectionCandidates(778, 384, MiB);
    assert.equal(none.heuristicKey, null);
    assert.deepEqual(none.candidates, []);
  });
  test("make_direct_map adds 8 bytes per vector to IVF estimates", () => {
    const a = selectionCandidates(20_000, 64, 3 * MiB).candidates.find((c) => c.key === "IVF512,SQ8")!;
    const b = selectionCandidates(20_000, 64, 3 * MiB, { makeDirectMap: true, ivfOnly: true }).candidates.find((c) => c.key === "IVF512,SQ8")!;
    assert.equal(b.estimatedBytes - a.estimatedBytes, 8 * 20_000);
  });
});
