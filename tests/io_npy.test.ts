import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EmbeddingReadError } from "../lib/io/errors.ts";
import { float16ToNumber } from "../lib/io/float.ts";
import { NpyReader, readNpyHeader } from "../lib/io/npy.ts";
import { CountingSource, FileSource } from "../lib/io/source.ts";
import { matrix, npyBytes, toFloat16Bits } from "./fixtures/io/npy.ts";

let dir = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "io-npy-"));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function bytesOf(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

async function open(name: string, bytes: Uint8Array): Promise<{ src: CountingSource; file: string }> {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return { src: new CountingSource(await FileSource.open(file)), file };
}

async function readAll(name: string, bytes: Uint8Array): Promise<{ values: Float32Array; dim: number }> {
  const { src } = await open(name, bytes);
  try {
    const header = await readNpyHeader(src);
    const reader = new NpyReader(src, header);
    const out = new Float32Array(header.rows * header.dim);
    await reader.readRows(0, header.rows, out, 0);
    return { values: out, dim: header.dim };
  } finally {
    await src.close();
  }
}

async function headerError(name: string, bytes: Uint8Array): Promise<EmbeddingReadError> {
  const { src } = await open(name, bytes);
  try {
    await readNpyHeader(src);
  } catch (e) {
    assert.ok(e instanceof EmbeddingReadError, String(e));
    return e;
  } finally {
    await src.close();
  }
  throw new Error("expected an error");
}

describe("npy header", () => {
  test("versions 1, 2 and 3 give count and dimension from the header bytes alone", async () => {
    for (const version of [1, 2, 3]) {
      const m = matrix(50, 8);
      const { src } = await open(`v${version}.npy`, npyBytes({ version, rows: 50, dim: 8, data: bytesOf(m) }));
      const h = await readNpyHeader(src);
      assert.deepEqual(h, { version: `${version}.0`, dtype: "f4", itemSize: 4, rows: 50, dim: 8, dataOffset: 128 });
      // the header is 128 bytes (64-aligned); nothing past it was touched
      assert.equal(src.bytesRead, 128);
      assert.ok(src.reads.every((r) => r.end <= 128));
      await src.close();
    }
  });

  test("v3 header with UTF-8 text and a Python-2 long shape", async () => {
    const h = await (async () => {
      const { src } = await open(
        "v3utf8.npy",
        npyBytes({ version: 3, headerText: "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), 'é': 1}", data: new Uint8Array(24) }),
      );
      try {
        return await readNpyHeader(src);
      } finally {
        await src.close();
      }
    })();
    assert.equal(h.rows, 2);
    assert.equal(h.dim, 3);
  });

  test("empty (0-row) file is valid with zero rows", async () => {
    const { src } = await open("empty.npy", npyBytes({ rows: 0, dim: 16 }));
    assert.equal((await readNpyHeader(src)).rows, 0);
    await src.close();
  });

  const cases: [string, Uint8Array, string][] = [
    ["int.npy", npyBytes({ descr: "<i4", rows: 1, dim: 1, data: new Uint8Array(4) }), "descr '<i4' is not a float type (expected <f2, <f4 or <f8)"],
    ["uint8.npy", npyBytes({ descr: "|u1", rows: 1, dim: 1, data: new Uint8Array(1) }), "descr '|u1' is not a float type (expected <f2, <f4 or <f8)"],
    ["big.npy", npyBytes({ descr: ">f4", rows: 1, dim: 1, data: new Uint8Array(4) }), "descr '>f4' is big-endian (expected <f2, <f4 or <f8)"],
    ["complex.npy", npyBytes({ descr: "<c8", rows: 1, dim: 1, data: new Uint8Array(8) }), "descr '<c8' is a complex type (expected <f2, <f4 or <f8)"],
    ["f128.npy", npyBytes({ descr: "<f16", rows: 1, dim: 1, data: new Uint8Array(16) }), "descr '<f16' is an unsupported float size (expected <f2, <f4 or <f8)"],
    ["pipe.npy", npyBytes({ descr: "|f4", rows: 1, dim: 1, data: new Uint8Array(4) }), "descr '|f4' has no byte order (expected <f2, <f4 or <f8)"],
    ["str.npy", npyBytes({ descr: "<U5", rows: 1, dim: 1, data: new Uint8Array(20) }), "descr '<U5' is not a float type (expected <f2, <f4 or <f8)"],
    ["struct.npy", npyBytes({ headerText: "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", data: new Uint8Array(4) }), "descr is a structured dtype (expected <f2, <f4 or <f8)"],
    ["fortran.npy", npyBytes({ fortran: true, rows: 2, dim: 2, data: new Uint8Array(16) }), "fortran_order is True (expected a C-order array; save it with np.ascontiguousarray)"],
    ["1d.npy", npyBytes({ shapeText: "10,", data: new Uint8Array(40) }), "shape (10,) is 1-D (expected a 2-D array (rows, dim))"],
    ["3d.npy", npyBytes({ shapeText: "2, 3, 4", data: new Uint8Array(96) }), "shape (2, 3, 4) is 3-D (expected a 2-D array (rows, dim))"],
    ["0d.npy", npyBytes({ shapeText: "", data: new Uint8Array(4) }), "shape () is 0-D (expected a 2-D array (rows, dim))"],
    ["dim0.npy", npyBytes({ rows: 5, dim: 0 }), "shape (5, 0) has dimension 0 (expected at least 1)"],
    ["v4.npy", npyBytes({ version: 4, rows: 1, dim: 1 }), "format version 4.0 is not supported (expected 1.0, 2.0 or 3.0)"],
    ["zip.npy", new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0, 0, 0, 0, 0, 0]), 'bad magic bytes 50 4b 03 04 14 00 (expected 93 4e 55 4d 50 59, "\\x93NUMPY")'],
    ["zero.npy", new Uint8Array(0), "truncated: file has 0 bytes (expected at least 12 for the header)"],
    ["short.npy", npyBytes({ rows: 1, dim: 1, data: new Uint8Array(4) }).subarray(0, 60), "truncated: file has 60 bytes (expected at least 128 for the header)"],
  ];
  for (const [name, bytes, detail] of cases) {
    test(`rejects ${name}: ${detail}`, async () => {
      const e = await headerError(name, bytes);
      assert.equal(e.message, `npy header: ${path.join(dir, name)}: ${detail}`);
      assert.equal(e.file, path.join(dir, name));
    });
  }

  test("truncated data and trailing garbage are caught from the file size", async () => {
    const full = npyBytes({ rows: 10, dim: 4, data: bytesOf(matrix(10, 4)) });
    let e = await headerError("trunc.npy", full.subarray(0, full.length - 5));
    assert.equal(e.message, `npy data: ${path.join(dir, "trunc.npy")}: truncated: header shape (10, 4) of <f4 needs 160 data bytes, file has 155`);
    const longer = new Uint8Array(full.length + 3);
    longer.set(full);
    e = await headerError("long.npy", longer);
    assert.equal(e.message, `npy data: ${path.join(dir, "long.npy")}: 3 unexpected bytes after the data (header shape (10, 4) of <f4 needs 160 data bytes)`);
  });

  test("'=f4' (native order) is accepted on this little-endian host", async () => {
    const { values } = await readAll("native.npy", npyBytes({ descr: "=f4", rows: 2, dim: 2, data: bytesOf(new Float32Array([1, 2, 3, 4])) }));
    assert.deepEqual(Array.from(values), [1, 2, 3, 4]);
  });
});

describe("npy data", () => {
  test("float32, float64 and float16 are read as float32", async () => {
    const m = matrix(30, 5);
    const f32 = await readAll("f32.npy", npyBytes({ descr: "<f4", rows: 30, dim: 5, data: bytesOf(m) }));
    assert.deepEqual(f32.values, m);
    const f64 = await readAll("f64.npy", npyBytes({ descr: "<f8", rows: 30, dim: 5, data: bytesOf(Float64Array.from(m)) }));
    assert.deepEqual(f64.values, m);
    const d = new Float64Array([0.1, 1 / 3, 1e-40, 3.4028234663852886e38]);
    const f64b = await readAll("f64b.npy", npyBytes({ descr: "<f8", rows: 2, dim: 2, data: bytesOf(d) }));
    assert.deepEqual(f64b.values, Float32Array.from(d)); // round-to-nearest, like numpy astype
    const halves = [0, -0, 1, -2, 0.5, 65504, -65504, 2 ** -14, 2 ** -24, 3 * 2 ** -24, 1023 * 2 ** -24, 1.5, 0.333251953125];
    const f16 = await readAll("f16.npy", npyBytes({ descr: "<f2", rows: halves.length, dim: 1, data: bytesOf(toFloat16Bits(halves)) }));
    assert.deepEqual(Array.from(f16.values), halves);
    assert.ok(Object.is(f16.values[1], -0));
  });

  test("float16 special values: subnormals, infinities, NaN", () => {
    assert.equal(float16ToNumber(0x0001), 2 ** -24);
    assert.equal(float16ToNumber(0x03ff), 1023 * 2 ** -24);
    assert.equal(float16ToNumber(0x8001), -(2 ** -24));
    assert.equal(float16ToNumber(0x0400), 2 ** -14);
    assert.equal(float16ToNumber(0x7bff), 65504);
    assert.equal(float16ToNumber(0x7c00), Infinity);
    assert.equal(float16ToNumber(0xfc00), -Infinity);
    assert.ok(Number.isNaN(float16ToNumber(0x7e00)));
    assert.ok(Number.isNaN(float16ToNumber(0xfc01)));
    assert.ok(Object.is(float16ToNumber(0x8000), -0));
    assert.equal(float16ToNumber(0x3555), 0.333251953125);
  });

  test("a row range reads exactly its bytes", async () => {
    const m = matrix(1000, 16);
    const { src } = await open("range.npy", npyBytes({ rows: 1000, dim: 16, data: bytesOf(m) }));
    const h = await readNpyHeader(src);
    const reader = new NpyReader(src, h);
    src.reads.length = 0;
    const out = new Float32Array(20 * 16);
    await reader.readRows(100, 120, out, 0);
    assert.deepEqual(src.reads, [{ start: 128 + 100 * 64, end: 128 + 120 * 64 }]);
    assert.deepEqual(out, m.subarray(100 * 16, 120 * 16));
    await reader.close();
  });

  test("scattered rows: near rows coalesce into one read, far rows read alone", async () => {
    const dim = 256; // 1 KiB rows
    const m = matrix(2000, dim);
    const { src } = await open("scatter.npy", npyBytes({ rows: 2000, dim, data: bytesOf(m) }));
    const reader = new NpyReader(src, await readNpyHeader(src));
    src.reads.length = 0;
    const rows = [3, 5, 6, 40, 1500, 1999];
    const out = new Float32Array(rows.length * dim);
    await reader.readRowsAt(rows, out, 0);
    for (let i = 0; i < rows.length; i++) assert.deepEqual(out.subarray(i * dim, (i + 1) * dim), m.subarray(rows[i]! * dim, (rows[i]! + 1) * dim));
    // 3..40 are within the 64 KiB gap limit (one read), 1500 and 1999 are each alone
    assert.deepEqual(src.reads.map((r) => [(r.start - 128) / 1024, (r.end - 128) / 1024]), [[3, 41], [1500, 1501], [1999, 2000]]);
    await reader.close();
  });

  test("float16 and float64 scattered rows convert like sequential reads", async () => {
    const m = matrix(300, 3);
    for (const [descr, data] of [["<f8", bytesOf(Float64Array.from(m))], ["<f2", bytesOf(toFloat16Bits(Array.from(m)))]] as const) {
      const { src } = await open(`scatter${descr.slice(1)}.npy`, npyBytes({ descr, rows: 300, dim: 3, data }));
      const reader = new NpyReader(src, await readNpyHeader(src));
      const all = new Float32Array(900);
      await reader.readRows(0, 300, all, 0);
      const some = new Float32Array(9);
      await reader.readRowsAt([0, 150, 299], some, 0);
      assert.deepEqual(some, Float32Array.from([...all.subarray(0, 3), ...all.subarray(450, 453), ...all.subarray(897, 900)]));
      await reader.close();
    }
  });

  test("NaN and Inf are refused naming file, row and component", async () => {
    const m = matrix(10, 4);
    m[6 * 4 + 2] = NaN;
    const { src, file } = await open("nan.npy", npyBytes({ rows: 10, dim: 4, data: bytesOf(m) }));
    const reader = new NpyReader(src, await readNpyHeader(src));
    const out = new Float32Array(40);
    await assert.rejects(reader.readRows(0, 10, out, 0), (e: unknown) => {
      assert.ok(e instanceof EmbeddingReadError);
      assert.equal(e.message, `npy data: ${file}: row 6 has NaN at component 2 (expected finite values; NaN/Inf poison k-means training)`);
      assert.equal(e.row, 6);
      return true;
    });
    await reader.readRows(0, 6, out, 0); // rows before it are fine
    m[6 * 4 + 2] = 0;
    m[9 * 4] = -Infinity;
    fs.writeFileSync(file, npyBytes({ rows: 10, dim: 4, data: bytesOf(m) }));
    await assert.rejects(reader.readRowsAt([1, 9], out, 0), {
      message: `npy data: ${file}: row 9 has -Infinity at component 0 (expected finite values; NaN/Inf poison k-means training)`,
    });
    await reader.close();
  });

  test("a file that shrinks after its header was read fails naming the row", async () => {
    const { src, file } = await open("shrink.npy", npyBytes({ rows: 10, dim: 4, data: bytesOf(matrix(10, 4)) }));
    const reader = new NpyReader(src, await readNpyHeader(src));
    fs.truncateSync(file, 128 + 5 * 16 + 3);
    await assert.rejects(reader.readRows(0, 10, new Float32Array(40), 0), {
      message: `npy data: ${file}: truncated at row 5: read 83 of 160 bytes at offset 128 (the file shrank after its header was read)`,
    });
    await reader.close();
  });
});

describe("file source", () => {
  test("close is idempotent, reads after close fail, missing files name the path", async () => {
    const file = path.join(dir, "src.bin");
    fs.writeFileSync(file, new Uint8Array([1, 2, 3, 4, 5]));
    const src = await FileSource.open(file);
    assert.equal(src.byteLength, 5);
    assert.deepEqual(new Uint8Array(await src.slice(1, 3)), new Uint8Array([2, 3]));
    assert.deepEqual(new Uint8Array(await src.slice(3)), new Uint8Array([4, 5]));
    await src.close();
    await src.close();
    await assert.rejects(src.slice(0, 1), { message: `file read: ${file}: source is closed` });
    const missing = path.join(dir, "missing.npy");
    await assert.rejects(FileSource.open(missing), { message: `file open: ${missing}: cannot open (ENOENT: no such file or directory)` });
    await assert.rejects(FileSource.open(dir), { message: `file open: ${dir}: cannot open (EISDIR: is a directory)` });
  });

  test("await using closes the handle", async () => {
    const file = path.join(dir, "src2.bin");
    fs.writeFileSync(file, new Uint8Array([9]));
    let keep: FileSource | undefined;
    {
      await using src = await FileSource.open(file);
      keep = src;
    }
    await assert.rejects(keep.slice(0, 1), { message: `file read: ${file}: source is closed` });
  });
});
