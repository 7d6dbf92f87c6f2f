import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { nativeNonFiniteScan } from "../ffi/faiss.ts";
import { openCollection } from "../lib/io/collection.ts";
import { firstNonFinite, firstNonFiniteJs, type NonFiniteScan } from "../lib/io/float.ts";
import { seededRandom } from "./helpers/data.ts";
import { writeNpyF32 } from "./fixtures/io/npy.ts";

const native = nativeNonFiniteScan();

describe("native NaN/Inf scan (autofaiss_first_nonfinite)", () => {
  test("our library provides it", () => {
    assert.ok(native, "native/build/libfaiss_c.so should export autofaiss_first_nonfinite");
  });

  test("agrees with the JavaScript scan: every kind, random places, unaligned views", () => {
    const rand = seededRandom(7);
    const kinds = [NaN, Infinity, -Infinity];
    let cases = 0;
    for (const length of [0, 1, 63, 64, 65, 1000, 16384, 100_003]) {
      const v = new Float32Array(length);
      for (let i = 0; i < length; i++) v[i] = (rand() - 0.5) * 1e30;
      // finite extremes must pass
      if (length > 4) v.set([3.4028235e38, -3.4028235e38, 1e-45, -0], 0);
      for (let trial = 0; trial < 20; trial++) {
        const from = length ? Math.floor(rand() * Math.min(length, 5)) : 0;
        const to = length - (length ? Math.floor(rand() * Math.min(length - from, 5)) : 0);
        const w = new Float32Array(v);
        const spots = trial === 0 ? 0 : 1 + Math.floor(rand() * 3);
        for (let s = 0; s < spots && length; s++) w[Math.floor(rand() * length)] = kinds[Math.floor(rand() * 3)]!;
        assert.equal(native!(w, from, to), firstNonFiniteJs(w, from, to), `length ${length} [${from}, ${to})`);
        // a view that starts 4 bytes into its buffer (not 16-byte aligned)
        const view = w.subarray(Math.min(1, length));
        assert.equal(native!(view, 0, view.length), firstNonFiniteJs(view, 0, view.length));
        cases++;
      }
    }
    assert.equal(cases, 160);
  });

  test("the npy reader uses the installed scan and reports file, row and component", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nonfinite-"));
    try {
      const dim = 64, rows = 2000; // 128,000 values per batch: above the native threshold
      const v = new Float32Array(rows * dim).map((_, i) => Math.sin(i));
      v[1234 * dim + 17] = NaN;
      const file = writeNpyF32(path.join(dir, "a.npy"), v, dim);
      let calls = 0;
      const counting: NonFiniteScan = (x, from, to) => {
        calls++;
        return native!(x, from, to);
      };
      await using coll = await openCollection(dir, { fileFormat: "npy", nonFiniteScan: counting });
      await assert.rejects(
        (async () => {
          for await (const _ of coll.batches(rows)) { /* drain */ }
        })(),
        (e: Error & { row?: number }) => {
          assert.equal(e.row, 1234);
          assert.match(e.message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: row 1234 has NaN at component 17`));
          return true;
        },
      );
      assert.ok(calls > 0, "the installed scan was not used");
      // small ranges stay in JavaScript (a native call costs more than the loop)
      calls = 0;
      assert.equal(firstNonFinite(new Float32Array([1, NaN]), 0, 2, counting), 1);
      assert.equal(calls, 0);
      assert.equal(firstNonFinite(v), 1234 * dim + 17);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
