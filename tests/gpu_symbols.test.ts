/**
 * --use_gpu: the optional GPU symbols of the upstream C API, their detection, the fail-fast errors,
 * and the GPU training path driven through a stub library (tests/fixtures/gpu/faiss_gpu_stub.c) whose
 * "GPU" is a CPU clone: this machine has no CUDA. The CLI runs as a child process (on the runtime
 * running this file) because a process opens one FAISS library, and the stub must be that library.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { BuildError, buildIndex } from "../lib/commands/build_index.ts";
import { GPU_SYMBOLS, gpuSupport, Index } from "../ffi/faiss.ts";
import { faissLibrary, localBuildPath } from "../ffi/library.ts";
import { SYMBOLS } from "../ffi/symbols.ts";
import { writeNpy } from "../lib/io/npy_writer.ts";
import { bruteForce, clusteredData } from "./helpers/data.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const STUB_SOURCE = join(ROOT, "tests/fixtures/gpu/faiss_gpu_stub.c");
const STUB_DIR = join(ROOT, ".cache/gpu-stub");

const noGpuMessage = (path: string, missing = "faiss_index_cpu_to_gpu") =>
  `use_gpu: the loaded FAISS library (${path}) has no GPU support (${missing} missing); set AUTOFAISS_FAISS_LIB to a GPU build of libfaiss_c.so`;

/** Compiles a stub variant linked against our library; returns its path. */
function stub(name: string, defines: string[] = []): string {
  mkdirSync(STUB_DIR, { recursive: true });
  const out = join(STUB_DIR, `libfaiss_gpu_stub_${name}.so`);
  const lib = localBuildPath();
  execFileSync("gcc", [
    "-shared", "-fPIC", "-O1", "-Wall", "-Werror", ...defines, "-o", out, STUB_SOURCE,
    lib, `-Wl,-rpath,${join(lib, "..")}`,
  ]);
  return out;
}

/** `autofaiss <args>` from source on this runtime, with Deno's narrow permissions (deno.json). */
function cli(args: string[], env: Record<string, string> = {}) {
  const deno = (globalThis as { Deno?: unknown }).Deno !== undefined;
  const [cmd, pre] = deno
    ? [join(ROOT, "node_modules/.bin/deno"), ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-ffi", "main.ts"]]
    : [join(ROOT, "node_modules/.bin/bun"), ["main.ts"]];
  const r = spawnSync(cmd, [...pre, ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: "utf8", timeout: 300_000 });
  return { status: r.status ?? r.signal, stdout: r.stdout, stderr: r.stderr };
}

describe("GPU symbols", () => {
  test("the symbol table declares the upstream GPU functions, optional, with their C signatures", () => {
    assert.deepEqual(
      Object.fromEntries(GPU_SYMBOLS.map((name) => [name, SYMBOLS[name]])),
      {
        faiss_index_cpu_to_gpu: { args: ["handle", "i32", "handle", "buffer"], returns: "i32", optional: true },
        faiss_index_gpu_to_cpu: { args: ["handle", "buffer"], returns: "i32", optional: true },
        faiss_StandardGpuResources_new: { args: ["buffer"], returns: "i32", optional: true },
        faiss_StandardGpuResources_free: { args: ["handle"], returns: "void", optional: true },
        faiss_get_num_gpus: { args: ["buffer"], returns: "i32", optional: true },
      },
    );
  });

  test("our CPU library has none of them, and --use_gpu fails before reading any data", async (t) => {
    const { path, missing } = gpuSupport();
    if (missing.length === 0) return t.skip(`the loaded library (${path}) is a GPU build`);
    assert.deepEqual(missing, [...GPU_SYMBOLS]);
    assert.equal(path, faissLibrary().path);
    await assert.rejects(
      buildIndex("/nonexistent/embeddings", { useGpu: true, saveOnDisk: false, indexPath: null }),
      (e: unknown) => e instanceof BuildError && e.message === noGpuMessage(path),
    );
  });
});

describe("--use_gpu from the CLI", () => {
  let dir = "";
  const d = 16;
  const vectors = clusteredData(2000, d, 12, 61);
  let stubs: Record<"full" | "noCpuToGpu" | "noGpus", string>;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "autofaiss-gpu-"));
    mkdirSync(join(dir, "emb"));
    writeNpy(join(dir, "emb", "part0.npy"), vectors, d);
    stubs = {
      full: stub("full"),
      noCpuToGpu: stub("no_cpu_to_gpu", ["-DSTUB_NO_CPU_TO_GPU"]),
      noGpus: stub("no_gpus", ["-DSTUB_NUM_GPUS=0"]),
    };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  // --verbose=40 (ERROR): stderr holds the error line only.
  const build = (extra: string[], env: Record<string, string> = {}) =>
    cli([
      "build_index", `--embeddings=${join(dir, "emb")}`, `--index_path=${join(dir, "out", "knn.index")}`,
      `--index_infos_path=${join(dir, "out", "index_infos.json")}`, "--metric_type=l2", "--use_gpu", "--verbose=40", ...extra,
    ], env);

  test("our CPU library: exit 1 with one line naming the library", () => {
    const r = build([], { AUTOFAISS_FAISS_LIB: localBuildPath() });
    assert.deepEqual([r.status, r.stderr], [1, `autofaiss build_index: error: ${noGpuMessage(localBuildPath())}\n`]);
  });

  test("a library lacking one GPU function is named with that function", () => {
    const r = build([], { AUTOFAISS_FAISS_LIB: stubs.noCpuToGpu });
    assert.deepEqual([r.status, r.stderr], [1, `autofaiss build_index: error: ${noGpuMessage(stubs.noCpuToGpu)}\n`]);
  });

  test("a GPU build that sees no GPU", () => {
    const r = build([], { AUTOFAISS_FAISS_LIB: stubs.noGpus });
    assert.deepEqual([r.status, r.stderr], [
      1,
      `autofaiss build_index: error: use_gpu: the loaded FAISS library (${stubs.noGpus}) sees no GPU (faiss_get_num_gpus gave 0)\n`,
    ]);
  });

  test("--version reports GPU support of the loaded library", () => {
    assert.match(cli(["--version"], { AUTOFAISS_FAISS_LIB: stubs.full }).stdout, /^faiss GPU support: yes$/m);
    assert.match(cli(["--version"], { AUTOFAISS_FAISS_LIB: localBuildPath() }).stdout, /^faiss GPU support: no \(faiss_index_cpu_to_gpu missing\)$/m);
  });

  test("a GPU index keeps its GpuResources alive: freeing the resources first takes effect when the index is freed", () => {
    const deno = (globalThis as { Deno?: unknown }).Deno !== undefined;
    const script = join(ROOT, "tests/fixtures/gpu/lifetime.ts");
    const [cmd, argv] = deno
      ? [join(ROOT, "node_modules/.bin/deno"), ["run", "--allow-read", "--allow-env", "--allow-ffi", script]]
      : [join(ROOT, "node_modules/.bin/bun"), [script]];
    const r = spawnSync(cmd, argv, { cwd: ROOT, env: { ...process.env, AUTOFAISS_FAISS_LIB: stubs.full }, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stderr.split("\n").filter((l) => l.startsWith("gpu-stub:") || l.startsWith("js:")), [
      "gpu-stub: StandardGpuResources_new",
      "gpu-stub: index_cpu_to_gpu device 0 ok",
      "js: res.free() while the GPU index lives",
      "js: res.freed=true; GPU search label 1",
      "js: faiss_index_cpu_to_gpu failed (code -100): this GPU resources has been freed",
      "js: gpu.free()",
      "gpu-stub: StandardGpuResources_free ok", // once, after the index, not at res.free()
      "js: done",
    ]);
  });

  test("a GPU build: trains on the GPU copy, copies it back to CPU, then adds and writes a CPU index", () => {
    const r = build(["--index_key=IVF16,Flat"], { AUTOFAISS_FAISS_LIB: stubs.full });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stderr.split("\n").filter((l) => l.startsWith("gpu-stub:")), [
      "gpu-stub: StandardGpuResources_new",
      "gpu-stub: index_cpu_to_gpu device 0 ok",
      "gpu-stub: index_gpu_to_cpu",
      "gpu-stub: StandardGpuResources_free ok",
    ]);
    const infos = JSON.parse(readFileSync(join(dir, "out", "index_infos.json"), "utf8"));
    assert.equal(infos.index_key, "IVF16,Flat");
    assert.ok(existsSync(join(dir, "out", "knn.index")));
    using index = Index.read(join(dir, "out", "knn.index"));
    assert.deepEqual([index.ntotal, index.d, index.isTrained], [2000, d, true]);
    index.setParameters("nprobe=16"); // every list: exact search
    const queries = vectors.subarray(0, 20 * d);
    const found = index.search(queries, 5);
    assert.deepEqual(
      Array.from({ length: 20 }, (_, q) => Array.from(found.labels.subarray(q * 5, q * 5 + 5), Number)),
      bruteForce(vectors, queries, d, 5, "l2").labels,
    );
  });
});
