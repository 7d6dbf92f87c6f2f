/**
 * A local S3-compatible server (the `s3rver` npm package) on 127.0.0.1, for the s3:// storage
 * tests: run under Node in a child process, with one bucket, data in a fresh folder.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The devDependency's entry point; AUTOFAISS_S3RVER names another copy (a node_modules shared with a branch that lacks it). */
const S3RVER = process.env.AUTOFAISS_S3RVER ||
  resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "node_modules", "s3rver", "bin", "s3rver.js");

export interface LocalS3 extends AsyncDisposable {
  endpoint: string;
  bucket: string;
  /** The variables Bun's S3 client (through lib/io/source_remote.ts) reads. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** Starts s3rver with `bucket` on a free port of 127.0.0.1; resolves once it listens. */
export async function startLocalS3(bucket = "autofaiss-test"): Promise<LocalS3> {
  const dir = mkdtempSync(join(tmpdir(), "autofaiss-s3rver-"));
  const child: ChildProcess = spawn("node", [S3RVER, "-d", dir, "-a", "127.0.0.1", "-p", "0", "--silent", "--configure-bucket", bucket], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const port = await new Promise<number>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`s3rver: no "listening" line within 20 s: ${output}`)), 20_000);
    const onData = (b: Buffer) => {
      output += b.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        ok(Number(m[1]));
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("error", (e) => { clearTimeout(timer); fail(new Error(`s3rver: cannot start node ${S3RVER}: ${e.message}`)); });
    child.on("exit", (code) => { clearTimeout(timer); fail(new Error(`s3rver exited with ${code} before listening: ${output}`)); });
  });
  child.removeAllListeners("exit");
  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    endpoint,
    bucket,
    // s3rver accepts these fixed credentials.
    env: { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_REGION: "us-east-1", AWS_ENDPOINT_URL: endpoint },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
