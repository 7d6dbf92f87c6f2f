/**
 * Remote byte sources: HTTP(S) range requests (any runtime with fetch) and S3 objects through
 * Bun's built-in S3 client (Bun only: Deno has no built-in S3 client and we add no SDK).
 */
import { describeIoError, EmbeddingReadError } from "./errors.ts";
import type { ByteSource } from "./source.ts";

/**
 * A file served over HTTP(S), read with `Range: bytes=a-b` requests. The server must answer
 * ranges with 206; one that ignores them would make every slice download the whole file.
 */
export class HttpSource implements ByteSource {
  readonly byteLength: number;
  readonly name: string;

  private constructor(url: string, byteLength: number) {
    this.name = url;
    this.byteLength = byteLength;
  }

  /** Learn the size with HEAD (falling back to a 1-byte range GET when HEAD gives no length). */
  static async open(url: string): Promise<HttpSource> {
    let size: number | undefined;
    try {
      const head = await fetch(url, { method: "HEAD" });
      if (head.status === 404 || head.status === 403 || head.status === 401) {
        throw new EmbeddingReadError(`http open: ${url}: status ${head.status} (expected 200)`, { file: url });
      }
      const length = head.ok ? head.headers.get("content-length") : null;
      if (length !== null && /^\d+$/.test(length)) size = Number(length);
      if (size === undefined) {
        const probe = await fetch(url, { headers: { Range: "bytes=0-0" } });
        await probe.body?.cancel();
        const range = probe.headers.get("content-range");
        const total = range?.match(/\/(\d+)$/)?.[1];
        if (probe.status !== 206 || total === undefined) {
          throw new EmbeddingReadError(
            `http open: ${url}: cannot learn the file size (expected Content-Length on HEAD or a 206 range reply, got status ${probe.status})`,
            { file: url },
          );
        }
        size = Number(total);
      }
    } catch (e) {
      if (e instanceof EmbeddingReadError) throw e;
      throw new EmbeddingReadError(`http open: ${url}: request failed (${describeIoError(e)})`, { file: url, cause: e });
    }
    return new HttpSource(url, size);
  }

  async slice(start: number, end: number = this.byteLength): Promise<ArrayBuffer> {
    const stop = Math.min(end, this.byteLength);
    if (stop <= start) return new ArrayBuffer(0);
    let response: Response;
    try {
      response = await fetch(this.name, { headers: { Range: `bytes=${start}-${stop - 1}` } });
    } catch (e) {
      throw new EmbeddingReadError(`http read: ${this.name}: request failed (${describeIoError(e)})`, {
        file: this.name,
        cause: e,
      });
    }
    // 200 is acceptable only when the range is the whole file (servers may then skip the 206).
    const whole = start === 0 && stop === this.byteLength;
    if (response.status !== 206 && !(response.status === 200 && whole)) {
      await response.body?.cancel();
      throw new EmbeddingReadError(
        `http read: ${this.name}: range ${start}-${stop - 1} answered with status ${response.status} (expected 206; the server must support range requests)`,
        { file: this.name },
      );
    }
    const buf = await response.arrayBuffer();
    if (buf.byteLength !== stop - start) {
      throw new EmbeddingReadError(
        `http read: ${this.name}: range ${start}-${stop - 1} returned ${buf.byteLength} bytes (expected ${stop - start})`,
        { file: this.name },
      );
    }
    return buf;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The slice of Bun's S3 API we use (typed here so Deno type-checks this file without bun-types). */
interface BunS3File {
  stat(): Promise<{ size: number }>;
  arrayBuffer(): Promise<ArrayBuffer>;
  stream(): ReadableStream<Uint8Array>;
  slice(start: number, end: number): { arrayBuffer(): Promise<ArrayBuffer> };
}
export interface BunS3Client {
  file(key: string): BunS3File;
  write(key: string, data: Uint8Array | Blob | string): Promise<number>;
  delete(key: string): Promise<void>;
  exists(key: string): Promise<boolean>;
  list(input?: { prefix?: string; continuationToken?: string }): Promise<{
    contents?: { key: string; size?: number }[];
    isTruncated?: boolean;
    nextContinuationToken?: string;
  }>;
}
interface BunGlobal {
  S3Client: new (options: Record<string, string | undefined>) => BunS3Client;
}

function bunRuntime(location: string): BunGlobal {
  const bun = (globalThis as { Bun?: BunGlobal }).Bun;
  if (!bun) {
    throw new EmbeddingReadError(`s3 open: ${location}: s3:// is not supported on this runtime (Deno); use Bun`, {
      file: location,
    });
  }
  return bun;
}

/** Split `s3://bucket/key` into bucket and key. */
export function parseS3Url(location: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(location);
  if (!m) {
    throw new EmbeddingReadError(`s3 open: ${location}: not an s3 URL (expected s3://bucket/key)`, { file: location });
  }
  return { bucket: m[1]!, key: m[2]! };
}

/** Bun's S3 client for `bucket`, configured from the S3_* / AWS_* environment (Bun only). */
export function s3Client(location: string, bucket: string): BunS3Client {
  const bun = bunRuntime(location);
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
  // Bun reads S3_* / AWS_* itself; pass the AWS names explicitly so AWS_ENDPOINT_URL (the AWS CLI
  // spelling, used for MinIO and friends) works too.
  return new bun.S3Client({
    bucket,
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
    sessionToken: env.AWS_SESSION_TOKEN,
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION,
    endpoint: env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL ?? env.AWS_ENDPOINT,
  });
}

/** Open `s3://bucket/key` through Bun's S3 client; a clear error on other runtimes. */
export async function openS3Source(location: string): Promise<ByteSource> {
  const { bucket, key } = parseS3Url(location);
  const file = s3Client(location, bucket).file(key);
  let size: number;
  try {
    size = (await file.stat()).size;
  } catch (e) {
    throw new EmbeddingReadError(`s3 open: ${location}: cannot stat (${describeIoError(e)})`, { file: location, cause: e });
  }
  return {
    byteLength: size,
    name: location,
    async slice(start: number, end: number = size): Promise<ArrayBuffer> {
      try {
        return await file.slice(start, Math.min(end, size)).arrayBuffer();
      } catch (e) {
        throw new EmbeddingReadError(`s3 read: ${location}: range ${start}-${end} failed (${describeIoError(e)})`, {
          file: location,
          cause: e,
        });
      }
    },
    close: () => Promise.resolve(),
  };
}

/** All object URLs under an `s3://bucket/prefix` (paginated listing), each with its size. */
export async function listS3(location: string): Promise<{ url: string; size: number }[]> {
  const { bucket, key } = parseS3Url(location);
  const client = s3Client(location, bucket);
  const prefix = key === "" || key.endsWith("/") ? key : key + "/";
  const out: { url: string; size: number }[] = [];
  let token: string | undefined;
  try {
    do {
      const page = await client.list({ prefix, ...(token ? { continuationToken: token } : {}) });
      for (const obj of page.contents ?? []) out.push({ url: `s3://${bucket}/${obj.key}`, size: obj.size ?? -1 });
      token = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (token);
  } catch (e) {
    throw new EmbeddingReadError(`s3 list: ${location}: cannot list (${describeIoError(e)})`, { file: location, cause: e });
  }
  return out;
}
