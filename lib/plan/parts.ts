/**
 * N-part indices as pure decisions: how parts are named, which rows each part holds, and how the
 * files a set of parts is (the merge of their search results is lib/measure/merge_parts.ts).
 * Shared by `build_index --nb_indices_to_keep N` (writing parts) and `search` (reading them).
 *
 * Naming follows the AutoFaiss README (`knn.index01 … knn.indexNN`, 1-based, zero-padded to the
 * width of N with at least two digits). Python's Spark code names them 0-based with
 * floor(log10 N)+1 digits (`knn.index0`, `knn.index1` for N = 2); the README names are the
 * documented interface, so we write those.
 */

/** Smallest number of digits in a part suffix: the README's example starts at `01`. */
export const MIN_PART_DIGITS = 2;

/**
 * Suffix of part `i` (0-based) of `n`: 1-based, zero-padded to the width of n, at least two digits.
 *
 * @example partSuffix(0, 3) === "01"; partSuffix(9, 10) === "10"; partSuffix(0, 100) === "001"
 */
export function partSuffix(i: number, n: number): string {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`parts: number of parts must be an integer >= 1, got ${n}`);
  if (!Number.isSafeInteger(i) || i < 0 || i >= n) throw new RangeError(`parts: part index must be in [0, ${n}), got ${i}`);
  return String(i + 1).padStart(Math.max(MIN_PART_DIGITS, String(n).length), "0");
}

/** The N file names `base + suffix`, in part order. */
export function partPaths(base: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => base + partSuffix(i, n));
}

/** Rows `[start, end)` of one part: its vectors carry the global ids start … end−1. */
export interface RowRange {
  start: number;
  end: number;
}

/**
 * Splits `count` rows into `n` contiguous ranges, the first `count % n` one row larger (Python's
 * `_batch_loader`: `q, r = divmod(count, n)`; range b = `[q·b + min(b, r), q·(b+1) + min(b+1, r))`).
 * Ranges are non-empty when count ≥ n; use {@link effectivePartCount} first.
 *
 * @example partRanges(7, 3) // [{start:0,end:3},{start:3,end:5},{start:5,end:7}]
 */
export function partRanges(count: number, n: number): RowRange[] {
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`parts: row count must be an integer >= 0, got ${count}`);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`parts: number of parts must be an integer >= 1, got ${n}`);
  const q = Math.floor(count / n);
  const r = count % n;
  return Array.from({ length: n }, (_, b) => ({ start: q * b + Math.min(b, r), end: q * (b + 1) + Math.min(b + 1, r) }));
}

/**
 * Parts actually written for `requested` parts of `count` rows: never more parts than rows (an
 * empty part would be an empty index file), as Python caps `nb_indices_to_keep` at its batch count.
 */
export function effectivePartCount(count: number, requested: number): number {
  return Math.max(1, Math.min(requested, count));
}

/**
 * Which files make up `base`, given the names present in its folder:
 * - `{ kind: "single" }` when `base` itself is a file (it wins over parts);
 * - `{ kind: "parts", paths }` when `base01 …` exist: N = the count of `base` + digits names,
 *   and every suffix of 1 … N at the width N implies must be there;
 * - an error message naming the missing part or the unexpected name otherwise.
 *
 * `names` are the entries of base's folder; `baseName` is base's last path component.
 * A trailing part that was deleted cannot be detected from names alone (N−1 parts are a valid set).
 */
export function resolvePartNames(
  baseName: string,
  names: readonly string[],
): { kind: "single" } | { kind: "parts"; suffixes: string[] } | { kind: "error"; message: string } {
  if (names.includes(baseName)) return { kind: "single" };
  const suffixes = names
    .filter((name) => name.length > baseName.length && name.startsWith(baseName) && /^\d+$/.test(name.slice(baseName.length)))
    .map((name) => name.slice(baseName.length));
  if (suffixes.length === 0) return { kind: "error", message: `no file ${baseName} and no parts ${baseName}01 …` };
  const n = suffixes.length;
  const expected = Array.from({ length: n }, (_, i) => partSuffix(i, n));
  const present = new Set(suffixes);
  const missing = expected.filter((s) => !present.has(s));
  if (missing.length > 0) {
    const found = suffixes.slice().sort().map((s) => baseName + s).join(", ");
    return { kind: "error", message: `${baseName}${missing[0]} is missing (parts found: ${found}; expected ${baseName}${expected[0]} … ${baseName}${expected[n - 1]})` };
  }
  return { kind: "parts", suffixes: expected };
}
