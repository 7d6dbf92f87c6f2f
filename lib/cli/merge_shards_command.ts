/** `autofaiss merge_shards`: the last phase of a distributed build; prints the infos like build_index. */
import { mergeShards } from "../commands/merge_shards.ts";
import type { MergeShardsParams } from "../commands/schema.ts";
import { printBuildRecap } from "./build_index_command.ts";
import type { CommandContext } from "./commands.ts";
import { cliReporter } from "./reporter.ts";

export async function run(p: MergeShardsParams, ctx: CommandContext): Promise<number> {
  const { index, infos } = await mergeShards({ temporaryIndicesFolder: p.temporary_indices_folder, nbCores: p.nb_cores, reporter: cliReporter(ctx) });
  printBuildRecap(ctx, index, infos);
  return 0;
}
