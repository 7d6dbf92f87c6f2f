/** `autofaiss build_index`: maps the CLI parameters onto `buildIndex` and reports like Python. */
import { buildIndex } from "../commands/build_index.ts";
import { INT_FIELDS } from "../output/python_json.ts";
import type { BuildReporter } from "../reporter.ts";
import { progress } from "../progress.ts";
import type { BuildIndexParams, CommandContext } from "./commands.ts";

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

export async function run(p: BuildIndexParams, ctx: CommandContext): Promise<number> {
  const given = (name: string) => ctx.given.has(name);
  const { index, infos } = await ctx.log.timed("Launching the whole pipeline", 0, () =>
    buildIndex(p.embeddings, {
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
      // Left unset, the index budget may be lowered to keep 10% of RAM free (see buildIndex).
      ...(given("max_index_memory_usage") ? { maxIndexMemoryUsage: String(p.max_index_memory_usage) } : {}),
      minNearestNeighborsToRetrieve: p.min_nearest_neighbors_to_retrieve,
      currentMemoryAvailable: String(p.current_memory_available),
      useGpu: p.use_gpu,
      metricType: p.metric_type,
      nbCores: p.nb_cores,
      makeDirectMap: p.make_direct_map,
      shouldBeMemoryMappable: p.should_be_memory_mappable,
      distributed: p.distributed,
      nbIndicesToKeep: p.nb_indices_to_keep,
      reporter: cliReporter(ctx),
    }));
  index.free();
  ctx.log.summary(infos as unknown as Record<string, unknown>, INT_FIELDS);
  return 0;
}
