/** `autofaiss merge_shards`: the last phase of a distributed build; prints the infos like build_index. */
import { mergeShards } from "../commands/merge_shards.ts";
import type { MergeShardsParams } from "../commands/schema.ts";
import { INT_FIELDS } from "../output/python_json.ts";
import type { CommandContext } from "./commands.ts";
import { cliReporter } from "./reporter.ts";

export async function run(p: MergeShardsParams, ctx: CommandContext): Promise<number> {
  const { index, infos } = await mergeShards({ temporaryIndicesFolder: p.temporary_indices_folder, nbCores: p.nb_cores, reporter: cliReporter(ctx) });
  if (index === null) {
    // N parts, or a plan merged before: one recap per part, as build_index.
    for (const partInfos of Object.values(infos)) ctx.log.summary(partInfos as unknown as Record<string, unknown>, INT_FIELDS);
    return 0;
  }
  index.free();
  ctx.log.summary(infos as unknown as Record<string, unknown>, INT_FIELDS);
  return 0;
}
