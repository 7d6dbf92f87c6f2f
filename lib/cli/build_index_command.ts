/** `autofaiss build_index`: maps the CLI parameters onto `buildIndex` and reports like Python. */
import { buildIndex, type BuildIndexOptions, type BuildIndexResult, planBuildIndex } from "../commands/build_index.ts";
import { INT_FIELDS } from "../output/python_json.ts";
import { cliReporter } from "./reporter.ts";
import type { CommandContext } from "./commands.ts";
import type { BuildIndexParams, PlanBuildParams } from "../commands/schema.ts";

/** The library options for these CLI parameters. */
export function buildOptions(p: BuildIndexParams | PlanBuildParams, ctx: CommandContext): BuildIndexOptions {
  const given = (name: string) => ctx.given.has(name);
  return {
    indexPath: p.index_path,
    indexInfosPath: p.index_infos_path,
    idsPath: p.ids_path,
    saveOnDisk: p.save_on_disk,
    fileFormat: p.file_format,
    // Unless named, the parquet column is found: "embedding", "embeddings" or the only list column.
    embeddingColumnName: given("embedding_column_name") ? p.embedding_column_name : null,
    idColumns: p.id_columns,
    indexKey: p.index_key,
    indexParam: p.index_param,
    maxIndexQueryTimeMs: p.max_index_query_time_ms,
    // Left unset, the index budget may be lowered to keep 10% of RAM free (see lib/plan/build_plan.ts).
    ...(given("max_index_memory_usage") ? { maxIndexMemoryUsage: String(p.max_index_memory_usage) } : {}),
    minNearestNeighborsToRetrieve: p.min_nearest_neighbors_to_retrieve,
    currentMemoryAvailable: String(p.current_memory_available),
    useGpu: p.use_gpu,
    metricType: p.metric_type,
    nbCores: p.nb_cores,
    makeDirectMap: p.make_direct_map,
    shouldBeMemoryMappable: p.should_be_memory_mappable,
    distributed: "distributed" in p ? p.distributed : null,
    nbIndicesToKeep: p.nb_indices_to_keep,
    selection: p.selection as "heuristic" | "measured",
    selectionTimeBudget: p.selection_time_budget,
    reportPath: p.report_path,
  };
}

export async function run(p: BuildIndexParams, ctx: CommandContext): Promise<number> {
  if (p.dry_run) {
    // The plan goes to stdout as JSON (for pipes); nothing is trained or written.
    const plan = await planBuildIndex(p.embeddings, buildOptions(p, ctx));
    ctx.out(JSON.stringify(plan, null, 2) + "\n");
    return 0;
  }
  const { index, infos } = await ctx.log.timed("Launching the whole pipeline", 0, async () => {
    if (p.distributed !== "slurm") return await buildIndex(p.embeddings, { ...buildOptions(p, ctx), reporter: cliReporter(ctx) });
    const { buildIndexOnSlurm } = await import("../commands/slurm_build.ts");
    return await buildIndexOnSlurm(p.embeddings, {
      ...buildOptions(p, ctx),
      temporaryIndicesFolder: p.temporary_indices_folder,
      nbShards: p.nb_shards,
      slurmArgs: p.slurm_args,
      slurmRetries: p.slurm_retries,
      reporter: cliReporter(ctx),
    });
  });
  printBuildRecap(ctx, index, infos);
  return 0;
}

/**
 * The recap Python prints after a build, from a build's result (build_index, merge_shards): one per
 * part when the index was written as N parts (index null, infos by path, like Python's dict); frees
 * the index otherwise.
 */
export function printBuildRecap(ctx: CommandContext, index: BuildIndexResult["index"], infos: BuildIndexResult["infos"]): void {
  const all = index === null ? Object.values(infos) : [infos];
  index?.free();
  for (const partInfos of all) ctx.log.summary(partInfos as unknown as Record<string, unknown>, INT_FIELDS);
}
