/**
 * Builds native/build/libfaiss_c.so: our FAISS C API subset (native/faiss_c.cpp) linked against
 * Debian's static libfaiss.a and static OpenBLAS, so the library needs only glibc and libgomp.
 * Then compiles and runs the C test (native/test_capi.c) against it unless --no-test is given.
 *
 *   bun tasks/build_native.ts [--blas=openmp|pthread] [--out=native/build/libfaiss_c.so] [--no-test]
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

const root = resolve(import.meta.dirname ?? ".", "..");
const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, "").split("=");
    return [k, v ?? "true"];
  }),
);
const blas = args.blas ?? "openmp";
const out = resolve(root, args.out ?? "native/build/libfaiss_c.so");
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

function requireFile(path: string, hint: string): void {
  if (!existsSync(path)) throw new Error(`build_native: missing ${path} (${hint})`);
}

requireFile(`${libdir}/libfaiss.a`, "apt-get install libfaiss-dev");
requireFile("/usr/include/faiss/c_api/Index_c.h", "apt-get install libfaiss-dev");
const blasArchive = BLAS_ARCHIVES[blas];
if (!blasArchive) throw new Error(`build_native: --blas must be openmp or pthread, got "${blas}"`);
requireFile(blasArchive, `apt-get install libopenblas-${blas}-dev`);

mkdirSync(dirname(out), { recursive: true });
run("g++", [
  ...FLAGS.optimize,
  ...(blas === "openmp" ? ["-DAUTOFAISS_BLAS_OPENMP"] : []),
  ...FLAGS.visibility,
  ...FLAGS.shared,
  "-o", out,
  join(root, "native/faiss_c.cpp"),
  `${libdir}/libfaiss.a`,
  blasArchive,
  ...FLAGS.staticRuntime,
  ...FLAGS.noUndefined,
]);
console.log(`built ${out} (${(statSync(out).size / 2 ** 20).toFixed(1)} MiB)`);
console.log(run("ldd", [out]).trimEnd());

if (args["no-test"] !== "true") {
  const testBin = join(dirname(out), "test_capi");
  run("gcc", [
    "-O1", "-Wall", "-Werror", "-std=c11",
    "-I", join(root, "native"),
    "-o", testBin, join(root, "native/test_capi.c"),
    out, `-Wl,-rpath,${dirname(out)}`,
  ]);
  process.stdout.write(run(testBin, []));
}
