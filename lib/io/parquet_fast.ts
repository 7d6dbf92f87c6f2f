/**
 * Fast decoder for the one layout that matters for speed: a column chunk of a single-level list
 * of FLOAT or DOUBLE where every row holds exactly `dim` non-null values (what pyarrow, Spark and
 * hyparquet-writer produce for embeddings), in PLAIN or dictionary encoding, data pages v1 or v2.
 *
 * hyparquet decodes such a column into one JS array per row (~50-100 MB/s); this decodes levels
 * and values straight into a Float32Array. Anything else (nulls, ragged rows, other encodings)
 * returns `undefined` and the caller falls back to hyparquet, which also produces the precise
 * error messages for bad rows.
 */

/**
 * Decompressor signature of hyparquet-compressors: (input, uncompressed length) => output. The
 * output may be reused by the next call: each page is fully consumed before the next one.
 */
export type Decompressor = (input: Uint8Array, outputLength: number) => Uint8Array;

/** What the fast path needs to know about a column chunk. */
export interface FastChunk {
  /** Bytes of the whole column chunk (dictionary page, if any, then data pages). */
  bytes: Uint8Array;
  /** Parquet codec name as hyparquet reports it (UNCOMPRESSED, SNAPPY, ZSTD...). */
  codec: string;
  elementType: string;
  /** Max definition / repetition levels of the leaf. */
  maxDef: number;
  maxRep: number;
  rows: number;
  dim: number;
  compressors: Partial<Record<string, Decompressor>>;
  /** Destination to reuse (at least `rows * dim` long); a new array otherwise. */
  out?: Float32Array;
  /** Buffers reused across calls by one reader; fresh ones otherwise. */
  scratch?: DecodeScratch;
}

/**
 * Scratch for levels and dictionary indices, owned by one reader and reused across its calls
 * (decoding is synchronous, so no two calls on it interleave); grown on demand.
 */
export interface DecodeScratch {
  levels: Uint8Array;
  indices: Uint32Array;
}


const PLAIN = 0;
const PLAIN_DICTIONARY = 2;
const RLE = 3;
const RLE_DICTIONARY = 8;

/** Minimal Thrift compact-protocol reader: enough for page headers (fields kept by id). */
class Thrift {
  constructor(readonly b: Uint8Array, public at: number) {}

  varint(): number {
    let result = 0;
    let shift = 1;
    for (;;) {
      const byte = this.b[this.at++]!;
      if (byte === undefined) throw new Error("thrift: truncated varint");
      result += (byte & 0x7f) * shift;
      if (!(byte & 0x80)) return result;
      shift *= 128;
    }
  }

  zigzag(): number {
    const n = this.varint();
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }

  value(type: number): unknown {
    switch (type) {
      case 1: return true;
      case 2: return false;
      case 3: return this.b[this.at++];
      case 4: case 5: case 6: return this.zigzag();
      case 7: this.at += 8; return undefined;
      case 8: { const n = this.varint(); this.at += n; return undefined; }
      case 9: case 10: {
        const head = this.b[this.at++]!;
        const size = head >> 4 === 15 ? this.varint() : head >> 4;
        const out: unknown[] = [];
        for (let i = 0; i < size; i++) out.push(this.value(head & 0x0f));
        return out;
      }
      case 11: {
        const size = this.varint();
        const types = size ? this.b[this.at++]! : 0;
        for (let i = 0; i < size; i++) {
          this.value(types >> 4);
          this.value(types & 0x0f);
        }
        return undefined;
      }
      case 12: return this.struct();
      default: throw new Error(`thrift: unknown type ${type}`);
    }
  }

  struct(): Map<number, unknown> {
    const fields = new Map<number, unknown>();
    let id = 0;
    for (;;) {
      const head = this.b[this.at++];
      if (head === undefined) throw new Error("thrift: truncated struct");
      if (head === 0) return fields;
      const delta = head >> 4;
      id = delta ? id + delta : this.zigzag();
      fields.set(id, this.value(head & 0x0f));
    }
  }
}

/**
 * Decode `count` values of the RLE/bit-packed hybrid encoding (`bitWidth` bits each) from
 * `b[at, end)` into `out`. Returns false if the data runs out.
 */
export function decodeHybrid(b: Uint8Array, at: number, end: number, bitWidth: number, count: number, out: Uint32Array | Uint8Array): boolean {
  const byteWidth = (bitWidth + 7) >> 3;
  const mask = bitWidth === 32 ? 0xffffffff : (1 << bitWidth) - 1;
  let n = 0;
  while (n < count) {
    if (at >= end) return false;
    let header = 0;
    let shift = 1;
    for (;;) {
      const byte = b[at++]!;
      header += (byte & 0x7f) * shift;
      if (!(byte & 0x80)) break;
      shift *= 128;
    }
    if (header % 2 === 0) {
      // RLE run: one value repeated
      const run = header / 2;
      let v = 0;
      for (let i = 0; i < byteWidth; i++) v += b[at++]! * 2 ** (8 * i);
      const stop = Math.min(count, n + run);
      out.fill(v, n, stop);
      n = stop;
    } else {
      // bit-packed groups of 8 values, least significant bit first
      const values = ((header - 1) / 2) * 8;
      const bytes = ((header - 1) / 2) * bitWidth;
      if (at + bytes > end) return false;
      let acc = 0;
      let bits = 0;
      let p = at;
      const stop = Math.min(count, n + values);
      if (bitWidth <= 24) {
        // integer fast path: at most 23 pending bits + 8 new ones stay below bit 31
        for (; n < stop; n++) {
          while (bits < bitWidth) {
            acc |= b[p++]! << bits;
            bits += 8;
          }
          out[n] = acc & mask;
          acc >>>= bitWidth;
          bits -= bitWidth;
        }
      } else {
        for (; n < stop; n++) {
          while (bits < bitWidth) {
            acc += b[p++]! * 2 ** bits;
            bits += 8;
          }
          out[n] = acc % 2 ** bitWidth;
          acc = Math.floor(acc / 2 ** bitWidth);
          bits -= bitWidth;
        }
      }
      at += bytes;
    }
  }
  return true;
}

function bitWidthOf(max: number): number {
  return max === 0 ? 0 : 32 - Math.clz32(max);
}

/** Copy `count` little-endian floats or doubles from `b[at...]` into `out[o...]`. */
function copyValues(b: Uint8Array, at: number, count: number, double: boolean, out: Float32Array, o: number): void {
  const size = double ? 8 : 4;
  // typed views need aligned offsets; page data rarely is, so copy bytes into an aligned buffer first
  if ((b.byteOffset + at) % size === 0) {
    const view = double ? new Float64Array(b.buffer, b.byteOffset + at, count) : new Float32Array(b.buffer, b.byteOffset + at, count);
    out.set(view, o);
  } else if (!double) {
    new Uint8Array(out.buffer, out.byteOffset + o * 4, count * 4).set(b.subarray(at, at + count * 4));
  } else {
    out.set(new Float64Array(b.slice(at, at + count * 8).buffer), o);
  }
}

/**
 * Decode a whole column chunk into `rows * dim` float32 values, or `undefined` if the chunk is
 * not the simple dense layout (the caller then uses the general decoder).
 */
export function decodeFloatListChunk(c: FastChunk): Float32Array | undefined {
  const scratch = c.scratch ?? { levels: new Uint8Array(0), indices: new Uint32Array(0) };
  const double = c.elementType === "DOUBLE";
  if ((c.elementType !== "FLOAT" && !double) || c.maxRep !== 1 || c.dim < 1) return undefined;
  const decompress = c.codec === "UNCOMPRESSED" ? undefined : c.compressors[c.codec];
  if (c.codec !== "UNCOMPRESSED" && !decompress) return undefined;
  const total = c.rows * c.dim;
  const out = c.out && c.out.length >= total ? c.out.subarray(0, total) : new Float32Array(total);
  const defWidth = bitWidthOf(c.maxDef);
  let dictionary: Float32Array | undefined;
  let filled = 0; // values written so far = position in the flattened rows
  const t = new Thrift(c.bytes, 0);
  while (t.at < c.bytes.length && filled <= total) {
    const header = t.struct();
    const type = header.get(1) as number;
    const uncompressed = header.get(2) as number;
    const compressed = header.get(3) as number;
    const start = t.at;
    t.at += compressed;
    if (t.at > c.bytes.length) return undefined;
    const raw = c.bytes.subarray(start, start + compressed);

    if (type === 2) {
      // dictionary page: PLAIN values
      const dph = header.get(7) as Map<number, unknown> | undefined;
      const encoding = dph?.get(2);
      if (!dph || (encoding !== PLAIN && encoding !== PLAIN_DICTIONARY)) return undefined;
      const page = decompress ? decompress(raw, uncompressed) : raw;
      const n = dph.get(1) as number;
      dictionary = new Float32Array(n);
      copyValues(page, 0, n, double, dictionary, 0);
      continue;
    }
    if (type !== 0 && type !== 3) continue; // index pages carry no values

    // level sections and the values section may live in different buffers (v2 keeps levels
    // uncompressed in front of the compressed values)
    let levelBuf: Uint8Array;
    let valueBuf: Uint8Array;
    let numValues: number;
    let encoding: number;
    let repAt: number, repEnd: number, defAt: number, defEnd: number, valuesAt: number;
    if (type === 0) {
      const dph = header.get(5) as Map<number, unknown> | undefined;
      if (!dph || dph.get(3) !== RLE || dph.get(4) !== RLE) return undefined;
      numValues = dph.get(1) as number;
      encoding = dph.get(2) as number;
      const page = decompress ? decompress(raw, uncompressed) : raw;
      const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
      // v1: each level section is prefixed with its 4-byte length
      const repLen = view.getUint32(0, true);
      repAt = 4;
      repEnd = repAt + repLen;
      const defLen = c.maxDef ? view.getUint32(repEnd, true) : 0;
      defAt = repEnd + (c.maxDef ? 4 : 0);
      defEnd = defAt + defLen;
      valuesAt = defEnd;
      levelBuf = valueBuf = page;
    } else {
      const dph = header.get(8) as Map<number, unknown> | undefined;
      if (!dph) return undefined;
      numValues = dph.get(1) as number;
      if ((dph.get(2) as number) !== 0) return undefined; // nulls: general path
      encoding = dph.get(4) as number;
      const defLen = dph.get(5) as number;
      const repLen = dph.get(6) as number;
      const isCompressed = dph.get(7) !== false;
      const levelBytes = repLen + defLen;
      levelBuf = raw;
      valueBuf = isCompressed && decompress
        ? decompress(raw.subarray(levelBytes), uncompressed - levelBytes)
        : raw.subarray(levelBytes);
      repAt = 0;
      repEnd = repLen;
      defAt = repLen;
      defEnd = levelBytes;
      valuesAt = 0;
    }
    if (filled + numValues > total) return undefined;
    if (scratch.levels.length < numValues) scratch.levels = new Uint8Array(numValues);
    const levels = scratch.levels;
    // definition levels: every value must be present (no null list, empty list or null element)
    if (c.maxDef) {
      if (!decodeHybrid(levelBuf, defAt, defEnd, defWidth, numValues, levels)) return undefined;
      for (let i = 0; i < numValues; i++) if (levels[i] !== c.maxDef) return undefined;
    }
    // repetition levels: a new row (0) exactly every `dim` values, continuation (1) otherwise
    if (!decodeHybrid(levelBuf, repAt, repEnd, 1, numValues, levels)) return undefined;
    for (let i = 0, pos = filled % c.dim; i < numValues; i++) {
      if (levels[i] !== (pos === 0 ? 0 : 1)) return undefined;
      if (++pos === c.dim) pos = 0;
    }
    if (encoding === PLAIN) {
      if (valuesAt + numValues * (double ? 8 : 4) > valueBuf.length) return undefined;
      copyValues(valueBuf, valuesAt, numValues, double, out, filled);
    } else if ((encoding === RLE_DICTIONARY || encoding === PLAIN_DICTIONARY) && dictionary) {
      const width = valueBuf[valuesAt]!;
      if (width > 32) return undefined;
      if (scratch.indices.length < numValues) scratch.indices = new Uint32Array(numValues);
      const indices = scratch.indices;
      if (!decodeHybrid(valueBuf, valuesAt + 1, valueBuf.length, width, numValues, indices)) return undefined;
      for (let i = 0; i < numValues; i++) {
        const v = dictionary[indices[i]!];
        if (v === undefined) return undefined;
        out[filled + i] = v;
      }
    } else {
      return undefined;
    }
    filled += numValues;
  }
  return filled === total ? out : undefined;
}
