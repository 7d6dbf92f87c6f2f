/**
 * The one error class of the embedding readers.
 *
 * Every malformed or unreadable input becomes an `EmbeddingReadError` whose message follows the
 * house format `"<subsystem> <what>: <file>: <detail, expected X, got Y>"` and whose fields let
 * the CLI (or a caller) point at the culprit without parsing the message.
 */

/** Where an embedding input went wrong. */
export interface EmbeddingReadErrorInfo {
  /** The file (or URL, or the list of input paths for collection-level errors). */
  file: string;
  /** 0-based row inside `file`, when one row is at fault. */
  row?: number;
  /** Parquet column name, when one column is at fault. */
  column?: string;
  /** The underlying error (I/O or parser), kept for `--verbose` stacks. */
  cause?: unknown;
}

/**
 * A clear, located error about embedding input.
 *
 * @example
 * ```ts
 * try { await openCollection("embs/", { fileFormat: "npy" }); }
 * catch (e) { if (e instanceof EmbeddingReadError) console.error(e.message, e.file, e.row); }
 * ```
 */
export class EmbeddingReadError extends Error {
  readonly file: string;
  readonly row?: number;
  readonly column?: string;

  constructor(message: string, info: EmbeddingReadErrorInfo) {
    super(message, info.cause === undefined ? undefined : { cause: info.cause });
    this.name = "EmbeddingReadError";
    this.file = info.file;
    if (info.row !== undefined) this.row = info.row;
    if (info.column !== undefined) this.column = info.column;
  }
}

/** Fixed wording per errno code, so messages are identical under Bun and Deno (their texts differ). */
const IO_CODES: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a directory",
  ENOTDIR: "not a directory",
  EMFILE: "too many open files",
  EIO: "input/output error",
  ELOOP: "too many levels of symbolic links",
};

/**
 * Describe an I/O failure from node:fs (or fetch) as `"CODE: text"` without the file path,
 * which the caller's message already names.
 */
export function describeIoError(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown };
  const code = typeof err?.code === "string" ? err.code : undefined;
  if (code && IO_CODES[code]) return `${code}: ${IO_CODES[code]}`;
  const message = typeof err?.message === "string" ? err.message : String(e);
  return code ? `${code}: ${message}` : message;
}
