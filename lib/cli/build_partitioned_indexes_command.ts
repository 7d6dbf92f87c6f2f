/** `autofaiss build_partitioned_indexes`: maps the CLI parameters onto `buildPartitionedIndexes`. */
import { buildPartitionedIndexes } from "../commands/build_partitioned_indexes.ts";
import type { BuildPartitionedIndexesParams } from "../commands/schema.ts";
import type { CommandContext } from "./commands.ts";
import { cliReporter } from "./reporter.ts";

/** `autofaiss build_partitioned_indexes`: builds, logs each recap, prints the list of infos as JSON on stdout. */
export async function run(p: BuildPartitionedIndexesParams, ctx: CommandContext): Promise<number> {
  const given = (name: string) => ctx.given.has(name);
  const infos = await buildPartitionedIndexes(p.partitions, {
    outputRootDir: p.output_root_dir,
    // Unless named, the parquet column is found: "embedding", "embeddings" or the only list column.
    embeddingColumnName: given("embedding_column_name") ? p.embedding_column_name : null,
    indexKey: p.index_key,
    indexPath: p.index_path,
    idColumns: p.id_columns,
    maxIndexQueryTimeMs: p.max_index_query_time_ms,
    ...(given("max_index_memory_usage") ? { maxIndexMemoryUsage: String(p.max_index_memory_usage) } : {}),
    minNearestNeighborsToRetrieve: p.min_nearest_neighbors_to_retrieve,
    currentMemoryAvailable: String(p.current_memory_available),
    useGpu: p.use_gpu,
    metricType: p.metric_type,
    nbCores: p.nb_cores,
    makeDirectMap: p.make_direct_map,
    shouldBeMemoryMappable: p.should_be_memory_mappable,
    nbSplitsPerBigIndex: p.nb_splits_per_big_index,
    bigIndexThreshold: p.big_index_threshold,
    maximumNbThreads: p.maximum_nb_threads,
    fileFormat: p.file_format,
    reporter: cliReporter(ctx),
  });
  ctx.out(JSON.stringify(infos) + "\n");
  return 0;
}
