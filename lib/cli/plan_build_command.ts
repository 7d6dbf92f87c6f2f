/** `autofaiss plan_build`: build_index's options plus the shard count and T; prints the number of shards. */
import { planDistributedBuild } from "../commands/plan_build.ts";
import type { PlanBuildParams } from "../commands/schema.ts";
import { buildOptions } from "./build_index_command.ts";
import type { CommandContext } from "./commands.ts";
import { cliReporter } from "./reporter.ts";

export async function run(p: PlanBuildParams, ctx: CommandContext): Promise<number> {
  const { plan } = await planDistributedBuild(p.embeddings, {
    ...buildOptions(p, ctx),
    nbShards: p.nb_shards,
    temporaryIndicesFolder: p.temporary_indices_folder,
    reporter: cliReporter(ctx),
  });
  // S alone on stdout, for scripts: `S=$(autofaiss plan_build …)` then an array of S tasks.
  ctx.out(`${plan.shards.length}\n`);
  return 0;
}
