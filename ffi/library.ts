/**
 * Finds and opens the FAISS C library, in a fixed order:
 *   1. AUTOFAISS_FAISS_LIB — any upstream libfaiss_c.so (CPU or GPU build); extensions optional;
 *   2. the library embedded in the compiled binary (registered by the compile entry point);
 *   3. the local build, native/build/libfaiss_c.so.
 * A failure lists every path tried and why it was rejected.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { currentRuntime, type FfiRuntime, type OpenedLibrary } from "./runtime.ts";
import { SYMBOLS } from "./symbols.ts";

export const ENV_LIBRARY = "AUTOFAISS_FAISS_LIB";

const EMBEDDED_KEY = Symbol.for("autofaiss.embeddedFaissLibrary");

/** A library to load before the embedded FAISS library: `symbol` is one it exports (see FfiRuntime.preload). */
export interface Preload {
  path: string;
  symbol: string;
}

interface Embedded {
  path: string;
  preload: readonly Preload[];
}

/**
 * Called by the compiled binary's entry point with the path of the embedded library and of the
 * libraries it needs that a bare system lacks (libgomp.so.1: not in a Debian minbase root). Those are
 * loaded first, so the loader binds the FAISS library's DT_NEEDED entries to them by SONAME.
 *
 * @example registerEmbeddedLibrary(faissPath, { preload: [{ path: gompPath, symbol: "omp_get_max_threads" }] });
 */
export function registerEmbeddedLibrary(path: string, opts: { preload?: readonly Preload[] } = {}): void {
  const embedded: Embedded = { path, preload: opts.preload ?? [] };
  (globalThis as Record<symbol, unknown>)[EMBEDDED_KEY] = embedded;
}

function embeddedLibrary(): Embedded | undefined {
  return (globalThis as Record<symbol, unknown>)[EMBEDDED_KEY] as Embedded | undefined;
}

export function localBuildPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return resolve(here, "..", "native", "build", "libfaiss_c.so");
}

export interface Candidate {
  source: "env" | "embedded" | "local";
  path: string;
}

export function libraryCandidates(env: Record<string, string | undefined> = process.env): Candidate[] {
  const out: Candidate[] = [];
  const fromEnv = env[ENV_LIBRARY];
  if (fromEnv) out.push({ source: "env", path: resolve(fromEnv) });
  const embedded = embeddedLibrary();
  if (embedded) out.push({ source: "embedded", path: embedded.path });
  out.push({ source: "local", path: localBuildPath() });
  return out;
}

let opened: (OpenedLibrary & { source: Candidate["source"] }) | undefined;

/** The opened library (opened once per process). */
export function faissLibrary(): OpenedLibrary & { source: Candidate["source"] } {
  if (opened) return opened;
  const runtime = currentRuntime();
  const tried: string[] = [];
  for (const c of libraryCandidates()) {
    // An explicit AUTOFAISS_FAISS_LIB that fails is an error, not a reason to fall back silently.
    const explicit = c.source === "env";
    if (!isBunfs(c.path) && !existsSync(c.path)) {
      tried.push(`${c.path} (${c.source}): not found`);
      if (explicit) break;
      continue;
    }
    try {
      if (c.source === "embedded") {
        for (const p of embeddedLibrary()!.preload) preload(runtime, p);
      }
      opened = { ...runtime.open(c.source === "embedded" ? realFile(c.path) : c.path, SYMBOLS), source: c.source };
      return opened;
    } catch (e) {
      tried.push(`${c.path} (${c.source}): ${(e as Error).message}`);
      if (explicit) break;
    }
  }
  throw new Error(
    `faiss library: could not load libfaiss_c.so on ${runtime.name}; tried:\n  ${tried.join("\n  ")}\n` +
      `build it with "bun tasks/build_native.ts" or set ${ENV_LIBRARY} to a FAISS C API library`,
  );
}

function preload(runtime: FfiRuntime, p: Preload): void {
  try {
    runtime.preload(realFile(p.path), p.symbol);
  } catch (e) {
    throw new Error(`preloading ${p.path}: ${(e as Error).message}`);
  }
}

/** Bun's virtual file system of compiled binaries: bun:ffi extracts these paths itself. */
function isBunfs(path: string): boolean {
  return path.startsWith("/$bunfs/");
}

/**
 * A path dlopen can open. Files embedded by `deno compile --include` live in Deno's virtual file
 * system, which fs reads see but the system loader does not: they are copied once to
 * $TMPDIR/autofaiss-<sha256 prefix>/<name> (the name is kept, so a SONAME such as libgomp.so.1 still
 * matches). Other paths are returned unchanged.
 */
function realFile(path: string): string {
  const deno = (globalThis as { Deno?: { build?: { standalone?: boolean } } }).Deno;
  if (isBunfs(path) || deno?.build?.standalone !== true) return path;
  const bytes = readFileSync(path);
  const dir = join(tmpdir(), `autofaiss-${createHash("sha256").update(bytes).digest("hex").slice(0, 16)}`);
  const out = join(dir, basename(path));
  if (!existsSync(out)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${out}.tmp-${process.pid}`;
    writeFileSync(tmp, bytes, { mode: 0o755 });
    renameSync(tmp, out);
  }
  return out;
}
