/**
 * Finds and opens the FAISS C library, in a fixed order:
 *   1. AUTOFAISS_FAISS_LIB — any upstream libfaiss_c.so (CPU or GPU build); extensions optional;
 *   2. the library embedded in the compiled binary (registered by the compile entry point);
 *   3. the local build, native/build/libfaiss_c.so.
 * Our builds come in two variants: AVX2 (FAISS compiled with -mavx2 -mfma -mf16c -mpopcnt) and
 * GENERIC (Debian's libfaiss.a, any x86-64 CPU). Without AUTOFAISS_FAISS_LIB the variant is picked
 * from the CPU's features, asked of a tiny native probe (libautofaiss_cpu.so, next to the libraries:
 * it needs only the FFI permission the library needs anyway; /proc/cpuinfo is the fallback, which
 * Deno refuses without --allow-all). The AVX2 library comes first when the CPU runs it, and the
 * GENERIC one is the fallback. AUTOFAISS_FAISS_VARIANT=generic|avx2 forces one (no fallback).
 * Loading GENERIC on a CPU that could run AVX2, or without knowing, prints one warning saying why.
 * A failure lists every path tried and why it was rejected.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { warn } from "./capabilities.ts";
import { currentRuntime, type FfiRuntime, type OpenedLibrary, type PreloadedLibrary } from "./runtime.ts";
import { CPU_SYMBOLS, SYMBOLS } from "./symbols.ts";

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
  /** The CPU probe (libautofaiss_cpu.so), when the binary embeds one. */
  cpu?: string;
  preload: readonly Preload[];
}

/**
 * Called by the compiled binary's entry point with the path of the embedded library and of the
 * libraries it needs that a bare system lacks (libgomp.so.1: not in a Debian minbase root). Those are
 * loaded first, so the loader binds the FAISS library's DT_NEEDED entries to them by SONAME.
 *
 * `path` is the GENERIC library, `opts.avx2` the AVX2 one (loaded instead when the CPU supports it),
 * `opts.cpu` the CPU probe that decides.
 *
 * @example registerEmbeddedLibrary(faissPath, { avx2: faissAvx2Path, cpu: probePath, preload: [{ path: gompPath, symbol: "omp_get_max_threads" }] });
 */
export function registerEmbeddedLibrary(
  path: string,
  opts: { avx2?: string; cpu?: string; preload?: readonly Preload[] } = {},
): void {
  const embedded: Embedded = { path, avx2: opts.avx2, cpu: opts.cpu, preload: opts.preload ?? [] };
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

/** The local build of the CPU probe: native/build/libautofaiss_cpu.so (native/cpu_features.c). */
export function localProbePath(): string {
  return resolve(dirname(localBuildPath()), "libautofaiss_cpu.so");
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
  /** Said once on stderr when the library loads: GENERIC chosen without knowing the CPU. */
  warning?: string;
}

/**
 * What the loader learnt about the CPU: the flags it has (of AVX2_CPU_FLAGS; `note` says where from
 * when not from the probe), or why it could not tell.
 */
export type CpuFeatures = { flags: readonly string[]; note?: string } | { unknown: string };

/**
 * The flags set in autofaiss_cpu_features()'s bit set (bit i is AVX2_CPU_FLAGS[i]).
 *
 * @example probeFlags(0b1011) // ["avx2", "fma", "popcnt"]
 */
export function probeFlags(bits: number): string[] {
  return AVX2_CPU_FLAGS.filter((_, i) => (bits & (1 << i)) !== 0);
}

/**
 * The flags of /proc/cpuinfo's first "flags" line (Linux lists the flags common to all cores on
 * each); throws when there is none.
 *
 * @example cpuinfoFlags("flags\t\t: fpu sse2 avx2\n") // ["fpu", "sse2", "avx2"]
 */
export function cpuinfoFlags(cpuinfo: string): string[] {
  const line = cpuinfo.split("\n").find((l) => /^flags\s*:/.test(l));
  if (line === undefined) throw new Error("/proc/cpuinfo has no flags line");
  return line.slice(line.indexOf(":") + 1).trim().split(/\s+/);
}

/**
 * Picks the variant from the CPU's features and the value of AUTOFAISS_FAISS_VARIANT. Pure. Forcing
 * "avx2" on a CPU known to lack it is an error: the library would die on its first AVX2 instruction
 * (SIGILL). On a CPU whose features are unknown, GENERIC is the safe choice, with a warning (it is
 * 1.5x (IVF-PQ add) to 22x (PQ x4fs search) slower where AVX2 would have run, measured by
 * tasks/bench_avx2.ts), and forcing "avx2" is the user's call.
 *
 * @example chooseVariant({ flags: ["avx2", "fma", "f16c", "popcnt"] }).variant // "avx2"
 */
export function chooseVariant(cpu: CpuFeatures, requested?: string): VariantChoice {
  let ok: boolean | undefined; // undefined: unknown
  let reason: string;
  let warning: string | undefined;
  if ("unknown" in cpu) {
    reason = `CPU features unknown: ${cpu.unknown}`;
    warning = `faiss library: using the GENERIC variant: cannot tell whether this CPU has ${AVX2_CPU_FLAGS.join(", ")} ` +
      `(${cpu.unknown}); ${ENV_VARIANT}=avx2 loads the faster AVX2 variant on a CPU that has them`;
  } else {
    const flags = new Set(cpu.flags);
    const missing = AVX2_CPU_FLAGS.filter((f) => !flags.has(f));
    ok = missing.length === 0;
    reason = (ok ? `CPU has ${AVX2_CPU_FLAGS.join(", ")}` : `CPU lacks ${missing.join(", ")}`) +
      (cpu.note ? ` (${cpu.note})` : "");
  }
  if (requested === undefined || requested === "") {
    if (warning !== undefined) return { variant: "generic", reason, forced: false, warning };
    return { variant: ok ? "avx2" : "generic", reason, forced: false };
  }
  if (requested === "generic") return { variant: "generic", reason: `${ENV_VARIANT}=generic`, forced: true };
  if (requested === "avx2") {
    if (ok === false) throw new Error(`faiss library: ${ENV_VARIANT}=avx2, but ${reason} (expected unset or generic on this CPU)`);
    return { variant: "avx2", reason: `${ENV_VARIANT}=avx2; ${reason}`, forced: true };
  }
  throw new Error(`faiss library: ${ENV_VARIANT} is "${requested}" (expected generic or avx2)`);
}

/**
 * Asks the CPU probe (the embedded one, else the local build); if it cannot be loaded, reads
 * /proc/cpuinfo; if that fails too, says why both failed.
 */
export function detectCpu(runtime: FfiRuntime): CpuFeatures {
  const path = embeddedLibrary()?.cpu ?? localProbePath();
  let probeError: string;
  try {
    if (!isBunfs(path) && !existsSync(path)) throw new Error("not found");
    const probe = runtime.open(realFile(path), CPU_SYMBOLS);
    return { flags: probeFlags(probe.fns.autofaiss_cpu_features() as number) };
  } catch (e) {
    probeError = `CPU probe ${path}: ${(e as Error).message}`;
  }
  try {
    return { flags: cpuinfoFlags(readFileSync("/proc/cpuinfo", "utf8")), note: `from /proc/cpuinfo; ${probeError}` };
  } catch (e) {
    return { unknown: `${probeError}; /proc/cpuinfo: ${(e as Error).message}` };
  }
}

export interface Candidate {
  source: "env" | "embedded" | "local";
  path: string;
  /** Our variant, or undefined for AUTOFAISS_FAISS_LIB (any library). */
  variant?: Variant;
}

/**
 * The paths to try, in order. AUTOFAISS_FAISS_LIB, when set, is the only one (a library the user
 * named that fails is an error, not a reason to load another; no variant is chosen for it). Else,
 * with `choice.variant === "avx2"` each of our locations offers its AVX2 library before its GENERIC
 * one; a forced variant offers only that one.
 */
export function libraryCandidates(env: Record<string, string | undefined>, choice: VariantChoice | undefined): Candidate[] {
  const fromEnv = env[ENV_LIBRARY];
  if (fromEnv) return [{ source: "env", path: resolve(fromEnv) }];
  if (choice === undefined) throw new Error(`faiss library: no variant chosen and ${ENV_LIBRARY} is not set`);
  const out: Candidate[] = [];
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
  /**
   * The libraries loaded before it so that its DT_NEEDED entries bind to them (an embedded library's
   * `preload` list, e.g. libgomp.so.1); empty otherwise. Owned by this library: they must stay open
   * as long as it is, which is the life of the process (the library is never closed).
   */
  preloaded: readonly PreloadedLibrary[];
}

/** The one piece of module state of ffi/ and lib/: the library, opened once per process, never closed. */
let opened: LoadedLibrary | undefined;

/** The opened library (opened once per process). */
export function faissLibrary(): LoadedLibrary {
  if (opened) return opened;
  const runtime = currentRuntime();
  const env = process.env;
  const choice = env[ENV_LIBRARY] ? undefined : chooseVariant(detectCpu(runtime), env[ENV_VARIANT]);
  const tried: string[] = [];
  // Loaded once, before the first embedded candidate; handed to the library that loads, or closed.
  let preloaded: PreloadedLibrary[] | undefined;
  for (const c of libraryCandidates(env, choice)) {
    if (!isBunfs(c.path) && !existsSync(c.path)) {
      tried.push(`${c.path} (${c.source}): not found`);
      continue;
    }
    try {
      if (c.source === "embedded") preloaded ??= preloadAll(runtime, embeddedLibrary()!.preload);
      const lib = runtime.open(c.source === "embedded" ? realFile(c.path) : c.path, SYMBOLS);
      opened = {
        ...lib,
        source: c.source,
        variant: c.variant,
        reason: loadReason(c, choice, tried),
        preloaded: c.source === "embedded" ? preloaded! : [],
      };
      if (c.source !== "embedded") closeAll(preloaded);
      // Through the capability warnings' sink: stderr, or the command's log while a command runs.
      if (choice?.warning !== undefined) warn(choice.warning);
      else if (c.variant === "generic" && choice?.variant === "avx2") {
        // It works, but tasks/bench_avx2.ts measured it 1.5x (IVF-PQ add) to 22x (PQ x4fs search)
        // slower than the AVX2 variant on an AVX2 CPU: never silently.
        warn(`faiss library: using the GENERIC variant: ${opened.reason}`);
      }
      return opened;
    } catch (e) {
      tried.push(`${c.path} (${c.source}): ${(e as Error).message}`);
    }
  }
  closeAll(preloaded);
  throw new Error(
    `faiss library: could not load libfaiss_c.so on ${runtime.name}; tried:\n  ${tried.join("\n  ")}\n` +
      `build it with "bun tasks/build_native.ts" or set ${ENV_LIBRARY} to a FAISS C API library`,
  );
}

function loadReason(c: Candidate, choice: VariantChoice | undefined, tried: readonly string[]): string {
  if (c.source === "env" || choice === undefined) return `${ENV_LIBRARY} is set`;
  if (c.variant === choice.variant) return choice.reason;
  // The CPU runs AVX2 but no AVX2 library loaded: say why, so a slow fallback is never silent.
  return `${choice.reason}, but ${tried.join("; ")}`;
}

/** Opens every library of `list`, in order; on a failure closes those already opened and throws. */
function preloadAll(runtime: FfiRuntime, list: readonly Preload[]): PreloadedLibrary[] {
  const done: PreloadedLibrary[] = [];
  for (const p of list) {
    try {
      done.push(runtime.preload(realFile(p.path), p.symbol));
    } catch (e) {
      closeAll(done);
      throw new Error(`preloading ${p.path}: ${(e as Error).message}`);
    }
  }
  return done;
}

function closeAll(list: readonly PreloadedLibrary[] | undefined): void {
  for (const p of list ?? []) p.close();
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
