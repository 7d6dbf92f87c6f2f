/**
 * The native C test (native/test_capi.c) must call every entry point our library exports: a new
 * faiss_* / autofaiss_* function without a C test shows up here, not in production.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { localBuildPath } from "../ffi/library.ts";
import { SYMBOLS } from "../ffi/symbols.ts";
import { GPU_SYMBOLS } from "../ffi/faiss.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** `nm -D --defined-only` of the built library: the names of its exported functions. */
function exportedFunctions(path: string): string[] {
  const out = execFileSync("nm", ["-D", "--defined-only", path], { encoding: "utf8" });
  return out.split("\n").map((l) => l.trim().split(/\s+/)).filter((f) => f[1] === "T").map((f) => f[2]).sort();
}

/** Identifiers followed by `(` in C source, comments removed. */
function calledNames(source: string): Set<string> {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  return new Set(Array.from(code.matchAll(/\b([A-Za-z_]\w*)\s*\(/g), (m) => m[1]));
}

describe("native exports", () => {
  const exported = exportedFunctions(localBuildPath());
  const cTest = calledNames(readFileSync(`${ROOT}native/test_capi.c`, "utf8"));

  test("the library exports only faiss_* and autofaiss_* functions, and at least the known ones", () => {
    assert.deepEqual(exported.filter((n) => !/^(faiss|autofaiss)_/.test(n)), []);
    assert.ok(exported.includes("autofaiss_set_polysemous_training"));
    assert.ok(exported.includes("faiss_get_last_error"));
  });

  test("the C test calls every exported function", () => {
    assert.deepEqual(exported.filter((n) => !cTest.has(n)), []);
  });

  test("every CPU symbol of the JS table is exported (the GPU ones are upstream-only)", () => {
    const gpu = new Set<string>(GPU_SYMBOLS);
    assert.deepEqual(Object.keys(SYMBOLS).filter((n) => !gpu.has(n) && !exported.includes(n)), []);
  });

  test("the parser sees a call it should and skips one in a comment", () => {
    assert.deepEqual([...calledNames("x = f (1); /* g(2) */ // h(3)\n")], ["f"]);
  });
});
