/**
 * Float conversions into float32 (the only element type FAISS trains on) and the NaN/Inf scan
 * every batch goes through: one NaN silently poisons k-means, so we refuse it with its location.
 */

/** Exact float32 value of every IEEE-754 binary16 bit pattern (256 KiB, built at load: ~1 ms). */
const F16_TABLE = buildFloat16Table();

function buildFloat16Table(): Float32Array {
  const bits = new Uint32Array(65536);
  const table = new Float32Array(bits.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) {
      // zero and subnormals: mant * 2^-24 is exact in float32
      table[h] = (sign ? -1 : 1) * mant * 2 ** -24;
    } else if (exp === 31) {
      // inf (mant 0) and NaN, payload kept
      bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    } else {
      bits[h] = (sign | ((exp - 15 + 127) << 23) | (mant << 13)) >>> 0;
    }
  }
  return table;
}

/** Convert one binary16 bit pattern to a number (exact). */
export function float16ToNumber(bits: number): number {
  return F16_TABLE[bits & 0xffff]!;
}

/** Convert `src` binary16 values into `out` starting at `outOffset`. */
export function convertFloat16(src: Uint16Array, out: Float32Array, outOffset: number): void {
  const table = F16_TABLE;
  const n = src.length;
  for (let i = 0; i < n; i++) out[outOffset + i] = table[src[i]!]!;
}

/** Convert float64 values into `out` at `outOffset`, rounding to nearest like numpy's astype. */
export function convertFloat64(src: Float64Array, out: Float32Array, outOffset: number): void {
  out.set(src, outOffset);
}

/**
 * Index of the first NaN or ±Inf in `v[from, to)`, or -1. Ranges of at least 16,384 values go to
 * `accelerated` when given: the readers get the native library's SIMD scan (ffi/faiss.ts
 * `nativeNonFiniteScan`, ~40 GB/s against ~8 GB/s here, the difference between a reader at half and
 * at nearly the raw read rate) through their options, so lib/io does not depend on FAISS and no
 * module holds it.
 *
 * A float32 is NaN or ±Inf exactly when its 8 exponent bits are all ones. Adding 0x00800000 to
 * the masked exponent carries into the sign bit only in that case, so the common all-finite
 * range is one branch-free integer pass (unrolled by 8: ~8 GB/s on Bun, ~4.5 GB/s on Deno,
 * versus ~5 GB/s for a float `x * 0` accumulation); only a poisoned range pays for the
 * second, locating pass.
 */
export function firstNonFinite(v: Float32Array, from?: number, to?: number, accelerated?: NonFiniteScan): number {
  // Defaults are resolved here, not as parameter defaults: JavaScriptCore (Bun 1.4.5) runs a
  // loop in a function with default parameters ~8x slower.
  const start = from ?? 0;
  const end = to ?? v.length;
  if (accelerated !== undefined && end - start >= ACCELERATED_MIN) return accelerated(v, start, end);
  return scanNonFinite(v, start, end);
}

/** `(v, from, to)` → index of the first NaN/±Inf in `v[from, to)`, or -1. */
export type NonFiniteScan = (v: Float32Array, from: number, to: number) => number;

// Below this many values the JavaScript loop beats a native call's fixed cost (~1 µs).
const ACCELERATED_MIN = 16384;

/** The JavaScript scan, whatever scan the readers were given (tests compare the two). */
export function firstNonFiniteJs(v: Float32Array, from = 0, to = v.length): number {
  return scanNonFinite(v, from, to);
}

function scanNonFinite(v: Float32Array, from: number, to: number): number {
  const u = new Int32Array(v.buffer, v.byteOffset, v.length);
  const E = 0x7f800000;
  const C = 0x00800000;
  let a0 = 0, a1 = 0;
  let i = from;
  for (; i + 7 < to; i += 8) {
    a0 |= ((u[i]! & E) + C) | ((u[i + 1]! & E) + C) | ((u[i + 2]! & E) + C) | ((u[i + 3]! & E) + C);
    a1 |= ((u[i + 4]! & E) + C) | ((u[i + 5]! & E) + C) | ((u[i + 6]! & E) + C) | ((u[i + 7]! & E) + C);
  }
  for (; i < to; i++) a0 |= (u[i]! & E) + C;
  if ((a0 | a1) >= 0) return -1;
  for (let j = from; j < to; j++) if ((u[j]! & E) === E) return j;
  return -1;
}
