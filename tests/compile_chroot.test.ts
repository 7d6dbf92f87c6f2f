/**
 * SLOW TEST (≈ 1 min with a warm cache; the first run spends 2–5 min in debootstrap): the compiled
 * binary on a bare system. Builds dist/autofaiss (tasks/compile.ts), builds — once, cached in
 * .cache/debootstrap/ — a Debian 12 root with `debootstrap --variant=minbase` (glibc, no libgomp1, no
 * Node/Bun/Deno/Python/BLAS), copies in only the binary and a sample .npy, and inside `chroot` runs
 * --help, --version and build_index; the written index is then read back outside and searched
 * against brute force. Needs root (chroot, mount): CI runs as root; otherwise `sudo -n` is used, and
 * without it the test fails saying so. Only /proc is mounted in the root: Bun reads /proc/self/exe.
 *
 *   node_modules/.bin/bun test --timeout 600000 tests/compile_chroot.test.ts
 *   AUTOFAISS_DEBIAN_MIRROR=http://… overrides the mirror (default: deb.debian.org).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Index } from "../ffi/faiss.ts";
import { chooseVariant } from "../ffi/library.ts";
import { hostAvx2Flags } from "./helpers/cpu.ts";
import { writeNpy } from "../lib/io/npy_writer.ts";
import { bruteForce, clusteredData, recallAtK } from "./helpers/data.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const VERSION: string = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
const BINARY = join(ROOT, "dist/autofaiss");
const SUITE = "bookworm"; // Debian 12, the supported platform
const CACHE = join(ROOT, ".cache/debootstrap");
const CHROOT = join(CACHE, `${SUITE}-minbase`);
/** Written last by a successful debootstrap: a root without it is incomplete and rebuilt. */
const COMPLETE = join(CHROOT, ".autofaiss-minbase-complete");
const MIRROR = process.env.AUTOFAISS_DEBIAN_MIRROR || "http://deb.debian.org/debian";
/** Inside the root: a folder per run, removed afterwards. */
const WORK = `/autofaiss-test-${process.pid}`;
const HOST_WORK = join(CHROOT, WORK);

const isRoot = process.getuid?.() === 0;

function sh(cmd: string, args: string[], opts: { timeout?: number } = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: "utf8", timeout: opts.timeout ?? 600_000, maxBuffer: 64 * 2 ** 20 });
}

/** Runs a command as root: directly, or through `sudo -n`. */
function asRoot(cmd: string, args: string[], timeout?: number): SpawnSyncReturns<string> {
  return isRoot ? sh(cmd, args, { timeout }) : sh("sudo", ["-n", cmd, ...args], { timeout });
}

/** {@link asRoot}, returning stdout; throws with its output on failure. */
function privileged(cmd: string, args: string[], timeout?: number): string {
  const r = asRoot(cmd, args, timeout);
  if (r.status !== 0) {
    throw new Error(`chroot test: "${cmd} ${args.join(" ")}" failed (${r.signal ?? `exit ${r.status}`}): ${r.stderr || r.error?.message}`);
  }
  return r.stdout;
}

/** `autofaiss <args>` inside the root, with an empty environment but PATH and `env`. */
function inChroot(args: string[], env: Record<string, string> = {}) {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const argv = [CHROOT, "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", ...vars, `${WORK}/autofaiss`, ...args];
  const r = asRoot("chroot", argv);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `autofaiss --version` inside the root: its lines. */
function versionLines(env: Record<string, string> = {}) {
  const r = inChroot(["--version"], env);
  return { ...r, lines: r.stdout.trimEnd().split("\n") };
}

/** `mountpoint` (util-linux), not /proc/self/mounts: Deno wants --allow-all to read /proc/self. */
function procMounted(): boolean {
  return sh("mountpoint", ["-q", join(CHROOT, "proc")]).status === 0;
}

/** Files Bun extracted the embedded libraries to ($TMPDIR/.bun-<uid>-<hash>.so) inside the root. */
function extractedLibraries(): string[] {
  return readdirSync(join(CHROOT, "tmp")).filter((f) => f.startsWith(".bun-")).sort();
}

/** Removes this run's folder and everything in the root's /tmp (the extracted libraries). */
function cleanWork(): void {
  privileged("rm", ["-rf", HOST_WORK]);
  privileged("find", [join(CHROOT, "tmp"), "-mindepth", "1", "-delete"]);
}

function ensureRoot(): void {
  if (existsSync(COMPLETE)) return;
  const partial = `${CHROOT}.partial`;
  privileged("rm", ["-rf", CHROOT, partial]);
  privileged("mkdir", ["-p", CACHE]);
  console.log(`chroot test: debootstrap --variant=minbase ${SUITE} (first run only, a few minutes)`);
  privileged("debootstrap", ["--variant=minbase", SUITE, partial, MIRROR], 1_800_000);
  privileged("mv", [partial, CHROOT]);
  privileged("touch", [COMPLETE]);
}

describe("compiled binary on a bare Debian root (slow)", () => {
  const d = 32;
  const n = 2000;
  const vectors = clusteredData(n, d, 20, 7);

  before(() => {
    if (!isRoot && sh("sudo", ["-n", "true"]).status !== 0) {
      throw new Error(
        "chroot test: needs root for debootstrap, mount and chroot (CI runs as root); run as root or allow passwordless sudo",
      );
    }
    for (const tool of ["debootstrap", "chroot"]) {
      if (sh("sh", ["-c", `PATH="$PATH:/usr/sbin:/sbin" command -v ${tool}`]).status !== 0) {
        throw new Error(`chroot test: ${tool} is missing; run tasks/setup.sh (apt-get install debootstrap)`);
      }
    }
    const compiled = sh(join(ROOT, "node_modules/.bin/bun"), [join(ROOT, "tasks/compile.ts")]);
    if (compiled.status !== 0) throw new Error(`chroot test: tasks/compile.ts failed: ${compiled.stdout}${compiled.stderr}`);
    ensureRoot();
    if (!procMounted()) privileged("mount", ["-t", "proc", "proc", join(CHROOT, "proc")]);
    cleanWork();
    privileged("install", ["-d", "-o", String(process.getuid?.() ?? 0), HOST_WORK, join(HOST_WORK, "data")]);
    copyFileSync(BINARY, join(HOST_WORK, "autofaiss"));
    privileged("chmod", ["755", join(HOST_WORK, "autofaiss")]);
    writeNpy(join(HOST_WORK, "data", "part0.npy"), vectors, d);
  });

  after(() => {
    if (procMounted()) privileged("umount", ["-l", join(CHROOT, "proc")]);
    if (existsSync(CHROOT)) cleanWork();
  });

  test("the root has glibc but no libgomp, OpenBLAS, Node, Bun, Deno or Python", () => {
    const packages = privileged("chroot", [CHROOT, "dpkg-query", "-W", "-f", "${Package}\n"]).trim().split("\n");
    assert.ok(packages.includes("libc6"), "libc6 installed");
    const forbidden = packages.filter((p) => /^(libgomp|libopenblas|libblas|liblapack|nodejs|python3|libfaiss)/.test(p));
    assert.deepEqual(forbidden, []);
    const found = privileged("chroot", [CHROOT, "/bin/sh", "-c", "find / -xdev \\( -name 'libgomp*' -o -name 'libopenblas*' \\) -print; for c in node bun deno python3; do command -v $c || true; done"]);
    assert.equal(found.trim(), "");
  });

  test("inside the root, ldd finds every library the binary needs, all of them glibc's", () => {
    const libs = privileged("chroot", [CHROOT, "ldd", `${WORK}/autofaiss`]).trim().split("\n").map((l) => l.trim().split(" ")[0]);
    const glibc = new Set(["linux-vdso.so.1", "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "/lib64/ld-linux-x86-64.so.2"]);
    assert.deepEqual(libs.filter((l) => !glibc.has(l)), []);
  });

  test("--help prints the commands without loading FAISS", () => {
    const r = inChroot(["--help"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.ok(r.stdout.startsWith(`autofaiss ${VERSION}: build FAISS k-NN indices`), r.stdout);
    assert.match(r.stdout, /^ {2}build_index /m);
    assert.deepEqual(extractedLibraries(), [], "no embedded library extracted");
  });

  test("--version prints the tool, the embedded FAISS variant the CPU runs, its compile options and the build", () => {
    const r = versionLines();
    assert.equal(r.status, 0, r.stderr);
    const lines = r.lines;
    assert.equal(lines.length, 6, r.stdout);
    assert.equal(lines[0], `autofaiss ${VERSION}`);
    // The choice the host's /proc/cpuinfo implies; the reason has no "(from /proc/cpuinfo; …)" note,
    // so the embedded CPU probe answered.
    const { variant, reason } = chooseVariant({ flags: hostAvx2Flags() });
    const file = variant === "avx2" ? "libfaiss_c_avx2" : "libfaiss_c";
    assert.match(lines[1], new RegExp(`^faiss \\d+\\.\\d+\\.\\d+ \\(embedded: /\\$bunfs/root/${file}-\\w+\\.so\\)$`));
    assert.equal(lines[2], `faiss compile options: OPTIMIZE ${variant === "avx2" ? "AVX2" : "GENERIC"}`);
    assert.equal(lines[3], `faiss variant: ${variant.toUpperCase()} (${reason})`);
    assert.equal(lines[4], "faiss GPU support: no (faiss_index_cpu_to_gpu missing)");
    assert.match(lines[5], /^build: bun \d+\.\d+\.\d+, linux-x64, commit \w+/);
    assert.equal(r.stderr, "");
    assert.equal(extractedLibraries().length, 3, "the CPU probe, one libfaiss_c variant and libgomp.so.1 extracted to /tmp");
  });

  /** build_index inside the root; returns index_infos.json and the index read back outside. */
  function build(name: string, extra: string[], env: Record<string, string> = {}) {
    const r = inChroot([
      "build_index", `--embeddings=${WORK}/data`, `--index_path=${WORK}/${name}/knn.index`,
      `--index_infos_path=${WORK}/${name}/index_infos.json`, "--metric_type=l2",
      "--max_index_memory_usage=100M", "--current_memory_available=1G", ...extra,
    ], env);
    assert.equal(r.status, 0, r.stderr);
    const infos = JSON.parse(readFileSync(join(HOST_WORK, name, "index_infos.json"), "utf8"));
    assert.equal(infos.index_path, `${WORK}/${name}/knn.index`);
    assert.deepEqual([infos["nb vectors"], infos["vectors dimension"]], [n, d]);
    // Tuning and the fast metrics searched the index inside the root.
    assert.ok(infos.avg_search_speed_ms > 0, JSON.stringify(infos));
    const index = Index.read(join(HOST_WORK, name, "knn.index"));
    assert.deepEqual([index.ntotal, index.d, index.isTrained], [n, d, true]);
    return { infos, index };
  }

  /** With every list probed, an IVF index finds the exact top 5 of the first 30 vectors. */
  function assertExactSearch(index: Index): void {
    index.setParameters("nprobe=32");
    const queries = vectors.subarray(0, 30 * d);
    const found = index.search(queries, 5);
    assert.deepEqual(
      Array.from({ length: 30 }, (_, q) => Array.from(found.labels.subarray(q * 5, q * 5 + 5), Number)),
      bruteForce(vectors, queries, d, 5, "l2").labels,
    );
  }

  test("build_index with the selected index (HNSW), searched back outside", () => {
    const { infos, index } = build("hnsw", []);
    using _ = index;
    assert.equal(infos.index_key, "HNSW15");
    index.setParameters(infos.index_param);
    const queries = vectors.subarray(0, 100 * d);
    const found = index.search(queries, 10);
    const recall = recallAtK(found.labels, bruteForce(vectors, queries, d, 10, "l2").labels, 10);
    assert.ok(recall >= 0.9, `recall@10 ${recall}`);
  });

  test("build_index with k-means training (IVF, BLAS + OpenMP): exact search with every list probed", () => {
    const { infos, index } = build("ivf", ["--index_key=IVF32,Flat"]);
    using _ = index;
    assert.equal(infos.index_key, "IVF32,Flat");
    assertExactSearch(index);
  });

  test("build_partitioned_indexes: the binary runs itself as the child process of each small partition, concurrently", () => {
    const partitions = [0, 1].map((i) => `parts/p=${i}`);
    partitions.forEach((p, i) => {
      mkdirSync(join(HOST_WORK, p), { recursive: true });
      writeNpy(join(HOST_WORK, p, "0.npy"), clusteredData(1500, d, 10, 90 + i), d);
    });
    const r = inChroot([
      "build_partitioned_indexes", `--partitions=[${partitions.map((p) => `${WORK}/${p}`).join(",")}]`,
      `--output_root_dir=${WORK}/partitioned`, "--file_format=npy", "--index_key=IVF16,Flat", "--metric_type=l2",
      "--nb_cores=2", "--max_index_memory_usage=100M", "--current_memory_available=2G",
    ]);
    const log = r.stdout + r.stderr;
    assert.equal(r.status, 0, log);
    assert.doesNotMatch(log, /cannot start child processes/);
    assert.match(log, /Building 2 small partitions, up to 2 at once with 1 FAISS thread\(s\) each/);
    assert.equal(log.match(/in a child process/g)?.length, 2, log);
    for (const p of ["p=0", "p=1"]) {
      using index = Index.read(join(HOST_WORK, "partitioned", p, "knn.index"));
      assert.deepEqual([index.ntotal, index.d], [1500, d]);
    }
  });

  test("AUTOFAISS_FAISS_VARIANT=generic: the embedded GENERIC library (the one CPUs without AVX2 get) trains and searches exactly", () => {
    const env = { AUTOFAISS_FAISS_VARIANT: "generic" };
    const { lines } = versionLines(env);
    assert.match(lines[1], /^faiss \d+\.\d+\.\d+ \(embedded: \/\$bunfs\/root\/libfaiss_c-\w+\.so\)$/);
    assert.deepEqual(lines.slice(2, 4), ["faiss compile options: OPTIMIZE GENERIC", "faiss variant: GENERIC (AUTOFAISS_FAISS_VARIANT=generic)"]);
    const { index } = build("ivf-generic", ["--index_key=IVF32,Flat"], env);
    using _ = index;
    assertExactSearch(index);
  });
});
