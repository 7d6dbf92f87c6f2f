/**
 * `autofaiss search`: one index or N parts, against brute force computed here on exact-arithmetic
 * data (small integer coordinates: every distance is exact in float32 whatever the summation order)
 * and against Debian's python3-faiss searching the same files; bad input gives one-line errors.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Index } from "../ffi/faiss.ts";
import { searchIndex } from "../lib/commands/search.ts";
import { writeIdsFile } from "../lib/io/ids.ts";
import { writeNpy } from "../lib/io/npy_writer.ts";
import { partPaths, partRanges } from "../lib/plan/parts.ts";
import { rowsOf, writeParquet } from "./fixtures/io/parquet.ts";
import { runCli } from "./helpers/cli.ts";
import { seededRandom } from "./helpers/data.ts";
import { assertPythonFaiss, pythonSearch } from "./helpers/python_oracle.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const D = 6;
const N = 300;
const NQ = 25;
const K = 7;

/** Integer coordinates in [-6, 6]: squared distances and dot products are small exact integers. */
function intData(n: number, seed: number): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: n * D }, () => Math.floor(r() * 13) - 6);
}

const base = intData(N, 1);
const queries = intData(NQ, 2);

/** (distance, id) of every base row for query q, sorted best first, ties by smaller id. */
function ranked(q: number, metric: "ip" | "l2", rows = N): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let j = 0; j < D; j++) {
      const a = queries[q * D + j];
      const b = base[i * D + j];
      s += metric === "ip" ? a * b : (a - b) ** 2;
    }
    out.push([s, i]);
  }
  return out.sort((x, y) => (metric === "ip" ? y[0] - x[0] : x[0] - y[0]) || x[1] - y[1]);
}

/**
 * Checks one result row against the exact ranking: distances equal exactly; ids equal exactly
 * when `exactTies`, else per group of equal distances the same ids, except the last group cut by k,
 * whose ids must be among the tied ones (FAISS keeps whichever tied entry it met first).
 */
function assertRow(got: { ids: number[]; distances: number[] }, truth: Array<[number, number]>, k: number, exactTies: boolean, what: string) {
  const want = truth.slice(0, k);
  assert.deepEqual(got.distances, want.map((t) => t[0]), `${what}: distances`);
  if (exactTies) {
    assert.deepEqual(got.ids, want.map((t) => t[1]), `${what}: ids`);
    return;
  }
  const last = want[want.length - 1][0];
  for (const dist of new Set(want.map((t) => t[0]))) {
    const gotIds = got.ids.filter((_, j) => got.distances[j] === dist).sort((a, b) => a - b);
    const tied = truth.filter((t) => t[0] === dist).map((t) => t[1]);
    if (dist !== last) assert.deepEqual(gotIds, tied, `${what}: ids at distance ${dist}`);
    else for (const id of gotIds) assert.ok(tied.includes(id), `${what}: id ${id} is not at distance ${dist}`);
  }
  assert.equal(new Set(got.ids).size, k, `${what}: duplicate ids`);
}

let dir = "";
const path = (name: string) => join(dir, name);

/** One IVF index trained on `base`; `parts` > 1 writes parts `name01…` holding contiguous global ids. */
function buildIvf(name: string, metric: "ip" | "l2", parts: number, nlist = 4): string {
  using trained = Index.factory(D, `IVF${nlist},Flat`, metric);
  trained.train(base);
  const file = path(name);
  if (parts === 1) {
    using index = trained.clone();
    index.add(base);
    index.ivf()!.nprobe = nlist;
    index.write(file);
    return file;
  }
  const paths = partPaths(file, parts);
  partRanges(N, parts).forEach((r, i) => {
    using index = trained.clone();
    const ids = BigInt64Array.from({ length: r.end - r.start }, (_, j) => BigInt(r.start + j));
    index.addWithIds(base.subarray(r.start * D, r.end * D), ids);
    index.ivf()!.nprobe = nlist;
    index.write(paths[i]);
  });
  return file;
}

async function search(indexPath: string, opts: { queries?: string; k?: number; indexParam?: string; idsPath?: string; mmap?: boolean; stdin?: string } = {}) {
  const lines: string[] = [];
  const r = await searchIndex({
    indexPath,
    queries: opts.queries ?? path("q.npy"),
    k: opts.k ?? K,
    indexParam: opts.indexParam,
    idsPath: opts.idsPath,
    mmap: opts.mmap,
    write: (l) => lines.push(l),
    readStdin: async () => opts.stdin ?? "",
  });
  return { ...r, rows: lines.map((l) => JSON.parse(l) as { ids: unknown[]; distances: number[] }), lines };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "autofaiss-search-"));
  writeNpy(path("q.npy"), queries, D);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("search against brute force", () => {
  for (const metric of ["l2", "ip"] as const) {
    test(`${metric}: one index, all lists probed`, async () => {
      const file = buildIvf(`one-${metric}.index`, metric, 1);
      const r = await search(file);
      assert.deepEqual([r.queries, r.parts, r.rows.length], [NQ, 1, NQ]);
      r.rows.forEach((row, q) => assertRow(row as { ids: number[]; distances: number[] }, ranked(q, metric), K, false, `query ${q}`));
    });

    test(`${metric}: 3 parts merge to the exact top-k, ties by smaller id`, async () => {
      const file = buildIvf(`three-${metric}.index`, metric, 3);
      const r = await search(file);
      assert.deepEqual([r.queries, r.parts], [NQ, 3]);
      r.rows.forEach((row, q) => assertRow(row as { ids: number[]; distances: number[] }, ranked(q, metric), K, true, `query ${q}`));
    });
  }

  test("k larger than the index: -1 ids and FAISS's padding distance", async () => {
    const few = intData(5, 9);
    using index = Index.factory(D, "IVF1,Flat", "l2");
    index.train(few);
    index.add(few);
    index.write(path("five.index"));
    const r = await search(path("five.index"), { k: 8 });
    assert.deepEqual(r.rows[0].ids.slice(5), [-1, -1, -1]);
    assert.deepEqual(r.rows[0].distances.slice(5), [3.4028234663852886e38, 3.4028234663852886e38, 3.4028234663852886e38]);
    assert.match(r.lines[0], /^\{"ids":\[(\d+,){5}-1,-1,-1\],"distances":\[/);
  });

  test("--index_param is applied to every part before searching", async () => {
    const file = buildIvf("np.index", "l2", 2, 16);
    const all = await search(file);
    const one = await search(file, { indexParam: "nprobe=1" });
    all.rows.forEach((row, q) => assertRow(row as { ids: number[]; distances: number[] }, ranked(q, "l2"), K, true, `query ${q}`));
    // with one list probed per part, some query misses a true neighbour
    assert.ok(one.rows.some((row, q) => row.distances[K - 1] !== ranked(q, "l2")[K - 1][0]));
  });

  test("queries in several chunks (parts reopened per chunk) give the same lines", async () => {
    const file = buildIvf("chunks.index", "l2", 3);
    const lines: string[] = [];
    const r = await searchIndex({ indexPath: file, queries: path("q.npy"), k: K, chunkRows: 4, write: (l) => lines.push(l) });
    assert.equal(r.queries, NQ);
    assert.deepEqual(lines, (await search(file)).lines);
  });

  test("--mmap gives the same lines", async () => {
    const file = buildIvf("mm.index", "ip", 2);
    assert.deepEqual((await search(file, { mmap: true })).lines, (await search(file)).lines);
  });
});

describe("search against python3-faiss on the same files", () => {
  before(() => assertPythonFaiss());

  test("one index: identical ids and distances", async () => {
    const file = buildIvf("py-one.index", "l2", 1, 8);
    const ours = await search(file);
    const py = pythonSearch(file, queries, D, K);
    assert.deepEqual(ours.rows.map((r) => r.ids), py.labels);
    assert.deepEqual(ours.rows.map((r) => r.distances), py.distances);
  });

  test("4 parts: python's per-part results merged by (distance, id) equal ours", async () => {
    const file = buildIvf("py-four.index", "ip", 4, 8);
    const ours = await search(file, { indexParam: "nprobe=3" });
    const perPart = partPaths(file, 4).map((p) => {
      // python searches with the nprobe saved in the file: save nprobe=3 first
      using index = Index.read(p);
      index.setParameters("nprobe=3");
      index.write(p);
      return pythonSearch(p, queries, D, K);
    });
    const merged = Array.from({ length: NQ }, (_, q) => {
      const all: Array<[number, number]> = [];
      for (const r of perPart) r.labels[q].forEach((l, j) => l >= 0 && all.push([r.distances[q][j], l]));
      all.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      return all.slice(0, K);
    });
    assert.deepEqual(ours.rows.map((r) => r.ids), merged.map((row) => row.map((e) => e[1])));
    assert.deepEqual(ours.rows.map((r) => r.distances), merged.map((row) => row.map((e) => e[0])));
  });
});

describe("queries: npy, parquet, stdin JSON; original ids", () => {
  test("stdin: one array per line, or one array of arrays, give the npy file's lines", async () => {
    const file = buildIvf("stdin.index", "l2", 2);
    const want = (await search(file)).lines;
    const rows = Array.from({ length: NQ }, (_, q) => JSON.stringify(Array.from(queries.subarray(q * D, (q + 1) * D))));
    assert.deepEqual((await search(file, { queries: "-", stdin: rows.join("\n") + "\n" })).lines, want);
    assert.deepEqual((await search(file, { queries: "-", stdin: `[${rows.join(",")}]` })).lines, want);
    assert.deepEqual((await search(file, { queries: "-", stdin: rows[3] })).lines, [want[3]]);
  });

  test("parquet queries", async () => {
    const file = buildIvf("pq.index", "l2", 1);
    writeParquet(path("q.parquet"), { vectors: rowsOf(queries, D) });
    assert.deepEqual((await search(file, { queries: path("q.parquet") })).lines, (await search(file)).lines);
  });

  test("--ids_path: labels become the original ids (round trip through the mapping files)", async () => {
    const file = buildIvf("ids.index", "l2", 3);
    const ids = path("ids");
    mkdirSync(ids);
    // two mapping files as a build writes them: rows [0, 200) and [200, 300)
    const doc = (i: number) => `doc-${i * 7}`;
    for (const [b, start, end] of [[0, 0, 200], [1, 200, N]]) {
      await writeIdsFile(ids, b, { rows: end - start, startId: start, ids: { doc: Array.from({ length: end - start }, (_, j) => doc(start + j)) } }, [
        { name: "doc", type: "STRING" },
      ]);
    }
    const plain = await search(file);
    const mapped = await search(file, { idsPath: ids });
    assert.deepEqual(mapped.rows.map((r) => r.ids), plain.rows.map((r) => (r.ids as number[]).map(doc)));
    assert.deepEqual(mapped.rows.map((r) => r.distances), plain.rows.map((r) => r.distances));
  });
});

describe("bad input: one-line errors naming the file or field", () => {
  test("dimension mismatch", async () => {
    const file = buildIvf("dim.index", "l2", 2);
    writeNpy(path("q3.npy"), new Float32Array(9), 3);
    await assert.rejects(search(file, { queries: path("q3.npy") }), {
      message: `queries: ${path("q3.npy")}: dimension 3, but the index ${path("dim.index01")} has dimension ${D}`,
    });
    await assert.rejects(search(file, { queries: "-", stdin: "[1,2]\n[1,2,3]\n" }), { message: "queries: stdin: line 2: has 3 values, expected 2 like the first query" });
  });

  test("missing part, missing index", async () => {
    const file = buildIvf("gap.index", "l2", 3);
    unlinkSync(path("gap.index02"));
    await assert.rejects(search(file), {
      message: `index_path: ${path("gap.index02")} is missing (parts found: gap.index01, gap.index03; expected gap.index01 … gap.index02)`,
    });
    await assert.rejects(search(path("nothing.index")), { message: `index_path: ${path("no file nothing.index and no parts nothing.index01 …")}` });
  });

  test("NaN queries", async () => {
    const file = buildIvf("nan.index", "l2", 1);
    const q = new Float32Array(2 * D);
    q[D + 4] = NaN;
    writeNpy(path("nan.npy"), q, D);
    await assert.rejects(search(file, { queries: path("nan.npy") }), { message: `npy data: ${path("nan.npy")}: row 1 has NaN at component 4 (expected finite values; NaN/Inf poison k-means training)` });
    await assert.rejects(search(file, { queries: "-", stdin: "[1,2,NaN]" }), { message: "queries: stdin: line 1 is not JSON (expected an array of numbers): [1,2,NaN]" });
    await assert.rejects(search(file, { queries: "-", stdin: '[[1,2],[1,"x"]]' }), { message: 'queries: stdin: query 1: value 1 is "x" (expected a finite number)' });
  });

  test("CLI: k <= 0, bad extension, errors on one line with exit codes", async () => {
    const file = buildIvf("cli.index", "l2", 1);
    const k0 = await runCli("search", file, path("q.npy"), "--k=0");
    assert.deepEqual([k0.code, k0.out, k0.err], [2, "", "autofaiss search: error: k: expected an integer >= 1, got 0\n"]);
    const ext = await runCli("search", file, path("q.txt"));
    assert.deepEqual([ext.code, ext.err], [1, `autofaiss search: error: queries: ${path("q.txt")}: expected a .npy or .parquet file, or - for JSON arrays on stdin\n`]);
    const ok = await runCli("search", `--index_path=${file}`, `--queries=${path("q.npy")}`, "--k=3");
    assert.equal(ok.code, 0, ok.err);
    assert.equal(ok.out.split("\n").length, NQ + 1);
    assert.deepEqual(JSON.parse(ok.out.split("\n")[0]).ids.length, 3);
  });
});

describe("main.ts search as a process: JSON on stdin", () => {
  for (const runtime of ["bun", "deno"] as const) {
    test(runtime, () => {
      const file = buildIvf(`proc-${runtime}.index`, "l2", 2);
      const argv = runtime === "bun" ? ["main.ts"] : ["run", "-A", "main.ts"];
      const input = [0, 1].map((q) => JSON.stringify(Array.from(queries.subarray(q * D, (q + 1) * D)))).join("\n");
      const r = spawnSync(`${ROOT}node_modules/.bin/${runtime}`, [...argv, "search", file, "-", "--k=4"], { cwd: ROOT, input, encoding: "utf8", timeout: 120_000 });
      assert.equal(r.status, 0, r.stderr);
      const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(rows.length, 2);
      rows.forEach((row, q) => assertRow(row, ranked(q, "l2"), 4, true, `query ${q}`));
    });
  }
});
