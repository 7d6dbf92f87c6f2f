/**
 * The `autofaiss` dispatcher: `--help`, `--version`, command lookup, parsing, then the command's
 * handler, loaded lazily so that help, version and usage errors never load FAISS or the readers.
 *
 * Exit codes: 0 success (and help, version); 1 the handler threw; 2 usage error, unknown command or
 * command not built yet; a handler may return any other code.
 */

import process from "node:process";
import { ArgvError, editDistance, helpRequested, parseArgs } from "./argv.ts";
import { type CommandContext, type Handler, notBuiltYet } from "./commands.ts";
import { type CommandName, COMMANDS, findCommand } from "../commands/schema.ts";
import { commandHelp, topLevelHelp } from "./help.ts";
import { type VersionProvider, versionLines } from "./version.ts";
import { DEBUG, Logger, type Sink } from "../log.ts";
import { setWarningSink } from "../../ffi/capabilities.ts";

/** Exit code of usage errors (python-fire exits 2 too). */
export const EXIT_USAGE = 2;
/** Exit code when a handler throws. */
export const EXIT_FAILURE = 1;

/** Where the CLI writes (every stream defaults to the real process streams) and what it runs. */
export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Log lines (no trailing newline); default: `err(line + "\n")`. */
  logSink: Sink;
  stderrIsTTY: boolean;
  /** Handlers that replace the lazily imported `lib/cli/<name>_command.ts` (tests, embedding the CLI). */
  handlers: Partial<Record<CommandName, Handler>>;
  /** Module loaders that replace entries of {@link HANDLER_MODULES} (tests: which modules get loaded). */
  modules: Partial<Record<CommandName, () => Promise<CommandModule>>>;
  /** Extra `--version` lines after `autofaiss <version>` (the FAISS library, the build). */
  versionProviders: readonly VersionProvider[];
}

/** A module implementing a command: `lib/cli/<command>_command.ts`. */
export interface CommandModule {
  run: Handler;
}

/**
 * Lazy handler modules. Dynamic imports keep FAISS, parquet and friends out of `--help`/`--version`
 * and out of usage errors. A command without a module says it is not built yet.
 */
export const HANDLER_MODULES: Readonly<Record<CommandName, (() => Promise<CommandModule>) | undefined>> = Object.freeze({
  build_index: () => import("./build_index_command.ts"),
  tune_index: () => import("./tune_index_command.ts"),
  score_index: () => import("./score_index_command.ts"),
  build_partitioned_indexes: () => import("./build_partitioned_indexes_command.ts"),
  search: () => import("./search_command.ts"),
  plan_build: () => import("./plan_build_command.ts"),
  add_shard: () => import("./add_shard_command.ts"),
  merge_shards: () => import("./merge_shards_command.ts"),
});

const HELP: ReadonlySet<string> = new Set(["-h", "--help"]);

/** One line: newlines inside a message (FAISS errors have some) become spaces. */
function oneLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.replace(/\s*\n\s*/g, " ").trim();
}

function unknownCommand(word: string): string {
  const names = COMMANDS.map((c) => c.name);
  if (word.startsWith("-")) return `autofaiss: error: expected a command before ${word} (commands: ${names.join(", ")})`;
  const best = names.map((n) => ({ n, d: editDistance(word.toLowerCase().replaceAll("-", "_"), n) })).sort((a, b) => a.d - b.d)[0];
  const hint = best.d <= Math.max(2, Math.floor(word.length / 3)) ? `did you mean ${best.n}? ` : "";
  return `autofaiss: error: unknown command "${word}" (${hint}commands: ${names.join(", ")})`;
}

/**
 * Run the CLI on `argv` (the words after `autofaiss`) and return the exit code.
 *
 * @example process.exitCode = await main(process.argv.slice(2));
 */
export async function main(argv: readonly string[], io: Partial<CliIO> = {}): Promise<number> {
  const out = io.out ?? ((text: string) => void process.stdout.write(text));
  const err = io.err ?? ((text: string) => void process.stderr.write(text));
  const logSink = io.logSink ?? ((line: string) => err(line + "\n"));
  const stderrIsTTY = io.stderrIsTTY ?? process.stderr.isTTY === true;

  const [first, ...rest] = argv;
  if (first === "__partition_child") {
    // build_partitioned_indexes running this compiled binary as a small partition's child process
    // (PARTITION_CHILD_ARGUMENT in lib/commands/partition_child.ts); not a user command, not in help.
    const { partitionChildMain } = await import("../commands/partition_child.ts");
    return await partitionChildMain(rest[0] ?? "");
  }
  if (first === undefined) {
    out(topLevelHelp());
    return 0;
  }
  if (first === "--version") {
    out((await versionLines(io.versionProviders ?? [])).join("\n") + "\n");
    return 0;
  }
  if (HELP.has(first)) {
    const command = rest[0] === undefined ? undefined : findCommand(rest[0]);
    out(command ? commandHelp(command) : topLevelHelp());
    return 0;
  }
  const command = findCommand(first);
  if (command === undefined) {
    err(unknownCommand(first) + "\n");
    return EXIT_USAGE;
  }
  if (helpRequested(rest)) {
    out(commandHelp(command));
    return 0;
  }

  let parsed;
  try {
    parsed = parseArgs(command.params, rest);
  } catch (e) {
    if (!(e instanceof ArgvError)) throw e;
    err(`autofaiss ${command.name}: error: ${e.message}\n`);
    return EXIT_USAGE;
  }

  const verbose = parsed.values.verbose as number;
  const ctx: CommandContext = {
    command,
    log: new Logger({ level: verbose, sink: logSink }),
    out,
    err,
    stderrIsTTY,
    given: parsed.given,
  };
  // Warnings about capabilities the FAISS library lacks (ffi/capabilities.ts) go through the command's log.
  const previousSink = setWarningSink((m) => ctx.log.warning(m));
  try {
    const load = io.modules?.[command.name] ?? HANDLER_MODULES[command.name];
    const handler = io.handlers?.[command.name] ?? (await load?.())?.run;
    if (handler === undefined) return notBuiltYet(ctx);
    const code = await handler(parsed.values, ctx);
    return typeof code === "number" ? code : 0;
  } catch (e) {
    err(`autofaiss ${command.name}: error: ${oneLine(e)}\n`);
    if (verbose <= DEBUG && e instanceof Error && e.stack) err(e.stack + "\n");
    return EXIT_FAILURE;
  } finally {
    setWarningSink(previousSink);
  }
}
