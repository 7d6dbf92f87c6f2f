import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parquetReadObjects } from "hyparquet";
import { openCollection } from "../lib/io/collection.ts";
import { IdsWriter, idsFileName, resetIdsFolder, writeIdsFile } from "../lib/io/ids.ts";
import { FileSource } from "../lib/io/source.ts";
import { matrix } from "./fixtures/io/npy.ts";
import { rowsOf, writeParquet } from "./fixtures/io/parquet.ts";

let dir = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "io-ids-"));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function readParquetFile(file: string): Promise<Record<string, unknown>[]> {
  const src = await FileSource.open(file);
  try {
    return await parquetReadObjects({ file: src });
  } finally {
    await src.close();
  }
}

describe("ids mapping", () => {
  test("file names: part-{batch:08d}-{uuid}.parquet", () => {
    assert.match(idsFileName(7), /^part-00000007-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.parquet$/);
    assert.notEqual(idsFileName(1), idsFileName(1));
  });

  test("build-like flow: one file per batch, columns [ids..., i], folder order = row order", async () => {
    const data = path.join(dir, "data");
    fs.mkdirSync(data);
    const uid = Array.from({ length: 45 }, (_, i) => BigInt(500 + i));
    const url = Array.from({ length: 45 }, (_, i) => `u${i}`);
    writeParquet(path.join(data, "a.parquet"), {
      vectors: rowsOf(matrix(20, 3), 3),
      extra: [{ name: "uid", data: uid.slice(0, 20), type: "INT64" }, { name: "url", data: url.slice(0, 20), type: "STRING" }],
    });
    writeParquet(path.join(data, "b.parquet"), {
      vectors: rowsOf(matrix(25, 3, 20), 3),
      extra: [{ name: "uid", data: uid.slice(20), type: "INT64" }, { name: "url", data: url.slice(20), type: "STRING" }],
    });
    const idsPath = path.join(dir, "ids");
    fs.mkdirSync(idsPath);
    fs.writeFileSync(path.join(idsPath, "stale.parquet"), "old run");
    await resetIdsFolder(idsPath);
    assert.deepEqual(fs.readdirSync(idsPath), []);

    await using coll = await openCollection(data, { fileFormat: "parquet", idColumns: ["url", "uid"] });
    const writer = new IdsWriter(idsPath, coll.idColumns);
    for await (const b of coll.batches(16)) await writer.write(b);
    assert.equal(writer.batches, 3);
    const files = fs.readdirSync(idsPath).sort();
    assert.equal(files.length, 3);
    assert.deepEqual(files.map((f) => f.slice(0, 14)), ["part-00000000-", "part-00000001-", "part-00000002-"]);
    const rows = [];
    for (const f of files) rows.push(...(await readParquetFile(path.join(idsPath, f))));
    assert.deepEqual(Object.keys(rows[0]!), ["url", "uid", "i"]);
    assert.deepEqual(rows.map((r) => r.i), Array.from({ length: 45 }, (_, i) => BigInt(i)));
    assert.deepEqual(rows.map((r) => r.uid), uid);
    assert.deepEqual(rows.map((r) => r.url), url);
  });

  test("without id columns only `i` is written; no temp file is left behind", async () => {
    const idsPath = path.join(dir, "only-i");
    await resetIdsFolder(idsPath);
    const file = await writeIdsFile(idsPath, 4, { rows: 3, startId: 10 }, []);
    assert.deepEqual(fs.readdirSync(idsPath), [path.basename(file)]);
    assert.deepEqual(await readParquetFile(file), [{ i: 10n }, { i: 11n }, { i: 12n }]);
  });

  test("a batch missing an id column's values is refused", async () => {
    const idsPath = path.join(dir, "bad");
    await resetIdsFolder(idsPath);
    await assert.rejects(writeIdsFile(idsPath, 0, { rows: 2, startId: 0, ids: { uid: [1] } }, [{ name: "uid", type: "INT32" }]), {
      message: `ids mapping: ${idsPath}: batch 0 has 1 values for id column 'uid' (expected 2)`,
    });
    assert.deepEqual(fs.readdirSync(idsPath), []);
  });

  test("an unwritable ids folder is named", async () => {
    const missing = path.join(dir, "no", "such");
    await assert.rejects(writeIdsFile(missing, 0, { rows: 1, startId: 0 }, []), (e: Error) => {
      assert.match(e.message, new RegExp(`^ids mapping: ${missing}/part-00000000-.*\\.parquet: cannot write \\(ENOENT: no such file or directory\\)$`));
      return true;
    });
  });

  test("resetIdsFolder refuses / and the working directory", async () => {
    await assert.rejects(resetIdsFolder("/"), { message: "ids mapping: /: refusing to delete this folder (expected a dedicated ids_path)" });
    await assert.rejects(resetIdsFolder("."), { message: `ids mapping: ${process.cwd()}: refusing to delete this folder (expected a dedicated ids_path)` });
  });
});
