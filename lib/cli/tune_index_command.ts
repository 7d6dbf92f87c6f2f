/** `autofaiss tune_index`: maps the CLI parameters onto `tuneIndex` and reports like Python. */
import { tuneIndex } from "../commands/tune_index.ts";
import { cliReporter } from "./reporter.ts";
import type { CommandContext } from "./commands.ts";
import type { TuneIndexParams } from "../commands/schema.ts";

export async function run(p: TuneIndexParams, ctx: CommandContext): Promise<number> {
  if (p.use_gpu) ctx.log.warning("use_gpu is ignored: the index is read and tuned on the CPU");
  const { index } = await tuneIndex(p.index_path, p.index_key, {
    indexParam: p.index_param,
    outputIndexPath: p.output_index_path,
    saveOnDisk: p.save_on_disk,
    minNearestNeighborsToRetrieve: p.min_nearest_neighbors_to_retrieve,
    maxIndexQueryTimeMs: p.max_index_query_time_ms,
    reporter: cliReporter(ctx),
  });
  index.free();
  return 0;
}
