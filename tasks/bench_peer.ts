/**
 * Ours against Python AutoFaiss 2.18.0 (the "peer", set up as ../shared/peer/README.md says), on the
 * same data and the same flags, back to back in one run: wall, peak RSS (`/usr/bin/time -v`) and
 * recall@10 against exact neighbours (python3-faiss, each index searched with the index_param its
 * own build chose), the single-query latency on one thread at those parameters as python3-faiss
 * measures it, and the ratios ours / peer. When both chose the same key, each index is also scored at
 * the other's parameters, which separates the training's share of a recall difference from the tuning's.
 * Never in CI (it needs the peer's sources).
 *
 *   bun tasks/bench_peer.ts [--cases=fmnist,minilm,synth1m,synth1m_50mb,synth200k_20mb] [--quick]
 *                           [--peer_blas=best|1|default] [--keep] [--reuse_peer]
 *
 * Run it on an otherwise idle machine: both tools use every core.
 * --keep: keep every output (logs, indices). --reuse_peer: take the peer's figures from a kept run of the
 *   same case and flags instead of running it again (its results do not depend on our code); say so.
 * --quick: the synthetic cases at 100k / 50k rows and 200 queries (otherwise 10,000), to check the script in minutes.
 * --peer_blas: Debian's python3-faiss loads the pthread OpenBLAS, whose threads busy-wait inside FAISS's
 *   OpenMP regions (OPQ training several times slower) while one BLAS thread slows IVF k-means; `best`
 *   (default) runs the peer with OPENBLAS_NUM_THREADS=1 and with the library default and compares
 *   ours with the faster of the two (both are printed); `1` / `default` run only that setting.
 * Data: Fashion-MNIST (Debian's dataset-fashion-mnist: 60k × 784 base, the test split as queries),
 * MiniLM (npm @sap-ux/fiori-docs-embeddings 1.2.6, 778 × 384, fetched with `npm pack` into .cache/data;
 * every row is also a query), and synthetic clustered vectors (tests/helpers/data.ts; queries drawn from
 * the same clusters with another seed). No SIFT set is reachable here, so the 20MB case is synthetic.
 */
import { spawnSync } from "node:child_process";
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { NpyWriter, writeNpy } from "../lib/io/npy_writer.ts";
import { clusteredData } from "../tests/helpers/data.ts";
import { convertFashionMnist } from "./convert_fashion_mnist.ts";

const root = resolve(import.meta.dirname ?? ".", "..");
const argv = process.argv.slice(2);
const arg = (name: string, dflt: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const quick = argv.includes("--quick");
const keep = argv.includes("--keep");
const reusePeer = argv.includes("--reuse_peer");
const PEER_DIR = resolve(root, "../shared/peer");
const PEER_ROOT = process.env.PEER_ROOT ?? join(process.env.HOME ?? "/root", ".cache/autofaiss-peer");
const K = 10;

interface Case {
  /** What the case stands for in the list. */
  title: string;
  /** Extra build_index flags, the same for both tools. */
  flags: string[];
  metric: "ip" | "l2";
  /** Writes the base .npy files into `emb`. */
  prepare(emb: string): void;
  /** Writes the held-out queries (`nq` rows) to `queries`. */
  queries(queries: string): void;
}

function syntheticBase(n: number, d: number) {
  return (emb: string) => {
    const files = Math.max(1, Math.ceil(n / 250_000));
    const per = Math.ceil(n / files);
    for (let f = 0; f < files; f++) {
      const rows = Math.min(per, n - f * per);
      const w = new NpyWriter(join(emb, `part-${String(f).padStart(2, "0")}.npy`), rows, d);
      for (let r = 0; r < rows; r += 50_000) w.write(clusteredData(Math.min(50_000, rows - r), d, 500, 1000 * f + r + 1));
      w.close();
    }
  };
}

/** Queries drawn like the base rows, from a seed of their own (the first rows do not depend on nq). */
function syntheticQueries(d: number) {
  return (queries: string) => writeNpy(queries, clusteredData(nq, d, 500, 987_654), d);
}

// Recall@10 near 0.3 scored on 1,000 queries moves by ±0.004 between two trainings of the same
// variant (1M × 64, session 9); 10,000 bring that to about ±0.0015, under the 0.005 being measured.
const nq = quick ? 200 : 10_000;
const CASES: Record<string, Case> = {
  fmnist: {
    title: "Fashion-MNIST 60k×784, default (HNSW)",
    flags: [],
    metric: "ip",
    prepare(emb) {
      copyFileSync(convertFashionMnist(resolve(root, ".cache/data/fashion-mnist")).base, join(emb, "base.npy"));
    },
    queries(queries) {
      const all = readNpyF32(convertFashionMnist(resolve(root, ".cache/data/fashion-mnist")).queries);
      writeNpy(queries, all.data.subarray(0, nq * all.dim), all.dim);
    },
  },
  minilm: {
    title: "MiniLM 778×384, default (Flat)",
    flags: [],
    metric: "ip",
    prepare(emb) {
      writeNpy(join(emb, "base.npy"), miniLm(), 384);
    },
    // the base rows themselves: 778 rows have no held-out set
    queries(queries) {
      writeNpy(queries, miniLm(), 384);
    },
  },
  synth1m: {
    title: `${quick ? "100k" : "1M"}×64 synthetic, default`,
    flags: [],
    metric: "ip",
    prepare: syntheticBase(quick ? 100_000 : 1_000_000, 64),
    queries: syntheticQueries(64),
  },
  synth1m_50mb: {
    title: `${quick ? "100k" : "1M"}×64 synthetic, --max_index_memory_usage=${quick ? "5MB" : "50MB"}`,
    flags: [`--max_index_memory_usage=${quick ? "5MB" : "50MB"}`],
    metric: "ip",
    prepare: syntheticBase(quick ? 100_000 : 1_000_000, 64),
    queries: syntheticQueries(64),
  },
  synth200k_20mb: {
    title: `${quick ? "50k" : "200k"}×128 synthetic, --max_index_memory_usage=${quick ? "5MB" : "20MB"}`,
    flags: [`--max_index_memory_usage=${quick ? "5MB" : "20MB"}`],
    metric: "ip",
    prepare: syntheticBase(quick ? 50_000 : 200_000, 128),
    queries: syntheticQueries(128),
  },
};

function readNpyF32(path: string): { data: Float32Array; dim: number } {
  const buf = readFileSync(path);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.subarray(10, 10 + headerLen).toString("latin1");
  const shape = /'shape': \((\d+), (\d+)\)/.exec(header);
  if (!header.includes("'<f4'") || !shape) throw new Error(`bench_peer: ${path}: expected a 2-d <f4 .npy, header ${header.trim()}`);
  const body = buf.subarray(10 + headerLen);
  return { data: new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)), dim: Number(shape[2]) };
}

/** Rows of a .npy file, from its header. */
function npyRows(path: string): number {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(256);
    readSync(fd, head, 0, 256, 0);
    const shape = /'shape': \((\d+),/.exec(head.toString("latin1"));
    if (!shape) throw new Error(`bench_peer: ${path}: no shape in the .npy header`);
    return Number(shape[1]);
  } finally {
    closeSync(fd);
  }
}

/** The 778 MiniLM rows (fetched once). */
function miniLm(): Float32Array {
  const raw = readFileSync(miniLmEmbeddings());
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}

function miniLmEmbeddings(): string {
  const dir = resolve(root, ".cache/data/minilm");
  const bin = join(dir, "package/data/embeddings/embeddings.bin");
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  run("npm", ["pack", "@sap-ux/fiori-docs-embeddings@1.2.6"], dir);
  run("tar", ["xzf", "sap-ux-fiori-docs-embeddings-1.2.6.tgz"], dir);
  return bin;
}

function run(cmd: string, args: string[], cwd = root, env: Record<string, string | undefined> = {}): string {
  console.log(`$ ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, ...env }, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`bench_peer: ${cmd} failed (exit ${r.status}, signal ${r.signal}):\n${(r.stderr ?? "").slice(-2000)}${(r.stdout ?? "").slice(-2000)}`);
  return r.stdout;
}

interface Result {
  wall: number;
  rssMb: number;
  key: string;
  param: string;
  index: string;
  recall?: number;
  /** Single-query latency on one thread, re-measured by python3-faiss reading the file, ms. */
  latencyMs?: number;
  /** Taken from a kept run (--reuse_peer), not run now. */
  reused?: boolean;
}

/**
 * Our build under `/usr/bin/time -v`, its report written by time to a file (`-o`) and the output to a
 * log file: a Bun child shares a pipe non-blocking and time's report then fails half-written.
 */
function ours(emb: string, out: string, flags: string[]): Result {
  mkdirSync(out, { recursive: true });
  const args = ["main.ts", "build_index", `--embeddings=${emb}`, `--index_path=${out}/knn.index`,
    `--index_infos_path=${out}/index_infos.json`, ...flags];
  console.log(`$ node_modules/.bin/bun ${args.join(" ")}`);
  const report = join(out, "time.txt");
  const fd = openSync(join(out, "log.txt"), "w");
  try {
    spawnSync("/usr/bin/time", ["-v", "-o", report, "node_modules/.bin/bun", ...args], { cwd: root, stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd);
  }
  const times = existsSync(report) ? readFileSync(report, "utf8") : "";
  if (/Exit status: (\d+)/.exec(times)?.[1] !== "0") {
    throw new Error(`bench_peer: our build failed; log ${out}/log.txt:\n${readFileSync(join(out, "log.txt"), "utf8").slice(-2000)}`);
  }
  const infos = JSON.parse(readFileSync(join(out, "index_infos.json"), "utf8"));
  return { ...timeReport(times), key: infos.index_key, param: infos.index_param ?? "", index: join(out, "knn.index") };
}

/** `/usr/bin/time -v`'s wall seconds and peak RSS in MB. */
function timeReport(text: string): { wall: number; rssMb: number } {
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (.*)/.exec(text)![1].split(":").map(Number).reduce((a, b) => a * 60 + b, 0);
  return { wall, rssMb: Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(text)![1]) / 1024 };
}

/**
 * A peer run kept by an earlier `--keep` run on the same data and flags (`--reuse_peer`: the peer's
 * results do not change with our code, and it takes up to tens of minutes), or null when there is none.
 */
function keptPeer(out: string, flags: string[]): Result | null {
  const cmd = join(out, "cmd.txt");
  if (!reusePeer || !existsSync(join(out, "time.txt")) || !existsSync(join(out, "knn.index")) || !existsSync(cmd)) return null;
  // the kept run must have had the same flags
  if (!flags.every((f) => readFileSync(cmd, "utf8").includes(f))) return null;
  const infos = JSON.parse(readFileSync(join(out, "index_infos.json"), "utf8"));
  return { ...timeReport(readFileSync(join(out, "time.txt"), "utf8")), key: infos.index_key, param: infos.index_param ?? "", index: join(out, "knn.index"), reused: true };
}

/** The peer through its runner; `blas` is OPENBLAS_NUM_THREADS ("" = the library's default). */
function peer(emb: string, out: string, flags: string[], blas: string): Result {
  const kept = keptPeer(out, flags);
  if (kept) {
    console.log(`peer: reusing the kept run in ${out} (--reuse_peer)`);
    return kept;
  }
  const stdout = run(join(PEER_DIR, "run_autofaiss_peer.sh"),
    [emb, out, ...flags], root, { OPENBLAS_NUM_THREADS: blas });
  const r = JSON.parse(stdout);
  if (r.exit_code !== 0) throw new Error(`bench_peer: the peer failed (exit ${r.exit_code}); log ${r.log}`);
  return { wall: r.wall_s, rssMb: r.peak_rss_kb / 1024, key: r.index_key, param: r.index_param ?? "", index: join(out, "knn.index") };
}

if (process.env.CI) {
  console.error("bench_peer: not run in CI (it needs Python AutoFaiss set up by hand: ../shared/peer/README.md)");
  process.exit(2);
}
for (const d of [join(PEER_ROOT, "autofaiss/autofaiss"), join(PEER_ROOT, "embedding-reader/embedding_reader"), join(PEER_DIR, "run_autofaiss_peer.sh")]) {
  if (!existsSync(d)) {
    console.error(`bench_peer: ${d} is missing: set Python AutoFaiss up as ${PEER_DIR}/README.md says`);
    process.exit(2);
  }
}
const names = arg("cases", Object.keys(CASES).join(",")).split(",");
for (const n of names) if (!(n in CASES)) throw new Error(`bench_peer: --cases: unknown case "${n}" (expected some of ${Object.keys(CASES).join(", ")})`);
const blasMode = arg("peer_blas", "best");
if (!["best", "1", "default"].includes(blasMode)) throw new Error(`bench_peer: --peer_blas=${blasMode}: expected best, 1 or default`);
const blasSettings = blasMode === "best" ? ["1", ""] : blasMode === "1" ? ["1"] : [""];

console.log(run("node_modules/.bin/bun", ["main.ts", "--version"]).trim());
console.log(`uptime: ${run("uptime", []).trim()}`);
const rows: string[] = [];
for (const name of names) {
  const c = CASES[name];
  const dir = resolve(root, ".cache/bench/peer", `${name}${quick ? "-quick" : ""}`);
  const emb = join(dir, "emb");
  const queries = join(dir, "queries.npy");
  if (!existsSync(emb)) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(emb, { recursive: true });
    c.prepare(emb);
  }
  // queries (and their exact neighbours) are redone alone when their count changed: the base rows,
  // and so a kept peer run, stay valid
  if (!existsSync(queries) || npyRows(queries) !== Math.min(nq, npyRows(join(emb, readdirSync(emb)[0]!)))) {
    for (const f of readdirSync(dir)) if (f.startsWith("gt")) rmSync(join(dir, f));
    c.queries(queries);
  }
  console.log(`\n== ${name}: ${c.title}`);
  const o = ours(emb, join(dir, "ours"), c.flags);
  console.log(`ours: ${o.wall.toFixed(1)} s, ${o.rssMb.toFixed(0)} MB, ${o.key} ${o.param}`);
  const peers = blasSettings.map((b) => {
    const p = peer(emb, join(dir, `peer-blas${b || "default"}`), c.flags, b);
    console.log(`peer (OPENBLAS_NUM_THREADS=${b || "default"}): ${p.wall.toFixed(1)} s, ${p.rssMb.toFixed(0)} MB, ${p.key} ${p.param}`);
    return { blas: b || "default", ...p };
  });
  const all = [o, ...peers];
  const best = peers.reduce((a, b) => (b.wall < a.wall ? b : a));
  // each index at its own parameters, then ours and the best peer's at each other's: with the same
  // key, a recall difference at the same parameters is the training's, not the tuning's
  const sameKey = o.key === best.key;
  const crossed = sameKey ? [o.index, best.param, best.index, o.param] : [];
  const rec = JSON.parse(run("/usr/bin/python3", [join(root, "tasks/bench/recall_at_k.py"), emb, queries, c.metric, String(K),
    join(dir, `gt${K}.npy`), ...all.flatMap((r) => [r.index, r.param]), ...crossed]));
  all.forEach((r, i) => {
    r.recall = rec.recalls[i];
    r.latencyMs = rec.latencies_ms[i];
  });
  const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(4)}`;
  const line = (who: string, r: Result) =>
    `  ${who.padEnd(26)} ${r.wall.toFixed(1).padStart(8)} s ${r.rssMb.toFixed(0).padStart(6)} MB  recall@10 ${r.recall!.toFixed(4)}` +
    `  ${r.latencyMs!.toFixed(2)} ms/query (1 thread)  ${r.key} ${r.param}`;
  const block = [
    `${name}: ${c.title}`,
    line("ours", o),
    ...peers.map((p) => line(`peer BLAS=${p.blas}${p === best && peers.length > 1 ? " (best)" : ""}`, p)),
    `  ours / peer(BLAS=${best.blas}): wall ${(o.wall / best.wall).toFixed(2)}×, peak RSS ${(o.rssMb / best.rssMb).toFixed(2)}×, recall@10 ${signed(o.recall! - best.recall!)}`,
  ];
  if (sameKey && o.param !== best.param) {
    const [oAtPeer, peerAtOurs] = rec.recalls.slice(all.length);
    const [oAtPeerMs, peerAtOursMs] = rec.latencies_ms.slice(all.length);
    block.push(
      `  same parameters: at ours (${o.param}) ours ${o.recall!.toFixed(4)} / peer ${peerAtOurs.toFixed(4)} (${peerAtOursMs.toFixed(2)} ms), ` +
        `at the peer's (${best.param}) ours ${oAtPeer.toFixed(4)} (${oAtPeerMs.toFixed(2)} ms) / peer ${best.recall!.toFixed(4)}: ` +
        `training ${signed(((o.recall! - peerAtOurs) + (oAtPeer - best.recall!)) / 2)}`,
    );
  }
  console.log(block.join("\n"));
  rows.push(...block);
  // a peer run reused from an earlier --keep stays: it took up to tens of minutes and our code
  // cannot change it
  const reused = new Set(peers.filter((p) => p.reused).map((p) => p.index.slice(dir.length + 1).split("/")[0]));
  if (!keep) {
    for (const sub of readdirSync(dir)) {
      if (sub !== "emb" && sub !== "queries.npy" && !sub.startsWith("gt") && !reused.has(sub)) rmSync(join(dir, sub), { recursive: true, force: true });
    }
  }
}
console.log(`\nuptime: ${run("uptime", []).trim()}\n\n${rows.join("\n")}`);
