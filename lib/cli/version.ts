/**
 * `autofaiss --version`. The tool version comes from package.json through a static JSON import, which
 * Bun (also under `bun build --compile`, where it is inlined) and Deno both support.
 * Nothing here may load FAISS: `--version` must stay fast and work without the native library.
 */

import pkg from "../../package.json" with { type: "json" };

/** The tool version, from package.json. */
export const VERSION: string = pkg.version;

/** Extra lines for `--version` (FAISS version, build options…). */
export type VersionProvider = () => string[] | Promise<string[]>;

/**
 * The lines `autofaiss --version` prints: `autofaiss <version>`, then each provider's lines. A
 * provider that needs FAISS must import it dynamically inside the provider and catch its own failure
 * (print "faiss: unavailable (…)" rather than fail `--version`).
 *
 * @example await versionLines([faissVersionLines]) // ["autofaiss 0.1.0", "faiss 1.7.3 (local: …)", …]
 */
export async function versionLines(providers: readonly VersionProvider[] = []): Promise<string[]> {
  const lines = [`autofaiss ${VERSION}`];
  for (const provider of providers) lines.push(...(await provider()));
  return lines;
}

/**
 * The FAISS lines of `--version`: the loaded library's version, where it was found, its compile
 * options, which variant (AVX2 or GENERIC) was loaded and why, and whether it has the GPU functions. FAISS is imported here, when `--version` runs, so
 * help and usage errors never load it; a library that cannot be loaded gives one
 * "faiss: unavailable (…)" line instead of failing `--version`.
 *
 * @example main(argv, { versionProviders: [faissVersionLines] }); // autofaiss 0.1.0 \n faiss 1.7.3 (local: …/libfaiss_c.so) …
 */
export async function faissVersionLines(): Promise<string[]> {
  try {
    const faiss = await import("../../ffi/faiss.ts");
    const { faissLibrary } = await import("../../ffi/library.ts");
    const lib = faissLibrary();
    const info = faiss.buildInfo();
    const gpuMissing = faiss.gpuSupport().missing;
    const gpu = gpuMissing.length === 0 ? "faiss GPU support: yes" : `faiss GPU support: no (${gpuMissing[0]} missing)`;
    if (info === null) {
      return [`faiss: version unknown (${lib.source}: ${lib.path}; an upstream library without autofaiss_build_info)`, gpu];
    }
    const variant = `faiss variant: ${lib.variant === undefined ? "none chosen" : lib.variant.toUpperCase()} (${lib.reason})`;
    return [`faiss ${info.faissVersion} (${lib.source}: ${lib.path})`, `faiss compile options: ${info.compileOptions}`, variant, gpu];
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return [`faiss: unavailable (${message.replace(/\s*\n\s*/g, "; ").trim()})`];
  }
}
