/**
 * Builds our FAISS C API subset (native/faiss_c.cpp) in two variants, each linked against a static
 * FAISS and static OpenBLAS, so each needs only glibc and libgomp:
 *   native/build/libfaiss_c.so       GENERIC: Debian's libfaiss.a, runs on any x86-64 CPU;
 *   native/build/libfaiss_c_avx2.so  AVX2: the same FAISS source built with FAISS_OPT_LEVEL=avx2
 *                                    (tasks/build_faiss.ts, cached outside the repo; built on first use).
 * and, for the loader, the CPU probe:
 *   native/build/libautofaiss_cpu.so autofaiss_cpu_features() (native/cpu_features.c), no dependencies.
 * ffi/library.ts asks the probe, then loads the AVX2 one when the CPU has AVX2, FMA, F16C and POPCNT.
 * Then compiles the C test (native/test_capi.c) and runs it against each variant unless --no-test.
 *
 *   bun tasks/build_native.ts [--variant=both|generic|avx2] [--blas=openmp|pthread]
 *                             [--out=native/build/libfaiss_c.so] [--no-test]
 * --out names the GENERIC library; the AVX2 one is written next to it with an `_avx2` suffix.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { faissAvx2Archive } from "./build_faiss.ts";

const root = resolve(import.meta.dirname ?? ".", "..");
const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, "").split("=");
    return [k, v ?? "true"];
  }),
);
const blas = args.blas ?? "openmp";
const out = resolve(root, args.out ?? "native/build/libfaiss_c.so");
const variantArg = args.variant ?? "both";
if (!["both", "generic", "avx2"].includes(variantArg)) {
  throw new Error(`build_native: --variant must be both, generic or avx2, got "${variantArg}"`);
}
const libdir = "/usr/lib/x86_64-linux-gnu";

// The OpenMP OpenBLAS variant is the default: FAISS calls BLAS from inside its own OpenMP regions,
// and one shared thread pool avoids oversubscription (figures in native/README.md).
const BLAS_ARCHIVES: Record<string, string> = {
  openmp: `${libdir}/openblas-openmp/libopenblas.a`,
  pthread: `${libdir}/openblas-pthread/libopenblas.a`,
};

const FLAGS = {
  optimize: ["-O2", "-std=c++17", "-fPIC", "-fopenmp"],
  // Only faiss_* and autofaiss_* are exported (exports.map); everything else stays internal.
  visibility: ["-fvisibility=hidden", `-Wl,--version-script=${join(root, "native/exports.map")}`],
  shared: ["-shared"],
  // libstdc++/libgcc are linked in so the .so runs on a bare glibc system.
  staticRuntime: ["-static-libstdc++", "-static-libgcc"],
  // Fail at link time, not minutes into a build, if any symbol is unresolved (e.g. libgfortran's).
  noUndefined: ["-Wl,-z,defs", "-Wl,--exclude-libs,ALL", "-Wl,--gc-sections", "-Wl,-O1"],
};

function run(cmd: string, argv: string[]): string {
  console.log(`$ ${cmd} ${argv.join(" ")}`);
  return execFileSync(cmd, argv, { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
}

function runAsync(cmd: string, argv: string[]): Promise<void> {
  console.log(`$ ${cmd} ${argv.join(" ")}`);
  return new Promise((ok, fail) => {
    const child = spawn(cmd, argv, { stdio: ["ignore", "inherit", "inherit"] });
    child.on("error", fail);
    child.on("exit", (code, signal) =>
      code === 0 ? ok() : fail(new Error(`build_native: ${cmd} -o ${argv[argv.indexOf("-o") + 1]} failed (${signal ?? `exit ${code}`})`))
    );
  });
}

function requireFile(path: string, hint: string): void {
  if (!existsSync(path)) throw new Error(`build_native: missing ${path} (${hint})`);
}

requireFile(`${libdir}/libfaiss.a`, "apt-get install libfaiss-dev");
requireFile("/usr/include/faiss/c_api/Index_c.h", "apt-get install libfaiss-dev");
const blasArchive = BLAS_ARCHIVES[blas];
if (!blasArchive) throw new Error(`build_native: --blas must be openmp or pthread, got "${blas}"`);
requireFile(blasArchive, `apt-get install libopenblas-${blas}-dev`);

/** The CPU probe's path next to the GENERIC library (ffi/library.ts looks for it there). */
const cpuProbe = join(dirname(out), "libautofaiss_cpu.so");

/** The AVX2 library's path next to the GENERIC one: libfaiss_c.so → libfaiss_c_avx2.so. */
function avx2Path(generic: string): string {
  return generic.replace(/(\.so)?$/, "_avx2$1");
}

interface Variant {
  name: "generic" | "avx2";
  out: string;
  faissArchive: () => string;
  /** Extra compile flags for faiss_c.cpp: the AVX2 variant is compiled with FAISS's own AVX2 flags,
   * so FAISS's inline header code is compiled the same way on both sides of the link. */
  cxxflags: string[];
}

const VARIANTS: Variant[] = [
  { name: "generic", out, faissArchive: () => `${libdir}/libfaiss.a`, cxxflags: [] },
  { name: "avx2", out: avx2Path(out), faissArchive: () => faissAvx2Archive(), cxxflags: ["-mavx2", "-mfma", "-mf16c", "-mpopcnt"] },
].filter((v) => variantArg === "both" || v.name === variantArg) as Variant[];

mkdirSync(dirname(out), { recursive: true });
// The variants compile and link in parallel (one g++ per core): a cached tasks/setup.sh is mostly this.
const archives = VARIANTS.map((v) => v.faissArchive()); // may build FAISS first: before the parallel part
await Promise.all([
  // The probe runs before any FAISS library is chosen: plain C, no libc calls, libgcc's CPU model
  // linked in, so it loads anywhere (-z defs proves nothing is left to resolve).
  runAsync("gcc", [
    "-O2", "-Wall", "-Werror", "-std=c11", "-fPIC", "-fvisibility=hidden", ...FLAGS.shared,
    "-o", cpuProbe, join(root, "native/cpu_features.c"), "-static-libgcc", "-Wl,-z,defs",
  ]),
  ...VARIANTS.map((v, i) =>
    runAsync("g++", [
      ...FLAGS.optimize,
      ...v.cxxflags,
      ...(blas === "openmp" ? ["-DAUTOFAISS_BLAS_OPENMP"] : []),
      ...FLAGS.visibility,
      ...FLAGS.shared,
      "-o", v.out,
      join(root, "native/faiss_c.cpp"),
      join(root, "native/jobs.cpp"),
      archives[i],
      blasArchive,
      ...FLAGS.staticRuntime,
      ...FLAGS.noUndefined,
    ])
  ),
]);
console.log(`built CPU probe ${cpuProbe}`);
for (const v of VARIANTS) {
  console.log(`built ${v.name} ${v.out} (${(statSync(v.out).size / 2 ** 20).toFixed(1)} MiB)`);
  console.log(run("ldd", [v.out]).trimEnd());
}

if (args["no-test"] !== "true") {
  // The libraries have no SONAME, so a test binary linked against a library's path loads that very
  // file: one test binary per variant.
  for (const v of VARIANTS) {
    const testBin = join(dirname(v.out), `test_capi_${v.name}`);
    run("gcc", [
      "-O1", "-Wall", "-Werror", "-std=c11",
      "-I", join(root, "native"),
      "-o", testBin, join(root, "native/test_capi.c"),
      v.out, `-Wl,-rpath,${dirname(v.out)}`,
    ]);
    console.log(`C test against the ${v.name} library (${v.out}):`);
    process.stdout.write(run(testBin, []));
  }
}
