import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openCollection } from "../lib/io/collection.ts";
import { listEmbeddingFiles } from "../lib/io/discover.ts";
import { EmbeddingReadError } from "../lib/io/errors.ts";
import { type ByteSource, CountingSource, openSource } from "../lib/io/source.ts";
import { matrix, npyBytes, toFloat16Bits, writeNpyF32 } from "./fixtures/io/npy.ts";
import { rowsOf, writeParquet } from "./fixtures/io/parquet.ts";

let dir = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "io-coll-"));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function mkdir(...parts: string[]): string {
  const p = path.join(dir, ...parts);
  fs.mkdirSync(p, { recursive: true });
  return p;
}

function bytesOf(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** An opener that records every source it opens, to count bytes per file. */
function countingOpener() {
  const opened: CountingSource[] = [];
  return {
    opened,
    open: async (location: string): Promise<ByteSource> => {
      const s = new CountingSource(await openSource(location));
      opened.push(s);
      return s;
    },
    bytes: () => opened.reduce((s, o) => s + o.bytesRead, 0),
    reads: () => opened.flatMap((o) => o.reads.map((r) => ({ file: path.basename(o.name), ...r }))),
  };
}

async function expectError(p: Promise<unknown>): Promise<EmbeddingReadError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof EmbeddingReadError, String(e));
    return e;
  }
  throw new Error("expected an error");
}

describe("file discovery", () => {
  test("recursive, depth 0 included, lexicographic over all folders, extension filtered", async () => {
    const a = mkdir("disc", "a");
    const b = mkdir("disc", "b");
    mkdir("disc", "a", "sub");
    for (const f of ["2.npy", "10.npy", "sub/1.npy", "x.parquet", "notes.txt", "y.npy.gz"]) fs.writeFileSync(path.join(a, f), "");
    fs.writeFileSync(path.join(b, "0.npy"), "");
    const files = await listEmbeddingFiles([b, a], "npy");
    assert.deepEqual(files, [path.join(a, "10.npy"), path.join(a, "2.npy"), path.join(a, "sub/1.npy"), path.join(b, "0.npy")]);
    assert.deepEqual(await listEmbeddingFiles(a, "parquet"), [path.join(a, "x.parquet")]);
    // a single file is taken as given; a relative path is made absolute
    const rel = path.relative(process.cwd(), path.join(a, "2.npy"));
    assert.deepEqual(await listEmbeddingFiles(rel, "npy"), [path.join(a, "2.npy")]);
    assert.deepEqual(await listEmbeddingFiles(`file://${path.join(a, "2.npy")}`, "npy"), [path.join(a, "2.npy")]);
  });

  test("nonexistent path names it", async () => {
    const missing = path.join(dir, "nope");
    const e = await expectError(listEmbeddingFiles(missing, "npy"));
    assert.equal(e.message, `embedding files: ${missing}: cannot access (ENOENT: no such file or directory)`);
    assert.equal(e.file, missing);
  });
});

describe("npy collection", () => {
  // three files: 10.npy (rows 0-39) sorts before 2.npy (rows 40-69); sub/3.npy (f16, rows 70-94); empty.npy skipped
  let root = "";
  let all: Float32Array;
  const dim = 8;
  before(() => {
    root = mkdir("npycoll");
    mkdir("npycoll", "sub");
    const m10 = matrix(40, dim, 0);
    const m2 = matrix(30, dim, 1000);
    const m3 = Float32Array.from(matrix(25, dim, 0), (v) => Math.round(v)); // integers: exact in float16
    writeNpyF32(path.join(root, "10.npy"), m10, dim);
    fs.writeFileSync(path.join(root, "2.npy"), npyBytes({ descr: "<f8", rows: 30, dim, data: bytesOf(Float64Array.from(m2)), version: 2 }));
    fs.writeFileSync(path.join(root, "sub", "3.npy"), npyBytes({ descr: "<f2", rows: 25, dim, data: bytesOf(toFloat16Bits(Array.from(m3))) }));
    fs.writeFileSync(path.join(root, "empty.npy"), npyBytes({ rows: 0, dim }));
    all = new Float32Array([...m10, ...m2, ...m3]);
  });

  test("count and dimension from headers only", async () => {
    const c = countingOpener();
    const coll = await openCollection(root, { fileFormat: "npy", openSource: c.open });
    assert.equal(coll.count, 95);
    assert.equal(coll.dimension, 8);
    assert.deepEqual(coll.files.map((f) => [path.basename(f.location), f.rows, f.startRow]), [["10.npy", 40, 0], ["2.npy", 30, 40], ["3.npy", 25, 70]]);
    // 4 headers of 128 bytes each, nothing else
    assert.equal(c.bytes(), 4 * 128);
    await coll.close();
  });

  test("batches span files, mixed dtypes are converted, memory is one batch", async () => {
    await using coll = await openCollection(root, { fileFormat: "npy" });
    const got: number[][] = [];
    const parts: Float32Array[] = [];
    for await (const b of coll.batches(32)) {
      got.push([b.startId, b.rows, b.vectors.length]);
      assert.equal(b.ids, undefined);
      parts.push(b.vectors);
    }
    assert.deepEqual(got, [[0, 32, 256], [32, 32, 256], [64, 31, 248]]);
    assert.deepEqual(new Float32Array(parts.flatMap((p) => Array.from(p))), all);
  });

  test("reuse: batches are views of two alternating buffers, with the same values", async () => {
    await using coll = await openCollection(root, { fileFormat: "npy" });
    const buffers = new Set<ArrayBufferLike>();
    const copies: number[] = [];
    const sizes: number[] = [];
    for await (const b of coll.batches(32, { reuse: true })) {
      buffers.add(b.vectors.buffer);
      sizes.push(b.vectors.length);
      copies.push(...b.vectors);
    }
    assert.equal(buffers.size, 2);
    assert.deepEqual(sizes, [256, 256, 248]);
    assert.deepEqual(new Float32Array(copies), all);
  });

  test("read() and sample() while batches() prefetches; early break then close", async () => {
    const coll = await openCollection(root, { fileFormat: "npy" });
    const it = coll.batches(10, { reuse: true });
    const first = await it.next();
    assert.deepEqual(first.value!.vectors, all.subarray(0, 80));
    // a prefetch of rows 10-19 is in flight; these calls queue behind it and use the same readers
    const [q, s] = await Promise.all([coll.read(65, 75), coll.sample(5, 2)]);
    assert.deepEqual(q.vectors, all.subarray(65 * dim, 75 * dim));
    for (let k = 0; k < 5; k++) assert.deepEqual(s.vectors.subarray(k * dim, (k + 1) * dim), all.subarray(s.positions[k]! * dim, (s.positions[k]! + 1) * dim));
    const second = await it.next();
    assert.deepEqual([second.value!.startId, second.value!.rows], [10, 10]);
    assert.deepEqual(second.value!.vectors, all.subarray(80, 160));
    await it.return(undefined); // stop early: the pending prefetch settles, nothing leaks
    await coll.close();
    await assert.rejects(coll.read(0, 1), { message: `embedding collection: ${root}: collection is closed` });
  });

  test("a batch reads exactly its rows' bytes", async () => {
    const c = countingOpener();
    const coll = await openCollection(root, { fileFormat: "npy", openSource: c.open });
    const before = c.reads().length;
    const b = await coll.read(35, 45); // 5 rows of 10.npy, 5 rows of 2.npy (float64)
    assert.deepEqual(b.vectors, all.subarray(35 * dim, 45 * dim));
    assert.deepEqual(c.reads().slice(before), [
      { file: "10.npy", start: 128 + 35 * 32, end: 128 + 40 * 32 },
      { file: "2.npy", start: 128, end: 128 + 5 * 64 },
    ]);
    await coll.close();
  });

  test("read() of a range and a range of batches", async () => {
    await using coll = await openCollection([root], { fileFormat: "npy" });
    const q = await coll.read(0, 10);
    assert.deepEqual([q.startId, q.rows], [0, 10]);
    assert.deepEqual(q.vectors, all.subarray(0, 80));
    const starts: number[] = [];
    for await (const b of coll.batches(10, { start: 60, end: 85 })) {
      starts.push(b.startId);
      assert.deepEqual(b.vectors, all.subarray(b.startId * dim, (b.startId + b.rows) * dim));
    }
    assert.deepEqual(starts, [60, 70, 80]);
    await assert.rejects(coll.read(90, 96), { message: "embedding collection: row range [90, 96) is outside [0, 95)" });
    await assert.rejects(coll.batches(0).next(), { message: "embedding collection: maxRows must be an integer >= 1, got 0" });
  });

  test("sample: reproducible, seed-dependent, values match positions", async () => {
    await using coll = await openCollection(root, { fileFormat: "npy" });
    const s1 = await coll.sample(20, 7);
    const s2 = await coll.sample(20, 7);
    const s3 = await coll.sample(20, 8);
    assert.deepEqual(s1.positions, s2.positions);
    assert.deepEqual(s1.vectors, s2.vectors);
    assert.notDeepEqual(s1.positions, s3.positions);
    assert.equal(s1.rows, 20);
    for (let k = 1; k < 20; k++) assert.ok(s1.positions[k]! > s1.positions[k - 1]!);
    for (let k = 0; k < 20; k++) {
      const p = s1.positions[k]!;
      assert.deepEqual(s1.vectors.subarray(k * dim, (k + 1) * dim), all.subarray(p * dim, (p + 1) * dim));
    }
    const everything = await coll.sample(1000, 1);
    assert.equal(everything.rows, 95);
    assert.deepEqual(everything.vectors, all);
  });

  test("dimensions that differ between files", async () => {
    const d = mkdir("dims");
    writeNpyF32(path.join(d, "a.npy"), matrix(3, 4), 4);
    writeNpyF32(path.join(d, "b.npy"), matrix(3, 5), 5);
    const e = await expectError(openCollection(d, { fileFormat: "npy" }));
    assert.equal(e.message, `embedding files: ${path.join(d, "b.npy")}: dimension 5 differs from dimension 4 of ${path.join(d, "a.npy")}`);
    assert.equal(e.file, path.join(d, "b.npy"));
  });

  test("empty folder, folder of empty files, wrong format", async () => {
    const d = mkdir("void");
    let e = await expectError(openCollection(d, { fileFormat: "npy" }));
    assert.equal(e.message, `embedding files: no embeddings found in ${d} (found no *.npy files)`);
    fs.writeFileSync(path.join(d, "e.npy"), npyBytes({ rows: 0, dim: 3 }));
    e = await expectError(openCollection([d, d], { fileFormat: "npy" }));
    assert.equal(e.message, `embedding files: no embeddings found in ${d}, ${d} (all 2 *.npy files are empty)`);
    e = await expectError(openCollection(d, { fileFormat: "csv" }));
    assert.equal(e.message, "embedding files: file_format 'csv' is not supported (expected npy or parquet)");
    e = await expectError(openCollection(d, { fileFormat: "npy", idColumns: ["id"] }));
    assert.equal(e.message, `embedding files: ${d}: id_columns [id] need file_format parquet (.npy files have no columns)`);
  });

  test("a bad file among good ones is named; an unreadable file is named", async () => {
    const d = mkdir("bad");
    writeNpyF32(path.join(d, "a.npy"), matrix(3, 4), 4);
    fs.writeFileSync(path.join(d, "b.npy"), npyBytes({ descr: "<i8", rows: 3, dim: 4, data: new Uint8Array(96) }));
    let e = await expectError(openCollection(d, { fileFormat: "npy" }));
    assert.equal(e.message, `npy header: ${path.join(d, "b.npy")}: descr '<i8' is not a float type (expected <f2, <f4 or <f8)`);
    fs.rmSync(path.join(d, "b.npy"));
    fs.symlinkSync(path.join(d, "gone.bin"), path.join(d, "c.npy"));
    e = await expectError(openCollection(d, { fileFormat: "npy" }));
    assert.equal(e.message, `file open: ${path.join(d, "c.npy")}: cannot open (ENOENT: no such file or directory)`);
    fs.rmSync(path.join(d, "c.npy"));
    if (process.getuid?.() !== 0) {
      // root reads anything, so permissions can only be tested as a normal user
      writeNpyF32(path.join(d, "d.npy"), matrix(3, 4), 4);
      fs.chmodSync(path.join(d, "d.npy"), 0o000);
      e = await expectError(openCollection(d, { fileFormat: "npy" }));
      assert.equal(e.message, `file open: ${path.join(d, "d.npy")}: cannot open (EACCES: permission denied)`);
    }
  });

  test("NaN found while streaming names file and row", async () => {
    const d = mkdir("nan");
    writeNpyF32(path.join(d, "a.npy"), matrix(5, 2), 2);
    const m = matrix(5, 2);
    m[7] = NaN;
    writeNpyF32(path.join(d, "b.npy"), m, 2);
    await using coll = await openCollection(d, { fileFormat: "npy" });
    const it = coll.batches(4);
    assert.equal((await it.next()).value!.rows, 4);
    assert.equal((await it.next()).value!.rows, 4); // rows 4-7: b.npy rows 0-2 are fine
    const e = await expectError(it.next());
    assert.equal(e.message, `npy data: ${path.join(d, "b.npy")}: row 3 has NaN at component 1 (expected finite values; NaN/Inf poison k-means training)`);
    assert.equal(e.row, 3);
    const e2 = await expectError(coll.sample(10, 1));
    assert.equal(e2.message, e.message);
  });

  test("closed collection refuses work; close is idempotent", async () => {
    const coll = await openCollection(root, { fileFormat: "npy" });
    await coll.read(0, 1);
    await coll.close();
    await coll.close();
    await assert.rejects(coll.read(0, 1), { message: `embedding collection: ${root}: collection is closed` });
  });
});

describe("sampling is uniform across files", () => {
  test("each of 4 files gets about its share; a row's inclusion rate is n/N", async () => {
    const d = mkdir("uniform");
    const sizes = [1000, 3000, 500, 1500];
    let offset = 0;
    sizes.forEach((rows, i) => {
      writeNpyF32(path.join(d, `${i}.npy`), matrix(rows, 2, offset), 2);
      offset += rows;
    });
    await using coll = await openCollection(d, { fileFormat: "npy" });
    const n = 600;
    const perFile = [0, 0, 0, 0];
    const hits = new Float64Array(coll.count);
    const seeds = 40;
    for (let seed = 0; seed < seeds; seed++) {
      const s = await coll.sample(n, seed);
      for (const p of s.positions) {
        hits[p]!++;
        const f = coll.files.findIndex((f) => p >= f.startRow && p < f.startRow + f.rows);
        perFile[f]!++;
      }
      // values are the rows at the positions: column 0 holds the global row number
      for (let k = 0; k < s.rows; k++) assert.equal(s.vectors[k * 2], s.positions[k]);
    }
    sizes.forEach((rows, i) => {
      const expected = (seeds * n * rows) / coll.count;
      assert.ok(Math.abs(perFile[i]! - expected) < 4 * Math.sqrt(expected), `file ${i}: ${perFile[i]} vs ${expected}`);
    });
    // first and second half of the rows are hit equally often (no bias to the start)
    const half = coll.count / 2;
    const firstHalf = hits.subarray(0, half).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(firstHalf - (seeds * n) / 2) < 4 * Math.sqrt((seeds * n) / 4));
  });
});

describe("parquet collection", () => {
  test("several files and row groups, ids, batches, sample, dimension mismatch", async () => {
    const d = mkdir("pq");
    const dim = 4;
    const m = matrix(70, dim);
    const uid = Array.from({ length: 70 }, (_, i) => `id-${i}`);
    writeParquet(path.join(d, "part-0.parquet"), {
      vectors: rowsOf(m.subarray(0, 30 * dim), dim),
      rowGroupSize: 8,
      extra: [{ name: "uid", data: uid.slice(0, 30), type: "STRING" }],
    });
    writeParquet(path.join(d, "part-1.parquet"), {
      vectors: [],
      extra: [{ name: "uid", data: [], type: "STRING" }],
    });
    writeParquet(path.join(d, "part-2.parquet"), {
      vectors: rowsOf(m.subarray(30 * dim), dim),
      rowGroupSize: 16,
      element: "DOUBLE",
      extra: [{ name: "uid", data: uid.slice(30), type: "STRING" }],
    });
    const c = countingOpener();
    await using coll = await openCollection(d, { fileFormat: "parquet", idColumns: ["uid"], openSource: c.open });
    assert.equal(coll.count, 70);
    assert.equal(coll.dimension, 4);
    assert.equal(coll.files.length, 2);
    assert.deepEqual(coll.idColumns, [{ name: "uid", type: "STRING" }]);
    const seen: string[] = [];
    const vecs: number[] = [];
    for await (const b of coll.batches(12)) {
      seen.push(...(b.ids!.uid as string[]));
      vecs.push(...b.vectors);
      assert.equal(b.ids!.uid!.length, b.rows);
    }
    assert.deepEqual(seen, uid);
    assert.deepEqual(new Float32Array(vecs), m);
    const s = await coll.sample(10, 3);
    for (let k = 0; k < 10; k++) {
      const p = s.positions[k]!;
      assert.equal(s.ids!.uid![k], `id-${p}`);
      assert.deepEqual(s.vectors.subarray(k * dim, (k + 1) * dim), m.subarray(p * dim, (p + 1) * dim));
    }
    const q = await coll.read(25, 35);
    assert.deepEqual(q.ids!.uid, uid.slice(25, 35));

    writeParquet(path.join(d, "part-3.parquet"), { vectors: [[1, 2, 3]] });
    await using bad = await openCollection(d, { fileFormat: "parquet" });
    const e = await expectError(bad.read(0, 71));
    assert.equal(
      e.message,
      `parquet data: ${path.join(d, "part-3.parquet")}: row 0: column 'embedding' has 3 values (expected 4, the dimension of ${path.join(d, "part-0.parquet")})`,
    );
  });

  test("missing embedding column across a folder names the file", async () => {
    const d = mkdir("pqcol");
    writeParquet(path.join(d, "a.parquet"), { vectors: [[1, 2]], column: "vec", extra: [{ name: "k", data: [1], type: "INT32" }] });
    const e = await expectError(openCollection(d, { fileFormat: "parquet", embeddingColumnName: "embedding" }));
    assert.equal(e.message, `parquet schema: ${path.join(d, "a.parquet")}: embedding column 'embedding' not found (columns: vec (list<FLOAT>), k (INT32))`);
    const e2 = await expectError(openCollection(mkdir("pqnone"), { fileFormat: "parquet" }));
    assert.equal(e2.message, `embedding files: no embeddings found in ${path.join(dir, "pqnone")} (found no *.parquet files)`);
  });
});
