/**
 * No silent fallbacks: with a FAISS library that has none of our autofaiss_* extensions (what an
 * upstream libfaiss_c.so is), every lost capability is warned about once per process, naming the
 * library, and an explicit --nb_cores is an error. The library is our own faiss_c.cpp linked with a
 * version script that exports only faiss_*; it runs in child processes (a process opens one library).
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { CAPABILITIES, missingCapabilityMessage, setWarningSink, warnMissingCapability } from "../ffi/capabilities.ts";
import { writeNpy } from "../lib/io/npy_writer.ts";
import { clusteredData } from "./helpers/data.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const LIBDIR = "/usr/lib/x86_64-linux-gnu";

/** faiss_c.cpp linked like tasks/build_native.ts, but exporting faiss_* only; cached by source hash. */
function upstreamLikeLibrary(): string {
  const source = join(ROOT, "native/faiss_c.cpp");
  const hash = createHash("sha256").update(readFileSync(source)).update(readFileSync(join(ROOT, "native/autofaiss_ext.h")))
    .digest("hex").slice(0, 12);
  const dir = join(ROOT, ".cache/upstream-like");
  const out = join(dir, `libfaiss_c_noext_${hash}.so`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const map = join(dir, "faiss_only.map");
  writeFileSync(map, "{ global: faiss_*; local: *; };\n");
  const tmp = `${out}.tmp-${process.pid}`;
  execFileSync("g++", [
    "-O1", "-std=c++17", "-fPIC", "-fopenmp", "-DAUTOFAISS_BLAS_OPENMP", "-fvisibility=hidden", `-Wl,--version-script=${map}`,
    "-shared", "-o", tmp, source, `${LIBDIR}/libfaiss.a`, `${LIBDIR}/openblas-openmp/libopenblas.a`,
    "-static-libstdc++", "-static-libgcc", "-Wl,--exclude-libs,ALL", "-Wl,--gc-sections",
  ]);
  renameSync(tmp, out);
  return out;
}

function runtimeCommand(script: string, args: string[]): [string, string[]] {
  const deno = (globalThis as { Deno?: unknown }).Deno !== undefined;
  return deno
    ? [join(ROOT, "node_modules/.bin/deno"), ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-ffi", script, ...args]]
    : [join(ROOT, "node_modules/.bin/bun"), [script, ...args]];
}

function child(script: string, args: string[], env: Record<string, string>) {
  const [cmd, argv] = runtimeCommand(script, args);
  const r = spawnSync(cmd, argv, { cwd: ROOT, env: { ...process.env, ...env }, encoding: "utf8", timeout: 300_000 });
  return { status: r.status ?? r.signal, stdout: r.stdout, stderr: r.stderr };
}

const warning = (lib: string, symbols: string, lost: string) => `faiss library ${lib} lacks ${symbols}: ${lost}`;
const THREADS = "autofaiss_set_num_threads, autofaiss_get_num_threads";
const LOST = {
  threads: "the FAISS thread count cannot be set, so FAISS uses OpenMP's default (OMP_NUM_THREADS, else every core)",
  oneThreadLatency: "single-query latencies (tuning, avg_search_speed_ms, 99p_search_speed_ms) are timed with every OpenMP " +
    "thread instead of one, so they come out higher and noisier on a busy machine",
  polysemous: "polysemous training cannot be switched off, so PQ indices with 8-bit codes train tens of seconds longer",
  serializedSize: "index sizes are measured by writing the index to a temporary file (needs that much free space in the temporary folder)",
  nonFiniteScan: "the NaN/Inf check of the embeddings runs in JavaScript, several times slower than the native scan",
  ivfLayer: "the IVF layer under a pre-transform (OPQ, PCA, RR) cannot be reached, so make_direct_map and nprobe access do nothing on such indices",
  indexBuffers: "indices are copied to and from memory through a temporary file",
  fastScanHeap: "fast-scan PQ indices (PQ<m>x4fs) search with FAISS's reservoir when k > 20, which aborts the process " +
    "when many quantized distances tie (FAISS 1.7.3 without AVX2)",
  hashDirectMap: "the parts of a split index past the first (ids not starting at 0) cannot get a direct map, so " +
    "nb_indices_to_keep > 1 with make_direct_map is refused",
  directEncoding: "IVF-PQ indices with sub-vectors of at most 8 dimensions are encoded by FAISS's per-centroid distance calls, " +
    "which makes adding to them several times slower",
  trainingLevers: "training keeps FAISS's defaults (OPQ's 50 outer iterations, BLAS k-means on 3- to 8-dimensional " +
    "sub-vectors), which makes OPQ / PQ training several times slower",
  progressJobs: "training and adding run as one blocking FAISS call each, so their progress is only shown per phase " +
    "(no k-means iterations, no vectors added inside a call)",
  transformTraining: "an OPQ rotation trains inside the whole training sample, which also stays in memory beside its rotated " +
    "copy, so training needs more memory",
  sharedTransforms: "an OPQ rotation trained while selecting the index cannot be handed to the build, so measured selection " +
    "measures the heuristic key on a rotation of its sample and the build trains its rotation again",
  openmpGuards: "FAISS calls that throw inside OpenMP regions are not guarded natively, so reconstruct_n is refused " +
    "for indices whose reconstruct fails unless they are plain IVF indices",
};

describe("capability warnings (in process)", () => {
  test("the message names the library, the missing symbols and what is lost", () => {
    assert.equal(
      missingCapabilityMessage("polysemous", "/x/libfaiss_c.so", ["autofaiss_set_polysemous_training"]),
      "faiss library /x/libfaiss_c.so lacks autofaiss_set_polysemous_training: polysemous training cannot be switched off, " +
        "so PQ indices with 8-bit codes train tens of seconds longer",
    );
    assert.deepEqual(Object.fromEntries(Object.entries(CAPABILITIES).map(([k, v]) => [k, v.lost])), LOST);
  });

  test("a sink receives each capability once; setWarningSink restores the previous sink", () => {
    const got: string[] = [];
    const previous = setWarningSink((m) => got.push(m));
    try {
      // "indexBuffers" is never missing from our library, so no earlier call in this process warned about it.
      warnMissingCapability("indexBuffers", "/lib.so", ["a"]);
      warnMissingCapability("indexBuffers", "/lib.so", ["a"]);
    } finally {
      assert.equal(typeof setWarningSink(previous), "function");
    }
    assert.deepEqual(got, ["faiss library /lib.so lacks a: indices are copied to and from memory through a temporary file"]);
  });
});

describe("a library without the autofaiss_* extensions", () => {
  let lib = "";
  let dir = "";
  const d = 16;
  before(() => {
    lib = upstreamLikeLibrary();
    dir = mkdtempSync(join(tmpdir(), "autofaiss-noext-"));
    mkdirSync(join(dir, "emb"));
    writeNpy(join(dir, "emb", "part0.npy"), clusteredData(1000, d, 8, 5), d);
  });

  test("it really lacks them (nm) and still has the C API", () => {
    const names = execFileSync("nm", ["-D", "--defined-only", lib], { encoding: "utf8" });
    assert.equal(/\bautofaiss_/.test(names), false);
    assert.match(names, / T faiss_index_factory$/m);
  });

  test("a library user: each lost capability is warned once on stderr, and every call still works", () => {
    const r = child(join(ROOT, "tests/fixtures/ffi/capabilities.ts"), [], { AUTOFAISS_FAISS_LIB: lib });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stderr.split("\n").filter((l) => l !== ""), [
      `autofaiss: warning: ${warning(lib, THREADS, LOST.threads)}`,
      `autofaiss: warning: ${warning(lib, THREADS, LOST.oneThreadLatency)}`,
      `autofaiss: warning: ${warning(lib, "autofaiss_first_nonfinite", LOST.nonFiniteScan)}`,
      `autofaiss: warning: ${warning(lib, "autofaiss_set_polysemous_training", LOST.polysemous)}`,
      `autofaiss: warning: ${warning(lib, "autofaiss_add", LOST.directEncoding)}`,
      `autofaiss: warning: ${warning(lib, "autofaiss_extract_index_ivf", LOST.ivfLayer)}`,
      `autofaiss: warning: ${warning(lib, "autofaiss_serialized_size", LOST.serializedSize)}`,
      `autofaiss: warning: ${warning(lib, "autofaiss_write_index_buffer, autofaiss_read_index_buffer", LOST.indexBuffers)}`,
      `autofaiss: warning: ${warning(lib, "autofaiss_build_info", LOST.openmpGuards)}`,
    ]);
    assert.deepEqual(JSON.parse(r.stdout), {
      setNumThreads: false,
      withNumThreads: "ran",
      nativeScan: false,
      polysemous: false,
      ivfUnderRR: false,
      sizeMatchesBytes: true,
      fromBytesNtotal: 300,
      reconstructN: "faiss_Index_reconstruct_n", // refused before FAISS's OpenMP loop could abort
      ivfReconstructN: true,
      mappedAdd:
        "faiss_Index_add failed (code -101): the index was read with mmap, so its inverted lists may be read-only; read it without mmap to modify it",
      invlistsClass: null,
    });
  });

  // --verbose=30: warnings and errors only.
  const build = (extra: string[]) =>
    child(join(ROOT, "main.ts"), [
      "build_index", `--embeddings=${join(dir, "emb")}`, `--index_path=${join(dir, "out", "knn.index")}`,
      `--index_infos_path=${join(dir, "out", "index_infos.json")}`, "--metric_type=l2", "--index_key=IVF8,Flat",
      "--verbose=30", ...extra,
    ], { AUTOFAISS_FAISS_LIB: lib });

  test("build_index --nb_cores: exit 1 before reading data, naming the library", () => {
    const r = build(["--nb_cores=2"]);
    assert.deepEqual([r.status, r.stderr], [
      1,
      `autofaiss build_index: error: nb_cores: the loaded FAISS library (${lib}) cannot set the thread count ` +
        "(autofaiss_set_num_threads missing); leave nb_cores unset and set OMP_NUM_THREADS=2 in the environment instead\n",
    ]);
  });

  test("build_index: the warnings go through the command's log, once each, and the build succeeds", () => {
    const r = build([]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stderr.split("\n").filter((l) => l !== "").map((l) => l.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} /, ""));
    assert.deepEqual(lines, [
      `[WARNING]: ${warning(lib, THREADS, LOST.threads)}`,
      `[WARNING]: ${warning(lib, "autofaiss_first_nonfinite", LOST.nonFiniteScan)}`,
      `[WARNING]: ${warning(lib, "autofaiss_set_polysemous_training", LOST.polysemous)}`,
      `[WARNING]: ${warning(lib, "autofaiss_job_train, autofaiss_job_add, autofaiss_job_status, autofaiss_job_join", LOST.progressJobs)}`,
      `[WARNING]: ${warning(lib, "autofaiss_add", LOST.directEncoding)}`,
      `[WARNING]: ${warning(lib, THREADS, LOST.oneThreadLatency)}`,
      `[WARNING]: ${warning(lib, "autofaiss_serialized_size", LOST.serializedSize)}`,
    ]);
    assert.equal(existsSync(join(dir, "out", "knn.index")), true);
  });

  test("cleanup", () => rmSync(dir, { recursive: true, force: true }));
});
