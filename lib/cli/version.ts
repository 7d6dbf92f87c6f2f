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

const providers: VersionProvider[] = [];

/**
 * Add lines to `--version`. A provider that needs FAISS must import it dynamically inside the
 * provider and catch its own failure (print "faiss: unavailable (…)" rather than fail `--version`).
 * Returns the function that removes the provider.
 *
 * @example addVersionLines(async () => [`faiss ${(await import("../../ffi/faiss.ts")).buildInfo().version}`])
 */
export function addVersionLines(provider: VersionProvider): () => void {
  providers.push(provider);
  return () => {
    const i = providers.indexOf(provider);
    if (i >= 0) providers.splice(i, 1);
  };
}

/** The lines `autofaiss --version` prints: `autofaiss <version>`, then each provider's lines. */
export async function versionLines(): Promise<string[]> {
  const lines = [`autofaiss ${VERSION}`];
  for (const provider of providers) lines.push(...(await provider()));
  return lines;
}
