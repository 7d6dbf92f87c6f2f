/**
 * The layout's one-way rule, enforced: each folder of lib/ imports only the folders below it.
 *   cli → commands → measure → output → io, plan;  shared top-level modules (lib/*.ts) import no folder.
 * ffi/ imports nothing from lib/. A new import that points upward fails here, naming file and line.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** For each area, the areas it must not import. */
const FORBIDDEN: Record<string, readonly string[]> = {
  "lib/plan": ["lib/io", "lib/output", "lib/measure", "lib/commands", "lib/cli", "ffi"],
  "lib/io": ["lib/plan", "lib/output", "lib/measure", "lib/commands", "lib/cli", "ffi"],
  "lib/output": ["lib/measure", "lib/commands", "lib/cli"],
  "lib/measure": ["lib/commands", "lib/cli"],
  "lib/commands": ["lib/cli"],
  "lib/cli": [],
  "lib/shared": ["lib/plan", "lib/io", "lib/output", "lib/measure", "lib/commands", "lib/cli", "ffi"],
  "ffi": ["lib"],
};

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

/** The area of a repository path: `lib/<folder>`, `lib/shared` for lib/*.ts, `ffi`, or null. */
function areaOf(path: string): string | null {
  const parts = relative(ROOT, path).split("/");
  if (parts[0] === "ffi") return "ffi";
  if (parts[0] !== "lib") return null;
  return parts.length === 2 ? "lib/shared" : `lib/${parts[1]}`;
}

/** Relative import specifiers of a module (static, re-exports, dynamic), with their line numbers. */
function relativeImports(source: string): Array<{ spec: string; line: number }> {
  const out: Array<{ spec: string; line: number }> = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm;
  for (const m of source.matchAll(re)) out.push({ spec: m[1], line: source.slice(0, m.index).split("\n").length });
  return out;
}

/** Every import that breaks {@link FORBIDDEN}, as "file:line imports target". */
function layeringViolations(files: readonly string[], read: (path: string) => string): string[] {
  const violations: string[] = [];
  for (const file of files) {
    const from = areaOf(file);
    if (from === null) continue;
    for (const { spec, line } of relativeImports(read(file))) {
      const target = resolve(dirname(file), spec);
      const to = relative(ROOT, target);
      if (FORBIDDEN[from].some((area) => to === area || to.startsWith(area + "/") || (area === "lib" && to.startsWith("lib/")))) {
        violations.push(`${relative(ROOT, file)}:${line} imports ${to}`);
      }
    }
  }
  return violations;
}

describe("layout: lower folders never import higher ones", () => {
  const files = [...tsFiles(join(ROOT, "lib")), ...tsFiles(join(ROOT, "ffi"))];

  test("every lib/ folder is a known area", () => {
    const folders = readdirSync(join(ROOT, "lib")).filter((n) => statSync(join(ROOT, "lib", n)).isDirectory()).sort();
    assert.deepEqual(folders, ["cli", "commands", "io", "measure", "output", "plan"]);
  });

  test("no module imports upward", () => {
    assert.deepEqual(layeringViolations(files, (p) => readFileSync(p, "utf8")), []);
  });

  test("the check catches an upward import, static or dynamic", () => {
    const fake = (path: string) => join(ROOT, path);
    const sources: Record<string, string> = {
      [fake("lib/plan/x.ts")]: 'import { a } from "./units.ts";\nimport type { B } from "../cli/commands.ts";\n',
      [fake("lib/measure/y.ts")]: 'const m = await import("../commands/build_index.ts");\n',
      [fake("lib/io/z.ts")]: 'export { c } from "../output/python_json.ts";\n',
      [fake("lib/log.ts")]: 'import { d } from "./plan/units.ts";\n',
      [fake("ffi/w.ts")]: 'import { e } from "../lib/io/float.ts";\n',
      [fake("lib/commands/ok.ts")]: 'import { f } from "../measure/fast_metrics.ts";\nimport { g } from "../../ffi/faiss.ts";\n',
    };
    assert.deepEqual(layeringViolations(Object.keys(sources), (p) => sources[p]), [
      "lib/plan/x.ts:2 imports lib/cli/commands.ts",
      "lib/measure/y.ts:1 imports lib/commands/build_index.ts",
      "lib/io/z.ts:1 imports lib/output/python_json.ts",
      "lib/log.ts:1 imports lib/plan/units.ts",
      "ffi/w.ts:1 imports lib/io/float.ts",
    ]);
  });
});
