/**
 * The temporary folder T of a distributed build, as the three phase commands see it: where each
 * file is, reading the plan and the done markers, a local scratch folder for S3 downloads, and the
 * check that the input files are still the ones plan_build saw.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertStorageUsable, isS3, readStoredText, storageJoin } from "../io/storage.ts";
import type { InputSnapshot } from "../io/input.ts";
import { DistributedError, type DistributedPlan, parsePlan, PLAN_FILE, type PlanInputFile, shardFiles, TRAINED_INDEX_FILE } from "../plan/shards.ts";

/** Written by merge_shards once the outputs are published: a re-run is then a no-op. */
export const MERGED_FILE = "merged.json";

/**
 * Checks that T can hold a distributed build on this runtime: a local/NFS path or s3:// (Bun).
 * Python's default (an hdfs:// URL) and other schemes are refused by name.
 */
export function checkTemporaryFolder(t: string): void {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(t) && !isS3(t) && !t.startsWith("file://")) {
    throw new DistributedError(
      `temporary_indices_folder: ${t}: only a local or NFS path, or an s3:// URL, is supported (every node must reach it); ` +
        `pass --temporary_indices_folder`,
    );
  }
  assertStorageUsable("temporary_indices_folder", t);
}

/** Locations inside T. */
export function folderPaths(t: string) {
  return {
    plan: storageJoin(t, PLAN_FILE),
    trained: storageJoin(t, TRAINED_INDEX_FILE),
    merged: storageJoin(t, MERGED_FILE),
    shards: storageJoin(t, "shards"),
    shard: (i: number, n: number) => {
      const f = shardFiles(i, n);
      return {
        index: storageJoin(t, f.index), done: storageJoin(t, f.done), ids: storageJoin(t, f.ids),
        indexName: f.index, doneName: f.done, idsName: f.ids,
      };
    },
  };
}

/** The plan in T, or null when T has none. */
export async function readPlanIn(t: string): Promise<DistributedPlan | null> {
  const where = folderPaths(t).plan;
  const text = await readStoredText(where);
  return text === null ? null : parsePlan(text, where);
}

/** The plan in T; a clear error naming the command to run first when there is none. */
export async function requirePlan(t: string, command: string): Promise<DistributedPlan> {
  const plan = await readPlanIn(t);
  if (plan === null) throw new DistributedError(`${command}: ${folderPaths(t).plan} not found: run plan_build with --temporary_indices_folder=${t} first`);
  return plan;
}

/** A local scratch folder for downloads and staged uploads; removed by `dispose`. */
export function scratchFolder(): { path: string; dispose: () => void } {
  const path = mkdtempSync(join(tmpdir(), "autofaiss-shards-"));
  return { path, dispose: () => rmSync(path, { recursive: true, force: true }) };
}

/** The local input files of the plan with the size and mtime plan_build recorded. */
export function planSnapshot(files: readonly PlanInputFile[]): InputSnapshot {
  const out: InputSnapshot["files"] = [];
  for (const f of files) if (f.size !== null && f.mtimeMs !== null) out.push({ path: f.location, size: f.size, mtimeMs: f.mtimeMs });
  return { files: out };
}

/** The first local input among `files` that changed since plan_build, as an error message, or null. */
export function changedSincePlan(files: readonly PlanInputFile[]): string | null {
  for (const f of files) {
    if (f.size === null || f.mtimeMs === null) continue;
    let st;
    try {
      st = statSync(f.location);
    } catch (e) {
      return `embeddings: ${f.location} is gone since plan_build (${(e as Error).message})`;
    }
    if (st.size !== f.size || st.mtimeMs !== f.mtimeMs) {
      return `embeddings: ${f.location} changed since plan_build (size ${f.size} -> ${st.size} bytes, ` +
        `mtime ${new Date(f.mtimeMs).toISOString()} -> ${new Date(st.mtimeMs).toISOString()}); run plan_build again in a new folder`;
    }
  }
  return null;
}
