import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { effectivePartCount, partPaths, partRanges, partSuffix, resolvePartNames } from "../lib/plan/parts.ts";
import { mergePartResults, PartMerger } from "../lib/measure/merge_parts.ts";

const FLT_MAX = 3.4028234663852886e38;

describe("part names", () => {
  test("1-based, zero-padded to the width of N, at least two digits", () => {
    assert.deepEqual(partPaths("knn.index", 3), ["knn.index01", "knn.index02", "knn.index03"]);
    assert.deepEqual(partPaths("a", 1), ["a01"]);
    assert.equal(partPaths("knn.index", 10)[0], "knn.index01");
    assert.equal(partPaths("knn.index", 10)[9], "knn.index10");
    assert.equal(partSuffix(8, 99), "09");
    assert.equal(partSuffix(0, 100), "001");
    assert.equal(partSuffix(99, 100), "100");
    assert.equal(partSuffix(1233, 1234), "1234");
  });

  test("bad part numbers are refused", () => {
    assert.throws(() => partSuffix(3, 3), /part index must be in \[0, 3\), got 3/);
    assert.throws(() => partSuffix(0, 0), /number of parts must be an integer >= 1, got 0/);
  });
});

describe("part row ranges (Python _batch_loader)", () => {
  test("known splits", () => {
    assert.deepEqual(partRanges(7, 3), [{ start: 0, end: 3 }, { start: 3, end: 5 }, { start: 5, end: 7 }]);
    assert.deepEqual(partRanges(6, 2), [{ start: 0, end: 3 }, { start: 3, end: 6 }]);
    assert.deepEqual(partRanges(3, 1), [{ start: 0, end: 3 }]);
  });

  test("every total 2..199 and n 1..total: n contiguous non-empty ranges covering [0, total) once, sizes differ by at most 1", () => {
    for (let total = 2; total < 200; total++) {
      for (let n = 1; n <= total; n++) {
        const r = partRanges(total, n);
        assert.equal(r.length, n);
        assert.equal(r[0].start, 0);
        assert.equal(r[n - 1].end, total);
        for (let b = 0; b < n; b++) {
          assert.ok(r[b].end > r[b].start, `total ${total} n ${n} part ${b} empty`);
          if (b > 0) assert.equal(r[b].start, r[b - 1].end);
        }
        const sizes = r.map((x) => x.end - x.start);
        assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
        // the biggest part is the first: count // n + (count % n > 0 ? 1 : 0)
        assert.equal(sizes[0], Math.floor(total / n) + (total % n > 0 ? 1 : 0));
      }
    }
  });

  test("never more parts than rows", () => {
    assert.equal(effectivePartCount(3, 8), 3);
    assert.equal(effectivePartCount(100, 8), 8);
    assert.equal(effectivePartCount(0, 4), 1);
  });
});

describe("resolvePartNames", () => {
  test("an existing base file is a single index, even when parts exist too", () => {
    assert.deepEqual(resolvePartNames("knn.index", ["knn.index", "knn.index01"]), { kind: "single" });
  });

  test("parts 01..N are found; other names in the folder are ignored", () => {
    assert.deepEqual(
      resolvePartNames("knn.index", ["knn.index02", "index_infos.json01", "knn.index01", "knn.index03", "knn.indexes", ".knn.index04.tmp-5"]),
      { kind: "parts", suffixes: ["01", "02", "03"] },
    );
    const ten = Array.from({ length: 10 }, (_, i) => `p${String(i + 1).padStart(2, "0")}`);
    assert.deepEqual(resolvePartNames("p", ten), { kind: "parts", suffixes: ten.map((x) => x.slice(1)) });
  });

  test("a gap names the missing part", () => {
    assert.deepEqual(resolvePartNames("knn.index", ["knn.index01", "knn.index03"]), {
      kind: "error",
      message: "knn.index02 is missing (parts found: knn.index01, knn.index03; expected knn.index01 … knn.index02)",
    });
  });

  test("neither the file nor parts", () => {
    assert.deepEqual(resolvePartNames("knn.index", ["other"]), { kind: "error", message: "no file knn.index and no parts knn.index01 …" });
  });
});

describe("mergePartResults", () => {
  test("L2: smaller first, ties by smaller id whatever the part order, -1 skipped, padding as FAISS", () => {
    // one query, k = 4; part A holds ids 0..2, part B ids 3..5
    const a = { distances: new Float32Array([1, 5, FLT_MAX]), labels: new BigInt64Array([2n, 0n, -1n]), k: 3 };
    const b = { distances: new Float32Array([1, 2, 5]), labels: new BigInt64Array([1n, 4n, 3n]), k: 3 };
    for (const parts of [[a, b], [b, a]]) {
      const m = mergePartResults(parts, 1, 4, "l2");
      assert.deepEqual(Array.from(m.labels), [1n, 2n, 4n, 0n]);
      assert.deepEqual(Array.from(m.distances), [1, 1, 2, 5]);
    }
    const wide = mergePartResults([{ distances: new Float32Array([3, FLT_MAX]), labels: new BigInt64Array([7n, -1n]), k: 2 }], 1, 3, "l2");
    assert.deepEqual(Array.from(wide.labels), [7n, -1n, -1n]);
    assert.deepEqual(Array.from(wide.distances), [3, FLT_MAX, FLT_MAX].map(Math.fround));
  });

  test("IP: larger first, two queries, incremental merger gives the same", () => {
    const a = { distances: new Float32Array([9, 1, 4, 3]), labels: new BigInt64Array([0n, 1n, 1n, 0n]), k: 2 };
    const b = { distances: new Float32Array([8, 1, 4, -FLT_MAX]), labels: new BigInt64Array([2n, 3n, 3n, -1n]), k: 2 };
    const m = mergePartResults([a, b], 2, 3, "ip");
    assert.deepEqual(Array.from(m.labels), [0n, 2n, 1n, 1n, 3n, 0n]);
    assert.deepEqual(Array.from(m.distances), [9, 8, 1, 4, 4, 3]);
    const inc = new PartMerger(2, 3, "ip");
    inc.push(b);
    inc.push(a);
    assert.deepEqual(inc.result(), m);
  });
});
