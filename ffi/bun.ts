/**
 * bun:ffi adapter. `bun:ffi` is loaded with require() inside open(), not a static import, so Deno
 * can load this module's graph (it cannot resolve `bun:ffi`); Bun's bundler still embeds it.
 */
import type { ArgType, ResultType, SymbolSpec } from "./symbols.ts";
import type { FfiRuntime, NativeFn, OpenedLibrary, PreloadedLibrary } from "./runtime.ts";
import { partitionSymbols } from "./runtime.ts";

declare const require: (id: string) => any;

const ARG: Record<ArgType, string> = {
  i32: "i32",
  i64: "i64",
  u64: "u64",
  f64: "f64",
  handle: "u64", // pointers travel as bigint addresses (same ABI as a pointer on 64-bit targets)
  buffer: "ptr", // Bun passes a TypedArray's data pointer
};
const RET: Record<ResultType, string> = {
  void: "void",
  i32: "i32",
  i64: "i64",
  u64: "u64",
  handle: "u64",
  cstring: "ptr",
};

function toBunSpec(spec: SymbolSpec) {
  return { args: spec.args.map((a) => ARG[a]), returns: RET[spec.returns] };
}

export const bunRuntime: FfiRuntime = {
  name: "bun",
  open(path: string, symbols: Readonly<Record<string, SymbolSpec>>): OpenedLibrary {
    const ffi = require("bun:ffi");
    const { required, optional } = partitionSymbols(symbols);
    const table: Record<string, ReturnType<typeof toBunSpec>> = {};
    for (const name of required) table[name] = toBunSpec(symbols[name]);
    const fns: Record<string, NativeFn> = {};
    const lib = ffi.dlopen(path, table);
    const missing: string[] = [];
    // bun:ffi has no optional symbols: probe each one on its own handle (dlopen is refcounted).
    for (const name of optional) {
      try {
        const one = ffi.dlopen(path, { [name]: toBunSpec(symbols[name]) });
        fns[name] = normalize(ffi, symbols[name].returns, one.symbols[name]);
      } catch {
        missing.push(name);
      }
    }
    for (const name of required) fns[name] = normalize(ffi, symbols[name].returns, lib.symbols[name]);
    return { path, fns, missing };
  },
  preload(path: string, probe: string): PreloadedLibrary {
    const ffi = require("bun:ffi");
    // An embedded path (/$bunfs/…) is extracted by Bun to $TMPDIR/.bun-<uid>-<hash>.so and opened
    // from there; the loader then knows it by its SONAME.
    const lib = ffi.dlopen(path, { [probe]: { args: [], returns: "void" } });
    let open = true;
    return {
      path,
      close() {
        if (open) lib.close();
        open = false;
      },
    };
  },
};

function normalize(ffi: any, returns: ResultType, fn: (...a: unknown[]) => unknown): NativeFn {
  switch (returns) {
    case "i64":
    case "u64":
      return (...a) => Number(fn(...a));
    case "handle":
      return (...a) => BigInt(fn(...a) as bigint);
    case "cstring":
      return (...a) => {
        const p = fn(...a) as number | null;
        return p ? new ffi.CString(p).toString() : null;
      };
    default:
      return fn;
  }
}
