/**
 * build_partitioned_indexes as pure decisions: validation of the options (Python's ValueErrors as
 * one-line messages), where each partition's index goes, which partitions are big (split into
 * parts), the order results are returned in (big partitions first, then small, as Python), and
 * how small partitions share the machine when built concurrently (threads per build, memory
 * reservations, admission).
 */
import { partPaths } from "./parts.ts";

/** Options that decide the plan (the rest are passed through to each build). */
export interface PartitionedOptions {
  partitions: readonly string[];
  outputRootDir: string | null;
  embeddingColumnName: string | null;
  indexKey: string | null;
  indexPath: string | null;
  nbSplitsPerBigIndex: number;
  bigIndexThreshold: number;
  maximumNbThreads: number;
}

/**
 * The first problem with the options, or null. Python raises the same checks as ValueError (its
 * message for nb_splits_per_big_index wrongly names nb_indices_to_keep; ours names the option).
 */
export function partitionedOptionsError(o: PartitionedOptions): string | null {
  if (o.partitions.length === 0) return "partitions: expected a non-empty list of partition folders";
  const blank = o.partitions.findIndex((p) => p.trim() === "");
  if (blank >= 0) return `partitions: item ${blank} is empty (expected a folder)`;
  if (!o.outputRootDir) return `output_root_dir can't be None or empty; Got ${JSON.stringify(o.outputRootDir)}`;
  if (!o.embeddingColumnName) return `embedding_column_name can't be None or empty; Got ${JSON.stringify(o.embeddingColumnName)}`;
  if (!Number.isInteger(o.nbSplitsPerBigIndex) || o.nbSplitsPerBigIndex < 1) {
    return `nb_splits_per_big_index: expected an integer >= 1, got ${o.nbSplitsPerBigIndex}`;
  }
  if (!Number.isInteger(o.bigIndexThreshold) || o.bigIndexThreshold < 1) return `big_index_threshold: expected an integer >= 1, got ${o.bigIndexThreshold}`;
  if (!Number.isInteger(o.maximumNbThreads) || o.maximumNbThreads < 1) return `maximum_nb_threads: expected an integer >= 1, got ${o.maximumNbThreads}`;
  if (o.indexPath && !o.indexKey) return "index_path: a pre-trained index needs index_key (its factory string) too";
  const names = o.partitions.map(partitionName);
  const dup = names.findIndex((n, i) => names.indexOf(n) !== i);
  if (dup >= 0) {
    return `partitions: ${o.partitions[names.indexOf(names[dup])]} and ${o.partitions[dup]} both end in "${names[dup]}" (each partition's output folder is named by its last path component)`;
  }
  return null;
}

/** Last path component of a partition path: `s3://b/emb/partnerId=123/` → `partnerId=123`. */
export function partitionName(path: string): string {
  const trimmed = path.replace(/[/\\]+$/, "");
  return trimmed.slice(Math.max(trimmed.lastIndexOf("/"), trimmed.lastIndexOf("\\")) + 1);
}

/** What to build for one partition. */
export interface PartitionJob {
  partition: string;
  name: string;
  rows: number;
  /** vector dimension */
  dim: number;
  big: boolean;
  /** Number of part files (1 for small partitions and for big ones when nb_splits_per_big_index = 1). */
  parts: number;
  /** `<root>/<name>/knn.index` (parts add 01 …) and `<root>/<name>/index_infos.json`. */
  indexPath: string;
  infosPath: string;
  /** `<root>/<name>/ids`, written only with id columns. */
  idsPath: string;
  /** The files that will be written, in order. */
  indexFiles: string[];
}

/**
 * One job per partition, big partitions (rows ≥ threshold) first in input order, then the small
 * ones in input order: the order Python returns metrics in.
 *
 * @example planPartitions([{ partition: "p/a", rows: 1, dim: 8 }, { partition: "p/b", rows: 3, dim: 8 }], "out", 3, 2)
 * // [b (big, parts 2), a (small)]
 */
export function planPartitions(
  counts: readonly { partition: string; rows: number; dim: number }[],
  outputRootDir: string,
  bigIndexThreshold: number,
  nbSplitsPerBigIndex: number,
): PartitionJob[] {
  const root = outputRootDir.replace(/[/\\]+$/, "");
  const jobs = counts.map(({ partition, rows, dim }): PartitionJob => {
    const name = partitionName(partition);
    const big = rows >= bigIndexThreshold;
    const parts = big ? Math.max(1, Math.min(nbSplitsPerBigIndex, rows)) : 1;
    const indexPath = `${root}/${name}/knn.index`;
    return {
      partition,
      name,
      rows,
      dim,
      big,
      parts,
      indexPath,
      infosPath: `${root}/${name}/index_infos.json`,
      idsPath: `${root}/${name}/ids`,
      indexFiles: parts === 1 ? [indexPath] : partPaths(indexPath, parts),
    };
  });
  return [...jobs.filter((j) => j.big), ...jobs.filter((j) => !j.big)];
}

/**
 * Memory reserved for a small partition's build on top of the memory its index needs
 * (`neededToBuild`: the index plus Python's add overhead, or the training memory): room for the add
 * batches, whose size the build derives from the memory it is given. 256 MiB holds a batch of
 * 65,536 vectors of dimension 1024 in float32, four times over.
 */
export const PARTITION_BATCH_RESERVE = 256 * 2 ** 20;

/**
 * The memory one concurrent small-partition build may use: what its index needs plus
 * {@link PARTITION_BATCH_RESERVE}, at most the whole budget. The build is given this as its
 * `current_memory_available`, so its batches stay inside it.
 *
 * @example partitionReservation(10 * 2 ** 20, 2 ** 30) === 266 * 2 ** 20
 */
export function partitionReservation(neededToBuild: number, currentMemoryAvailable: number): number {
  return Math.min(currentMemoryAvailable, neededToBuild + PARTITION_BATCH_RESERVE);
}

/**
 * How many small partitions are built at once: at most one per core, at most
 * `maximum_nb_threads`, at most the number of small partitions, at least one.
 */
export function concurrentBuilds(cores: number, maximumNbThreads: number, smallPartitions: number): number {
  return Math.max(1, Math.min(Math.floor(cores), maximumNbThreads, smallPartitions));
}

/** FAISS threads of each concurrent build: the cores shared evenly, at least one. */
export function threadsPerBuild(cores: number, builds: number): number {
  return Math.max(1, Math.floor(cores / builds));
}

/**
 * Whether the next small partition (reserving `reservation` bytes) may start now, with `running`
 * builds holding `reserved` bytes: a free slot, and its reservation fits beside the running
 * ones within `currentMemoryAvailable`. With nothing running it always starts (its reservation
 * is at most the whole budget), so every partition is eventually built.
 *
 * @example admits({ running: 1, reserved: 300, slots: 2, reservation: 300, currentMemoryAvailable: 500 }) === false
 */
export function admits(a: { running: number; reserved: number; slots: number; reservation: number; currentMemoryAvailable: number }): boolean {
  if (a.running === 0) return true;
  return a.running < a.slots && a.reserved + a.reservation <= a.currentMemoryAvailable;
}
