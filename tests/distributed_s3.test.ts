/**
 * What a Kubernetes Indexed Job does, without Kubernetes: plan_build, then a plain shell loop that
 * runs add_shard with JOB_COMPLETION_INDEX set, then merge_shards, with the embeddings and the
 * temporary folder on a local S3 server (s3rver on 127.0.0.1): the processes share only the bucket.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Index } from "../ffi/faiss.ts";
import { writeNpy } from "../lib/io/npy_writer.ts";
import { fetchToLocal, listStored, publishLocalFile, readStoredText } from "../lib/io/storage.ts";
import { clusteredData } from "./helpers/data.ts";
import { runCli } from "./helpers/cli.ts";
import { type LocalS3, startLocalS3 } from "./helpers/s3.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";

describe("three phases by a shell loop with JOB_COMPLETION_INDEX, T and embeddings on s3://", () => {
  const d = 16;
  const N = 12_000;
  const all = clusteredData(N, d, 20, 31);
  const queries = clusteredData(30, d, 20, 32);
  let dir = "";
  let s3: LocalS3 | null = null;
  const saved = { ...process.env };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "autofaiss-s3-phases-"));
    if (!isBun) return;
    s3 = await startLocalS3("phases");
    Object.assign(process.env, s3.env);
    for (let i = 0; i < 3; i++) {
      const local = join(dir, `part-${i}.npy`);
      writeNpy(local, all.subarray((i * N / 3) * d, ((i + 1) * N / 3) * d), d);
      await publishLocalFile(local, `s3://phases/emb/part-${i}.npy`);
    }
  });
  after(async () => {
    for (const k of Object.keys(s3?.env ?? {})) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await s3?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("plan_build, add_shard for i in 0..S-1 with JOB_COMPLETION_INDEX=i, merge_shards; outputs on s3:// too", async () => {
    const t = "s3://phases/runs/T";
    const out = join(dir, "out");
    if (!isBun) {
      const r = await runCli("plan_build", join(dir, "emb"), `--temporary_indices_folder=${t}`, `--index_path=${join(out, "knn.index")}`);
      assert.equal(r.code, 1);
      assert.equal(r.err, `autofaiss plan_build: error: temporary_indices_folder: ${t}: s3:// needs Bun's built-in S3 client; run this phase with bun or the compiled autofaiss binary (Deno has no S3 client)\n`);
      return;
    }
    const script = `
      set -eu
      S=$("$BUN" main.ts plan_build s3://phases/emb --index_key=IVF32,Flat --metric_type=l2 --nb_shards=3 \\
            --temporary_indices_folder="$T" --index_path=s3://phases/out/knn.index --index_infos_path=s3://phases/out/index_infos.json)
      echo "S=$S"
      i=0
      while [ "$i" -lt "$S" ]; do
        JOB_COMPLETION_INDEX=$i "$BUN" main.ts add_shard --temporary_indices_folder="$T"
        i=$((i + 1))
      done
      # an Indexed Job may run an index twice: a no-op
      JOB_COMPLETION_INDEX=1 "$BUN" main.ts add_shard --temporary_indices_folder="$T"
      "$BUN" main.ts merge_shards --temporary_indices_folder="$T"
    `;
    const r = spawnSync("bash", ["-c", script], {
      cwd: ROOT, env: { ...process.env, BUN: process.execPath, T: t }, encoding: "utf8", timeout: 600_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "S=3\n");
    for (let i = 0; i < 3; i++) assert.match(r.stderr, new RegExp(`Shard ${i} of 3 \\(from JOB_COMPLETION_INDEX\\): rows \\[${i * 4000}, ${(i + 1) * 4000}\\)`));
    assert.match(r.stderr, /Shard 1 is already done \(shards\/shard-0001\.done\): nothing to do/);
    assert.deepEqual(await listStored(t), ["merged.json"]);
    assert.deepEqual(await listStored("s3://phases/out"), ["index_infos.json", "knn.index"]);
    const infos = JSON.parse((await readStoredText("s3://phases/out/index_infos.json"))!);
    assert.equal(infos.index_path, "s3://phases/out/knn.index");
    assert.equal(infos["nb vectors"], N);
    const local = await fetchToLocal("s3://phases/out/knn.index", dir);
    assert.equal(infos["size in bytes"], statSync(local.path).size);

    const built = Index.read(local.path);
    const reference = built.clone();
    try {
      reference.reset();
      reference.add(all);
      for (const idx of [built, reference]) idx.ivf()!.nprobe = 8;
      const a = built.search(queries, 10);
      const b = reference.search(queries, 10);
      assert.equal(built.ntotal, N);
      assert.deepEqual(a.labels, b.labels);
      assert.deepEqual(a.distances, b.distances);
    } finally {
      reference.free();
      built.free();
    }
  });
});
