/**
 * The seam between the FAISS wrappers and the JavaScript runtime's FFI. Only ffi/bun.ts and
 * ffi/deno.ts implement it; only `currentRuntime()` picks one.
 */
import type { SymbolSpec } from "./symbols.ts";
import { bunRuntime } from "./bun.ts";
import { denoRuntime } from "./deno.ts";

/** A native function with normalized values: handles are bigint, i64/u64 are number, cstring is string|null. */
export type NativeFn = (...args: unknown[]) => unknown;

export interface OpenedLibrary {
  readonly path: string;
  /** Every required symbol, and the optional ones the library has. */
  readonly fns: Readonly<Record<string, NativeFn>>;
  /** Optional symbols the library lacks. */
  readonly missing: readonly string[];
}

/** A library opened by {@link FfiRuntime.preload}: it stays loaded while this handle is open. */
export interface PreloadedLibrary {
  readonly path: string;
  /** dlclose; idempotent. */
  close(): void;
}

export interface FfiRuntime {
  readonly name: "bun" | "deno";
  /** dlopen `path` and bind `symbols`; throws if a required symbol is absent. */
  open(path: string, symbols: Readonly<Record<string, SymbolSpec>>): OpenedLibrary;
  /**
   * dlopen `path` and keep it loaded until the returned handle is closed, so that a library opened
   * later whose DT_NEEDED names this one's SONAME (e.g. libgomp.so.1) is bound to it instead of being
   * searched for on the system. `probe` is one symbol the library exports: bun:ffi (1.4) refuses an
   * empty symbol table, and binding it proves the file is the expected library. The caller owns the
   * handle (ffi/library.ts keeps it in the loaded library).
   */
  preload(path: string, probe: string): PreloadedLibrary;
}

export function currentRuntime(): FfiRuntime {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return bunRuntime;
  if (g.Deno !== undefined) return denoRuntime;
  throw new Error("ffi: unsupported runtime: autofaiss runs on Bun or Deno (Node.js has no built-in FFI)");
}

/** Splits a table into required and optional names (shared by both adapters). */
export function partitionSymbols(symbols: Readonly<Record<string, SymbolSpec>>): {
  required: string[];
  optional: string[];
} {
  const required: string[] = [];
  const optional: string[] = [];
  for (const [name, spec] of Object.entries(symbols)) (spec.optional ? optional : required).push(name);
  return { required, optional };
}
