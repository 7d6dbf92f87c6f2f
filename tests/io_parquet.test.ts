import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EmbeddingReadError } from "../lib/io/errors.ts";
import { ParquetReader, readParquetInfo } from "../lib/io/parquet.ts";
import { CountingSource, FileSource } from "../lib/io/source.ts";
import { matrix } from "./fixtures/io/npy.ts";
import { type ParquetFixture, rowsOf, writeParquet } from "./fixtures/io/parquet.ts";

let dir = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "io-parquet-"));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function openFile(name: string, f: ParquetFixture): Promise<{ src: CountingSource; file: string }> {
  const file = writeParquet(path.join(dir, name), f);
  return { src: new CountingSource(await FileSource.open(file)), file };
}

/** Open, resolve the column, learn the dimension, read every row. */
async function readAll(name: string, f: ParquetFixture, options: Parameters<typeof readParquetInfo>[1] = {}) {
  const { src } = await openFile(name, f);
  try {
    const info = await readParquetInfo(src, options);
    const reader = new ParquetReader(src, info);
    reader.dim = await reader.firstRowLength();
    const out = new Float32Array(info.rows * reader.dim);
    const ids: Record<string, unknown[]> = {};
    for (const c of info.idColumns) ids[c.name] = [];
    await reader.readRows(0, info.rows, out, 0, ids);
    return { info, dim: reader.dim, values: out, ids };
  } finally {
    await src.close();
  }
}

async function schemaError(name: string, f: ParquetFixture, options: Parameters<typeof readParquetInfo>[1] = {}) {
  const { src, file } = await openFile(name, f);
  try {
    await readParquetInfo(src, options);
  } catch (e) {
    assert.ok(e instanceof EmbeddingReadError, String(e));
    return { e, file };
  } finally {
    await src.close();
  }
  throw new Error("expected an error");
}

describe("parquet layouts", () => {
  const m = matrix(25, 6);
  const vectors = rowsOf(m, 6);
  const layouts: [string, ParquetFixture][] = [
    ["list<float> element", { vectors }],
    ["list<double> item (older pyarrow)", { vectors, element: "DOUBLE", leafName: "item" }],
    ["list<float> required elements", { vectors, leafRequired: true }],
    ["list<float16>", { vectors, element: "FLOAT16" }],
    ["several row groups and pages", { vectors, rowGroupSize: 7, pageSize: 64 }],
    ["uncompressed", { vectors, codec: "UNCOMPRESSED" }],
    ["gzip", { vectors, codec: "GZIP" }],
    ["brotli", { vectors, codec: "BROTLI" }],
    ["zstd", { vectors, codec: "ZSTD" }],
  ];
  for (const [label, fixture] of layouts) {
    test(label, async () => {
      const { info, dim, values } = await readAll(`${label.replace(/\W+/g, "_")}.parquet`, fixture);
      assert.equal(info.rows, 25);
      assert.equal(dim, 6);
      // every matrix value is exact in float16 too except the fractional parts: compare through float16 rounding
      if (fixture.element === "FLOAT16") {
        for (let i = 0; i < m.length; i++) assert.ok(Math.abs(values[i]! - m[i]!) <= Math.abs(m[i]!) * 2 ** -11, `${i}`);
      } else assert.deepEqual(values, m);
    });
  }

  test("row groups are listed with their first rows", async () => {
    const { info } = await readAll("groups.parquet", { vectors, rowGroupSize: 10 });
    assert.deepEqual(info.rowGroups.map((g) => [g.start, g.rows]), [[0, 10], [10, 10], [20, 5]]);
  });

  test("id columns are read alongside, in row order", async () => {
    const extra = [
      { name: "uid", data: Array.from({ length: 25 }, (_, i) => BigInt(1000 + i)), type: "INT64" },
      { name: "url", data: Array.from({ length: 25 }, (_, i) => `https://x/${i}`), type: "STRING" },
      { name: "text", data: Array.from({ length: 25 }, () => "t"), type: "STRING" },
    ];
    const { info, ids } = await readAll("ids.parquet", { vectors, extra, rowGroupSize: 10 }, { idColumns: ["url", "uid"] });
    assert.deepEqual(info.idColumns, [{ name: "url", type: "STRING" }, { name: "uid", type: "INT64" }]);
    assert.deepEqual(ids.uid, extra[0]!.data);
    assert.deepEqual(ids.url, extra[1]!.data);
  });
});

describe("parquet embedding column choice", () => {
  const vectors = rowsOf(matrix(3, 2), 2);
  const id = { name: "id", data: [1, 2, 3], type: "INT32" };

  test("default accepts 'embeddings' and a lone list column", async () => {
    assert.equal((await readAll("plural.parquet", { vectors, column: "embeddings", extra: [id] })).info.embeddingColumn, "embeddings");
    assert.equal((await readAll("lone.parquet", { vectors, column: "vec", extra: [id], extraFirst: true })).info.embeddingColumn, "vec");
  });

  test("explicit column that does not exist lists the columns", async () => {
    const { e, file } = await schemaError("explicit.parquet", { vectors, extra: [id] }, { embeddingColumnName: "emb" });
    assert.equal(e.message, `parquet schema: ${file}: embedding column 'emb' not found (columns: embedding (list<FLOAT>), id (INT32))`);
    assert.equal(e.column, "emb");
  });

  test("two list columns and no default name: an error, not a guess", async () => {
    const two = path.join(dir, "two.parquet");
    const { parquetWriteBuffer } = await import("hyparquet-writer");
    const list = (name: string) => [
      { name, repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
      { name: "list", repetition_type: "REPEATED", num_children: 1 },
      { name: "element", repetition_type: "OPTIONAL", type: "FLOAT" },
    ];
    fs.writeFileSync(two, new Uint8Array(parquetWriteBuffer({
      // deno-lint-ignore no-explicit-any
      columnData: [{ name: "a", data: vectors }, { name: "b", data: vectors }] as any,
      // deno-lint-ignore no-explicit-any
      schema: [{ name: "root", num_children: 2 }, ...list("a"), ...list("b")] as any,
    })));
    const src = await FileSource.open(two);
    try {
      await assert.rejects(readParquetInfo(src), {
        message: `parquet schema: ${two}: no embedding column: no 'embedding' or 'embeddings' column and 2 list columns to fall back on (columns: a (list<FLOAT>), b (list<FLOAT>); pass embedding_column_name)`,
      });
      // an explicit name picks one
      assert.equal((await readParquetInfo(src, { embeddingColumnName: "b" })).embeddingColumn, "b");
    } finally {
      await src.close();
    }
  });

  test("explicit column of the wrong type", async () => {
    const { e, file } = await schemaError("nolist.parquet", { vectors, column: "vec", extra: [id] }, { embeddingColumnName: "id" });
    assert.equal(e.message, `parquet schema: ${file}: column 'id' is INT32 (expected list<float> or list<double>)`);
  });

  test("no list column at all", async () => {
    const file = path.join(dir, "flat.parquet");
    const { parquetWriteBuffer } = await import("hyparquet-writer");
    fs.writeFileSync(file, new Uint8Array(parquetWriteBuffer({ columnData: [{ name: "id", data: [1, 2], type: "INT32" }, { name: "s", data: ["a", "b"], type: "STRING" }] })));
    const src = await FileSource.open(file);
    try {
      await assert.rejects(readParquetInfo(src), {
        message: `parquet schema: ${file}: no embedding column: no 'embedding' or 'embeddings' column and no list column to fall back on (columns: id (INT32), s (STRING); pass embedding_column_name)`,
      });
    } finally {
      await src.close();
    }
  });

  test("'embedding' of the wrong type is an error, not a fallback", async () => {
    const { e, file } = await schemaError("wrongtype.parquet", { vectors, column: "vec", extra: [{ name: "embedding", data: ["a", "b", "c"], type: "STRING" }] });
    assert.equal(e.message, `parquet schema: ${file}: column 'embedding' is STRING (expected list<float> or list<double>)`);
  });

  test("missing id column lists the columns", async () => {
    const { e, file } = await schemaError("noid.parquet", { vectors, extra: [id] }, { idColumns: ["uid"] });
    assert.equal(e.message, `parquet schema: ${file}: id column 'uid' not found (columns: embedding (list<FLOAT>), id (INT32))`);
    assert.equal(e.column, "uid");
  });
});

describe("parquet bad data", () => {
  test("not a parquet file, and a truncated one", async () => {
    const file = path.join(dir, "garbage.parquet");
    fs.writeFileSync(file, new TextEncoder().encode("this is not parquet at all, just text"));
    let src = await FileSource.open(file);
    await assert.rejects(readParquetInfo(src), {
      message: `parquet footer: ${file}: not a readable parquet file (parquet file invalid (footer != PAR1))`,
    });
    await src.close();
    const good = writeParquet(path.join(dir, "cut.parquet"), { vectors: rowsOf(matrix(50, 4), 4) });
    const bytes = fs.readFileSync(good);
    fs.writeFileSync(good, bytes.subarray(0, bytes.length - 20));
    src = await FileSource.open(good);
    await assert.rejects(readParquetInfo(src), (e: unknown) => {
      assert.ok(e instanceof EmbeddingReadError);
      assert.ok(e.message.startsWith(`parquet footer: ${good}: not a readable parquet file (`), e.message);
      return true;
    });
    await src.close();
  });

  async function dataError(name: string, vectors: (number[] | null)[], dim = 3) {
    const { src, file } = await openFile(name, { vectors });
    const reader = new ParquetReader(src, await readParquetInfo(src), dim, "first.parquet");
    try {
      await reader.readRows(0, vectors.length, new Float32Array(vectors.length * dim), 0);
    } catch (e) {
      assert.ok(e instanceof EmbeddingReadError, String(e));
      return { e, file };
    } finally {
      await reader.close();
    }
    throw new Error("expected an error");
  }

  test("null row, short row, null component, NaN", async () => {
    let { e, file } = await dataError("nullrow.parquet", [[1, 2, 3], null, [4, 5, 6]]);
    assert.equal(e.message, `parquet data: ${file}: row 1: column 'embedding' is null (expected a list of 3 floats)`);
    assert.equal(e.row, 1);
    assert.equal(e.column, "embedding");
    ({ e, file } = await dataError("short.parquet", [[1, 2, 3], [4, 5, 6], [7, 8]]));
    assert.equal(e.message, `parquet data: ${file}: row 2: column 'embedding' has 2 values (expected 3, the dimension of first.parquet)`);
    ({ e, file } = await dataError("nullcomp.parquet", [[1, 2, 3], [4, null as unknown as number, 6]]));
    assert.equal(e.message, `parquet data: ${file}: row 1: column 'embedding' has a null at component 1 (expected a float)`);
    ({ e, file } = await dataError("nan.parquet", [[1, 2, 3], [4, 5, 6], [7, 8, Infinity]]));
    assert.equal(e.message, `parquet data: ${file}: row 2: column 'embedding' has Infinity at component 2 (expected finite values; NaN/Inf poison k-means training)`);
  });
});

describe("parquet bytes touched", () => {
  // 4000 rows x 32 floats = 512 KB of vectors, plus a text column the reader must never fetch
  const m = matrix(4000, 32);
  const fixture: ParquetFixture = {
    vectors: rowsOf(m, 32),
    rowGroupSize: 1000,
    codec: "UNCOMPRESSED",
    extra: [
      { name: "id", data: Array.from({ length: 4000 }, (_, i) => i * 3), type: "INT32" },
      { name: "text", data: Array.from({ length: 4000 }, (_, i) => `row ${i} `.repeat(20)), type: "STRING" },
    ],
  };

  test("count comes from the footer alone", async () => {
    const { src } = await openFile("touch.parquet", fixture);
    const info = await readParquetInfo(src);
    assert.equal(info.rows, 4000);
    assert.ok(src.byteLength > 1_000_000);
    assert.equal(src.reads.length, 1);
    assert.deepEqual(src.reads[0], { start: src.byteLength - 65536, end: src.byteLength });
    await src.close();
  });

  test("a batch reads its row group's embedding and id chunks and nothing else", async () => {
    const { src } = await openFile("touch2.parquet", fixture);
    const info = await readParquetInfo(src, { idColumns: ["id"] });
    const reader = new ParquetReader(src, info, 32);
    src.reads.length = 0;
    const out = new Float32Array(100 * 32);
    const ids = { id: [] as unknown[] };
    await reader.readRows(1500, 1600, out, 0, ids);
    assert.deepEqual(out, m.subarray(1500 * 32, 1600 * 32));
    assert.deepEqual(ids.id, Array.from({ length: 100 }, (_, i) => (1500 + i) * 3));
    const chunkRange = (c: (typeof info.metadata.row_groups)[0]["columns"][0]) => {
      const start = Number(c.meta_data!.dictionary_page_offset ?? c.meta_data!.data_page_offset);
      return { start, end: start + Number(c.meta_data!.total_compressed_size) };
    };
    const group = info.metadata.row_groups[1]!;
    const groupSpan = group.columns.map(chunkRange).reduce((a, b) => ({ start: Math.min(a.start, b.start), end: Math.max(a.end, b.end) }));
    const textRanges = info.metadata.row_groups.map((g) => chunkRange(g.columns.find((c) => c.meta_data!.path_in_schema[0] === "text")!));
    for (const r of src.reads) {
      // hyparquet coalesces the two wanted chunks into one read when they are adjacent
      assert.ok(r.start >= groupSpan.start && r.end <= groupSpan.end, `read ${r.start}-${r.end} is outside row group 1`);
      assert.ok(textRanges.every((t) => r.end <= t.start || r.start >= t.end), `read ${r.start}-${r.end} touches a text chunk`);
    }
    const textChunk = group.columns.find((c) => c.meta_data!.path_in_schema[0] === "text")!.meta_data!;
    assert.ok(src.bytesRead < Number(textChunk.total_compressed_size), "read less than the text chunk alone");
    // a second batch in the same row group is served from the decoded row group
    const before = src.reads.length;
    await reader.readRows(1600, 1700, out, 0, ids);
    assert.equal(src.reads.length, before);
    assert.deepEqual(out, m.subarray(1600 * 32, 1700 * 32));
    await reader.close();
  });

  test("with an offset index, a batch decodes only the pages holding its rows", async () => {
    const { src } = await openFile("paged.parquet", { vectors: rowsOf(m, 32), codec: "UNCOMPRESSED", pageSize: 16 * 1024 });
    const info = await readParquetInfo(src);
    assert.deepEqual(info.rowGroups, [{ start: 0, rows: 4000, hasOffsetIndex: true }]);
    const reader = new ParquetReader(src, info, 32);
    reader.decodeBytes = 64 * 1024; // treat the 512 KB row group as "too big to decode whole"
    src.reads.length = 0;
    const out = new Float32Array(100 * 32);
    await reader.readRows(2000, 2100, out, 0);
    assert.deepEqual(out, m.subarray(2000 * 32, 2100 * 32));
    const chunk = Number(info.metadata.row_groups[0]!.columns[0]!.meta_data!.total_compressed_size);
    // 100 rows are 12.8 KB of floats: at most a few 16 KB pages plus the offset index
    assert.ok(src.bytesRead < 64 * 1024 && chunk > 500 * 1024, `read ${src.bytesRead} of a ${chunk}-byte chunk`);
    const sampled = new Float32Array(3 * 32);
    src.reads.length = 0;
    await reader.readRowsAt([10, 20, 3999], sampled, 0);
    assert.ok(src.bytesRead < 64 * 1024, `sampling 3 rows read ${src.bytesRead} bytes`);
    [10, 20, 3999].forEach((r, k) => assert.deepEqual(sampled.subarray(k * 32, (k + 1) * 32), m.subarray(r * 32, (r + 1) * 32)));
    await reader.close();
  });

  test("scattered rows decode only the row groups they fall in", async () => {
    const { src } = await openFile("touch3.parquet", fixture);
    const info = await readParquetInfo(src);
    const reader = new ParquetReader(src, info, 32);
    src.reads.length = 0;
    const rows = [5, 17, 3100, 3999];
    const out = new Float32Array(rows.length * 32);
    await reader.readRowsAt(rows, out, 0);
    rows.forEach((r, k) => assert.deepEqual(out.subarray(k * 32, (k + 1) * 32), m.subarray(r * 32, (r + 1) * 32)));
    const groupsTouched = new Set(
      src.reads.map((r) => info.metadata.row_groups.findIndex((g) => g.columns.some((c) => {
        const start = Number(c.meta_data!.data_page_offset);
        return r.start >= start && r.start < start + Number(c.meta_data!.total_compressed_size);
      }))),
    );
    assert.deepEqual([...groupsTouched].sort(), [0, 3]);
    await reader.close();
  });
});
