/**
 * The two variants of our FAISS library (GENERIC: Debian's libfaiss.a; AVX2: FAISS_OPT_LEVEL=avx2,
 * tasks/build_faiss.ts): the CPU probe (native/cpu_features.c) against /proc/cpuinfo, the choice from
 * the CPU's features and AUTOFAISS_FAISS_VARIANT, the order of the paths tried, and, in child
 * processes (a process opens one library) with the permissions a user gives the CLI (deno.json's
 * `autofaiss` task under Deno), that each variant loads, says which it is in --version and finds the
 * same exact neighbours, and that a GENERIC fallback is said on stderr.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  AVX2_CPU_FLAGS,
  chooseVariant,
  cpuinfoFlags,
  detectCpu,
  libraryCandidates,
  localBuildPath,
  localProbePath,
  probeFlags,
  registerEmbeddedLibrary,
} from "../ffi/library.ts";
import { currentRuntime } from "../ffi/runtime.ts";
import { hostAvx2Flags } from "./helpers/cpu.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const HOST_CPU = chooseVariant({ flags: hostAvx2Flags() });
const DENO = (globalThis as { Deno?: unknown }).Deno !== undefined;

/** A /proc/cpuinfo of two cores with the given flags (the shape Linux prints). */
function cpuinfo(flags: string): string {
  return [0, 1].map((i) =>
    `processor\t: ${i}\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\nflags\t\t: ${flags}\nbugs\t\t: spectre_v1\n`
  ).join("\n");
}
const HASWELL = "fpu vme de pse tsc msr pae mce cx8 sse sse2 ssse3 fma cx16 sse4_1 sse4_2 popcnt aes avx f16c rdrand avx2 bmi2";
const SANDY_BRIDGE = "fpu vme de pse tsc msr pae mce cx8 sse sse2 ssse3 cx16 sse4_1 sse4_2 popcnt aes avx";

describe("cpuinfoFlags and probeFlags", () => {
  test("cpuinfoFlags: the first flags line, split on whitespace", () => {
    assert.deepEqual(cpuinfoFlags(cpuinfo("fpu  sse2\tavx2 ")), ["fpu", "sse2", "avx2"]);
  });

  test("cpuinfoFlags: no flags line is an error", () => {
    assert.throws(() => cpuinfoFlags("processor\t: 0\n"), { message: "/proc/cpuinfo has no flags line" });
  });

  test("probeFlags: bit i is AVX2_CPU_FLAGS[i]", () => {
    assert.deepEqual(probeFlags(0), []);
    assert.deepEqual(probeFlags(0b1111), ["avx2", "fma", "f16c", "popcnt"]);
    assert.deepEqual(probeFlags(0b1011), ["avx2", "fma", "popcnt"]);
    assert.deepEqual(probeFlags(0b0100), ["f16c"]);
    assert.deepEqual(probeFlags(0b10000), [], "bits above 3 are not flags");
  });
});

describe("the CPU probe (native/build/libautofaiss_cpu.so)", () => {
  test("in this process (under Deno: the test permissions, no --allow-all), it answers what /proc/cpuinfo lists", () => {
    assert.ok(existsSync(localProbePath()), "bun tasks/build_native.ts builds native/build/libautofaiss_cpu.so");
    // No `note`: the answer came from the probe, not from the /proc/cpuinfo fallback.
    assert.deepEqual(detectCpu(currentRuntime()), { flags: hostAvx2Flags() });
  });
});

const HASWELL_FLAGS = cpuinfoFlags(cpuinfo(HASWELL));
const UNKNOWN = { unknown: "CPU probe /x/libautofaiss_cpu.so: not found; /proc/cpuinfo: denied" };

describe("chooseVariant", () => {
  type Expected = { variant: string; reason: string; forced: boolean; warning?: string };
  const cases: Array<[string, Parameters<typeof chooseVariant>[0], string | undefined, Expected]> = [
    ["an AVX2 CPU", { flags: HASWELL_FLAGS }, undefined, { variant: "avx2", reason: "CPU has avx2, fma, f16c, popcnt", forced: false }],
    ["an AVX-only CPU", { flags: cpuinfoFlags(cpuinfo(SANDY_BRIDGE)) }, undefined,
      { variant: "generic", reason: "CPU lacks avx2, fma, f16c", forced: false }],
    ["avx2 without fma", { flags: cpuinfoFlags(cpuinfo(HASWELL.replace(" fma", ""))) }, undefined,
      { variant: "generic", reason: "CPU lacks fma", forced: false }],
    ["a flag that only prefixes another (avx2 vs avx2_x)", { flags: cpuinfoFlags(cpuinfo(HASWELL.replace(" avx2", " avx2_x"))) }, undefined,
      { variant: "generic", reason: "CPU lacks avx2", forced: false }],
    ["the probe's answer (the four flags only)", { flags: probeFlags(0b1111) }, undefined,
      { variant: "avx2", reason: "CPU has avx2, fma, f16c, popcnt", forced: false }],
    ["flags from the /proc/cpuinfo fallback say so", { flags: HASWELL_FLAGS, note: "from /proc/cpuinfo; CPU probe /x: not found" }, undefined,
      { variant: "avx2", reason: "CPU has avx2, fma, f16c, popcnt (from /proc/cpuinfo; CPU probe /x: not found)", forced: false }],
    ["unknown features: GENERIC, with a warning naming why", UNKNOWN, undefined, {
      variant: "generic",
      reason: `CPU features unknown: ${UNKNOWN.unknown}`,
      forced: false,
      warning: "faiss library: using the GENERIC variant: cannot tell whether this CPU has avx2, fma, f16c, popcnt " +
        `(${UNKNOWN.unknown}); AUTOFAISS_FAISS_VARIANT=avx2 loads the faster AVX2 variant on a CPU that has them`,
    }],
    ["unknown features, avx2 forced: the user's call, no warning", UNKNOWN, "avx2",
      { variant: "avx2", reason: `AUTOFAISS_FAISS_VARIANT=avx2; CPU features unknown: ${UNKNOWN.unknown}`, forced: true }],
    ["unknown features, generic forced: no warning", UNKNOWN, "generic",
      { variant: "generic", reason: "AUTOFAISS_FAISS_VARIANT=generic", forced: true }],
    ["an empty AUTOFAISS_FAISS_VARIANT", { flags: HASWELL_FLAGS }, "", { variant: "avx2", reason: "CPU has avx2, fma, f16c, popcnt", forced: false }],
    ["generic forced on an AVX2 CPU", { flags: HASWELL_FLAGS }, "generic",
      { variant: "generic", reason: "AUTOFAISS_FAISS_VARIANT=generic", forced: true }],
    ["avx2 forced on an AVX2 CPU", { flags: HASWELL_FLAGS }, "avx2",
      { variant: "avx2", reason: "AUTOFAISS_FAISS_VARIANT=avx2; CPU has avx2, fma, f16c, popcnt", forced: true }],
  ];
  for (const [name, cpu, requested, expected] of cases) {
    test(name, () => assert.deepEqual(chooseVariant(cpu, requested), expected));
  }

  test("avx2 forced on a CPU without it is an error, not a SIGILL later", () => {
    assert.throws(() => chooseVariant({ flags: cpuinfoFlags(cpuinfo(SANDY_BRIDGE)) }, "avx2"), {
      message: "faiss library: AUTOFAISS_FAISS_VARIANT=avx2, but CPU lacks avx2, fma, f16c (expected unset or generic on this CPU)",
    });
  });

  test("an unknown AUTOFAISS_FAISS_VARIANT is an error", () => {
    assert.throws(() => chooseVariant({ flags: HASWELL_FLAGS }, "AVX512"), {
      message: 'faiss library: AUTOFAISS_FAISS_VARIANT is "AVX512" (expected generic or avx2)',
    });
  });

  test("the flags are FAISS's faiss_avx2 compile flags (-mavx2 -mfma -mf16c -mpopcnt)", () => {
    assert.deepEqual([...AVX2_CPU_FLAGS], ["avx2", "fma", "f16c", "popcnt"]);
  });
});

describe("libraryCandidates", () => {
  const avx2 = chooseVariant({ flags: HASWELL_FLAGS });
  const generic = chooseVariant({ flags: cpuinfoFlags(cpuinfo(SANDY_BRIDGE)) });
  const forcedAvx2 = chooseVariant({ flags: HASWELL_FLAGS }, "avx2");
  const local = { source: "local", path: localBuildPath("generic"), variant: "generic" };
  const localAvx2 = { source: "local", path: localBuildPath("avx2"), variant: "avx2" };

  test("the local builds are native/build/libfaiss_c.so and libfaiss_c_avx2.so", () => {
    assert.equal(localBuildPath(), join(ROOT, "native/build/libfaiss_c.so"));
    assert.equal(localBuildPath("avx2"), join(ROOT, "native/build/libfaiss_c_avx2.so"));
  });

  test("the CPU probe is built next to them: native/build/libautofaiss_cpu.so", () => {
    assert.equal(localProbePath(), join(ROOT, "native/build/libautofaiss_cpu.so"));
  });

  test("AVX2 CPU: AVX2 first, GENERIC as the fallback", () => {
    assert.deepEqual(libraryCandidates({}, avx2), [localAvx2, local]);
  });

  test("AUTOFAISS_FAISS_LIB is the only candidate, with or without a variant chosen", () => {
    assert.deepEqual(libraryCandidates({ AUTOFAISS_FAISS_LIB: "/x/libfaiss_c.so" }, avx2), [{ source: "env", path: "/x/libfaiss_c.so" }]);
    assert.deepEqual(libraryCandidates({ AUTOFAISS_FAISS_LIB: "/x/libfaiss_c.so" }, undefined), [{ source: "env", path: "/x/libfaiss_c.so" }]);
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

/**
 * The permissions a user gives the CLI under Deno: the flags of deno.json's `autofaiss` task
 * (`deno task autofaiss …`), read from there so this test follows them.
 */
const CLI_DENO_FLAGS: string[] = (() => {
  const task: string = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")).tasks.autofaiss;
  return task.split(/\s+/).filter((t) => t.startsWith("--allow-"));
})();

const CHILD_DIR = join(ROOT, ".cache", `faiss-variant-test-${process.pid}`);
let childCount = 0;
after(() => rmSync(CHILD_DIR, { recursive: true, force: true }));

/**
 * Runs `code` (a module body; "@/" in it is the repository root) on this test's runtime in a child
 * process with `env` added: `bun <file>`, or `deno run <CLI_DENO_FLAGS> <file>`, so that under Deno
 * the child has exactly the CLI's permissions (no --allow-all, which `deno eval` would give).
 */
function child(code: string, env: Record<string, string>) {
  mkdirSync(CHILD_DIR, { recursive: true });
  const file = join(CHILD_DIR, `child-${++childCount}.ts`);
  writeFileSync(file, code.replaceAll("@/", ROOT));
  const [cmd, pre] = DENO
    ? [join(ROOT, "node_modules/.bin/deno"), ["run", ...CLI_DENO_FLAGS]]
    : [join(ROOT, "node_modules/.bin/bun"), []];
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "AUTOFAISS_FAISS_LIB" && k !== "AUTOFAISS_FAISS_VARIANT"));
  try {
    const r = spawnSync(cmd, [...pre, file], { cwd: ROOT, env: { ...clean, ...env }, encoding: "utf8", timeout: 300_000 });
    return { status: r.status ?? r.signal, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(file, { force: true });
  }
}

const VERSION_CODE = `
import { faissVersionLines } from "@/lib/cli/version.ts";
console.log((await faissVersionLines()).join("\\n"));`;

// Exact neighbours through each variant: 200 points in 16-d, each its own nearest neighbour, plus
// the 5 nearest of 20 queries; the two variants must agree label for label.
const SEARCH_CODE = `
import { Index } from "@/ffi/faiss.ts";
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

  test("`autofaiss --version` as a user runs it (deno task autofaiss's permissions): the probe decides, nothing on stderr", () => {
    const [cmd, pre] = DENO
      ? [join(ROOT, "node_modules/.bin/deno"), ["run", ...CLI_DENO_FLAGS]]
      : [join(ROOT, "node_modules/.bin/bun"), []];
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("AUTOFAISS_FAISS_")));
    const r = spawnSync(cmd, [...pre, "main.ts", "--version"], { cwd: ROOT, env: clean, encoding: "utf8", timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "");
    const lines = r.stdout.trimEnd().split("\n");
    assert.equal(lines[1], `faiss 1.7.3 (local: ${localBuildPath(HOST_CPU.variant)})`);
    // The reason has no "(from /proc/cpuinfo; …)" note: the probe answered.
    assert.equal(lines[3], `faiss variant: ${HOST_CPU.variant.toUpperCase()} (${HOST_CPU.reason})`);
  });

  // The probe missing (as in a stale native/build): Bun reads /proc/cpuinfo instead; Deno, with the
  // CLI's permissions, may not (it wants --allow-all for /proc), so it loads GENERIC and says why.
  test("no CPU probe: the /proc/cpuinfo fallback under Bun; under Deno's CLI permissions GENERIC with one warning", () => {
    const probe = "/nonexistent/libautofaiss_cpu.so";
    const r = child(`
      import { faissLibrary, localBuildPath, registerEmbeddedLibrary } from "@/ffi/library.ts";
      registerEmbeddedLibrary(localBuildPath("generic"), { avx2: localBuildPath("avx2"), cpu: ${JSON.stringify(probe)} });
      const lib = faissLibrary();
      faissLibrary();
      console.log(JSON.stringify([lib.variant, lib.reason]));`, {});
    assert.equal(r.status, 0, r.stderr);
    if (DENO) {
      // Deno 2.9's refusal, word for word.
      const unknown = `CPU probe ${probe}: not found; /proc/cpuinfo: Requires all access to "/proc/cpuinfo", run again with the --allow-all flag`;
      assert.deepEqual(JSON.parse(r.stdout), ["generic", `CPU features unknown: ${unknown}`]);
      assert.equal(
        r.stderr,
        `autofaiss: warning: faiss library: using the GENERIC variant: cannot tell whether this CPU has avx2, fma, f16c, popcnt (${unknown}); ` +
          "AUTOFAISS_FAISS_VARIANT=avx2 loads the faster AVX2 variant on a CPU that has them\n",
      );
    } else {
      const reason = HOST_CPU.reason + ` (from /proc/cpuinfo; CPU probe ${probe}: not found)`;
      assert.deepEqual(JSON.parse(r.stdout), [HOST_CPU.variant, reason]);
      assert.equal(r.stderr, "");
    }
  });

  test("an AVX2 library that cannot load on an AVX2 CPU: the GENERIC one loads, and stderr says why", (t) => {
    if (HOST_CPU.variant !== "avx2") return t.skip(`this CPU does not pick the AVX2 variant (${HOST_CPU.reason})`);
    // As the compiled binary registers its libraries, with the AVX2 one missing.
    const r = child(`
      import { faissLibrary, localBuildPath, registerEmbeddedLibrary } from "@/ffi/library.ts";
      registerEmbeddedLibrary(localBuildPath("generic"), { avx2: "/nonexistent/libfaiss_c_avx2.so" });
      const lib = faissLibrary();
      console.log(JSON.stringify([lib.source, lib.path, lib.variant, lib.reason]));`, {});
    assert.equal(r.status, 0, r.stderr);
    const reason = `${HOST_CPU.reason}, but /nonexistent/libfaiss_c_avx2.so (embedded): not found`;
    assert.deepEqual(JSON.parse(r.stdout), ["embedded", localBuildPath("generic"), "generic", reason]);
    assert.equal(r.stderr, `autofaiss: warning: faiss library: using the GENERIC variant: ${reason}\n`);
  });

  test("the loaded library owns the libraries preloaded for it: kept when the embedded library loads, none for a local one", () => {
    // As the compiled binary registers them: libgomp.so.1 (here the system's, which the library needs) first.
    const gomp = /libgomp\.so\.1 => (\S+)/.exec(spawnSync("ldd", [localBuildPath("generic")], { encoding: "utf8" }).stdout)?.[1];
    assert.ok(gomp, "ldd names the libgomp.so.1 of native/build/libfaiss_c.so");
    const preload = JSON.stringify([{ path: gomp, symbol: "omp_get_max_threads" }]);
    const report = `console.log(JSON.stringify([lib.source, lib.path, lib.preloaded.map((p) => p.path)]));`;
    let r = child(`
      import { faissLibrary, localBuildPath, registerEmbeddedLibrary } from "@/ffi/library.ts";
      registerEmbeddedLibrary(localBuildPath("generic"), { preload: ${preload} });
      const lib = faissLibrary();
      ${report}`, { AUTOFAISS_FAISS_VARIANT: "generic" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), ["embedded", localBuildPath("generic"), [gomp]]);
    // An embedded file that is not the FAISS library (the CPU probe lacks its symbols): the local
    // build loads, and the libraries preloaded for the embedded one are not kept.
    r = child(`
      import { faissLibrary, localBuildPath, localProbePath, registerEmbeddedLibrary } from "@/ffi/library.ts";
      registerEmbeddedLibrary(localProbePath(), { preload: ${preload} });
      const lib = faissLibrary();
      ${report}`, { AUTOFAISS_FAISS_VARIANT: "generic" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), ["local", localBuildPath("generic"), []]);
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
