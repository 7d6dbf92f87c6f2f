/**
 * The four AutoFaiss commands as data: every parameter with Python AutoFaiss's name, position, type
 * and default, and a one-line help text. Where AutoFaiss's README and its code give different
 * defaults, the README's value is used (noted at the parameter). The CLI parses argv against these
 * schemas and the library API takes its defaults from them (./defaults.ts): each default is written
 * once. Nothing here loads FAISS or a reader: `--help` and `--version` must start fast.
 */

/**
 * Parameter types. `?` = also accepts None (null). `memory` = a memory string like `16G`, checked with
 * parseMemory and kept as written. `list` = list of strings. `paths` = one path or a list of paths.
 */
export type ParamType = "string" | "string?" | "int" | "int?" | "float" | "bool" | "memory" | "list" | "list?" | "paths";

/** A parsed value: what handlers receive under the parameter's snake_case name. */
export type ParamValue = string | number | boolean | null | string[];

/** One parameter of a command, named exactly as in Python AutoFaiss. */
export interface ParamSpec {
  readonly name: string;
  readonly type: ParamType;
  /** Required parameters have no default. */
  readonly required?: boolean;
  readonly default?: ParamValue;
  /** One line, shown by --help. */
  readonly help: string;
  /** Allowed values, compared case-insensitively and returned lower-cased. */
  readonly choices?: readonly string[];
  /** Inclusive minimum for int/float parameters. */
  readonly min?: number;
  /** A list that must not be empty. */
  readonly nonEmpty?: boolean;
  /** Another flag name that sets this bool to the opposite value (`no_cache` for `use_cache`). */
  readonly negatedAlias?: string;
}

/** `hdfs://root/tmp/distributed_autofaiss_indices`: Python's Spark scratch default. */
const SPARK_TMP = "hdfs://root/tmp/distributed_autofaiss_indices";

/** Python's logging.INFO, the default `verbose`. */
const INFO = 20;

// Shared parameters, so that every command describes them the same way.
const p = {
  max_index_query_time_ms: {
    name: "max_index_query_time_ms", type: "float", default: 10, min: 0,
    help: "Bound on the query time for KNN search, in ms; approximate, used when tuning",
  },
  max_index_memory_usage: {
    // AutoFaiss README default; its code says "16G".
    name: "max_index_memory_usage", type: "memory", default: "32GB",
    help: "Maximum size of the created index (binary units: 16G = 16GB = 16·1024³ bytes); strict bound",
  },
  current_memory_available: {
    name: "current_memory_available", type: "memory", default: "32GB",
    help: "Memory available on the machine creating the index; more memory means bigger batches",
  },
  min_nearest_neighbors_to_retrieve: {
    name: "min_nearest_neighbors_to_retrieve", type: "int", default: 20, min: 1,
    help: "Minimum number of neighbours a query must return; used when tuning, has priority over the time bound",
  },
  use_gpu: {
    name: "use_gpu", type: "bool", default: false,
    help: "Experimental: train (and tune) on GPU; needs a GPU build of libfaiss_c (AUTOFAISS_FAISS_LIB)",
  },
  metric_type: {
    name: "metric_type", type: "string", default: "ip", choices: ["ip", "l2"],
    help: 'Similarity used by queries: "ip" (inner product) or "l2" (Euclidean distance)',
  },
  nb_cores: {
    name: "nb_cores", type: "int?", default: null, min: 1,
    help: "Number of threads FAISS uses; None = all cores",
  },
  make_direct_map: {
    name: "make_direct_map", type: "bool", default: false,
    help: "Build a direct map so IVF indices can reconstruct vectors (about 8 bytes per vector)",
  },
  should_be_memory_mappable: {
    name: "should_be_memory_mappable", type: "bool", default: false,
    help: "Select only indices that can be memory-mapped from disk (IVF families)",
  },
  index_key: {
    name: "index_key", type: "string?", default: null,
    help: 'FAISS index_factory string such as "IVF4096,PQ64"; None = chosen automatically',
  },
  index_param: {
    name: "index_param", type: "string?", default: null,
    help: 'Search parameters such as "nprobe=64,efSearch=128,ht=2048"; None = tuned automatically',
  },
  save_on_disk: {
    name: "save_on_disk", type: "bool", default: true,
    help: "Write the outputs to disk (--nosave_on_disk to skip)",
  },
  id_columns: {
    name: "id_columns", type: "list?", default: null,
    help: "Parquet columns holding the vectors' ids, written to id mapping files; a bare name is a one-item list",
  },
  temporary_indices_folder: {
    name: "temporary_indices_folder", type: "string", default: SPARK_TMP,
    help: "Folder every node reaches (local, NFS or s3://) for the plan, the trained index and the shards of a distributed build",
  },
  nb_shards: {
    name: "nb_shards", type: "int?", default: null, min: 1,
    help: "Shards of a distributed build; None = enough that each holds at most 10M vectors, at least nb_indices_to_keep",
  },
  verbose: {
    name: "verbose", type: "int", default: INFO,
    help: "Log level: DEBUG=10, INFO=20, WARNING=30, ERROR=40, CRITICAL=50 (10 also prints error stacks)",
  },
} as const satisfies Record<string, ParamSpec>;

/** `autofaiss build_index`, in Python's parameter order, then our extensions. */
export const BUILD_INDEX = [
  {
    name: "embeddings", type: "paths", required: true,
    help: "Folder (or list of folders) of .npy or .parquet embedding files, read in lexicographic order; local, http(s) or s3",
  },
  // AutoFaiss's README table says "required" for the next three, but its code has defaults and users rely on them.
  { name: "index_path", type: "string?", default: "knn.index", help: "Destination path of the index" },
  { name: "index_infos_path", type: "string?", default: "index_infos.json", help: "Destination path of the index infos JSON" },
  {
    name: "ids_path", type: "string?", default: null,
    help: "Folder for the id → vector-number mapping parquet files (only with id_columns)",
  },
  p.save_on_disk,
  { name: "file_format", type: "string", default: "npy", choices: ["npy", "parquet"], help: 'Embedding file format: "npy" or "parquet"' },
  {
    // AutoFaiss README default; its code says "embedding". Readers accept both.
    name: "embedding_column_name", type: "string", default: "embeddings",
    help: 'Parquet column holding one vector per row ("embedding" and a lone list column are also found)',
  },
  p.id_columns,
  p.index_key,
  p.index_param,
  p.max_index_query_time_ms,
  p.max_index_memory_usage,
  p.min_nearest_neighbors_to_retrieve,
  p.current_memory_available,
  p.use_gpu,
  p.metric_type,
  p.nb_cores,
  p.make_direct_map,
  p.should_be_memory_mappable,
  {
    name: "distributed", type: "string?", default: null, choices: ["pyspark", "slurm"],
    help: 'None = build on this machine; "slurm" = add shards as a Slurm job array (sbatch --array), then merge here; "pyspark" is refused',
  },
  p.temporary_indices_folder,
  p.verbose,
  { name: "nb_indices_to_keep", type: "int", default: 1, min: 1, help: "Split the final index into at most N files knn.index01 … (with index_infos.json01 …), one in memory at a time" },
  // Extension (not in Python): after Python's parameters, so positional arguments keep their meaning.
  {
    name: "dry_run", type: "bool", default: false,
    help: "Print the build plan (index key, memory, training and batch sizes) as JSON and exit; reads only file headers",
  },
  p.nb_shards,
  {
    name: "slurm_args", type: "string?", default: null,
    help: 'Extra sbatch arguments for the add phase (distributed="slurm"), e.g. "--partition=cpu --mem=16G"',
  },
  {
    name: "slurm_retries", type: "int", default: 2, min: 0,
    help: 'Times failed or cancelled shards are resubmitted before the build fails (distributed="slurm")',
  },
  {
    name: "selection", type: "string", default: "heuristic", choices: ["heuristic", "measured"],
    help: '"heuristic": Python\'s first candidate; "measured": build candidates on a sample, keep the best recall@10 within both bounds',
  },
  {
    name: "selection_time_budget", type: "int?", default: null, min: 1,
    help: "Seconds measured selection may spend; None = a quarter of the predicted full build (the log names the budget that would measure a candidate skipped for time)",
  },
  {
    name: "report_path", type: "string?", default: null,
    help: "Write a self-contained HTML report (candidates, Pareto front, chosen and heuristic keys, phase timings)",
  },
] as const satisfies readonly ParamSpec[];

/** The shared folder, which every phase command needs. */
const T_REQUIRED = {
  name: "temporary_indices_folder", type: "string", required: true,
  help: "Folder every node reaches (local, NFS or s3://) for the plan, the trained index and the shards",
} as const satisfies ParamSpec;

/** `autofaiss plan_build`: build_index's parameters, then the shard count and the shared folder. */
export const PLAN_BUILD = [
  ...BUILD_INDEX.filter((spec) => !["distributed", "temporary_indices_folder", "dry_run", "nb_shards", "slurm_args", "slurm_retries", "selection", "selection_time_budget", "report_path"].includes(spec.name)),
  p.nb_shards,
  T_REQUIRED,
] as const satisfies readonly ParamSpec[];

/** `autofaiss add_shard`: one array task of the add phase. */
export const ADD_SHARD = [
  T_REQUIRED,
  {
    name: "shard", type: "int?", default: null, min: 0,
    help: "Shard to add (0-based); None = from SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX",
  },
  { ...p.nb_cores, help: "Number of threads FAISS uses; None = SLURM_CPUS_PER_TASK when set, else the plan's nb_cores (all cores when unset there)" },
  p.verbose,
] as const satisfies readonly ParamSpec[];

/** `autofaiss merge_shards`: the last phase, on one machine. */
export const MERGE_SHARDS = [
  T_REQUIRED,
  { ...p.nb_cores, help: "Number of threads FAISS uses; None = SLURM_CPUS_PER_TASK when set, else the plan's nb_cores (all cores when unset there)" },
  p.verbose,
] as const satisfies readonly ParamSpec[];

/** `autofaiss tune_index`, in Python's parameter order. */
export const TUNE_INDEX = [
  { name: "index_path", type: "string", required: true, help: "Path of the index to tune" },
  { name: "index_key", type: "string", required: true, help: "The index's factory string; selects which search parameters are tuned" },
  { ...p.index_param, help: "Search parameters to apply as-is; None = tuned automatically" },
  { name: "output_index_path", type: "string?", default: "tuned_knn.index", help: "Where to write the tuned index" },
  { ...p.save_on_disk, help: "Write the tuned index (--nosave_on_disk to skip)" },
  p.min_nearest_neighbors_to_retrieve,
  p.max_index_query_time_ms,
  p.use_gpu,
  p.verbose,
] as const satisfies readonly ParamSpec[];

/** `autofaiss score_index`, in Python's parameter order, plus the ground-truth cache and parquet input. */
export const SCORE_INDEX = [
  { name: "index_path", type: "string", required: true, help: "Path of the index to score" },
  { name: "embeddings", type: "paths", required: true, help: "Folder (or list of folders) of the embeddings the index was built from" },
  { ...p.save_on_disk, help: "Write the metrics JSON (--nosave_on_disk to skip)" },
  { name: "output_index_info_path", type: "string", default: "infos.json", help: "Destination path of the metrics JSON" },
  { ...p.current_memory_available, help: "Memory available for the exact ground-truth computation" },
  p.verbose,
  // Extensions (not in Python): keyword-only in practice, they come after Python's parameters.
  { name: "file_format", type: "string", default: "npy", choices: ["npy", "parquet"], help: 'Embedding file format: "npy" or "parquet" (Python: npy only)' },
  { name: "embedding_column_name", type: "string", default: "embeddings", help: "Parquet column holding one vector per row" },
  {
    name: "use_cache", type: "bool", default: true, negatedAlias: "no_cache",
    help: "Reuse cached exact neighbours keyed by the embeddings' files (--nouse_cache or --no-cache to recompute)",
  },
  { name: "cache_dir", type: "string?", default: null, help: "Ground-truth cache folder; None = $XDG_CACHE_HOME/autofaiss or ~/.cache/autofaiss" },
  { name: "report_path", type: "string?", default: null, help: "Write a self-contained HTML report of the index (memory, latency, recall)" },
] as const satisfies readonly ParamSpec[];

/** `autofaiss build_partitioned_indexes`, in Python's parameter order. */
export const BUILD_PARTITIONED_INDEXES = [
  { name: "partitions", type: "list", required: true, nonEmpty: true, help: "List of parquet partition folders, one index per partition" },
  { name: "output_root_dir", type: "string", required: true, help: "Root folder for the indices, their infos and ids" },
  { name: "embedding_column_name", type: "string", default: "embeddings", help: "Parquet column holding one vector per row" },
  { ...p.index_key, help: "FAISS index_factory string used for every partition; None = chosen per partition" },
  { name: "index_path", type: "string?", default: null, help: "A pre-trained index reused for every partition (needs index_key)" },
  { ...p.id_columns, help: "Parquet columns holding the vectors' ids" },
  p.max_index_query_time_ms,
  p.max_index_memory_usage,
  p.min_nearest_neighbors_to_retrieve,
  p.current_memory_available,
  p.use_gpu,
  p.metric_type,
  p.nb_cores,
  p.make_direct_map,
  p.should_be_memory_mappable,
  { name: "temp_root_dir", type: "string", default: SPARK_TMP, help: "Folder for intermediate results" },
  p.verbose,
  { name: "nb_splits_per_big_index", type: "int", default: 1, min: 1, help: "Split each big partition's index into N files knn.index01 …" },
  { name: "big_index_threshold", type: "int", default: 5_000_000, min: 1, help: "Partitions with at least this many vectors are big: split into nb_splits_per_big_index parts" },
  { name: "maximum_nb_threads", type: "int", default: 256, min: 1, help: "Maximum number of small partitions built at once (also bounded by the cores and current_memory_available)" },
  // Extension (not in Python, which reads parquet only): after Python's parameters.
  { name: "file_format", type: "string", default: "parquet", choices: ["npy", "parquet"], help: 'Partition file format: "parquet" (Python\'s only one) or "npy"' },
] as const satisfies readonly ParamSpec[];

/** `autofaiss search` (not in Python): k-NN of query vectors in one index or its N parts. */
export const SEARCH = [
  { name: "index_path", type: "string", required: true, help: "Index file, or the base name of N parts (P gives P01 … PNN)" },
  { name: "queries", type: "string", required: true, help: "Query vectors: a .npy or .parquet file, or - for JSON arrays on stdin" },
  { name: "k", type: "int", default: 10, min: 1, help: "Number of neighbours per query" },
  { ...p.index_param, help: 'Search parameters applied before searching, e.g. "nprobe=16"; None = those saved in the file' },
  { name: "ids_path", type: "string?", default: null, help: "The build's ids mapping folder: print original ids instead of row numbers" },
  { name: "mmap", type: "bool", default: false, help: "Memory-map the index (IVF only): inverted lists stay on disk" },
  p.verbose,
] as const satisfies readonly ParamSpec[];

/** The TypeScript type a parameter type parses to. */
export type ValueOf<T extends ParamType> = T extends "string" | "memory" ? string
  : T extends "string?" ? string | null
  : T extends "int" | "float" ? number
  : T extends "int?" ? number | null
  : T extends "bool" ? boolean
  : T extends "list" ? string[]
  : T extends "list?" ? string[] | null
  : T extends "paths" ? string | string[]
  : never;

/** The params object a handler receives for a schema. */
export type ParamsOf<S extends readonly ParamSpec[]> = { [P in S[number] as P["name"]]: ValueOf<P["type"]> };

export type BuildIndexParams = ParamsOf<typeof BUILD_INDEX>;
export type TuneIndexParams = ParamsOf<typeof TUNE_INDEX>;
export type ScoreIndexParams = ParamsOf<typeof SCORE_INDEX>;
export type BuildPartitionedIndexesParams = ParamsOf<typeof BUILD_PARTITIONED_INDEXES>;
export type SearchParams = ParamsOf<typeof SEARCH>;
export type PlanBuildParams = ParamsOf<typeof PLAN_BUILD>;
export type AddShardParams = ParamsOf<typeof ADD_SHARD>;
export type MergeShardsParams = ParamsOf<typeof MERGE_SHARDS>;

/** One command: name, one-line summary, schema, and the issue that tracks it until it is built. */
export interface CommandSpec {
  readonly name: CommandName;
  readonly summary: string;
  readonly params: readonly ParamSpec[];
  readonly issue?: number;
}

export type CommandName =
  | "build_index"
  | "tune_index"
  | "score_index"
  | "build_partitioned_indexes"
  | "search"
  | "plan_build"
  | "add_shard"
  | "merge_shards";

/** The commands in Python's order (`autofaiss.external.quantize.main`). */
export const COMMANDS: readonly CommandSpec[] = [
  { name: "build_index", summary: "Select, train, fill and tune a FAISS index for embeddings under memory and latency bounds", params: BUILD_INDEX, issue: 4 },
  { name: "tune_index", summary: "Find the search parameters of an existing index under a latency bound", params: TUNE_INDEX, issue: 5 },
  { name: "score_index", summary: "Measure an index: size, latency, reconstruction error and recall against exact neighbours", params: SCORE_INDEX, issue: 5 },
  {
    name: "build_partitioned_indexes", summary: "Build one index per partition folder, big ones split in parts (PySpark in Python)",
    params: BUILD_PARTITIONED_INDEXES,
  },
  // Not in Python: searching one index or the N parts of a split build.
  { name: "search", summary: "Search an index or its N parts for the k nearest neighbours of query vectors (JSON lines)", params: SEARCH },
  // Extensions (not in Python): the phases of a distributed build, for any scheduler.
  { name: "plan_build", summary: "Distributed build, phase 1: train the index and write the plan of S shards (prints S)", params: PLAN_BUILD, issue: 14 },
  { name: "add_shard", summary: "Distributed build, phase 2: add one shard's rows (an array task; --shard or the scheduler's index)", params: ADD_SHARD, issue: 14 },
  { name: "merge_shards", summary: "Distributed build, phase 3: check and merge the shards, tune, write the outputs", params: MERGE_SHARDS, issue: 14 },
];

/** Look a command up by name. */
export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}
