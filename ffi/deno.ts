/** Deno.dlopen adapter. `Deno` is reached through globalThis so Bun's type checker accepts this file. */
import type { ArgType, ResultType, SymbolSpec } from "./symbols.ts";
import type { FfiRuntime, NativeFn, OpenedLibrary, PreloadedLibrary } from "./runtime.ts";

const ARG: Record<ArgType, string> = {
  i32: "i32",
  i64: "i64",
  u64: "u64",
  f64: "f64",
  handle: "u64", // pointers travel as bigint addresses (same ABI as a pointer on 64-bit targets)
  buffer: "buffer", // Deno passes a TypedArray's data pointer
};
const RET: Record<ResultType, string> = {
  void: "void",
  i32: "i32",
  i64: "i64",
  u64: "u64",
  handle: "u64",
  cstring: "pointer",
};

export const denoRuntime: FfiRuntime = {
  name: "deno",
  open(path: string, symbols: Readonly<Record<string, SymbolSpec>>): OpenedLibrary {
    const Deno = (globalThis as any).Deno;
    const table: Record<string, unknown> = {};
    for (const [name, spec] of Object.entries(symbols)) {
      table[name] = {
        parameters: spec.args.map((a) => ARG[a]),
        result: RET[spec.returns],
        optional: spec.optional === true,
      };
    }
    const lib = Deno.dlopen(path, table);
    pin(Deno, path);
    const fns: Record<string, NativeFn> = {};
    const missing: string[] = [];
    for (const [name, spec] of Object.entries(symbols)) {
      const fn = lib.symbols[name];
      if (fn == null) missing.push(name);
      else fns[name] = normalize(Deno, spec.returns, fn);
    }
    return { path, fns, missing };
  },
  preload(path: string, probe: string): PreloadedLibrary {
    const Deno = (globalThis as any).Deno;
    const lib = Deno.dlopen(path, { [probe]: { parameters: [], result: "void" } });
    pin(Deno, path);
    let open = true;
    return {
      path,
      // Pinned: dlclose drops Deno's handle, the loader keeps the library mapped (RTLD_NODELETE).
      close() {
        if (open) lib.close();
        open = false;
      },
    };
  },
};

/** dlfcn.h flags (glibc, x86-64). */
const RTLD_LAZY = 0x1;
const RTLD_NOLOAD = 0x4;
const RTLD_NODELETE = 0x1000;

/**
 * Keeps a loaded library mapped until the process ends. Deno (2.9) dlcloses FFI libraries while it
 * exits; that unmaps libgomp under its idle worker threads, which then crash (SIGSEGV, exit 139,
 * after a successful build). Re-opening the library with RTLD_NOLOAD | RTLD_NODELETE through libc's
 * own dlopen marks it (and so the libraries it needs) as never unloaded.
 */
function pin(Deno: any, path: string): void {
  const libc = Deno.dlopen("libc.so.6", { dlopen: { parameters: ["buffer", "i32"], result: "pointer" } });
  try {
    libc.symbols.dlopen(new TextEncoder().encode(`${path}\0`), RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
  } finally {
    libc.close();
  }
}

function normalize(Deno: any, returns: ResultType, fn: (...a: unknown[]) => unknown): NativeFn {
  switch (returns) {
    case "i64":
    case "u64":
      return (...a) => Number(fn(...a));
    case "handle":
      return (...a) => BigInt(fn(...a) as bigint | number);
    case "cstring":
      return (...a) => {
        const p = fn(...a);
        return p === null ? null : Deno.UnsafePointerView.getCString(p);
      };
    default:
      return fn;
  }
}
