import { describe, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { releaseNow } from "../lib/free_buffers.ts";

describe("releaseNow", () => {
  test("detaches the buffer and returns its memory at once", () => {
    const rss = () => process.memoryUsage().rss;
    const v = new Float32Array(64 * 1024 * 1024); // 256 MiB, touched so it is resident
    v.fill(1);
    const other = new Uint8Array(v.buffer, 4, 8); // a second view of the same buffer
    const before = rss();
    releaseNow(v);
    const freed = before - rss();
    assert.equal(v.length, 0, "the view is detached");
    assert.equal(other.length, 0, "every view of the buffer is detached");
    assert.ok(freed > 200 * 1024 * 1024, `RSS fell by ${(freed / 2 ** 20).toFixed(0)} MiB, expected ~256`);
    releaseNow(v); // a detached buffer is skipped
  });

  test("shared buffers are left alone", () => {
    const s = new Float32Array(new SharedArrayBuffer(1024));
    releaseNow(s);
    assert.equal(s.length, 256);
  });
});
