/**
 * The HTML report: the pure renderer, then a real rendering in headless Chromium (Debian's
 * `chromium`): the screenshot must not be blank and the chosen key must be in the page text.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateSync } from "node:zlib";
import { Index } from "../ffi/faiss.ts";
import { scoreIndex } from "../lib/commands/score_index.ts";
import { clusteredData } from "./helpers/data.ts";
import { escapeHtml, paretoFront, renderReport, type ReportData, type ReportPoint } from "../lib/output/report_html.ts";

const MiB = 2 ** 20;
const point = (key: string, memoryBytes: number, latencyMs: number | null, recall: number | null): ReportPoint => ({
  key, memoryBytes, latencyMs, recall, status: latencyMs === null ? "skipped" : "measured",
});

const data: ReportData = {
  title: "autofaiss build_index report",
  recallLabel: "recall@10 (predicted from the sample)",
  latencyLabel: "latency, ms per query",
  points: [
    point("OPQ128_896,IVF1024_HNSW32,PQ128x8", 15 * MiB, 0.8, 0.81),
    point("OPQ256_1024,IVF1024_HNSW32,PQ256x4fs", 19 * MiB, 0.5, 0.88),
    point("IVF1024_HNSW32,SQ4", 19.5 * MiB, 0.9, 0.86), // dominated by the fast-scan key
    point("OPQ64_448,IVF1024_HNSW32,PQ64x8", 8 * MiB, 0.4, 0.7),
    point("OPQ32_224,IVF1024_HNSW32,PQ32x8", 4 * MiB, null, null),
  ],
  chosenKey: "OPQ256_1024,IVF1024_HNSW32,PQ256x4fs",
  heuristicKey: "OPQ128_896,IVF1024_HNSW32,PQ128x8",
  maxIndexMemoryBytes: 20 * MiB,
  maxQueryTimeMs: 1,
  phases: [{ label: "Measuring candidate index types on a sample", seconds: 12.5 }, { label: "Creating the index", seconds: 40 }],
  notes: ["60000 vectors of dimension 784 <sampled>"],
};

describe("renderReport (pure)", () => {
  test("Pareto front over latency, recall and memory", () => {
    assert.deepEqual(
      [...paretoFront(data.points)].sort(),
      ["OPQ128_896,IVF1024_HNSW32,PQ128x8", "OPQ256_1024,IVF1024_HNSW32,PQ256x4fs", "OPQ64_448,IVF1024_HNSW32,PQ64x8"].sort(),
    );
    // equal points do not dominate each other
    assert.equal(paretoFront([point("a", 1, 1, 0.5), point("b", 1, 1, 0.5)]).size, 2);
  });
  test("escaping", () => assert.equal(escapeHtml(`<a href="x">&'`), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"));
  test("self-contained: inline SVG, no script, no external resource; every key and the phases in the page", () => {
    const html = renderReport(data);
    assert.ok(html.startsWith("<!DOCTYPE html>"));
    assert.equal((html.match(/<svg /g) ?? []).length, 2); // scatter and phase bars
    assert.ok(!/<script|<link|<img|\ssrc=|\shref=|url\(/i.test(html));
    for (const p of data.points) assert.ok(html.includes(`<code>${p.key}</code>`), p.key);
    assert.ok(html.includes(`<strong id="chosen-key">OPQ256_1024,IVF1024_HNSW32,PQ256x4fs</strong>`));
    assert.ok(html.includes("&lt;sampled&gt;"));
    assert.ok(html.includes(">12.50 s</text>"));
    assert.ok(html.includes("<polyline")); // the front joins three points
  });
});

/** Decodes an 8-bit RGB / RGBA PNG (what Chromium writes) into its pixel bytes. */
function decodePng(png: Uint8Array): { width: number; height: number; channels: number; pixels: Uint8Array } {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let off = 8;
  let width = 0, height = 0, channels = 0;
  const idat: Uint8Array[] = [];
  while (off < png.length) {
    const len = view.getUint32(off);
    const type = String.fromCharCode(...png.subarray(off + 4, off + 8));
    const body = png.subarray(off + 8, off + 8 + len);
    if (type === "IHDR") {
      width = view.getUint32(off + 8);
      height = view.getUint32(off + 12);
      assert.equal(body[8], 8, "8-bit PNG");
      channels = ({ 2: 3, 6: 4 } as Record<number, number>)[body[9]];
      assert.ok(channels, `PNG colour type ${body[9]}`);
    }
    if (type === "IDAT") idat.push(body);
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[y * stride + x - channels] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels] : 0;
      const p = a + b - c;
      const pred = filter === 0 ? 0 : filter === 1 ? a : filter === 2 ? b : filter === 3 ? (a + b) >> 1
        : (Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c);
      pixels[y * stride + x] = (line[x] + pred) & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));

describe("the report in headless Chromium", () => {
  // Said out loud, not skipped silently: the test needs Debian's chromium (tasks/setup.sh installs it).
  test("renders a non-blank page holding the chosen key", { skip: CHROMIUM ? false : "chromium is not installed (apt-get install chromium; tasks/setup.sh)" }, () => {
    const dir = mkdtempSync(join(tmpdir(), "report-html-"));
    try {
      const page = join(dir, "report.html");
      writeFileSync(page, renderReport(data));
      // --no-sandbox: Chromium refuses to start its sandbox as root, which is how this machine runs the
      // tests; the page is our own file with no script, so the sandbox protects nothing here.
      const flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,1000"];
      const shot = join(dir, "shot.png");
      const r1 = spawnSync(CHROMIUM!, [...flags, `--screenshot=${shot}`, `file://${page}`], { encoding: "utf8", timeout: 120_000 });
      assert.ok(existsSync(shot), `chromium wrote no screenshot (status ${r1.status}): ${r1.stderr}`);
      const { width, height, channels, pixels } = decodePng(readFileSync(shot));
      assert.deepEqual([width, height], [1000, 1000]);
      let sum = 0, sum2 = 0, n = 0;
      for (let i = 0; i < pixels.length; i += channels) {
        const grey = (pixels[i] + pixels[i + 1] + pixels[i + 2]) / 3;
        sum += grey;
        sum2 += grey * grey;
        n++;
      }
      const variance = sum2 / n - (sum / n) ** 2;
      assert.ok(variance > 100, `screenshot looks blank: grey-level variance ${variance.toFixed(1)}`);
      const r2 = spawnSync(CHROMIUM!, [...flags, "--dump-dom", `file://${page}`], { encoding: "utf8", timeout: 120_000 });
      assert.ok(r2.stdout.includes(`<strong id="chosen-key">${data.chosenKey}</strong>`), `chosen key not in the DOM: ${r2.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("score_index --report_path", () => {
  test("one point: the index's size, latency and 20-recall@20", async () => {
    const d = 8;
    const vectors = clusteredData(2000, d, 10, 3);
    using index = Index.factory(d, "IVF16,Flat", "l2");
    index.train(vectors);
    index.add(vectors);
    const dir = mkdtempSync(join(tmpdir(), "score-report-"));
    try {
      const reportPath = join(dir, "r.html");
      const { infos } = await scoreIndex(index, { vectors, dim: d }, { saveOnDisk: false, reportPath, useCache: false });
      const html = readFileSync(reportPath, "utf8");
      const key = index.describe()!;
      assert.ok(html.includes(`<strong id="chosen-key">${escapeHtml(key)}</strong>`), key);
      assert.ok(html.includes(`<td>${infos!["20-recall@20"].toFixed(3)}</td>`));
      assert.ok(html.includes("<th>20-recall@20</th>"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
