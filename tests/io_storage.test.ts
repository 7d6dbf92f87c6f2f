/** lib/io/storage.ts on a local folder and on a local S3 server (s3rver on 127.0.0.1, Bun); Deno's s3:// refusal. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  assertStorageUsable,
  checksumFile,
  fetchToLocal,
  listStored,
  publishLocalFile,
  readStoredText,
  removeStored,
  removeStoredTree,
  stagingPathFor,
  storageJoin,
  storedSize,
  writeStoredAtomic,
} from "../lib/io/storage.ts";
import { startLocalS3 } from "./helpers/s3.ts";

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
// sha256("abc"), FIPS 180-2 example.
const SHA256_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

/** The same sequence of operations on any storage root; `scratch` is a local folder. */
async function exercise(root: string, scratch: string): Promise<void> {
  assert.equal(await readStoredText(storageJoin(root, "missing.json")), null);
  assert.equal(await storedSize(storageJoin(root, "missing.json")), null);
  assert.deepEqual(await listStored(storageJoin(root, "nothing-here")), []);

  await writeStoredAtomic(storageJoin(root, "plan.json"), '{"a":1}');
  assert.equal(await readStoredText(storageJoin(root, "plan.json")), '{"a":1}');
  assert.equal(await storedSize(storageJoin(root, "plan.json")), 7);

  const target = storageJoin(root, "shards", "shard-0000.index");
  const staged = stagingPathFor(target, scratch);
  writeFileSync(staged, "abc");
  await publishLocalFile(staged, target);
  assert.equal(existsSync(staged), false, "the staged file is moved, not copied");
  await writeStoredAtomic(storageJoin(root, "shards", "shard-0000.done"), "{}");
  assert.deepEqual(await listStored(root), ["plan.json", "shards"]);
  assert.deepEqual(await listStored(storageJoin(root, "shards")), ["shard-0000.done", "shard-0000.index"]);

  const local = await fetchToLocal(target, scratch);
  assert.equal(readFileSync(local.path, "utf8"), "abc");
  assert.deepEqual(await checksumFile(local.path), { bytes: 3, sha256: SHA256_ABC });
  if (local.temporary) rmSync(local.path);

  await removeStored(storageJoin(root, "shards", "shard-0000.done"));
  assert.deepEqual(await listStored(storageJoin(root, "shards")), ["shard-0000.index"]);
  await removeStoredTree(root);
  assert.deepEqual(await listStored(root), []);
}

test("storage on a local folder: atomic writes, a hidden staging name beside the target, list, fetch, remove", async () => {
  const dir = mkdtempSync(join(tmpdir(), "autofaiss-storage-"));
  try {
    const staged = stagingPathFor(join(dir, "t", "x.index"), "/unused");
    assert.equal(dirname(staged), join(dir, "t"));
    assert.match(staged.slice(dirname(staged).length + 1), /^\.x\.index\.tmp-.+-\d+-[0-9a-f]{8}$/);
    await exercise(join(dir, "T"), join(dir, "scratch"));
    // Local storage stages beside the target and never uses the scratch folder.
    assert.deepEqual(readdirSync(dir).sort(), ["t"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("storage on s3:// (Bun's S3 client against s3rver on 127.0.0.1); Deno refuses s3:// with a clear error", async () => {
  if (!isBun) {
    assert.throws(() => assertStorageUsable("temporary_indices_folder", "s3://b/T"), {
      message: "temporary_indices_folder: s3://b/T: s3:// needs Bun's built-in S3 client; run this phase with bun or the compiled autofaiss binary (Deno has no S3 client)",
    });
    await assert.rejects(readStoredText("s3://b/T/plan.json"), /s3:\/\/ needs Bun's built-in S3 client/);
    return;
  }
  await using s3 = await startLocalS3();
  const saved = { ...process.env };
  Object.assign(process.env, s3.env);
  const scratch = mkdtempSync(join(tmpdir(), "autofaiss-storage-s3-"));
  try {
    assertStorageUsable("temporary_indices_folder", `s3://${s3.bucket}/T`);
    await exercise(`s3://${s3.bucket}/runs/T`, scratch);
    assert.deepEqual(readdirSync(scratch), [], "downloads and staged uploads leave nothing in scratch");
  } finally {
    for (const k of Object.keys(s3.env)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    rmSync(scratch, { recursive: true, force: true });
  }
});
