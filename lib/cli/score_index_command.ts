/**
 * `autofaiss score_index`: placeholder until its issue lands. Replace `run` keeping the handler contract
 * documented in commands.ts (params as parsed; return the exit code; throw to fail with one line).
 */

import { type CommandContext, notBuiltYet, type ScoreIndexParams } from "./commands.ts";

export function run(_params: ScoreIndexParams, ctx: CommandContext): number {
  return notBuiltYet(ctx);
}
