/**
 * The two variants of our FAISS library (GENERIC: Debian's libfaiss.a; AVX2: FAISS_OPT_LEVEL=avx2,
 * tasks/build_faiss.ts): the choice from /proc/cpuinfo and AUTOFAISS_FAISS_VARIANT, the order of the
 * paths tried, and, in child processes (a process opens one library), that each variant loads, says
 * which it is in --version and finds the same exact neighbours.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { AVX2_CPU_FLAGS, chooseVariant, libraryCandidates, localBuildPath, registerEmbeddedLibrary } from "../ffi/library.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const HOST_CPU = chooseVariant(readFileSync("/proc/cpuinfo", "utf8"));

/** A /proc/cpuinfo of two cores with the given flags (the shape Linux prints). */
function cpuinfo(flags: string): string {
  return [0, 1].map((i) =>
    `processor\t: ${i}\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\nflags\t\t: ${flags}\nbugs\t\t: spectre_v1\n`
  ).join("\n");
}
const HASWELL = "fpu vme de pse tsc msr pae mce cx8 sse sse2 ssse3 fma cx16 sse4_1 sse4_2 popcnt aes avx f16c rdrand avx2 bmi2";
const SANDY_BRIDGE = "fpu vme de pse tsc msr pae mce cx8 sse sse2 ssse3 cx16 sse4_1 sse4_2 popcnt aes avx";

describe("chooseVariant", () => {
  const cases: Array<[string, string | null, string | undefined, { variant: string; reason: string; forced: boolean }]> = [
    ["an AVX2 CPU", cpuinfo(HASWELL), undefined, { variant: "avx2", reason: "CPU has avx2, fma, f16c, popcnt", forced: false }],
    ["an AVX-only CPU", cpuinfo(SANDY_BRIDGE), undefined, { variant: "generic", reason: "CPU lacks avx2, fma, f16c", forced: false }],
    ["avx2 without fma", cpuinfo(HASWELL.replace(" fma", "")), undefined, { variant: "generic", reason: "CPU lacks fma", forced: false }],
    ["a flag that only prefixes another (avx2 vs avx2_x)", cpuinfo(HASWELL.replace(" avx2", " avx2_x")), undefined,
      { variant: "generic", reason: "CPU lacks avx2", forced: false }],
    ["no /proc/cpuinfo", null, undefined, { variant: "generic", reason: "/proc/cpuinfo could not be read", forced: false }],
    ["no flags line", "processor\t: 0\n", undefined, { variant: "generic", reason: "/proc/cpuinfo has no flags line", forced: false }],
    ["an empty AUTOFAISS_FAISS_VARIANT", cpuinfo(HASWELL), "", { variant: "avx2", reason: "CPU has avx2, fma, f16c, popcnt", forced: false }],
    ["generic forced on an AVX2 CPU", cpuinfo(HASWELL), "generic", { variant: "generic", reason: "AUTOFAISS_FAISS_VARIANT=generic", forced: true }],
    ["avx2 forced on an AVX2 CPU", cpuinfo(HASWELL), "avx2",
      { variant: "avx2", reason: "AUTOFAISS_FAISS_VARIANT=avx2; CPU has avx2, fma, f16c, popcnt", forced: true }],
  ];
  for (const [name, text, requested, expected] of cases) {
    test(name, () => assert.deepEqual(chooseVariant(text, requested), expected));
  }

  test("avx2 forced on a CPU without it is an error, not a SIGILL later", () => {
    assert.throws(() => chooseVariant(cpuinfo(SANDY_BRIDGE), "avx2"), {
      message: "faiss library: AUTOFAISS_FAISS_VARIANT=avx2, but CPU lacks avx2, fma, f16c (expected unset or generic on this CPU)",
    });
  });

  test("an unknown AUTOFAISS_FAISS_VARIANT is an error", () => {
    assert.throws(() => chooseVariant(cpuinfo(HASWELL), "AVX512"), {
      message: 'faiss library: AUTOFAISS_FAISS_VARIANT is "AVX512" (expected generic or avx2)',
    });
  });

  test("the flags are FAISS's faiss_avx2 compile flags (-mavx2 -mfma -mf16c -mpopcnt)", () => {
    assert.deepEqual([...AVX2_CPU_FLAGS], ["avx2", "fma", "f16c", "popcnt"]);
  });
});

describe("libraryCandidates", () => {
  const avx2 = chooseVariant(cpuinfo(HASWELL));
  const generic = chooseVariant(cpuinfo(SANDY_BRIDGE));
  const forcedAvx2 = chooseVariant(cpuinfo(HASWELL), "avx2");
  const local = { source: "local", path: localBuildPath("generic"), variant: "generic" };
  const localAvx2 = { source: "local", path: localBuildPath("avx2"), variant: "avx2" };

  test("the local builds are native/build/libfaiss_c.so and libfaiss_c_avx2.so", () => {
    assert.equal(localBuildPath(), join(ROOT, "native/build/libfaiss_c.so"));
    assert.equal(localBuildPath("avx2"), join(ROOT, "native/build/libfaiss_c_avx2.so"));
  });

  test("AVX2 CPU: AVX2 first, GENERIC as the fallback; AUTOFAISS_FAISS_LIB before both", () => {
    assert.deepEqual(libraryCandidates({}, avx2), [localAvx2, local]);
    assert.deepEqual(libraryCandidates({ AUTOFAISS_FAISS_LIB: "/x/libfaiss_c.so" }, avx2), [
      { source: "env", path: "/x/libfaiss_c.so" }, localAvx2, local,
    ]);
  });

  test("a CPU without AVX2 never tries the AVX2 library; a forced AVX2 has no fallback", () => {
    assert.deepEqual(libraryCandidates({}, generic), [local]);
    assert.deepEqual(libraryCandidates({}, forcedAvx2), [localAvx2]);
  });

  test("the compiled binary's embedded libraries come before the local builds", () => {
    const key = Symbol.for("autofaiss.embeddedFaissLibrary");
    const g = globalThis as Record<symbol, unknown>;
    const saved = g[key];
    try {
      registerEmbeddedLibrary("/$bunfs/root/libfaiss_c-1.so", { avx2: "/$bunfs/root/libfaiss_c_avx2-2.so" });
      assert.deepEqual(libraryCandidates({}, avx2), [
        { source: "embedded", path: "/$bunfs/root/libfaiss_c_avx2-2.so", variant: "avx2" },
        { source: "embedded", path: "/$bunfs/root/libfaiss_c-1.so", variant: "generic" },
        localAvx2, local,
      ]);
      assert.deepEqual(libraryCandidates({}, generic), [{ source: "embedded", path: "/$bunfs/root/libfaiss_c-1.so", variant: "generic" }, local]);
    } finally {
      g[key] = saved;
    }
  });
});

/** Runs `code` (a module body) on this test's runtime in a child process with `env` added. */
function child(code: string, env: Record<string, string>) {
  const deno = (globalThis as { Deno?: unknown }).Deno !== undefined;
  const [cmd, pre] = deno
    ? [join(ROOT, "node_modules/.bin/deno"), ["eval", "--ext=ts"]]
    : [join(ROOT, "node_modules/.bin/bun"), ["-e"]];
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "AUTOFAISS_FAISS_LIB" && k !== "AUTOFAISS_FAISS_VARIANT"));
  const r = spawnSync(cmd, [...pre, code], { cwd: ROOT, env: { ...clean, ...env }, encoding: "utf8", timeout: 300_000 });
  return { status: r.status ?? r.signal, stdout: r.stdout, stderr: r.stderr };
}

const VERSION_CODE = `
import { faissVersionLines } from "./lib/cli/version.ts";
console.log((await faissVersionLines()).join("\\n"));`;

// Exact neighbours through each variant: 200 points in 16-d, each its own nearest neighbour, plus
// the 5 nearest of 20 queries; the two variants must agree label for label.
const SEARCH_CODE = `
import { Index } from "./ffi/faiss.ts";
const n = 200, d = 16;
let s = 12345;
const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
const x = new Float32Array(n * d).map(() => rnd());
using index = Index.factory(d, "Flat", "l2");
index.add(x);
const { labels } = index.search(x.subarray(0, 20 * d), 5);
console.log(JSON.stringify(Array.from(labels, Number)));`;

describe("each variant in a child process", () => {
  for (const variant of ["generic", "avx2"] as const) {
    test(`AUTOFAISS_FAISS_VARIANT=${variant}: --version names it and its compile options`, (t) => {
      if (variant === "avx2" && HOST_CPU.variant !== "avx2") return t.skip(`this CPU cannot run the AVX2 variant (${HOST_CPU.reason})`);
      const r = child(VERSION_CODE, { AUTOFAISS_FAISS_VARIANT: variant });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, "");
      const suffix = variant === "avx2" ? "_avx2" : "";
      assert.deepEqual(r.stdout.trimEnd().split("\n"), [
        `faiss 1.7.3 (local: ${join(ROOT, `native/build/libfaiss_c${suffix}.so`)})`,
        `faiss compile options: OPTIMIZE ${variant.toUpperCase()}`,
        `faiss variant: ${variant.toUpperCase()} (AUTOFAISS_FAISS_VARIANT=${variant}${variant === "avx2" ? `; ${HOST_CPU.reason}` : ""})`,
        "faiss GPU support: no (faiss_index_cpu_to_gpu missing)",
      ]);
    });
  }

  test("without AUTOFAISS_FAISS_VARIANT the CPU decides", () => {
    const r = child(VERSION_CODE, {});
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^faiss variant: ${HOST_CPU.variant.toUpperCase()} \\(${HOST_CPU.reason}\\)$`, "m"));
  });

  test("an AVX2 library that cannot load on an AVX2 CPU: the GENERIC one loads, and stderr says why", (t) => {
    if (HOST_CPU.variant !== "avx2") return t.skip(`this CPU does not pick the AVX2 variant (${HOST_CPU.reason})`);
    // As the compiled binary registers its libraries, with the AVX2 one missing.
    const r = child(`
      import { faissLibrary, localBuildPath, registerEmbeddedLibrary } from "./ffi/library.ts";
      registerEmbeddedLibrary(localBuildPath("generic"), { avx2: "/nonexistent/libfaiss_c_avx2.so" });
      const lib = faissLibrary();
      console.log(JSON.stringify([lib.source, lib.path, lib.variant, lib.reason]));`, {});
    assert.equal(r.status, 0, r.stderr);
    const reason = `${HOST_CPU.reason}, but /nonexistent/libfaiss_c_avx2.so (embedded): not found`;
    assert.deepEqual(JSON.parse(r.stdout), ["embedded", localBuildPath("generic"), "generic", reason]);
    assert.equal(r.stderr, `faiss library: using the GENERIC variant: ${reason}\n`);
  });

  test("AUTOFAISS_FAISS_VARIANT=bogus: FAISS is unavailable, with the reason", () => {
    const r = child(VERSION_CODE, { AUTOFAISS_FAISS_VARIANT: "bogus" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'faiss: unavailable (faiss library: AUTOFAISS_FAISS_VARIANT is "bogus" (expected generic or avx2))\n');
  });

  test("both variants find the same exact neighbours", (t) => {
    if (HOST_CPU.variant !== "avx2") return t.skip(`this CPU cannot run the AVX2 variant (${HOST_CPU.reason})`);
    assert.ok(existsSync(localBuildPath("avx2")), "bun tasks/build_native.ts builds native/build/libfaiss_c_avx2.so");
    const results = (["generic", "avx2"] as const).map((v) => {
      const r = child(SEARCH_CODE, { AUTOFAISS_FAISS_VARIANT: v });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as number[];
    });
    // Each of the first 20 points is its own nearest neighbour.
    assert.deepEqual(Array.from({ length: 20 }, (_, i) => results[0][i * 5]), Array.from({ length: 20 }, (_, i) => i));
    assert.deepEqual(results[1], results[0]);
  });
});
