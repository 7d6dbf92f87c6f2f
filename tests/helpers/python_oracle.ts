/** Runs tests/oracle/*.py with Debian's python3-faiss, the independent check that our files are real FAISS indices. */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const PYTHON = "/usr/bin/python3";
const ORACLE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "oracle");

export function assertPythonFaiss(): void {
  try {
    execFileSync(PYTHON, ["-c", "import faiss, numpy"], { stdio: "pipe" });
  } catch {
    throw new Error(`python oracle: ${PYTHON} cannot import faiss and numpy; run tasks/setup.sh (apt-get install python3-faiss python3-numpy)`);
  }
}

export interface OracleSearch {
  ntotal: number;
  d: number;
  metric: number;
  labels: number[][];
  distances: number[][];
}

/** Searches `indexPath` in Python FAISS with `queries` (row-major, dimension d). */
export function pythonSearch(indexPath: string, queries: Float32Array, d: number, k: number, opts: { mmap?: boolean } = {}): OracleSearch {
  const dir = mkdtempSync(join(tmpdir(), "autofaiss-oracle-"));
  try {
    const qPath = join(dir, "queries.f32");
    writeFileSync(qPath, new Uint8Array(queries.buffer, queries.byteOffset, queries.byteLength));
    const args = [join(ORACLE_DIR, "search.py"), indexPath, qPath, String(d), String(k)];
    if (opts.mmap) args.push("--mmap");
    try {
      const out = execFileSync(PYTHON, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 28 });
      return JSON.parse(out) as OracleSearch;
    } catch (e) {
      const stderr = String((e as { stderr?: unknown }).stderr ?? "").trim().split("\n").slice(-3).join("\n");
      const { status, signal } = e as { status?: number; signal?: string };
      throw new Error(`python oracle failed on ${indexPath} (status ${status}, signal ${signal}): ${stderr || (e as Error).message}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function oracleAvailable(): boolean {
  return existsSync(PYTHON);
}

export interface OraclePartIds {
  ntotal: number;
  d: number;
  nlist: number;
  /** every id held in the file's inverted lists, sorted */
  ids: number[];
  /** sha256 of the coarse centroids: equal for parts of one trained index */
  centroids_sha: string;
}

/** Opens each IVF index file in Python FAISS and lists the ids its inverted lists hold. */
export function pythonPartIds(indexPaths: string[]): OraclePartIds[] {
  const out = execFileSync(PYTHON, [join(ORACLE_DIR, "part_ids.py"), ...indexPaths], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 28 });
  return JSON.parse(out) as OraclePartIds[];
}
