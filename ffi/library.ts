/**
 * Finds and opens the FAISS C library, in a fixed order:
 *   1. AUTOFAISS_FAISS_LIB — any upstream libfaiss_c.so (CPU or GPU build); extensions optional;
 *   2. the library embedded in the compiled binary (registered by the compile entry point);
 *   3. the local build, native/build/libfaiss_c.so.
 * Our builds come in two variants: AVX2 (FAISS compiled with -mavx2 -mfma -mf16c -mpopcnt) and
 * GENERIC (Debian's libfaiss.a, any x86-64 CPU). Without AUTOFAISS_FAISS_LIB the variant is picked
 * from the CPU's flags in /proc/cpuinfo; the AVX2 library comes first when the CPU runs it, and the
 * GENERIC one is the fallback. AUTOFAISS_FAISS_VARIANT=generic|avx2 forces one (no fallback).
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
/** Forces one of our two variants ("generic" or "avx2") instead of the CPU-based choice. */
export const ENV_VARIANT = "AUTOFAISS_FAISS_VARIANT";

const EMBEDDED_KEY = Symbol.for("autofaiss.embeddedFaissLibrary");

/** A library to load before the embedded FAISS library: `symbol` is one it exports (see FfiRuntime.preload). */
export interface Preload {
  path: string;
  symbol: string;
}

interface Embedded {
  path: string;
  /** The AVX2 variant of the same library, when the binary embeds one. */
  avx2?: string;
  preload: readonly Preload[];
}

/**
 * Called by the compiled binary's entry point with the path of the embedded library and of the
 * libraries it needs that a bare system lacks (libgomp.so.1: not in a Debian minbase root). Those are
 * loaded first, so the loader binds the FAISS library's DT_NEEDED entries to them by SONAME.
 *
 * `path` is the GENERIC library, `opts.avx2` the AVX2 one (loaded instead when the CPU supports it).
 *
 * @example registerEmbeddedLibrary(faissPath, { avx2: faissAvx2Path, preload: [{ path: gompPath, symbol: "omp_get_max_threads" }] });
 */
export function registerEmbeddedLibrary(path: string, opts: { avx2?: string; preload?: readonly Preload[] } = {}): void {
  const embedded: Embedded = { path, avx2: opts.avx2, preload: opts.preload ?? [] };
  (globalThis as Record<symbol, unknown>)[EMBEDDED_KEY] = embedded;
}

function embeddedLibrary(): Embedded | undefined {
  return (globalThis as Record<symbol, unknown>)[EMBEDDED_KEY] as Embedded | undefined;
}

/** The local build of a variant: native/build/libfaiss_c.so (GENERIC) or libfaiss_c_avx2.so. */
export function localBuildPath(variant: Variant = "generic"): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return resolve(here, "..", "native", "build", variant === "avx2" ? "libfaiss_c_avx2.so" : "libfaiss_c.so");
}

/** Which of our two FAISS builds: AVX2 (FAISS_OPT_LEVEL=avx2) or GENERIC (no SIMD beyond SSE2). */
export type Variant = "generic" | "avx2";

/**
 * The CPU flags the AVX2 variant needs: FAISS's faiss_avx2 target is compiled with
 * -mavx2 -mfma -mf16c -mpopcnt, so the compiler may emit any of them anywhere in it.
 */
export const AVX2_CPU_FLAGS = ["avx2", "fma", "f16c", "popcnt"] as const;

export interface VariantChoice {
  variant: Variant;
  /** Why, for `--version`: e.g. "CPU has avx2, fma, f16c, popcnt". */
  reason: string;
  /** Set by AUTOFAISS_FAISS_VARIANT: only that variant may load. */
  forced: boolean;
}

/**
 * Picks the variant from the text of /proc/cpuinfo (null: it could not be read) and the value of
 * AUTOFAISS_FAISS_VARIANT. Pure; the first "flags" line is used (Linux lists the flags common to
 * all cores on each). Forcing "avx2" on a CPU without it is an error: the library would die on its
 * first AVX2 instruction (SIGILL).
 *
 * @example chooseVariant("flags\t\t: fpu sse2 avx2 fma f16c popcnt\n").variant // "avx2"
 */
export function chooseVariant(cpuinfo: string | null, requested?: string): VariantChoice {
  let cpu: { ok: boolean; reason: string };
  const line = cpuinfo?.split("\n").find((l) => /^flags\s*:/.test(l));
  if (cpuinfo === null) cpu = { ok: false, reason: "/proc/cpuinfo could not be read" };
  else if (line === undefined) cpu = { ok: false, reason: "/proc/cpuinfo has no flags line" };
  else {
    const flags = new Set(line.slice(line.indexOf(":") + 1).trim().split(/\s+/));
    const missing = AVX2_CPU_FLAGS.filter((f) => !flags.has(f));
    cpu = missing.length > 0
      ? { ok: false, reason: `CPU lacks ${missing.join(", ")}` }
      : { ok: true, reason: `CPU has ${AVX2_CPU_FLAGS.join(", ")}` };
  }
  if (requested === undefined || requested === "") {
    return { variant: cpu.ok ? "avx2" : "generic", reason: cpu.reason, forced: false };
  }
  if (requested === "generic") return { variant: "generic", reason: `${ENV_VARIANT}=generic`, forced: true };
  if (requested === "avx2") {
    if (!cpu.ok) throw new Error(`faiss library: ${ENV_VARIANT}=avx2, but ${cpu.reason} (expected unset or generic on this CPU)`);
    return { variant: "avx2", reason: `${ENV_VARIANT}=avx2; ${cpu.reason}`, forced: true };
  }
  throw new Error(`faiss library: ${ENV_VARIANT} is "${requested}" (expected generic or avx2)`);
}

function cpuVariant(env: Record<string, string | undefined>): VariantChoice {
  let cpuinfo: string | null = null;
  try {
    cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    // chooseVariant(null) says so, and picks GENERIC.
  }
  return chooseVariant(cpuinfo, env[ENV_VARIANT]);
}

export interface Candidate {
  source: "env" | "embedded" | "local";
  path: string;
  /** Our variant, or undefined for AUTOFAISS_FAISS_LIB (any library). */
  variant?: Variant;
}

/**
 * The paths to try, in order. With `choice.variant === "avx2"` each of our locations offers its AVX2
 * library before its GENERIC one; a forced variant offers only that one.
 */
export function libraryCandidates(
  env: Record<string, string | undefined> = process.env,
  choice: VariantChoice = cpuVariant(env),
): Candidate[] {
  const out: Candidate[] = [];
  const fromEnv = env[ENV_LIBRARY];
  if (fromEnv) out.push({ source: "env", path: resolve(fromEnv) });
  const avx2 = choice.variant === "avx2";
  const generic = !(avx2 && choice.forced);
  const embedded = embeddedLibrary();
  if (embedded) {
    if (avx2) {
      out.push({ source: "embedded", path: embedded.avx2 ?? "(no AVX2 library embedded)", variant: "avx2" });
    }
    if (generic) out.push({ source: "embedded", path: embedded.path, variant: "generic" });
  }
  if (avx2) out.push({ source: "local", path: localBuildPath("avx2"), variant: "avx2" });
  if (generic) out.push({ source: "local", path: localBuildPath("generic"), variant: "generic" });
  return out;
}

export interface LoadedLibrary extends OpenedLibrary {
  source: Candidate["source"];
  /** undefined: a library from AUTOFAISS_FAISS_LIB, whatever it was built with. */
  variant?: Variant;
  /** Why this library: the CPU check, and the AVX2 paths that failed before a GENERIC fallback. */
  reason: string;
}

let opened: LoadedLibrary | undefined;

/** The opened library (opened once per process). */
export function faissLibrary(): LoadedLibrary {
  if (opened) return opened;
  const runtime = currentRuntime();
  const choice = cpuVariant(process.env);
  const tried: string[] = [];
  for (const c of libraryCandidates(process.env, choice)) {
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
      const lib = runtime.open(c.source === "embedded" ? realFile(c.path) : c.path, SYMBOLS);
      opened = { ...lib, source: c.source, variant: c.variant, reason: loadReason(c, choice, tried) };
      if (c.variant === "generic" && choice.variant === "avx2") {
        // It works, but tasks/bench_avx2.ts measured it 2.6x (HNSW32 add) to 22x (PQ x4fs search)
        // slower than the AVX2 variant on an AVX2 CPU: never silently.
        console.warn(`faiss library: using the GENERIC variant: ${opened.reason}`);
      }
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

function loadReason(c: Candidate, choice: VariantChoice, tried: readonly string[]): string {
  if (c.source === "env") return `${ENV_LIBRARY} is set`;
  if (c.variant === choice.variant) return choice.reason;
  // The CPU runs AVX2 but no AVX2 library loaded: say why, so a slow fallback is never silent.
  return `${choice.reason}, but ${tried.join("; ")}`;
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
