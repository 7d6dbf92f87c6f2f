/**
 * Finds and opens the FAISS C library, in a fixed order:
 *   1. AUTOFAISS_FAISS_LIB — any upstream libfaiss_c.so (CPU or GPU build); extensions optional;
 *   2. the library embedded in the compiled binary (registered by the compile entry point);
 *   3. the local build, native/build/libfaiss_c.so.
 * A failure lists every path tried and why it was rejected.
 */
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { currentRuntime, type OpenedLibrary } from "./runtime.ts";
import { SYMBOLS } from "./symbols.ts";

export const ENV_LIBRARY = "AUTOFAISS_FAISS_LIB";

const EMBEDDED_KEY = Symbol.for("autofaiss.embeddedFaissLibrary");

/** Called by the compiled binary's entry point with the path of the embedded library. */
export function registerEmbeddedLibrary(path: string): void {
  (globalThis as Record<symbol, unknown>)[EMBEDDED_KEY] = path;
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
  const embedded = (globalThis as Record<symbol, unknown>)[EMBEDDED_KEY];
  if (typeof embedded === "string") out.push({ source: "embedded", path: embedded });
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
    if (!c.path.startsWith("/$bunfs/") && !existsSync(c.path)) {
      tried.push(`${c.path} (${c.source}): not found`);
      if (explicit) break;
      continue;
    }
    try {
      opened = { ...runtime.open(c.path, SYMBOLS), source: c.source };
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

