/**
 * `autofaiss search --mmap` keeps resident memory far below the index size: a 150 MB+ IVF-Flat
 * index (what --should_be_memory_mappable selects) searched in a child process, resident memory
 * read from /proc/self/status before opening and after searching, with and without mmap.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Index } from "../ffi/faiss.ts";
import { seededRandom } from "./helpers/data.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
let dir = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "autofaiss-mmap-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("memory-mapped search", () => {
  test("a 150 MB+ IVF-Flat index searched by `search --mmap`: resident memory grows by < 25% of the file; without mmap by > 90%", () => {
    const d = 128;
    const n = 300_000;
    const path = join(dir, "big.index");
    {
      const r = seededRandom(3);
      const x = new Float32Array(n * d);
      for (let i = 0; i < x.length; i++) x[i] = r();
      using index = Index.factory(d, "IVF64,Flat", "l2");
      index.train(x.subarray(0, 20_000 * d));
      index.add(x);
      index.ivf()!.nprobe = 1;
      index.write(path);
    }
    const size = statSync(path).size;
    assert.ok(size >= 150e6, `index is ${size} bytes`);
    const run = (mmap: boolean) => {
      const argv = ["tests/fixtures/mmap/search_rss.ts", path, String(d), "3", ...(mmap ? ["--mmap"] : [])];
      const r = spawnSync(`${ROOT}node_modules/.bin/bun`, argv, { cwd: ROOT, encoding: "utf8", timeout: 300_000 });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { before: number; after: number; found: number };
    };
    const mapped = run(true);
    const loaded = run(false);
    for (const m of [mapped, loaded]) assert.equal(m.found, 30);
    const grown = (m: { before: number; after: number }) => (m.after - m.before) * 1024;
    assert.ok(grown(mapped) < 0.25 * size, `mmap: RSS grew ${grown(mapped)} bytes for a ${size}-byte index`);
    assert.ok(grown(loaded) > 0.9 * size, `no mmap: RSS grew ${grown(loaded)} bytes for a ${size}-byte index`);
  });
});
