import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { openCollection } from "../lib/io/collection.ts";
import { HttpSource, openS3Source } from "../lib/io/source_remote.ts";
import { matrix, writeNpyF32 } from "./fixtures/io/npy.ts";
import { rowsOf, writeParquet } from "./fixtures/io/parquet.ts";

/**
 * A small file server over `dir`: HTTP range requests at /<file>, and just enough of the S3 API
 * (path-style HEAD/GET with Range, ListObjectsV2) at /bucket/<key> for Bun's S3 client.
 * Auth headers are ignored.
 */
let dir = "";
let server: http.Server;
let base = "";
let ignoreRanges = false;
const requests: { method: string; url: string; range?: string }[] = [];

function serve(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url!, "http://x");
  requests.push({ method: req.method!, url: req.url!, ...(req.headers.range ? { range: req.headers.range } : {}) });
  if (url.pathname === "/bucket" || url.pathname === "/bucket/") {
    // every served file appears as data/<name>
    const prefix = url.searchParams.get("prefix") ?? "";
    const contents = fs.readdirSync(dir)
      .filter((f) => `data/${f}`.startsWith(prefix))
      .map((f) => `<Contents><Key>data/${f}</Key><Size>${fs.statSync(path.join(dir, f)).size}</Size></Contents>`);
    res.writeHead(200, { "content-type": "application/xml" });
    res.end(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>bucket</Name><Prefix>${prefix}</Prefix><KeyCount>${contents.length}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${contents.join("")}</ListBucketResult>`);
    return;
  }
  const name = url.pathname.replace(/^\/bucket\/data\//, "/").slice(1);
  const file = path.join(dir, name);
  if (!name || !fs.existsSync(file)) {
    res.writeHead(404);
    res.end();
    return;
  }
  const bytes = fs.readFileSync(file);
  if (req.method === "HEAD") {
    res.writeHead(200, { "content-length": bytes.length, "accept-ranges": "bytes" });
    res.end();
    return;
  }
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
  if (!m || ignoreRanges) {
    res.writeHead(200, { "content-length": bytes.length });
    res.end(bytes);
    return;
  }
  const start = Number(m[1]);
  const end = m[2] ? Number(m[2]) : bytes.length - 1;
  res.writeHead(206, { "content-range": `bytes ${start}-${end}/${bytes.length}`, "content-length": end - start + 1 });
  res.end(bytes.subarray(start, end + 1));
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "io-src-"));
  writeNpyF32(path.join(dir, "a.npy"), matrix(30, 4), 4);
  writeNpyF32(path.join(dir, "b.npy"), matrix(20, 4, 30), 4);
  writeParquet(path.join(dir, "c.parquet"), { vectors: rowsOf(matrix(12, 4), 4), rowGroupSize: 5 });
  server = http.createServer(serve);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("http(s) sources", () => {
  test("a collection of URLs reads headers and rows with range requests", async () => {
    requests.length = 0;
    await using coll = await openCollection([`${base}/b.npy`, `${base}/a.npy`], { fileFormat: "npy" });
    assert.equal(coll.count, 50);
    const q = await coll.read(28, 32);
    assert.deepEqual(q.vectors, matrix(50, 4).subarray(28 * 4, 32 * 4));
    // headers are read concurrently, so compare as a sorted list
    const ranges = requests.filter((r) => r.method === "GET").map((r) => r.range!).sort();
    // headers: 12 bytes then the rest of each header; rows: exactly the bytes of rows 28-29 and 30-31
    const expected = ["bytes=0-11", "bytes=0-11", "bytes=12-127", "bytes=12-127", `bytes=${128 + 28 * 16}-${128 + 30 * 16 - 1}`, `bytes=128-${128 + 2 * 16 - 1}`];
    assert.deepEqual(ranges, expected.sort());
  });

  test("parquet over http", async () => {
    await using coll = await openCollection(`${base}/c.parquet`, { fileFormat: "parquet" });
    assert.equal(coll.count, 12);
    assert.deepEqual((await coll.read(0, 12)).vectors, matrix(12, 4));
  });

  test("404 and a server that ignores ranges are clear errors", async () => {
    await assert.rejects(HttpSource.open(`${base}/missing.npy`), { message: `http open: ${base}/missing.npy: status 404 (expected 200)` });
    const src = await HttpSource.open(`${base}/a.npy`);
    ignoreRanges = true;
    try {
      await assert.rejects(src.slice(0, 10), {
        message: `http read: ${base}/a.npy: range 0-9 answered with status 200 (expected 206; the server must support range requests)`,
      });
    } finally {
      ignoreRanges = false;
    }
  });
});

describe("s3 sources", () => {
  const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";

  test("s3:// is refused with a clear error outside Bun", { skip: isBun }, async () => {
    await assert.rejects(openS3Source("s3://bucket/data/a.npy"), {
      message: "s3 open: s3://bucket/data/a.npy: s3:// is not supported on this runtime (Deno); use Bun",
    });
  });

  test("on Bun, a prefix is listed and read through the S3 client", { skip: !isBun }, async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL: base,
    });
    try {
      await using coll = await openCollection("s3://bucket/data/", { fileFormat: "npy" });
      assert.deepEqual(coll.files.map((f) => f.location), ["s3://bucket/data/a.npy", "s3://bucket/data/b.npy"]);
      assert.equal(coll.count, 50);
      assert.deepEqual((await coll.read(25, 35)).vectors, matrix(50, 4).subarray(25 * 4, 35 * 4));
    } finally {
      for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL"]) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });
});
