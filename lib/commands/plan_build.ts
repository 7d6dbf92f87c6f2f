/**
 * `plan_build`, phase 1 of a distributed build: read the headers, select the key among the
 * memory-mappable (IVF) families as Python does for distributed builds, train on a uniform sample,
 * then write into the shared folder T the trained empty index and `plan.json` (inputs with sizes
 * and mtimes, shard row ranges, key, every option, a content hash). plan.json is written last: a
 * folder with a plan has a trained index. Re-running with the same inputs and options is a no-op.
 *
 * @example
 * const { plan } = await planDistributedBuild("embeddings/", { temporaryIndicesFolder: "/nfs/T", indexPath: "/nfs/out/knn.index", indexInfosPath: "/nfs/out/infos.json" });
 * plan.shards.length; // S
 */
import { statSync } from "node:fs";
import { Index, nativeNonFiniteScan } from "../../ffi/faiss.ts";
import { openEmbeddings } from "../io/input.ts";
import {
  assertStorageUsable,
  checksumFile,
  isS3,
  listStored,
  publishLocalFile,
  readStoredText,
  removeStored,
  stagingPathFor,
  writeStoredAtomic,
} from "../io/storage.ts";
import {
  checkBuildOptions,
  checkOutputPaths,
  chooseIndexKey,
  completePlan,
  creationMemory,
  planMemoryBudgets,
} from "../plan/build_plan.ts";
import {
  canonicalJson,
  checkShardCount,
  defaultShardCount,
  DistributedError,
  type DistributedPlan,
  type DistributedPlanBody,
  parsePlan,
  PLAN_FORMAT,
  PLAN_VERSION,
  type PlanInputFile,
  sealPlan,
  shardLayout,
  TRAINED_INDEX_FILE,
} from "../plan/shards.ts";
import { type BuildReporter, silentReporter } from "../reporter.ts";
import { assertWritable, type BuildIndexOptions, buildSettings, createTrainedIndex, isUrl, openOptions } from "./build_index.ts";
import { withFaissThreads } from "./faiss_threads.ts";
import { checkTemporaryFolder, folderPaths, scratchFolder } from "./shard_folder.ts";

export interface PlanBuildOptions extends BuildIndexOptions {
  /** The shared folder: local/NFS path or s3:// URL. */
  temporaryIndicesFolder: string;
  /** null/undefined: {@link defaultShardCount} */
  nbShards?: number | null;
}

/** The local/remote input files as the plan records them. */
function planInputs(files: readonly { location: string; rows: number; startRow: number }[]): PlanInputFile[] {
  return files.map((f) => {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(f.location)) return { location: f.location, rows: f.rows, startRow: f.startRow, size: null, mtimeMs: null };
    const st = statSync(f.location);
    return { location: f.location, rows: f.rows, startRow: f.startRow, size: st.size, mtimeMs: st.mtimeMs };
  });
}

/** What must match for an existing plan to be this request's: everything but the trained index. */
function request(body: Omit<DistributedPlanBody, "trained">): string {
  return canonicalJson(body);
}

/**
 * Plans and trains a distributed build; returns the plan and whether T already held it (a re-run).
 * FAISS's thread count is set to `nbCores` for the training and restored afterwards.
 */
export async function planDistributedBuild(
  embeddings: string | string[],
  options: PlanBuildOptions,
): Promise<{ plan: DistributedPlan; reused: boolean }> {
  const log: BuildReporter = options.reporter ?? silentReporter;
  const t = options.temporaryIndicesFolder;
  checkTemporaryFolder(t);
  // Python forces memory-mappable keys for distributed builds: IVF inverted lists can be merged.
  const s = buildSettings({ ...options, shouldBeMemoryMappable: true });
  const metric = checkBuildOptions(s);
  checkOutputPaths(s);
  if (!s.saveOnDisk) throw new DistributedError("save_on_disk: a distributed build publishes its outputs from merge_shards (save_on_disk must be true)");
  // As a local build: id columns without ids_path write no mapping (said out loud).
  const idColumns = options.idColumns?.length && s.idsPath ? options.idColumns : null;
  if (options.idColumns?.length && !s.idsPath) log.error("id_columns is set but ids_path is not: the ids mapping will not be written");
  checkOutputLocations(s.indexPath!, s.indexInfosPath!, options.idColumns?.length ? s.idsPath : null);
  const budgets = planMemoryBudgets(s);
  for (const note of budgets.notes) log.info(note);
  const paths = folderPaths(t);

  return await withFaissThreads(s.nbCores ?? 0, async () => {
    await using embs = await log.timed("Reading total number of vectors and dimension", 0, () =>
      openEmbeddings(embeddings, { ...openOptions({ ...options, idColumns }), nonFiniteScan: nativeNonFiniteScan() }));
    const data = { count: embs.count, dimension: embs.dimension };
    log.info(`There are ${data.count} embeddings of dim ${data.dimension}`);
    const indexKey = chooseIndexKey(s, budgets, data);
    assertMergeable(indexKey, data.dimension, metric);
    const needed = creationMemory(s, budgets, indexKey, data);
    const full = completePlan(s, budgets, data, indexKey, needed);
    // The parts a local build would write (at most one per vector), each merged from whole shards.
    const nbParts = full.parts.length;
    const nbShards = options.nbShards == null ? defaultShardCount(data.count, nbParts) : checkShardCount(options.nbShards, data.count, nbParts);
    const { shards, partShards } = shardLayout(full.parts.map((p) => p.rows), nbShards);
    const parts = full.parts.map((p, i) => ({ indexPath: p.indexPath!, indexInfosPath: p.indexInfosPath!, rows: p.rows, shards: partShards[i] }));
    // Each shard's machine holds one shard's index and a batch: its batch size follows from that.
    const largest = Math.max(...shards.map((r) => r.end - r.start));
    const perShard = completePlan({ ...s, nbIndicesToKeep: 1 }, budgets, { count: largest, dimension: data.dimension }, indexKey, needed);
    const body: Omit<DistributedPlanBody, "trained"> = {
      format: PLAN_FORMAT,
      version: PLAN_VERSION,
      inputs: {
        fileFormat: options.fileFormat ?? "npy",
        embeddingColumnName: options.embeddingColumnName ?? null,
        idColumns,
        count: data.count,
        dimension: data.dimension,
        files: planInputs(embs.files),
      },
      indexKey,
      metricType: metric,
      settings: { ...s, indexKey },
      adding: { readBatchRows: perShard.adding.readBatchRows, addCallRows: perShard.adding.addCallRows },
      shards,
      parts,
    };

    const existingText = await readStoredText(paths.plan);
    if (existingText !== null) {
      const existing = parsePlan(existingText, paths.plan);
      const { trained: _trained, hash: _hash, ...rest } = existing;
      if (request(rest) === request(body)) {
        log.info(`${paths.plan} already holds this plan (${nbShards} shards, hash ${existing.hash.slice(0, 12)}…): nothing to do`);
        return { plan: existing, reused: true };
      }
      throw new DistributedError(
        `temporary_indices_folder: ${paths.plan} is the plan of another build (hash ${existing.hash.slice(0, 12)}…: other inputs or options); ` +
          `remove ${t} or choose another folder`,
      );
    }
    const leftovers = (await listStored(paths.shards)).filter((n) => !n.startsWith("."));
    if (leftovers.length > 0) {
      throw new DistributedError(`temporary_indices_folder: ${paths.shards} holds ${leftovers[0]} but ${t} has no plan.json; remove ${t} or choose another folder`);
    }

    // A finished build's marker would make merge_shards skip this new plan.
    await removeStored(paths.merged);
    log.info(`Distributed build: ${nbShards} shards of at most ${largest} vectors, index ${indexKey}` + (nbParts > 1 ? `, ${nbParts} parts` : ""));
    const index = await log.timed("Creating the index", 1, () => createTrainedIndex(full, s, embs, log));
    const scratch = scratchFolder();
    try {
      const staged = stagingPathFor(paths.trained, scratch.path);
      index.write(staged);
      const sum = await checksumFile(staged);
      await publishLocalFile(staged, paths.trained);
      const plan = sealPlan({ ...body, trained: { file: TRAINED_INDEX_FILE, ...sum } });
      await writeStoredAtomic(paths.plan, JSON.stringify(plan, null, 2) + "\n");
      log.info(`Wrote ${paths.trained} and ${paths.plan}: run add_shard for shards 0..${nbShards - 1}, then merge_shards`);
      return { plan, reused: false };
    } finally {
      index.free();
      scratch.dispose();
    }
  });
}

/**
 * The outputs are all local/NFS paths (checked writable now, as build_index does) or all s3:// URLs
 * (merge_shards uploads them; Bun only).
 */
function checkOutputLocations(indexPath: string, infosPath: string, idsPath: string | null): void {
  const outputs = [["index_path", indexPath], ["index_infos_path", infosPath], ...(idsPath ? [["ids_path", idsPath]] : [])] as const;
  const remote = outputs.filter(([, p]) => isUrl(p));
  for (const [option, path] of remote) {
    if (!isS3(path)) throw new DistributedError(`${option}: ${path}: outputs go to a local or NFS path or to s3:// (expected one of those)`);
    assertStorageUsable(option, path);
  }
  if (remote.length > 0 && remote.length < outputs.length) {
    throw new DistributedError(`${outputs.map(([o]) => o).join(", ")}: either all on s3:// or all local, got ${outputs.map(([o, p]) => `${o}=${p}`).join(", ")}`);
  }
  if (remote.length === 0) for (const [option, path] of outputs) assertWritable(option, path);
}

/** Shards are merged through IVF inverted lists: a key without an IVF layer is refused before training. */
function assertMergeable(indexKey: string, d: number, metric: "ip" | "l2"): void {
  const probe = Index.factory(d, indexKey, metric);
  try {
    if (probe.ivf() === null) {
      throw new DistributedError(
        `index_key: distributed builds merge IVF inverted lists, and ${indexKey} has no IVF layer (for a flat index use IVF1,Flat, as Python AutoFaiss advises)`,
      );
    }
  } finally {
    probe.free();
  }
}
