/** `autofaiss add_shard`: one array task of a distributed build. */
import { addShard } from "../commands/add_shard.ts";
import type { AddShardParams } from "../commands/schema.ts";
import type { CommandContext } from "./commands.ts";
import { cliReporter } from "./reporter.ts";

export async function run(p: AddShardParams, ctx: CommandContext): Promise<number> {
  await addShard({ temporaryIndicesFolder: p.temporary_indices_folder, shard: p.shard, nbCores: p.nb_cores, reporter: cliReporter(ctx) });
  return 0;
}
