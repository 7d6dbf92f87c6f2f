/**
 * `autofaiss build_partitioned_indexes` on one machine (Python needs Spark): one index per
 * partition folder at `<output_root_dir>/<last path component>/knn.index` + `index_infos.json`
 * (+ `ids/` with id columns); partitions of at least `big_index_threshold` rows are split into
 * `nb_splits_per_big_index` parts (`knn.index01 …`, see lib/commands/build_parts.ts); an optional
 * pre-trained `index_path` is filled for every partition instead of training one.
 *
 * Partitions are built one after another, each with all FAISS threads and the whole
 * `current_memory_available`: FAISS calls block the JavaScript thread (no async FFI in Bun), so
 * building several in one process at once would need Workers, which this does not do yet;
 * `maximum_nb_threads` is accepted for compatibility and has no effect.
 *
 * @example
 * const infos = await buildPartitionedIndexes(["emb/partnerId=1", "emb/partnerId=2"], { outputRootDir: "out" });
 */
import { Index } from "../../ffi/faiss.ts";
import { BuildError, buildIndex, type BuildIndexOptions, type IndexInfos } from "./build_index.ts";
import { type BuildReporter, silentReporter } from "../reporter.ts";
import { openEmbeddings } from "../io/input.ts";
import { partitionedOptionsError, planPartitions } from "../plan/partitions.ts";

/** Python's defaults for the partition split (spec §1.6). */
export const PARTITIONED_DEFAULTS = { nbSplitsPerBigIndex: 1, bigIndexThreshold: 5_000_000 } as const;

export interface BuildPartitionedOptions
  extends Omit<BuildIndexOptions, "indexPath" | "indexInfosPath" | "idsPath" | "nbIndicesToKeep" | "saveOnDisk" | "trainedIndexPath" | "distributed"> {
  outputRootDir: string;
  /** A trained, empty index reused for every partition; needs `indexKey`. */
  indexPath?: string | null;
  nbSplitsPerBigIndex?: number;
  bigIndexThreshold?: number;
}

/** One partition's result: its infos, or the infos of each part by path for a split big partition. */
export type PartitionInfos = IndexInfos | Record<string, IndexInfos>;

/** Builds every partition; returns the infos of big partitions first, then the small ones (Python's order). */
export async function buildPartitionedIndexes(partitions: readonly string[], o: BuildPartitionedOptions): Promise<PartitionInfos[]> {
  const log: BuildReporter = o.reporter ?? silentReporter;
  const nbSplits = o.nbSplitsPerBigIndex ?? PARTITIONED_DEFAULTS.nbSplitsPerBigIndex;
  const threshold = o.bigIndexThreshold ?? PARTITIONED_DEFAULTS.bigIndexThreshold;
  const problem = partitionedOptionsError({
    partitions,
    outputRootDir: o.outputRootDir,
    // null means "found in the file" here (the reader's discovery), which is not empty
    embeddingColumnName: o.embeddingColumnName === null || o.embeddingColumnName === undefined ? "(discovered)" : o.embeddingColumnName,
    indexKey: o.indexKey ?? null,
    indexPath: o.indexPath ?? null,
    nbSplitsPerBigIndex: nbSplits,
    bigIndexThreshold: threshold,
  });
  if (problem !== null) throw new BuildError(problem);

  const fileFormat = o.fileFormat ?? "parquet";
  const counts: { partition: string; rows: number; dim: number }[] = [];
  await log.timed("Counting the vectors of every partition", 1, async () => {
    for (const partition of partitions) {
      await using embs = await openEmbeddings(partition, { fileFormat, embeddingColumnName: o.embeddingColumnName, idColumns: o.idColumns });
      counts.push({ partition, rows: embs.count, dim: embs.dimension });
    }
  });
  if (o.indexKey) {
    // Python instantiates the key on the first partition's dimension: a bad key fails before any build.
    Index.factory(counts[0].dim, o.indexKey, (o.metricType ?? "ip").toLowerCase() === "l2" ? "l2" : "ip").free();
  }
  const jobs = planPartitions(counts, o.outputRootDir, threshold, nbSplits);
  log.info(`${jobs.filter((j) => j.big).length} big partition(s) (>= ${threshold} vectors, ${nbSplits} part(s) each), ${jobs.filter((j) => !j.big).length} small`);

  const results: PartitionInfos[] = [];
  for (const job of jobs) {
    const r = await log.timed(`Building the index of ${job.partition} (${job.rows} vectors) into ${job.indexFiles.join(", ")}`, 1, () =>
      buildIndex(job.partition, {
        ...o,
        fileFormat,
        indexPath: job.indexPath,
        indexInfosPath: job.infosPath,
        idsPath: o.idColumns?.length ? job.idsPath : null,
        saveOnDisk: true,
        nbIndicesToKeep: job.parts,
        trainedIndexPath: o.indexPath ?? null,
      }));
    r.index?.free();
    results.push(r.infos);
  }
  return results;
}
