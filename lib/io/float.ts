/**
 * Float conversions into float32 (the only element type FAISS trains on) and the NaN/Inf scan
 * every batch goes through: one NaN silently poisons k-means, so we refuse it with its location.
 */

let f16Table: Float32Array | undefined;

/** Exact float32 value of every IEEE-754 binary16 bit pattern (built once: 256 KiB). */
function float16Table(): Float32Array {
  if (f16Table) return f16Table;
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
  f16Table = table;
  return table;
}

/** Convert one binary16 bit pattern to a number (exact). */
export function float16ToNumber(bits: number): number {
  return float16Table()[bits & 0xffff]!;
}

/** Convert `src` binary16 values into `out` starting at `outOffset`. */
export function convertFloat16(src: Uint16Array, out: Float32Array, outOffset: number): void {
  const table = float16Table();
  const n = src.length;
  for (let i = 0; i < n; i++) out[outOffset + i] = table[src[i]!]!;
}

/** Convert float64 values into `out` at `outOffset`, rounding to nearest like numpy's astype. */
export function convertFloat64(src: Float64Array, out: Float32Array, outOffset: number): void {
  out.set(src, outOffset);
}

/**
 * Index of the first NaN or ±Inf in `v[from, to)`, or -1.
 * `x * 0` is 0 for finite x and NaN otherwise, so the common all-finite case is one branch-free
 * pass; only a poisoned range pays for the second, locating pass.
 */
export function firstNonFinite(v: Float32Array, from = 0, to = v.length): number {
  let acc = 0;
  for (let i = from; i < to; i++) acc += v[i]! * 0;
  if (acc === 0) return -1;
  for (let i = from; i < to; i++) if (!Number.isFinite(v[i]!)) return i;
  return -1;
}
