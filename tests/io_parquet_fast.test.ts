import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parquetMetadata } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { decodeFloatListChunk, decodeHybrid, type Decompressor, type FastChunk } from "../lib/io/parquet_fast.ts";
import { matrix } from "./fixtures/io/npy.ts";
import { type ParquetFixture, parquetBytes, rowsOf } from "./fixtures/io/parquet.ts";

const decompressors = compressors as Partial<Record<string, Decompressor>>;

/** The embedding column chunk of row group `g` of a hyparquet-writer file (data pages v2). */
function chunkOf(f: ParquetFixture, dim: number, g = 0): FastChunk {
  const bytes = parquetBytes(f);
  const md = parquetMetadata(bytes.buffer as ArrayBuffer);
  const meta = md.row_groups[g]!.columns[0]!.meta_data!;
  const start = Number(meta.dictionary_page_offset || meta.data_page_offset);
  return {
    bytes: bytes.subarray(start, start + Number(meta.total_compressed_size)),
    codec: meta.codec,
    elementType: f.element ?? "FLOAT",
    maxDef: f.leafRequired ? 2 : 3,
    maxRep: 1,
    rows: Number(md.row_groups[g]!.num_rows),
    dim,
    compressors: decompressors,
  };
}

// ---- hand-made data pages v1 (what pyarrow writes by default; hyparquet-writer writes v2) ----

/** Thrift compact struct from [fieldId, type, value] (types: 5 i32, 12 struct, 1/2 bool). */
type Field = [number, 5 | 12 | 1, number | Field[] | boolean];
function thrift(fields: Field[]): number[] {
  const out: number[] = [];
  let last = 0;
  const varint = (n: number) => {
    while (n >= 0x80) {
      out.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    out.push(n);
  };
  for (const [id, type, value] of fields) {
    const t = type === 1 ? (value ? 1 : 2) : type;
    out.push(((id - last) << 4) | t);
    last = id;
    if (type === 5) varint((value as number) >= 0 ? (value as number) * 2 : -(value as number) * 2 - 1);
    if (type === 12) out.push(...thrift(value as Field[]));
  }
  out.push(0);
  return out;
}

/** RLE/bit-packed hybrid encoding as one bit-packed run. */
function hybrid(values: number[], width: number): number[] {
  const groups = Math.ceil(values.length / 8);
  const out: number[] = [];
  let v = groups * 2 + 1;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out.push(v);
  // BigInt keeps widths up to 32 exact
  let acc = 0n, bits = 0n;
  for (let i = 0; i < groups * 8; i++) {
    acc |= BigInt(values[i] ?? 0) << bits;
    bits += BigInt(width);
    while (bits >= 8n) {
      out.push(Number(acc & 0xffn));
      acc >>= 8n;
      bits -= 8n;
    }
  }
  if (bits > 0n) out.push(Number(acc & 0xffn));
  return out;
}

function u32(n: number): number[] {
  return [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
}

function floatBytes(values: number[], double = false): number[] {
  const a = double ? new Float64Array(values) : new Float32Array(values);
  return Array.from(new Uint8Array(a.buffer));
}

/** One uncompressed v1 data page of `rows` (lists), def levels all `maxDef`. */
function pageV1(rows: number[][], maxDef: number, valuesSection: number[], encoding = 0): number[] {
  const rep = rows.flatMap((r) => r.map((_, i) => (i === 0 ? 0 : 1)));
  const def = rep.map(() => maxDef);
  const repBytes = hybrid(rep, 1);
  const defBytes = hybrid(def, 32 - Math.clz32(maxDef));
  const body = [...u32(repBytes.length), ...repBytes, ...u32(defBytes.length), ...defBytes, ...valuesSection];
  const header = thrift([
    [1, 5, 0],
    [2, 5, body.length],
    [3, 5, body.length],
    [5, 12, [[1, 5, rep.length], [2, 5, encoding], [3, 5, 3], [4, 5, 3]]],
  ]);
  return [...header, ...body];
}

describe("parquet fast decoder", () => {
  const dim = 16;
  const m = matrix(300, dim);
  const vectors = rowsOf(m, dim);
  const cases: [string, ParquetFixture][] = [
    ["float snappy v2", { vectors }],
    ["double zstd", { vectors, element: "DOUBLE", codec: "ZSTD" }],
    ["float gzip, many small pages", { vectors, codec: "GZIP", pageSize: 300 }],
    ["float uncompressed, required elements", { vectors, codec: "UNCOMPRESSED", leafRequired: true }],
    ["older pyarrow 'item' leaf", { vectors, leafName: "item" }],
  ];
  for (const [label, fixture] of cases) {
    test(label, () => {
      const out = decodeFloatListChunk(chunkOf(fixture, dim));
      assert.ok(out, "fast path taken");
      assert.deepEqual(out, m);
    });
  }

  test("dictionary-encoded pages (few distinct values)", () => {
    const few = Float32Array.from(m, (v) => Math.floor(v) % 7);
    const out = decodeFloatListChunk(chunkOf({ vectors: rowsOf(few, dim) }, dim));
    assert.deepEqual(out, few);
  });

  test("data page v1, PLAIN float and double, a row split across pages", () => {
    const rows = [[1, 2, 3], [4, 5, 6], [7, 8, 9]];
    // page 1: rows 0 and the first value of row 1; page 2: the rest
    const p1Rows = [[1, 2, 3], [4]];
    const p2Values = [5, 6, 7, 8, 9];
    const p1 = pageV1(p1Rows, 3, floatBytes([1, 2, 3, 4]));
    // page 2 starts mid-row: its first repetition level is 1
    const rep2 = [1, 1, 0, 1, 1];
    const rb = hybrid(rep2, 1), db = hybrid(rep2.map(() => 3), 2);
    const body2 = [...u32(rb.length), ...rb, ...u32(db.length), ...db, ...floatBytes(p2Values)];
    const p2 = [...thrift([[1, 5, 0], [2, 5, body2.length], [3, 5, body2.length], [5, 12, [[1, 5, 5], [2, 5, 0], [3, 5, 3], [4, 5, 3]]]]), ...body2];
    const chunk = { bytes: new Uint8Array([...p1, ...p2]), codec: "UNCOMPRESSED", elementType: "FLOAT", maxDef: 3, maxRep: 1, rows: 3, dim: 3, compressors: decompressors };
    assert.deepEqual(decodeFloatListChunk(chunk), new Float32Array(rows.flat()));
    const dbl = pageV1(rows, 3, floatBytes(rows.flat(), true));
    assert.deepEqual(
      decodeFloatListChunk({ ...chunk, bytes: new Uint8Array(dbl), elementType: "DOUBLE" }),
      new Float32Array(rows.flat()),
    );
  });

  test("data page v1 with a dictionary page (pyarrow's default for the first pages)", () => {
    const dict = [0.5, -1, 2.25];
    const dictPage = [...thrift([[1, 5, 2], [2, 5, 12], [3, 5, 12], [7, 12, [[1, 5, 3], [2, 5, 0]]]]), ...floatBytes(dict)];
    const rows = [[2, 0], [1, 1], [0, 2]];
    const values = [2, ...hybrid(rows.flat(), 2)]; // bit width byte, then indices
    const data = pageV1(rows, 3, values, 8);
    const out = decodeFloatListChunk({
      bytes: new Uint8Array([...dictPage, ...data]),
      codec: "UNCOMPRESSED",
      elementType: "FLOAT",
      maxDef: 3,
      maxRep: 1,
      rows: 3,
      dim: 2,
      compressors: decompressors,
    });
    assert.deepEqual(out, new Float32Array(rows.flat().map((i) => dict[i]!)));
  });

  test("falls back (undefined) on nulls, ragged rows, float16, wrong row count", () => {
    assert.equal(decodeFloatListChunk(chunkOf({ vectors: [[1, 2], null, [3, 4]] }, 2)), undefined);
    assert.equal(decodeFloatListChunk(chunkOf({ vectors: [[1, 2], [3, null as unknown as number]] }, 2)), undefined);
    assert.equal(decodeFloatListChunk(chunkOf({ vectors: [[1, 2], [3, 4, 5], [6]] }, 2)), undefined);
    assert.equal(decodeFloatListChunk(chunkOf({ vectors: [[1, 2], [3, 4]], element: "FLOAT16" }, 2)), undefined);
    assert.equal(decodeFloatListChunk({ ...chunkOf({ vectors: [[1, 2], [3, 4]] }, 2), rows: 3 }), undefined);
    assert.equal(decodeFloatListChunk({ ...chunkOf({ vectors: [[1, 2], [3, 4]] }, 2), dim: 4, rows: 1 }), undefined);
  });

  test("hybrid decoding: RLE runs and bit-packed runs of several widths", () => {
    for (const width of [1, 2, 3, 7, 8, 13, 24, 31]) {
      const values = Array.from({ length: 37 }, (_, i) => (i * 2654435761) % 2 ** width);
      const enc = hybrid(values, width);
      const out = new Uint32Array(37);
      assert.ok(decodeHybrid(new Uint8Array(enc), 0, enc.length, width, 37, out));
      assert.deepEqual(Array.from(out), values, `width ${width}`);
    }
    // RLE run: header = count << 1, then the value in ceil(width / 8) bytes
    const out = new Uint8Array(5);
    assert.ok(decodeHybrid(new Uint8Array([10, 3]), 0, 2, 2, 5, out));
    assert.deepEqual(Array.from(out), [3, 3, 3, 3, 3]);
    assert.equal(decodeHybrid(new Uint8Array([10, 3]), 0, 2, 2, 6, new Uint8Array(6)), false);
  });
});
