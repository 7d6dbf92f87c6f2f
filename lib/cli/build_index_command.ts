/**
 * `autofaiss build_index`: placeholder until its issue lands. Replace `run` keeping the handler contract
 * documented in commands.ts (params as parsed; return the exit code; throw to fail with one line).
 */

import { type CommandContext, notBuiltYet, type BuildIndexParams } from "./commands.ts";

export function run(_params: BuildIndexParams, ctx: CommandContext): number {
  return notBuiltYet(ctx);
}
