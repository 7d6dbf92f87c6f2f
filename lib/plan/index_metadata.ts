/**
 * What a FAISS factory key means for memory: key parsing, index-size and training-memory models.
 *
 * Two models live here:
 * - the Python AutoFaiss 2.18.0 model, reproduced exactly, so its selection table and memory
 *   pre-check examples stay checkable;
 * - our corrected model of the serialised FAISS index, which fixes the estimate bugs of Python's model (listed at {@link estimatedIndexSizeBytes}).
 *   Each fix is documented where it is applied (old formula → new formula → why).
 * Pure functions, no I/O, no FAISS.
 */

import { baseDim, type FactoryCodec, type FactoryKey, type FactoryTransform, parseFactoryKey, type SqType, transformOutD } from "./factory_key.ts";

// ---------------------------------------------------------------------------------------------
// Constants

/** Bytes of a float32 component (FAISS computes in float32). */
const FLOAT_BYTES = 4;
/** Bytes of a FAISS `idx_t` (int64): inverted-list ids and direct-map entries. */
const ID_BYTES = 8;
/** Bytes of an HNSW neighbour id (`storage_idx_t` = int32) and of a `levels` entry (int). */
const HNSW_LINK_BYTES = 4;
/** Bytes of an HNSW `offsets` entry (size_t) and of a serialised vector-length prefix. */
const SIZE_T_BYTES = 8;
/** Default PQ bits per sub-quantizer when the key omits `x<bits>` (metadata.py: "default value"). */
const DEFAULT_PQ_NBITS = 8;
/** FAISS fast-scan block size `bbs`: codes are packed by blocks of 32 vectors (IndexPQFastScan). */
const FAST_SCAN_BLOCK = 32;
/** Fast-scan PQ always uses 4-bit sub-quantizers (`PQ{m}x4fs`). */
const FAST_SCAN_NBITS = 4;
/** OPQ training subsamples at most 256·256 vectors (metadata.py, faiss OPQMatrix::train). */
export const OPQ_MAX_TRAIN = 256 * 256;
/** Training-memory safety factor on the training vectors ("TODO: remove x1.5"). */
const TRAIN_VECTORS_FACTOR = 1.5;
/** Training memory assumed for families the model does not know (Python: 500,000,000). */
const UNSUPPORTED_TRAINING_BYTES = 500_000_000;

// ---------------------------------------------------------------------------------------------
// Python AutoFaiss model, reproduced bug for bug.

/** Index families of Python `IndexMetadata`. */
export type PythonIndexType =
  | "FLAT"
  | "HNSW"
  | "IVF_FLAT"
  | "OPQ_IVF_PQ"
  | "OPQ_IVF_HNSW_PQ"
  | "PAD_IVF_HNSW_PQ"
  | "NOT_SUPPORTED";

/** A key as Python `IndexMetadata` understands it: the type and the parameters it reads. */
export interface PythonIndexKey {
  type: PythonIndexType;
  /** M_OPQ, out_d, ncentroids, M_HNSW, pq, nbits — only those the type defines. */
  params: {
    mOpq?: number;
    outD?: number;
    ncentroids?: number;
    mHnsw?: number;
    pq?: number;
    nbits?: number;
  };
}

/**
 * Classify a key exactly like Python AutoFaiss: all integers of the key are extracted in
 * order and the first regex that matches *anywhere* in the key decides the type. Reproduces its
 * misclassifications (e.g. `IVF4096_HNSW32,Flat` is HNSW with M = 4096).
 *
 * @example parsePythonIndexKey("OPQ256_768,IVF65536_HNSW32,PQ256x8").type === "OPQ_IVF_HNSW_PQ"
 */
export function parsePythonIndexKey(key: string): PythonIndexKey {
  const ints = (key.match(/\d+/g) ?? []).map(Number);
  if (/OPQ\d+_\d+,IVF\d+,PQ\d+/.test(key)) {
    return {
      type: "OPQ_IVF_PQ",
      params: {
        mOpq: ints[0],
        outD: ints[1],
        ncentroids: ints[2],
        pq: ints[3],
        nbits: ints.length === 5 ? ints[4] : DEFAULT_PQ_NBITS,
      },
    };
  }
  if (/OPQ\d+_\d+,IVF\d+_HNSW\d+,PQ\d+/.test(key)) {
    return {
      type: "OPQ_IVF_HNSW_PQ",
      params: {
        mOpq: ints[0],
        outD: ints[1],
        ncentroids: ints[2],
        mHnsw: ints[3],
        pq: ints[4],
        nbits: ints.length === 6 ? ints[5] : DEFAULT_PQ_NBITS,
      },
    };
  }
  if (/Pad\d+,IVF\d+_HNSW\d+,PQ\d+/.test(key)) {
    return {
      type: "PAD_IVF_HNSW_PQ",
      params: {
        outD: ints[0],
        ncentroids: ints[1],
        mHnsw: ints[2],
        pq: ints[3],
        nbits: ints.length === 5 ? ints[4] : DEFAULT_PQ_NBITS,
      },
    };
  }
  // Python takes the FIRST integer of the key as M (a Python bug, kept here on purpose).
  if (/HNSW\d+/.test(key)) return { type: "HNSW", params: { mHnsw: ints[0] } };
  if (/IVF\d+,Flat/.test(key)) return { type: "IVF_FLAT", params: { ncentroids: ints[0] } };
  if (key === "Flat") return { type: "FLAT", params: {} };
  return { type: "NOT_SUPPORTED", params: {} };
}

/**
 * Python `IndexMetadata(key, n, d, make_direct_map).estimated_index_size_in_bytes()`,
 * exact, including its known under-estimates; -1 for unsupported keys, as in Python.
 * Use it for Python-compatible selection and to check Python's selection table; use
 * {@link estimatedIndexSizeBytes} for decisions.
 *
 * @example pythonEstimatedIndexSizeBytes("HNSW32", 100000, 128) === 76800000
 */
export function pythonEstimatedIndexSizeBytes(key: string, n: number, d: number, makeDirectMap = false): number {
  const { type, params: p } = parsePythonIndexKey(key);
  const directMap = makeDirectMap ? ID_BYTES * n : 0;
  switch (type) {
    case "FLAT":
      return n * d * FLOAT_BYTES;
    case "HNSW":
      return n * d * FLOAT_BYTES + n * p.mHnsw! * 2 * HNSW_LINK_BYTES;
    case "IVF_FLAT":
      return directMap + n * d * FLOAT_BYTES + p.ncentroids! * d * FLOAT_BYTES;
    case "OPQ_IVF_PQ":
    case "OPQ_IVF_HNSW_PQ":
    case "PAD_IVF_HNSW_PQ": {
      const codeSize = Math.ceil((p.pq! * p.nbits!) / 8);
      let total = directMap + n * (codeSize + ID_BYTES) + p.ncentroids! * d * FLOAT_BYTES;
      if (type !== "OPQ_IVF_PQ") total += p.ncentroids! * p.mHnsw! * 2 * HNSW_LINK_BYTES;
      if (type !== "PAD_IVF_HNSW_PQ") total += p.mOpq! * p.outD! * FLOAT_BYTES;
      return total;
    }
    default:
      return -1;
  }
}

/** OPQ training working set of Python `_get_opq_training_memory_usage_in_bytes`. */
function opqTrainingBytes(d: number, outD: number, mOpq: number, t: number): number {
  const n = Math.min(OPQ_MAX_TRAIN, t);
  const dMax = Math.max(d, outD);
  const xproj = outD * n;
  const pqRecons = outD * n;
  const xxr = dMax * n;
  const tmp = dMax * dMax * 4;
  // Same evaluation order as Python so float results are bit-identical.
  return (xproj + pqRecons + xxr + tmp) * 4.0 + mOpq * n * 1.0;
}

/**
 * Python `compute_memory_necessary_for_training(t)`, exact, with Python's key
 * classification (so `IVFc_HNSWm,Flat` counts as HNSW → 0).
 *
 * @example pythonTrainingMemoryBytes("IVF16384,Flat", 512, 100) === 1.5 * 4 * 512 * 100 + 4 * 16384 * 512
 */
export function pythonTrainingMemoryBytes(key: string, d: number, t: number): number {
  const { type, params: p } = parsePythonIndexKey(key);
  switch (type) {
    case "FLAT":
    case "HNSW":
      return 0;
    case "NOT_SUPPORTED":
      return UNSUPPORTED_TRAINING_BYTES;
    default:
      return trainingTerms(d, t, {
        opq: type === "OPQ_IVF_PQ" || type === "OPQ_IVF_HNSW_PQ" ? { mOpq: p.mOpq!, outD: p.outD! } : undefined,
        ncentroids: p.ncentroids,
        quantizerHnswM: type === "OPQ_IVF_HNSW_PQ" || type === "PAD_IVF_HNSW_PQ" ? p.mHnsw : undefined,
        pqCodeBytes: p.pq === undefined ? undefined : Math.ceil((p.pq * p.nbits!) / 8),
      });
  }
}

/** Sum of the training-memory terms, in Python's order: 1.5·V(t) + OPQ(t) + IVF + IVFHNSW + PQ. */
function trainingTerms(
  d: number,
  t: number,
  parts: { opq?: { mOpq: number; outD: number }; ncentroids?: number; quantizerHnswM?: number; pqCodeBytes?: number },
): number {
  let total = 4.0 * d * t * TRAIN_VECTORS_FACTOR;
  if (parts.opq) total += opqTrainingBytes(d, parts.opq.outD, parts.opq.mOpq, t);
  if (parts.ncentroids !== undefined) {
    const c = parts.ncentroids;
    total += 4.0 * c * d;
    if (parts.quantizerHnswM !== undefined) total += c * d * FLOAT_BYTES + c * parts.quantizerHnswM * 2 * HNSW_LINK_BYTES;
  }
  if (parts.pqCodeBytes !== undefined) total += parts.pqCodeBytes;
  return total;
}

// ---------------------------------------------------------------------------------------------
// Corrected model: parse the factory key structurally.

/** Index families our corrected model knows. */
export type IndexFamily = "FLAT" | "HNSW_FLAT" | "IVF_FLAT" | "IVF_PQ" | "PQ" | "UNSUPPORTED";

/** A vector transform in front of the index (`OPQm[_y],` or `Padz,`). */
export type KeyTransform = { kind: "OPQ"; m: number; outD?: number } | { kind: "Pad"; outD: number };

/** Product-quantizer part of a key (`PQm`, `PQmxb`, `PQmx4fs`, `PQmx4fsr`). */
export interface KeyPq {
  m: number;
  nbits: number;
  fastScan: boolean;
}

/** A factory key as our corrected model understands it. */
export interface ParsedIndexKey {
  key: string;
  family: IndexFamily;
  transform?: KeyTransform;
  /** HNSW graph degree M of an `HNSWm` index (family HNSW_FLAT). */
  hnswM?: number;
  /** Number of inverted lists of an `IVFc…` index. */
  ncentroids?: number;
  /** HNSW degree of the coarse quantizer in `IVFc_HNSWm,…`. */
  quantizerHnswM?: number;
  pq?: KeyPq;
}

const RE_OPQ = /^OPQ(\d+)(?:_(\d+))?$/;
const RE_PAD = /^Pad(\d+)$/;
const RE_HNSW = /^HNSW(\d+)$/;
const RE_IVF = /^IVF(\d+)(?:_HNSW(\d+))?$/;
const RE_PQ = /^PQ(\d+)(?:x(\d+))?$/;
const RE_PQ_FAST_SCAN = /^PQ(\d+)x4fsr?$/;

function parsePq(part: string | undefined): KeyPq | undefined {
  if (part === undefined) return undefined;
  let m = RE_PQ_FAST_SCAN.exec(part);
  if (m) return { m: Number(m[1]), nbits: FAST_SCAN_NBITS, fastScan: true };
  m = RE_PQ.exec(part);
  if (m) return { m: Number(m[1]), nbits: m[2] === undefined ? DEFAULT_PQ_NBITS : Number(m[2]), fastScan: false };
  return undefined;
}

/**
 * Parse a factory key structurally: `[OPQm[_y],|Padz,]` then one of `Flat`, `HNSWm[,Flat]`,
 * `IVFc[_HNSWm],Flat`, `IVFc[_HNSWm],PQm[xb|x4fs|x4fsr]`, `PQm[xb|x4fs]`. Anything else is
 * UNSUPPORTED (size unknown). Unlike Python, `IVFc_HNSWm,Flat` is an IVF-Flat with an HNSW
 * coarse quantizer (Python takes it for M) and `OPQm` without `_y` keeps the input dimension.
 *
 * @example parseIndexKey("IVF4096_HNSW32,Flat") // { family: "IVF_FLAT", ncentroids: 4096, quantizerHnswM: 32 }
 */
export function parseIndexKey(key: string): ParsedIndexKey {
  const parts = key.split(",");
  const unsupported: ParsedIndexKey = { key, family: "UNSUPPORTED" };
  let transform: KeyTransform | undefined;
  const opq = RE_OPQ.exec(parts[0]);
  const pad = RE_PAD.exec(parts[0]);
  if (opq) transform = { kind: "OPQ", m: Number(opq[1]), outD: opq[2] === undefined ? undefined : Number(opq[2]) };
  else if (pad) transform = { kind: "Pad", outD: Number(pad[1]) };
  const body = transform ? parts.slice(1) : parts;
  const base = transform ? { key, transform } : { key };

  if (body.length === 1 && body[0] === "Flat") return { ...base, family: "FLAT" };
  const hnsw = RE_HNSW.exec(body[0] ?? "");
  if (hnsw && (body.length === 1 || (body.length === 2 && body[1] === "Flat"))) {
    return { ...base, family: "HNSW_FLAT", hnswM: Number(hnsw[1]) };
  }
  const ivf = RE_IVF.exec(body[0] ?? "");
  if (ivf && body.length === 2) {
    const coarse = {
      ncentroids: Number(ivf[1]),
      ...(ivf[2] === undefined ? {} : { quantizerHnswM: Number(ivf[2]) }),
    };
    if (body[1] === "Flat") return { ...base, family: "IVF_FLAT", ...coarse };
    const pq = parsePq(body[1]);
    return pq ? { ...base, family: "IVF_PQ", ...coarse, pq } : unsupported;
  }
  const pq = body.length === 1 ? parsePq(body[0]) : undefined;
  return pq ? { ...base, family: "PQ", pq } : unsupported;
}

/** Dimension the index part works in: OPQ `_y` / Pad output, else the input dimension. */
function workingDim(parsed: ParsedIndexKey, d: number): number {
  return parsed.transform?.outD ?? d;
}

/**
 * Expected serialised size of an HNSW graph over `n` nodes with degree M (faiss `HNSW`):
 * level 0 holds 2M int32 links per node; a node reaches level ≥ l with probability M^-l
 * (`set_default_probas`, mL = 1/ln M), so it has on average 1/(M−1) upper levels of M links each;
 * plus `levels` (int32) and `offsets` (size_t, n+1 entries) per node.
 *
 * @example hnswGraphBytes(1000, 32) // 1000·(4·(64 + 32/31) + 4 + 8) + 8 ≈ 272137.03
 */
export function hnswGraphBytes(n: number, m: number): number {
  const upperLevels = m > 1 ? 1 / (m - 1) : 0;
  const linksPerNode = 2 * m + m * upperLevels;
  return n * (linksPerNode * HNSW_LINK_BYTES + HNSW_LINK_BYTES + SIZE_T_BYTES) + SIZE_T_BYTES;
}

/** Bytes of one PQ code in a regular (non fast-scan) inverted list or flat code array. */
function pqCodeBytes(pq: KeyPq): number {
  return Math.ceil((pq.m * pq.nbits) / 8);
}

/** Fast-scan packs 4-bit codes of an even number of sub-quantizers (faiss `M2 = roundup(M, 2)`). */
function fastScanM2(pq: KeyPq): number {
  return pq.m + (pq.m % 2);
}

/**
 * Estimated size in bytes of the serialised FAISS index of `key` over `n` vectors of dimension `d`
 * (our corrected model); `null` when the key's family is not modelled.
 * Fixes relative to {@link pythonEstimatedIndexSizeBytes}:
 * - IVF-Flat ids: old `4nd + 4cd` → new adds `8n` ids, because `ArrayInvertedLists` stores an
 *   int64 id next to every vector exactly as for PQ lists.
 * - OPQ matrix: old `4·M_OPQ·out_d` → new `4·d·out_d`, because `OPQMatrix` is a d_out×d_in float matrix.
 * - OPQ/Pad centroids: old `4·c·d` → new `4·c·out_d`, because the coarse quantizer sees transformed vectors.
 * - HNSW: old `4nd + 8nM` → new {@link hnswGraphBytes} (upper levels, `levels`, `offsets`).
 * - IVF-HNSW quantizer: old `8cM` → new `hnswGraphBytes(c, M)` for the same reason.
 * - `IVFc_HNSWm,Flat`: old "HNSW with M = c" (nonsense) → new IVF-Flat + HNSW coarse quantizer.
 * - PQ codebooks: old ignored → new `4·out_d·2^nbits` (M sub-quantizers × 2^nbits × d/M floats).
 * - inverted-list sizes: old ignored → new `8c` (the serialised length table).
 * Not counted: a few hundred bytes of headers, and IVFPQ precomputed tables, which FAISS rebuilds
 * in RAM after loading rather than serialising.
 *
 * @example estimatedIndexSizeBytes("IVF1024,Flat", 100000, 128) // 52_532_480 (python: 51_724_288)
 */
export function estimatedIndexSizeBytes(key: string, n: number, d: number, makeDirectMap = false): number | null {
  const parsed = parseIndexKey(key);
  if (parsed.family === "UNSUPPORTED") return factoryKeySizeBytes(parseFactoryKey(key, d), n, d, makeDirectMap);
  const dim = workingDim(parsed, d);
  let total = 0;
  if (parsed.transform?.kind === "OPQ") total += FLOAT_BYTES * d * dim;
  if (parsed.transform?.kind === "Pad") total += HNSW_LINK_BYTES * dim; // int32 dimension map

  switch (parsed.family) {
    case "FLAT":
      total += FLOAT_BYTES * n * dim;
      break;
    case "HNSW_FLAT":
      total += FLOAT_BYTES * n * dim + hnswGraphBytes(n, parsed.hnswM!);
      break;
    case "PQ": {
      const pq = parsed.pq!;
      total += FLOAT_BYTES * dim * 2 ** pq.nbits;
      total += pq.fastScan
        ? (Math.ceil(n / FAST_SCAN_BLOCK) * FAST_SCAN_BLOCK * fastScanM2(pq)) / 2
        : n * pqCodeBytes(pq);
      break;
    }
    case "IVF_FLAT":
    case "IVF_PQ": {
      const c = parsed.ncentroids!;
      total += FLOAT_BYTES * c * dim; // coarse centroids (flat or HNSW storage)
      if (parsed.quantizerHnswM !== undefined) total += hnswGraphBytes(c, parsed.quantizerHnswM);
      total += SIZE_T_BYTES * c; // list-length table
      total += ID_BYTES * n; // one int64 id per stored vector
      if (makeDirectMap) total += ID_BYTES * n;
      if (parsed.family === "IVF_FLAT") {
        total += FLOAT_BYTES * n * dim;
      } else {
        const pq = parsed.pq!;
        total += FLOAT_BYTES * dim * 2 ** pq.nbits;
        if (pq.fastScan) {
          // Blocks of 32 codes of M2/2 bytes; worst case one partly filled block per list.
          const m2 = fastScanM2(pq);
          total += (n * m2) / 2 + c * (FAST_SCAN_BLOCK * m2) / 2;
        } else {
          total += n * pqCodeBytes(pq);
        }
      }
      break;
    }
  }
  return Math.ceil(total);
}

/**
 * Memory needed to train `key` on `t` vectors of dimension `d`: Python AutoFaiss's training-memory heuristic
 * (1.5·vectors + OPQ working set + centroids + HNSW quantizer + one PQ code), with our key parsing,
 * so `IVFc_HNSWm,Flat` is trained as an IVF with an HNSW quantizer (Python: 0, as for HNSW) and
 * `IVFc,PQm` / fast-scan keys are modelled. The terms themselves are Python's, in Python's order, so
 * results are identical for the families Python knows. Unsupported keys: 500,000,000 (as Python).
 *
 * @example trainingMemoryBytes("IVF16384,Flat", 512, 100) === pythonTrainingMemoryBytes("IVF16384,Flat", 512, 100)
 */
export function trainingMemoryBytes(key: string, d: number, t: number): number {
  const parsed = parseIndexKey(key);
  if (parsed.family === "UNSUPPORTED") return factoryKeyTrainingBytes(parseFactoryKey(key, d), d, t);
  const opq = parsed.transform?.kind === "OPQ" ? { mOpq: parsed.transform.m, outD: workingDim(parsed, d) } : undefined;
  if ((parsed.family === "FLAT" || parsed.family === "HNSW_FLAT") && opq === undefined) return 0;
  return trainingTerms(d, t, {
    opq,
    ncentroids: parsed.ncentroids,
    quantizerHnswM: parsed.quantizerHnswM,
    pqCodeBytes: parsed.pq ? pqCodeBytes(parsed.pq) : undefined,
  });
}

// ---------------------------------------------------------------------------------------------
// Families beyond the selection's (SQ, HNSW_SQ / HNSW_PQ, IVF-SQ, PCA / RR / ITQ / L2norm
// transforms, RFlat / Refine): the same serialised-layout approach on the parsed factory key.
// Keys the model above parses keep its numbers; these functions only see the others.

/** Bytes per vector of a scalar-quantizer code (faiss ScalarQuantizer::set_derived_sizes). */
export function sqCodeBytes(type: SqType, d: number): number {
  switch (type) {
    case "SQ4":
      return Math.floor((d + 1) / 2);
    case "SQ6":
      return Math.floor((d * 6 + 7) / 8);
    case "SQ8":
      return d;
    case "SQfp16":
      return 2 * d;
  }
}

/** Trained parameters of a scalar quantizer: per-dimension min and range (non-uniform types), none for fp16. */
function sqTrainedBytes(type: SqType, d: number): number {
  return type === "SQfp16" ? 0 : FLOAT_BYTES * 2 * d;
}

/** Serialised vector transforms (faiss write_VectorTransform), from input dimension d. */
function transformsBytes(transforms: FactoryTransform[], d: number): number {
  let total = 0;
  let dIn = d;
  for (const t of transforms) {
    const dOut = transformOutD(t, dIn);
    switch (t.kind) {
      case "PCA": // A (d_out×d_in), b (d_out), mean (d_in), eigenvalues (d_in), PCAMat (d_in×d_in)
        total += FLOAT_BYTES * (dOut * dIn + dOut + 2 * dIn + dIn * dIn);
        break;
      case "OPQ":
      case "RR": // A only: no bias
        total += FLOAT_BYTES * dOut * dIn;
        break;
      case "ITQ": // mean (d_in) and the PCA-then-ITQ linear map (A d_out×d_in, b d_out)
        total += FLOAT_BYTES * (dIn + dOut * dIn + dOut);
        break;
      case "Pad": // int32 map of every output dimension
        total += HNSW_LINK_BYTES * dOut;
        break;
      case "L2norm":
        break;
    }
    dIn = dOut;
  }
  return total;
}

/** Codebooks / trained parameters and per-vector bytes of a storage codec at dimension dim. */
function codecBytes(codec: FactoryCodec, n: number, dim: number): number {
  switch (codec.kind) {
    case "Flat":
      return FLOAT_BYTES * n * dim;
    case "SQ":
      return sqTrainedBytes(codec.type, dim) + n * sqCodeBytes(codec.type, dim);
    case "PQ": {
      const pq: KeyPq = { m: codec.m, nbits: codec.nbits, fastScan: codec.fastScan };
      const codes = pq.fastScan ? (Math.ceil(n / FAST_SCAN_BLOCK) * FAST_SCAN_BLOCK * fastScanM2(pq)) / 2 : n * pqCodeBytes(pq);
      return FLOAT_BYTES * dim * 2 ** pq.nbits + codes;
    }
  }
}

/**
 * Serialised size of the families {@link parseIndexKey} does not know, from the parsed factory key;
 * null for families without a model (NSG, LSH, IMI, additive quantizers, …): the build measures those.
 * Same terms as {@link estimatedIndexSizeBytes} (centroids, list-length table, int64 ids, HNSW graph,
 * PQ codebooks), plus: SQ codes of `sqCodeBytes` and 2·d trained floats; PCA / RR / ITQ matrices;
 * `,RFlat` keeps every input vector (4·n·d) next to the index; `,Refine(k)` adds k's size.
 *
 * @example factoryKeySizeBytes(parseFactoryKey("SQ8", 64), 2000, 64) === 2000 * 64 + 2 * 64 * 4
 */
export function factoryKeySizeBytes(fk: FactoryKey, n: number, d: number, makeDirectMap = false): number | null {
  const dim = baseDim(fk, d);
  let total = transformsBytes(fk.transforms, d);
  const b = fk.base;
  switch (b.family) {
    case "Flat":
      total += FLOAT_BYTES * n * dim;
      break;
    case "PQ":
    case "SQ":
      total += codecBytes(b.codec, n, dim);
      break;
    case "HNSW":
      total += hnswGraphBytes(n, b.m) + codecBytes(b.storage, n, dim);
      break;
    case "IVF": {
      if (b.quantizer.kind !== "Flat" && b.quantizer.kind !== "HNSW") return null;
      if (b.codec.kind === "PQ" && b.codec.fastScan) {
        // fast-scan lists are padded per list: the IVF_PQ model above has that term
        const m2 = fastScanM2(b.codec);
        total += (n * m2) / 2 + b.nlist * (FAST_SCAN_BLOCK * m2) / 2 + FLOAT_BYTES * dim * 2 ** b.codec.nbits;
      } else {
        total += codecBytes(b.codec, n, dim);
      }
      total += FLOAT_BYTES * b.nlist * dim + SIZE_T_BYTES * b.nlist + ID_BYTES * n;
      if (b.quantizer.kind === "HNSW") total += hnswGraphBytes(b.nlist, b.quantizer.m);
      if (makeDirectMap) total += ID_BYTES * n;
      break;
    }
    default:
      return null;
  }
  if (fk.refine?.kind === "RFlat") total += FLOAT_BYTES * n * d;
  if (fk.refine?.kind === "Refine") {
    const inner = factoryKeySizeBytes(fk.refine.index, n, d);
    if (inner === null) return null;
    total += inner;
  }
  return Math.ceil(total);
}

/**
 * Training memory of the families {@link parseIndexKey} does not know: the same training-memory terms
 * (1.5·training vectors, OPQ working set, IVF centroids, HNSW quantizer, one PQ code), read from the
 * parsed key; a key that needs no training (Flat, HNSW-Flat, SQfp16, LSH, L2norm/RR in front of
 * them) needs 0; unknown families keep Python's 500,000,000.
 *
 * @example factoryKeyTrainingBytes(parseFactoryKey("SQ8", 64), 64, 1000) === 1.5 * 4 * 64 * 1000
 */
export function factoryKeyTrainingBytes(fk: FactoryKey, d: number, t: number): number {
  const b = fk.base;
  if (b.family === "other") return UNSUPPORTED_TRAINING_BYTES;
  const dim = baseDim(fk, d);
  const opqT = fk.transforms.find((x) => x.kind === "OPQ");
  const opq = opqT?.kind === "OPQ" ? { mOpq: opqT.m, outD: opqT.outD } : undefined;
  const codec = b.family === "PQ" || b.family === "SQ" ? b.codec : b.family === "HNSW" || b.family === "NSG" ? b.storage : b.family === "IVF" ? b.codec : undefined;
  const trainsData = opq !== undefined || fk.transforms.some((x) => x.kind === "PCA" || x.kind === "ITQ") ||
    b.family === "IVF" || (b.family === "LSH" && b.trainThresholds) ||
    (codec !== undefined && codec.kind !== "Flat" && !(codec.kind === "SQ" && codec.type === "SQfp16")) ||
    fk.refine?.kind === "Refine";
  if (!trainsData) return 0;
  const ivf = b.family === "IVF" && b.quantizer.kind !== "IMI" ? b : undefined;
  return trainingTerms(d, t, {
    opq,
    ncentroids: ivf?.nlist,
    quantizerHnswM: ivf?.quantizer.kind === "HNSW" ? ivf.quantizer.m : undefined,
    pqCodeBytes: codec?.kind === "PQ" ? Math.ceil((codec.m * codec.nbits) / 8) : codec?.kind === "SQ" ? sqCodeBytes(codec.type, dim) : undefined,
  });
}
