/**
 * Seeded uniform sampling of row indices (pure functions). AutoFaiss trains on the first vectors
 * it reads; we draw a uniform, reproducible sample instead (sampling only the first vectors biases k-means toward the first files), choosing the
 * sorted row numbers first so readers fetch only those rows.
 */

/**
 * A seeded xoshiro128** generator (seeded through splitmix32) returning doubles in [0, 1) with
 * 53 random bits. Same seed, same sequence, on every runtime.
 *
 * @example
 * ```ts
 * const rand = createRng(42); rand(); // 0.7...
 * ```
 */
export function createRng(seed: number): () => number {
  let s = (seed >>> 0) ^ Math.floor(seed / 2 ** 32) * 0x9e3779b9;
  const splitmix32 = (): number => {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix32(), b = splitmix32(), c = splitmix32(), d = splitmix32();
  const next32 = (): number => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };
  return () => ((next32() >>> 5) * 67108864 + (next32() >>> 6)) / 9007199254740992;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Open-addressing set of non-negative integers (< 2^53) in a Float64Array: ~16 bytes per member. */
class IndexSet {
  readonly #slots: Float64Array;
  readonly #mask: number;

  constructor(capacity: number) {
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.#slots = new Float64Array(size).fill(-1);
    this.#mask = size - 1;
  }

  #slot(x: number): number {
    const h = Math.imul((x >>> 0) ^ Math.floor(x / 2 ** 32), 0x9e3779b1);
    return (h ^ (h >>> 15)) & this.#mask;
  }

  /** Insert `x`; false if it was already there. */
  add(x: number): boolean {
    let i = this.#slot(x);
    for (;;) {
      const v = this.#slots[i]!;
      if (v === x) return false;
      if (v === -1) {
        this.#slots[i] = x;
        return true;
      }
      i = (i + 1) & this.#mask;
    }
  }
}

/**
 * `n` distinct row numbers drawn uniformly from `[0, total)`, sorted ascending (Floyd's
 * algorithm: exactly uniform over n-subsets, O(n) draws, memory O(n)). When `n >= total`
 * every row is returned.
 *
 * @example
 * ```ts
 * sampleRowIndices(1_000_000, 3, 7); // Float64Array [ 18211, 402932, 977144 ] (for example)
 * ```
 */
export function sampleRowIndices(total: number, n: number, seed: number): Float64Array {
  if (!Number.isSafeInteger(total) || total < 0) throw new RangeError(`sample: total ${total} is not a row count`);
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`sample: n ${n} is not a row count`);
  if (n >= total) {
    const all = new Float64Array(total);
    for (let i = 0; i < total; i++) all[i] = i;
    return all;
  }
  const rand = createRng(seed);
  const set = new IndexSet(n);
  const out = new Float64Array(n);
  let k = 0;
  for (let j = total - n; j < total; j++) {
    const t = Math.floor(rand() * (j + 1));
    const pick = set.add(t) ? t : j;
    if (pick === j) set.add(j);
    out[k++] = pick;
  }
  return out.sort();
}
