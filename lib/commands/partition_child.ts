/**
 * The child process that builds one small partition for build_partitioned_indexes when several are
 * built at once (FAISS calls block the JavaScript thread, so concurrent builds need processes).
 *
 * Run as `bun partition_child.ts <json>` (Deno: `deno run --allow-… partition_child.ts <json>`), or,
 * inside a compiled binary, which has no module file to run, as `autofaiss __partition_child <json>`
 * (lib/cli/main.ts hands that argument here before parsing a command), where `<json>` is
 * `{ "embeddings": path, "options": BuildIndexOptions }`. On success it prints one JSON line on stdout, `{ "infos": …, "startMs": …, "endMs": … }` (the build's wall-clock
 * span, measured here so that the parent can tell when builds overlapped), and exits 0; on failure
 * it prints the error as one line on stderr and exits 1.
 */
import { existsSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { currentRuntime } from "../../ffi/runtime.ts";
import { buildIndex, type BuildIndexOptions, type IndexInfos } from "./build_index.ts";

/** What the parent passes. */
export interface ChildJob {
  embeddings: string;
  options: Omit<BuildIndexOptions, "reporter">;
}

/** What the child prints on success. */
export interface ChildResult {
  infos: IndexInfos | Record<string, IndexInfos>;
  startMs: number;
  endMs: number;
}

/** Deno permissions of the child: those `deno task autofaiss` runs the CLI with. */
const DENO_PERMISSIONS = ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi"];

/** The hidden first argument with which a compiled binary runs itself as a partition child. */
export const PARTITION_CHILD_ARGUMENT = "__partition_child";

/**
 * The command that runs this module as a child process: the current runtime with this file, or,
 * inside a `bun build --compile` / `deno compile` binary, the binary itself with
 * PARTITION_CHILD_ARGUMENT. Null when neither is possible (a module loaded from a URL).
 */
export function childCommand(): { command: string; args: string[] } | null {
  const url = new URL(import.meta.url);
  if (url.protocol !== "file:") return null;
  const script = fileURLToPath(url);
  if (compiledModule(script)) return { command: process.execPath, args: [PARTITION_CHILD_ARGUMENT] };
  if (!existsSync(script)) return null;
  const args = currentRuntime().name === "deno" ? ["run", ...DENO_PERMISSIONS, script] : [script];
  return { command: process.execPath, args };
}

/**
 * Whether a module path lies inside a compiled binary: Bun serves its modules from the virtual
 * /$bunfs/ tree, Deno from a deno-compile-<name> folder; in both, process.execPath is the binary.
 */
export function compiledModule(path: string): boolean {
  return path.startsWith("/$bunfs/") || path.includes("/deno-compile-");
}

/** Builds the partition described by `json` and returns the process exit code (errors on stderr as one line). */
export async function partitionChildMain(json: string): Promise<number> {
  try {
    return await runChild(json);
  } catch (e) {
    process.stderr.write(`${(e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, " ")}\n`);
    return 1;
  }
}

async function runChild(json: string): Promise<number> {
  const job = JSON.parse(json) as ChildJob;
  const startMs = Date.now();
  const r = await buildIndex(job.embeddings, job.options);
  const endMs = Date.now();
  r.index?.free();
  process.stdout.write(JSON.stringify({ infos: r.infos, startMs, endMs } satisfies ChildResult) + "\n");
  return 0;
}

if (import.meta.main) {
  process.exitCode = await partitionChildMain(process.argv[2] ?? "");
}
