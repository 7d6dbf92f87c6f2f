/**
 * Benchmark of the embedding readers (not a timed test). Streams a >= 2 GB .npy collection
 * through `batches()` into a checksum and, in the same run, times a raw sequential read of the
 * same bytes (node:fs into one reused buffer), both from the page cache. Prints both rates, their
 * ratio and peak RSS. Then writes a ~1 GB parquet file and reports its read rate.
 *
 *   bun tasks/bench_read.ts [folder-of-npy] [--gb=2.5] [--files=5] [--dim=512] [--batch-rows=<8 MB>]
 *                           [--rounds=5] [--parquet-mb=1024] [--no-parquet] [--keep]
 *
 * Targets: reader >= 0.8 x raw rate; peak RSS < 300 MB whatever the collection size.
 * The reader runs as build_index runs it: NaN/Inf scan by the native library (SIMD) when it
 * provides autofaiss_first_nonfinite; the pure-JavaScript scan (upstream libraries) is timed too.
 * Generated data goes to a temp dir (check `df -h /tmp`) and is removed unless --keep.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { fileWriter, ParquetWriter } from "hyparquet-writer";
import { openCollection } from "../lib/io/collection.ts";
import { npyHeader } from "../lib/io/npy_writer.ts";
import type { NonFiniteScan } from "../lib/io/float.ts";
import { nativeNonFiniteScan } from "../ffi/faiss.ts";

const positional = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const args = Object.fromEntries(
  process.argv.slice(2).filter((a) => a.startsWith("--")).map((a) => {
    const [k, v] = a.replace(/^--/, "").split("=");
    return [k, v ?? "true"];
  }),
);
const GB = Number(args.gb ?? 2.5);
const FILES = Number(args.files ?? 5);
const DIM = Number(args.dim ?? 512);
// 8 MB batches by default: a reused batch buffer that stays in the CPU cache is scanned (NaN/Inf) fastest
const BATCH_ROWS = Number(args["batch-rows"] ?? Math.max(1, Math.floor((8 * 1024 * 1024) / (DIM * 4))));
const ROUNDS = Number(args.rounds ?? 5);
const PARQUET_MB = Number(args["parquet-mb"] ?? 1024);
const MB = 1024 * 1024;

// ---- peak RSS: sampled during each phase, plus the kernel's high-water mark at the end ----
let phasePeak = 0;
const sampler = setInterval(() => {
  phasePeak = Math.max(phasePeak, process.memoryUsage().rss);
}, 20);
function startPhase(): void {
  phasePeak = process.memoryUsage().rss;
}
function endPhase(): number {
  phasePeak = Math.max(phasePeak, process.memoryUsage().rss);
  return phasePeak;
}
function vmHWM(): string {
  try {
    return /VmHWM:\s+(\d+ kB)/.exec(fs.readFileSync("/proc/self/status", "utf8"))?.[1] ?? "n/a";
  } catch {
    return "n/a";
  }
}

/** Deterministic pseudo-random floats in [-1, 1) (xorshift32), fast enough not to dominate generation. */
function fillRandom(v: Float32Array, seed: number): number {
  let x = seed | 0 || 1;
  for (let i = 0; i < v.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    v[i] = (x | 0) / 2147483648;
  }
  return x;
}

/** Write FILES .npy files totalling ~GB gigabytes, 16 MB at a time. */
function generateNpy(dir: string): void {
  const rowsTotal = Math.floor((GB * 1024 * MB) / (DIM * 4));
  const perFile = Math.ceil(rowsTotal / FILES);
  const chunkRows = Math.floor((16 * MB) / (DIM * 4));
  const chunk = new Float32Array(chunkRows * DIM);
  let seed = 12345;
  for (let f = 0; f < FILES; f++) {
    const rows = Math.min(perFile, rowsTotal - f * perFile);
    const fd = fs.openSync(path.join(dir, `part-${String(f).padStart(3, "0")}.npy`), "w");
    fs.writeSync(fd, npyHeader(rows, DIM));
    for (let r = 0; r < rows; r += chunkRows) {
      const n = Math.min(chunkRows, rows - r);
      seed = fillRandom(chunk, seed);
      fs.writeSync(fd, new Uint8Array(chunk.buffer, 0, n * DIM * 4));
    }
    fs.closeSync(fd);
  }
}

function npyFiles(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith(".npy")).map((f) => path.join(dir, f)).sort();
}

/**
 * Raw sequential read of every byte of `files` into one reused 16 MB buffer, computing the same
 * checksum as the reader run (first component of every row) so both do the same consumer work.
 */
async function rawRead(files: string[]): Promise<{ bytes: number; seconds: number; checksum: number }> {
  const buf = new Uint8Array(16 * MB);
  const view = new DataView(buf.buffer);
  let bytes = 0;
  let checksum = 0;
  const t0 = performance.now();
  for (const file of files) {
    const fh = await fs.promises.open(file, "r");
    let pos = 0;
    let dataOffset = -1;
    let rowBytes = 0;
    let nextRowAt = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      if (dataOffset < 0) {
        // v1 header: 10-byte prefix + little-endian uint16 header length; shape from the text
        dataOffset = 10 + view.getUint16(8, true);
        const dim = Number(/\((\d+), (\d+)\)/.exec(new TextDecoder().decode(buf.subarray(10, dataOffset)))![2]);
        rowBytes = dim * 4;
        nextRowAt = dataOffset;
      }
      for (; nextRowAt + 4 <= pos + bytesRead; nextRowAt += rowBytes) checksum += view.getFloat32(nextRowAt - pos, true);
      pos += bytesRead;
    }
    bytes += pos;
    await fh.close();
  }
  return { bytes, seconds: (performance.now() - t0) / 1000, checksum };
}

/** Stream the collection through batches() into a checksum (first component of every row). */
async function readerRead(location: string, fileFormat: "npy" | "parquet", reuse: boolean, nonFiniteScan?: NonFiniteScan): Promise<{ bytes: number; seconds: number; rows: number; checksum: number }> {
  const t0 = performance.now();
  await using coll = await openCollection(location, { fileFormat, nonFiniteScan });
  let checksum = 0;
  let rows = 0;
  for await (const b of coll.batches(BATCH_ROWS, { reuse })) {
    for (let r = 0; r < b.rows; r++) checksum += b.vectors[r * coll.dimension]!;
    rows += b.rows;
  }
  return { bytes: rows * coll.dimension * 4, seconds: (performance.now() - t0) / 1000, rows, checksum };
}

function rate(bytes: number, seconds: number): string {
  return `${(bytes / MB / seconds).toFixed(0)} MB/s`;
}

/** ~PARQUET_MB of list<float> embeddings in row groups of 8192 rows, written incrementally. */
async function generateParquet(file: string): Promise<number> {
  const rowsTotal = Math.floor((PARQUET_MB * MB) / (DIM * 4));
  const groupRows = 8192;
  const writer = fileWriter(file); // hyparquet-writer's buffered node:fs writer
  const pw = new ParquetWriter({
    writer,
    // deno-lint-ignore no-explicit-any
    schema: [
      { name: "root", num_children: 1 },
      { name: "embedding", repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
      { name: "list", repetition_type: "REPEATED", num_children: 1 },
      { name: "element", repetition_type: "OPTIONAL", type: "FLOAT" },
    ] as any,
    statistics: false,
  });
  const chunk = new Float32Array(groupRows * DIM);
  let seed = 777;
  for (let r = 0; r < rowsTotal; r += groupRows) {
    const n = Math.min(groupRows, rowsTotal - r);
    seed = fillRandom(chunk, seed);
    const data = Array.from({ length: n }, (_, i) => Array.from(chunk.subarray(i * DIM, (i + 1) * DIM)));
    // deno-lint-ignore no-explicit-any
    await pw.write({ columnData: [{ name: "embedding", data: data as any }], rowGroupSize: groupRows });
  }
  await pw.finish();
  return rowsTotal;
}

/**
 * Generate the parquet file in a child process of the same runtime, so the JS arrays the writer
 * needs do not inflate the RSS measured while reading.
 */
function generateParquetInChild(file: string): void {
  const script = fileURLToPath(import.meta.url);
  const runtimeArgs = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? [] : ["run", "-A"];
  const argv = [...runtimeArgs, script, `--generate-parquet=${file}`, `--parquet-mb=${PARQUET_MB}`, `--dim=${DIM}`];
  console.log(`$ ${[process.execPath, ...argv].join(" ")}`);
  const r = spawnSync(process.execPath, argv, { stdio: "inherit" });
  if (r.status !== 0) throw new Error(`parquet generation failed with status ${r.status}`);
}

async function main(): Promise<void> {
  if (args["generate-parquet"]) {
    clearInterval(sampler);
    await generateParquet(args["generate-parquet"]);
    return;
  }
  const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "deno";
  let dir = positional[0];
  let generated = false;
  if (!dir) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-read-"));
    generated = true;
    console.log(`$ generate ${GB} GB of float32 .npy (dim ${DIM}, ${FILES} files) in ${dir}`);
    const t0 = performance.now();
    generateNpy(dir);
    console.log(`  generated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  try {
    const files = npyFiles(dir);
    const total = files.reduce((s, f) => s + fs.statSync(f).size, 0);
    console.log(`runtime ${runtime}; ${files.length} files, ${(total / MB).toFixed(0)} MB; batch ${BATCH_ROWS} rows (${((BATCH_ROWS * DIM * 4) / MB).toFixed(0)} MB)`);
    const warm = await rawRead(files); // also warms the page cache
    const native = nativeNonFiniteScan();
    const raws: number[] = [];
    const reused: number[] = [];
    const reusedJs: number[] = [];
    const fresh: number[] = [];
    let peakReuse = 0;
    let peakFresh = 0;
    let checksum = 0;
    // alternate raw and reader runs so all see the same machine state; keep the best of each
    for (let round = 0; round < ROUNDS; round++) {
      const raw = await rawRead(files);
      raws.push(raw.bytes / raw.seconds);
      for (const scan of native ? [native, undefined] : [undefined]) {
        startPhase();
        const rd = await readerRead(dir, "npy", true, scan);
        peakReuse = Math.max(peakReuse, endPhase());
        (scan ? reused : reusedJs).push(rd.bytes / rd.seconds);
        checksum = rd.checksum;
        if (Math.abs(rd.checksum - warm.checksum) > 1e-6 * Math.abs(warm.checksum)) {
          throw new Error(`reader checksum ${rd.checksum} differs from raw checksum ${warm.checksum}`);
        }
      }
    }
    for (let round = 0; round < 2; round++) {
      startPhase();
      const rd = await readerRead(dir, "npy", false, native);
      peakFresh = Math.max(peakFresh, endPhase());
      fresh.push(rd.bytes / rd.seconds);
      if (rd.checksum !== checksum) throw new Error(`checksum ${rd.checksum} != ${checksum}`);
    }
    const bestRaw = Math.max(...raws);
    const runs = (xs: number[]) => xs.map((r) => rate(r, 1)).join(", ");
    console.log(`npy raw sequential read     : ${rate(bestRaw, 1)} (best of ${ROUNDS}; runs ${runs(raws)})`);
    if (native) {
      const best = Math.max(...reused);
      console.log(`npy batches({reuse}) + sum  : ${rate(best, 1)} (native NaN/Inf scan; runs ${runs(reused)}), checksum ${checksum.toFixed(3)}`);
      console.log(`ratio reader/raw            : ${(best / bestRaw).toFixed(2)} (target >= 0.80)`);
    } else {
      console.log(`(the loaded FAISS library has no autofaiss_first_nonfinite: JavaScript scan only)`);
    }
    const bestJs = Math.max(...reusedJs);
    console.log(`npy batches, JavaScript scan: ${rate(bestJs, 1)} (runs ${runs(reusedJs)}), ratio ${(bestJs / bestRaw).toFixed(2)}`);
    console.log(`peak RSS while streaming    : ${(peakReuse / MB).toFixed(0)} MB sampled (target < 300 MB)`);
    console.log(`npy batches() fresh buffers : ${rate(Math.max(...fresh), 1)}, peak RSS ${(peakFresh / MB).toFixed(0)} MB`);

    if (args["no-parquet"] === undefined) {
      const pq = path.join(generated ? dir : fs.mkdtempSync(path.join(os.tmpdir(), "bench-pq-")), "pq", "emb.parquet");
      fs.mkdirSync(path.dirname(pq), { recursive: true });
      console.log(`$ generate ${PARQUET_MB} MB of list<float> parquet (snappy, 8192-row groups) in ${pq}`);
      const t0 = performance.now();
      generateParquetInChild(pq);
      console.log(`  generated in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${(fs.statSync(pq).size / MB).toFixed(0)} MB on disk`);
      startPhase();
      const rd = await readerRead(path.dirname(pq), "parquet", true, native);
      const pqPeak = endPhase();
      console.log(`parquet batches()       : ${rate(rd.bytes, rd.seconds)} of float32 (${rd.rows} rows in ${rd.seconds.toFixed(1)} s)`);
      console.log(`peak RSS while parquet  : ${(pqPeak / MB).toFixed(0)} MB sampled`);
      if (!generated) fs.rmSync(path.dirname(path.dirname(pq)), { recursive: true, force: true });
    }
    console.log(`process VmHWM           : ${vmHWM()} (includes generation)`);
  } finally {
    clearInterval(sampler);
    if (generated && args.keep === undefined) fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
