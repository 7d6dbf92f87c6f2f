/**
 * What the dispatcher (./main.ts) gives a command handler, and the handler contract.
 *
 * Handler contract (what `lib/cli/*_command.ts` export as `run`, or what `main`'s `handlers` option
 * passes):
 * - `params`: every parameter of the command under its Python snake_case name, parsed and validated
 *   by argv.ts (types per `ParamsOf` in lib/commands/schema.ts); memory strings are kept as written
 *   (`"32GB"`), call `parseMemory` for bytes. `ctx.given` tells which ones the user set explicitly.
 * - returns (or resolves to) the process exit code: 0 on success.
 * - throwing is the normal way to fail: the dispatcher prints `autofaiss <cmd>: error: <message>` as
 *   one line on stderr and exits 1; the stack follows only with `--verbose=10` (DEBUG).
 * - logs go through `ctx.log` (Python format, level from `--verbose`, stderr); results meant for the
 *   user or for pipes go through `ctx.out`.
 */
import type { Logger } from "../log.ts";
import type { CommandSpec } from "../commands/schema.ts";


/** What a handler gets besides its params. */
export interface CommandContext {
  readonly command: CommandSpec;
  /** Logger at the `--verbose` level, writing Python-format lines to stderr. */
  readonly log: Logger;
  /** Writes text (add the newline yourself) to stdout: results for users and pipes. */
  readonly out: (text: string) => void;
  /** Writes text (add the newline yourself) to stderr, unformatted: progress bars, raw notices. */
  readonly err: (text: string) => void;
  /** Whether stderr is a terminal (progress bars redraw in place only then). */
  readonly stderrIsTTY: boolean;
  /** Parameters the user set explicitly (by flag or position); the rest are defaults. */
  readonly given: ReadonlySet<string>;
}

/** A command implementation: params as parsed, returns the exit code. */
// deno-lint-ignore no-explicit-any
export type Handler<P = any> = (params: P, ctx: CommandContext) => number | Promise<number>;

/** The message of a command that is not built yet. */
export function notBuiltYetMessage(command: CommandSpec): string {
  const tracked = command.issue === undefined ? "" : ` (tracked in issue ${command.issue})`;
  return `autofaiss ${command.name}: not built yet${tracked}`;
}

/** Exit code of "not built yet": a usage-level failure, like fire's. */
export const EXIT_NOT_BUILT = 2;

/** What a placeholder handler does: say so on stderr and exit 2. */
export function notBuiltYet(ctx: CommandContext): number {
  ctx.err(notBuiltYetMessage(ctx.command) + "\n");
  return EXIT_NOT_BUILT;
}
