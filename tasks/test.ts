/**
 * Runs every test: the native C test, then the same node:test files under Bun and under Deno.
 *   bun tasks/test.ts [--bun-only|--deno-only] [files...]
 */
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import process from "node:process";

const root = resolve(import.meta.dirname ?? ".", "..");
const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith("--"));
const only = args.find((a) => a === "--bun-only" || a === "--deno-only");

// Bun's default 5 s per-test timeout kills FAISS training tests (a synchronous FFI call cannot be
// interrupted, and child processes are SIGTERMed): allow 10 minutes.
const BUN_TEST = ["test", "--timeout=600000", ...(files.length ? files : ["tests/"])];
const DENO_TEST = [
  "test", "--allow-read", "--allow-write", "--allow-env", "--allow-ffi", "--allow-run", "--allow-sys", "--allow-net",
  ...(files.length ? files : ["tests/"]),
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
console.log(`\nall tests passed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
