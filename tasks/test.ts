/**
 * Runs the tests in two lanes, each as the native C test, then the same node:test files under Bun
 * and under Deno:
 *   bun tasks/test.ts [--system] [--bun-only|--deno-only] [files...]
 * - default lane (`npm test`): every correctness test, i.e. every tests/*.test.ts except SYSTEM_TESTS;
 * - `--system` (`npm run test:system`): the slow system tests below, which depend on the machine
 *   (root, a debootstrap root, wall-clock latency, real training) more than on the code.
 * Files given explicitly run as given, whatever their lane.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";

/** The system lane. Each entry says why it is there. */
export const SYSTEM_TESTS = [
  "tests/compile_chroot.test.ts", // compiles the binary and runs it in a bare debootstrap root (root, minutes)
  "tests/tuning_real.test.ts", // the tuner on real FAISS indices, latencies re-measured against the bound
  "tests/size_estimate_real.test.ts", // trains real indices of each family to compare with the size model
];

const root = resolve(import.meta.dirname ?? ".", "..");
const args = process.argv.slice(2);
const explicit = args.filter((a) => !a.startsWith("--"));
const only = args.find((a) => a === "--bun-only" || a === "--deno-only");
const system = args.includes("--system");

const allTests = readdirSync(resolve(root, "tests")).filter((f) => f.endsWith(".test.ts")).map((f) => `tests/${f}`).sort();
for (const f of SYSTEM_TESTS) {
  if (!allTests.includes(f)) throw new Error(`test: SYSTEM_TESTS names ${f}, which does not exist`);
}
const files = explicit.length ? explicit : system ? SYSTEM_TESTS : allTests.filter((f) => !SYSTEM_TESTS.includes(f));

// Bun's default 5 s per-test timeout kills FAISS training tests (a synchronous FFI call cannot be
// interrupted, and child processes are SIGTERMed): allow 10 minutes. "./" makes Bun read each
// argument as a path, not as a name filter.
const BUN_TEST = ["test", "--timeout=600000", ...files.map((f) => `./${f}`)];
const DENO_TEST = [
  "test", "--allow-read", "--allow-write", "--allow-env", "--allow-ffi", "--allow-run", "--allow-sys", "--allow-net",
  ...files,
];

function run(cmd: string, argv: string[]): void {
  console.log(`\n$ ${cmd} ${argv.join(" ")}`);
  const r = spawnSync(cmd, argv, { cwd: root, stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`\ntest: "${cmd} ${argv[0]}" failed (${r.signal ?? `exit ${r.status}`})`);
    process.exit(r.status || 1);
  }
}

const started = Date.now();
run("node_modules/.bin/bun", ["tasks/build_native.ts"]); // rebuilds the library and runs the C test
if (only !== "--deno-only") run("node_modules/.bin/bun", BUN_TEST);
if (only !== "--bun-only") run("node_modules/.bin/deno", DENO_TEST);
console.log(`\n${system ? "system" : "all"} tests passed in ${((Date.now() - started) / 1000).toFixed(0)} s (${files.length} files)`);
