/**
 * Builds the AVX2 variant of FAISS (`libfaiss_avx2.a`, static, PIC) from Debian's own source of the
 * FAISS that libfaiss-dev ships, and caches it outside the repository:
 *   $XDG_CACHE_HOME/autofaiss/faiss-<key>/lib/libfaiss_avx2.a   (default ~/.cache/autofaiss/…)
 * where <key> is a sha256 of the source's .dsc sha256, the CMake flags and the compiler version, so
 * a second run (or a second clone) finds it in milliseconds and a change of any of them rebuilds.
 *
 * Debian's libfaiss.a is the GENERIC build (no AVX2/FMA/F16C): its distance loops, PQ encoders and
 * fast-scan kernels run without SIMD. FAISS's CMake has an AVX2 target (`faiss_avx2`, the same
 * sources compiled with -mavx2 -mfma -mf16c -mpopcnt); only that target is built: no tests, no
 * Python, no GPU, no C API (ours is native/faiss_c.cpp).
 *
 * The source comes from apt (`apt-get source`) with a private sources list and private list/cache
 * folders under the cache root, so the machine's own apt configuration and state are never touched.
 * apt checks the .dsc against the signed Release file; this script then checks the .dsc against the
 * pinned sha256 below, and dpkg-source checks the tarballs against the .dsc.
 *
 *   bun tasks/build_faiss.ts [--force]     # prints the archive path; --force rebuilds
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";

/**
 * The source of the FAISS Debian 12 ships as libfaiss-dev 1.7.3-2: the same version as the GENERIC
 * libfaiss.a, so both variants share the headers in /usr/include/faiss.
 */
export const FAISS_SOURCE = {
  package: "faiss",
  version: "1.7.3-2",
  dsc: "faiss_1.7.3-2.dsc",
  dscSha256: "432937bbdfc7e14783685762e360b68f9ab74f1599319697d756b27585e83dbd",
  /** The line of the private sources list: bookworm's main archive, source packages only. */
  debSrc: "deb-src http://deb.debian.org/debian bookworm main",
} as const;

/**
 * CMake cache entries. -O2 without -g, as Debian's GENERIC build (-O2, plus -g and hardening), so the
 * two variants differ in SIMD only. BLA_VENDOR only lets configure find a BLAS: a static archive links
 * nothing; tasks/build_native.ts links the OpenMP OpenBLAS into the shared library.
 */
export const CMAKE_FLAGS: Record<string, string> = {
  FAISS_OPT_LEVEL: "avx2",
  FAISS_ENABLE_GPU: "OFF",
  FAISS_ENABLE_PYTHON: "OFF",
  FAISS_ENABLE_C_API: "OFF",
  BUILD_TESTING: "OFF",
  BUILD_SHARED_LIBS: "OFF",
  CMAKE_POSITION_INDEPENDENT_CODE: "ON",
  CMAKE_BUILD_TYPE: "Release",
  CMAKE_CXX_FLAGS_RELEASE: "-O2",
  BLA_VENDOR: "OpenBLAS",
  // The compiler whose version is part of the cache key (cmake would pick /usr/bin/c++).
  CMAKE_CXX_COMPILER: "g++",
};
const TARGET = "faiss_avx2";
const ARCHIVE = "libfaiss_avx2.a";

function run(cmd: string, argv: string[], opts: { cwd?: string; capture?: boolean } = {}): string {
  console.log(`$ ${cmd} ${argv.join(" ")}`);
  return execFileSync(cmd, argv, {
    cwd: opts.cwd,
    stdio: ["ignore", opts.capture ? "pipe" : "inherit", "inherit"],
    encoding: "utf8",
    maxBuffer: 64 * 2 ** 20,
  }) ?? "";
}

/** `$XDG_CACHE_HOME/autofaiss` when XDG_CACHE_HOME is absolute, else `$HOME/.cache/autofaiss`. */
export function cacheRoot(env: Record<string, string | undefined> = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && xdg.startsWith("/")) return join(xdg, "autofaiss");
  if (!env.HOME) throw new Error("build_faiss: neither XDG_CACHE_HOME nor HOME is set (the FAISS build cache lives there)");
  return join(env.HOME, ".cache", "autofaiss");
}

/** sha256 of everything the archive depends on: the source, the flags, the target and the compiler. */
export function cacheKey(compilerVersion: string): string {
  return createHash("sha256")
    .update(JSON.stringify({ dscSha256: FAISS_SOURCE.dscSha256, cmake: CMAKE_FLAGS, target: TARGET, compiler: compilerVersion }))
    .digest("hex")
    .slice(0, 16);
}

function compilerVersion(): string {
  return execFileSync("g++", ["--version"], { encoding: "utf8" }).split("\n")[0].trim();
}

/** Where the archive of this source + flags + compiler lives (it may not exist yet). */
export function cachedArchivePath(env: Record<string, string | undefined> = process.env): string {
  return join(cacheRoot(env), `faiss-${cacheKey(compilerVersion())}`, "lib", ARCHIVE);
}

function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Downloads and unpacks the pinned source into `work`/src; returns that folder. */
function fetchSource(root: string, work: string): string {
  const apt = join(root, "apt");
  for (const d of ["lists/partial", "cache/archives/partial"]) mkdirSync(join(apt, d), { recursive: true });
  const sourcesList = join(apt, "sources.list");
  writeFileSync(sourcesList, `${FAISS_SOURCE.debSrc}\n`);
  const options = [
    `Dir::Etc::SourceList=${sourcesList}`,
    "Dir::Etc::SourceParts=/dev/null",
    `Dir::State::Lists=${join(apt, "lists")}`,
    `Dir::Cache=${join(apt, "cache")}`,
    // As root, apt downloads as the _apt user, who cannot write into root's cache folder.
    ...(process.getuid?.() === 0 ? ["APT::Sandbox::User=root"] : []),
  ].flatMap((o) => ["-o", o]);
  run("apt-get", [...options, "-qq", "update"]);
  run("apt-get", [...options, "-qq", "source", "--download-only", `${FAISS_SOURCE.package}=${FAISS_SOURCE.version}`], { cwd: work });
  const dsc = join(work, FAISS_SOURCE.dsc);
  const got = sha256File(dsc);
  if (got !== FAISS_SOURCE.dscSha256) {
    throw new Error(`build_faiss: ${dsc}: sha256 ${got}, expected ${FAISS_SOURCE.dscSha256} (the pinned FAISS ${FAISS_SOURCE.version} source)`);
  }
  run("dpkg-source", ["--no-copy", "-x", FAISS_SOURCE.dsc, "src"], { cwd: work });
  return join(work, "src");
}

/** Configures and builds the AVX2 target; returns the archive's path in the build folder. */
function compile(src: string, build: string): string {
  const defines = Object.entries(CMAKE_FLAGS).map(([k, v]) => `-D${k}=${v}`);
  run("cmake", ["-S", src, "-B", build, "-G", "Ninja", ...defines]);
  // nice: the compile takes minutes on 2 cores and must not starve whatever else the machine runs.
  run("nice", ["-n", "10", "cmake", "--build", build, "--target", TARGET, "--", `-j${availableParallelism()}`]);
  const archive = join(build, "faiss", ARCHIVE);
  if (!existsSync(archive)) throw new Error(`build_faiss: the build finished without ${archive}`);
  return archive;
}

/**
 * The AVX2 archive: from the cache, or built (minutes) and cached. The build happens in
 * faiss-<key>.tmp-<pid> and is renamed into place, so an interrupted build leaves no half cache.
 */
export function faissAvx2Archive(opts: { force?: boolean } = {}): string {
  const archive = cachedArchivePath();
  if (existsSync(archive) && !opts.force) return archive;
  const root = cacheRoot();
  const final = resolve(archive, "..", "..");
  const work = `${final}.tmp-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const started = performance.now();
  try {
    const src = fetchSource(root, work);
    const built = compile(src, join(work, "build"));
    const seconds = (performance.now() - started) / 1000;
    const out = join(work, "out");
    mkdirSync(join(out, "lib"), { recursive: true });
    copyFileSync(built, join(out, "lib", ARCHIVE));
    writeFileSync(join(out, "build.json"), JSON.stringify({
      source: FAISS_SOURCE, cmake: CMAKE_FLAGS, target: TARGET, compiler: compilerVersion(),
      seconds: Math.round(seconds), builtAt: new Date().toISOString(),
    }, null, 2) + "\n");
    rmSync(final, { recursive: true, force: true });
    renameSync(out, final);
    console.log(`build_faiss: built ${archive} (${(statSync(archive).size / 2 ** 20).toFixed(1)} MiB) in ${seconds.toFixed(0)} s`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  // Older keys (another compiler or flags) are left alone: another checkout may still use them.
  const others = readdirSync(root).filter((n) => n.startsWith("faiss-") && join(root, n) !== final && !n.includes(".tmp-"));
  if (others.length) console.log(`build_faiss: other FAISS builds in ${root}: ${others.join(", ")} (remove them if unused)`);
  return archive;
}

if (import.meta.main) {
  const force = process.argv.includes("--force");
  const started = performance.now();
  const archive = faissAvx2Archive({ force });
  console.log(`${archive} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
