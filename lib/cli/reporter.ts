/** The library's reporter (lib/reporter.ts) backed by the CLI logger and progress bars. */
import type { BuildReporter } from "../reporter.ts";
import { progress } from "../progress.ts";
import type { CommandContext } from "./commands.ts";

/** The build's reporter backed by the CLI logger and progress bars. */
export function cliReporter(ctx: CommandContext): BuildReporter {
  const log = ctx.log;
  return {
    debug: (m) => log.debug(m),
    info: (m) => log.info(m),
    warning: (m) => log.warning(m),
    error: (m) => log.error(m),
    timed: async (label, indent, fn) => await log.timed(label, indent, async () => await fn()),
    progress: (label, total, unit) => progress({ label, total, unit, log, write: ctx.err, isTTY: ctx.stderrIsTTY }),
  };
}
