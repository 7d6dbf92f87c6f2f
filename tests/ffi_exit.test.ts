/**
 * A process that used FAISS's OpenMP threads exits cleanly. Deno 2.9 dlcloses FFI libraries at exit,
 * which unmapped libgomp under its idle workers (SIGSEGV, exit 139, in 10 runs out of 10 after a
 * training) until ffi/deno.ts pinned the library with RTLD_NODELETE.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SCRIPT = "tests/fixtures/ffi/train_and_exit.ts";

for (
  const [runtime, argv] of [
    ["deno", ["run", "--allow-read", "--allow-env", "--allow-ffi", SCRIPT]],
    ["bun", [SCRIPT]],
  ] as const
) {
  test(`${runtime}: exit code 0 after training (3 runs)`, () => {
    for (let run = 0; run < 3; run++) {
      const r = spawnSync(`${ROOT}node_modules/.bin/${runtime}`, [...argv], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
      assert.deepEqual([r.status, r.signal, r.stdout], [0, null, "trained true\n"], r.stderr);
    }
  });
}
