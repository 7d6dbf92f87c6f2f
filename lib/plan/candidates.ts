/**
 * Candidates of measured selection (`--selection=measured`): the heuristic key of ./selection.ts
 * plus the families Python AutoFaiss never proposes (fast-scan PQ with and without `,RFlat`, scalar
 * quantizers on IVF and HNSW, PQ / OPQ with other sub-quantizer counts), each with its corrected
 * size estimate (./index_metadata.ts), those over the memory budget dropped before any work, and
 * ranked so that a time budget goes to the likely winners first. Pure functions, no I/O, no FAISS.
 */

import { estimatedIndexSizeBytes } from "./index_metadata.ts";
import { baseDim, type FactoryCodec, parseFactoryKey } from "./factory_key.ts";
import { FLAT_THRESHOLD, optimalIndexKeys, optimalNbClusters, QUANTIZATION_THRESHOLD, type SelectionOptions } from "./selection.ts";
import { formatMemory } from "./units.ts";

// ---------------------------------------------------------------------------------------------
// Constants

/** PQ sub-quantizer counts tried (Python's list, ./selection.ts, plus 96 and 192 for d = 384/768 embeddings). */
const PQ_M_VALUES = [256, 192, 128, 96, 64, 48, 32, 24, 16, 8] as const;
/**
 * Plain PQ also tries every divisor m of d with d/m between 2 and this many dimensions per
 * sub-quantizer ({@link plainPqMValues}): FAISS 1.7.3's SIMD distance kernels cover sub-vectors of up to 8
 * dimensions in one register, and 1 dimension per code is a scalar quantizer (SQ4 / SQ8 are tried).
 */
const MAX_PLAIN_PQ_DSUB = 8;
/** Fewest sub-quantizers from divisors of d: below 8 codes a vector is too coarse to rank neighbours. */
const MIN_PLAIN_PQ_M = 8;
/** OPQ output dimension cap, as Python: at most (6 + 1)·m (./selection.ts). */
const OPQ_Y_CAP = 6;
/** Dimensions per sub-quantizer of a reducing OPQ rotation: FAISS's wiki recommends `OPQ{m}_{4m}`. */
const OPQ_REDUCED_DSUB = 4;
/** HNSW degrees tried with Flat / SQ storage: Python's cap (32) and a lighter graph. */
const HNSW_M_VALUES = [32, 16] as const;
/** Coarse quantizer becomes `HNSW32` from this many lists, as Python (./selection.ts). */
const IVF_HNSW_MIN_CLUSTERS = 1000;
/** Bits of a float32 component: the "exact" representation. */
const FLOAT_BITS = 32;
/**
 * Candidates kept after ranking (the heuristic key included): each costs a sample training, a tuning
 * and a recall measurement, so the list is capped even when the time budget is generous.
 */
export const DEFAULT_MAX_CANDIDATES = 12;

// ---------------------------------------------------------------------------------------------
// Types

/** What a candidate stores per vector, for the report and the ranking. */
export type CandidateCodec = "Flat" | "SQfp16" | "SQ8" | "SQ6" | "SQ4" | "PQ" | "OPQ+PQ" | "PQ fast-scan" | "OPQ+PQ fast-scan";

/** One candidate factory key, ranked. */
export interface Candidate {
  key: string;
  /** 1 = measured first. */
  rank: number;
  /** Corrected serialised-size estimate over the full data, bytes. */
  estimatedBytes: number;
  /** Bits per input dimension of the representation the search compares (refinement: the raw floats). */
  bitsPerDimension: number;
  codec: CandidateCodec;
  graph: "HNSW" | "IVF" | "IVF-HNSW" | "none";
  refine: boolean;
  /** The key Python-compatible selection would build (always ranked first). */
  heuristic: boolean;
  /** Why it is at this rank, one sentence. */
  reason: string;
}

/** A key that was not kept, and why (shown in the report and the log). */
export interface DroppedCandidate {
  key: string;
  estimatedBytes: number | null;
  reason: string;
}

export interface CandidateList {
  /** The heuristic (Python-compatible) key; null when nothing fits the budget. */
  heuristicKey: string | null;
  candidates: Candidate[];
  dropped: DroppedCandidate[];
}

/** Options of {@link selectionCandidates}: the selection flags and a cap on the list. */
export interface CandidateOptions extends SelectionOptions {
  /** Keep at most this many candidates (default {@link DEFAULT_MAX_CANDIDATES}). */
  maxCandidates?: number;
  /**
   * Only IVF keys without refinement: needed for a direct map (`make_direct_map`) and for N-part
   * output (`add_with_ids`); `should_be_memory_mappable` implies it.
   */
  ivfOnly?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Generation

/** Coarse part of an IVF key for c lists: flat below 1000 lists, `_HNSW32` from there (as Python). */
function coarse(c: number): string {
  return c < IVF_HNSW_MIN_CLUSTERS ? `IVF${c}` : `IVF${c}_HNSW32`;
}

/** Python's OPQ output dimension for m sub-quantizers: a multiple of m slightly above d, capped at 7m. */
export function opqOutputDim(d: number, m: number): number {
  return (Math.min(Math.floor(d / m), OPQ_Y_CAP) + 1) * m;
}

/**
 * OPQ output dimension of a rotation that reduces instead of expanding: FAISS's recommended
 * `OPQ{m}_{4m}`, or the largest multiple of m within d when 4m exceeds d; null when that does not
 * reduce d (a low d keeps Python's rotation only) or leaves fewer than 2 dimensions per
 * sub-quantizer. Why both: Python's expanding rotation makes every query pay a d × 7m product and
 * 7m-dimensional distance tables. On a 10,000-row Fashion-MNIST sample at 20M and 1 ms (session 12),
 * `OPQ192_960,…,PQ192x8` reached recall@10 0.947 but needed 1.29 ms at its fewest probes, while
 * `OPQ192_768,…,PQ192x8` reached 0.946 in 0.96 ms, against the heuristic `OPQ128_896,…,PQ128x8`'s 0.922.
 *
 * @example reducingOpqDim(784, 192) // 768; reducingOpqDim(784, 128) // 512; reducingOpqDim(64, 16) // null
 */
export function reducingOpqDim(d: number, m: number): number | null {
  const dsub = Math.min(OPQ_REDUCED_DSUB, Math.floor(d / m));
  return dsub < 2 || dsub * m >= d ? null : dsub * m;
}

/**
 * Every key measured selection may try for n vectors of dimension d, before the budget filter, in
 * generation order (the ranking reorders them). PQ families only from 10,000 vectors (the same
 * threshold as Python: 256 centroids per sub-quantizer need ~10k training points); OPQ for the
 * listed m < d, each with a reducing rotation ({@link reducingOpqDim}) and Python's expanding one
 * ({@link opqOutputDim}), plain PQ for {@link plainPqMValues}.
 *
 * @example generatedKeys(50_000, 64).includes("IVF1024_HNSW32,PQ32x4fs") // true
 */
export function generatedKeys(n: number, d: number, options: CandidateOptions = {}): string[] {
  if (n < (options.flatThreshold ?? FLAT_THRESHOLD)) return [];
  const ivfOnly = options.ivfOnly || options.shouldBeMemoryMappable || false;
  const c = coarse(optimalNbClusters(n)[0]);
  const keys: string[] = [];
  if (!ivfOnly) for (const m of HNSW_M_VALUES) keys.push(`HNSW${m}`);
  keys.push(`${c},Flat`);
  for (const sq of ["SQfp16", "SQ8", "SQ4"]) {
    keys.push(`${c},${sq}`);
    if (!ivfOnly) for (const m of HNSW_M_VALUES) keys.push(`HNSW${m}_${sq}`);
  }
  if (n >= (options.quantizationThreshold ?? QUANTIZATION_THRESHOLD)) {
    for (const m of PQ_M_VALUES) {
      if (m >= d) continue;
      const reduced = reducingOpqDim(d, m);
      for (const dOut of reduced === null ? [opqOutputDim(d, m)] : [reduced, opqOutputDim(d, m)]) {
        keys.push(`OPQ${m}_${dOut},${c},PQ${m}x8`);
        keys.push(`OPQ${m}_${dOut},${c},PQ${m}x4fs`);
      }
    }
    for (const m of plainPqMValues(d)) {
      keys.push(`${c},PQ${m}x8`);
      keys.push(`${c},PQ${m}x4fs`);
      if (!ivfOnly) keys.push(`${c},PQ${m}x4fs,RFlat`);
    }
  }
  return keys;
}

/**
 * Sub-quantizer counts for plain PQ at dimension d: FAISS asserts d % m == 0, so the list's values
 * that divide d, plus every divisor leaving 2 to {@link MAX_PLAIN_PQ_DSUB} dimensions per
 * sub-quantizer. Without the divisors a dimension such as 784 (= 2⁴·7²) would get only m = 8 and 16,
 * while PQ392x4fs (2 dimensions per 4-bit code, no rotation to train) is a cheap, precise candidate.
 * Largest m first.
 *
 * @example plainPqMValues(784) // [392, 196, 112, 98, 16, 8]
 */
export function plainPqMValues(d: number): number[] {
  const ms = new Set<number>(PQ_M_VALUES.filter((m) => m < d && d % m === 0));
  for (let dsub = 2; dsub <= MAX_PLAIN_PQ_DSUB; dsub++) if (d % dsub === 0 && d / dsub >= MIN_PLAIN_PQ_M) ms.add(d / dsub);
  return [...ms].sort((a, b) => b - a);
}

// ---------------------------------------------------------------------------------------------
// Ranking

/** Bits per input dimension stored by a codec at working dimension `dim` (input d). */
function codecBits(codec: FactoryCodec, dim: number, d: number): number {
  switch (codec.kind) {
    case "Flat":
      return (FLOAT_BITS * dim) / d;
    case "SQ":
      return ({ SQfp16: 16, SQ8: 8, SQ6: 6, SQ4: 4 } as const)[codec.type] * dim / d;
    case "PQ":
      return (codec.m * codec.nbits) / d;
  }
}

interface Described {
  bitsPerDimension: number;
  codec: CandidateCodec;
  graph: Candidate["graph"];
  refine: boolean;
}

/** What a generated (or heuristic) key stores and how it is searched. */
function describe(key: string, d: number): Described {
  const fk = parseFactoryKey(key, d);
  const opq = fk.transforms.some((t) => t.kind === "OPQ");
  const dim = baseDim(fk, d);
  const refine = fk.refine !== undefined;
  const b = fk.base;
  const storage: FactoryCodec | undefined = b.family === "Flat" ? { kind: "Flat" }
    : b.family === "HNSW" ? b.storage
    : b.family === "IVF" ? b.codec
    : b.family === "PQ" || b.family === "SQ" ? b.codec
    : undefined;
  const graph: Candidate["graph"] = b.family === "HNSW" ? "HNSW"
    : b.family === "IVF" ? (b.quantizer.kind === "HNSW" ? "IVF-HNSW" : "IVF")
    : "none";
  if (storage === undefined) return { bitsPerDimension: 0, codec: "Flat", graph, refine };
  const codec: CandidateCodec = storage.kind === "Flat" ? "Flat"
    : storage.kind === "SQ" ? storage.type
    : storage.fastScan ? (opq ? "OPQ+PQ fast-scan" : "PQ fast-scan")
    : opq ? "OPQ+PQ" : "PQ";
  const bitsPerDimension = refine ? FLOAT_BITS : codecBits(storage, dim, d);
  return { bitsPerDimension, codec, graph, refine };
}

/**
 * Order of candidates with the same bits per dimension, best first. Why: HNSW graphs reach a
 * given recall in fewer distance computations than IVF at these sizes; fast-scan compares 4-bit
 * codes 32 at a time with SIMD, so at the same latency it scans several times more codes than
 * 8-bit PQ; OPQ's rotation spreads variance over the sub-quantizers, so it beats plain PQ of the
 * same m (both as measured by FAISS's own benchmarks, and by ours in tasks/bench_selection.ts).
 * Product codes come before the 6- and 4-bit scalar ones: at the same bits a sub-quantizer's
 * k-means codebook can place its centroids where the data is, a scalar quantizer spaces them
 * evenly over each dimension's range, so the product code's error is never larger. Session 12,
 * 100,000 × 64 at 6M: `IVF1024_HNSW32,PQ32x8`, the best candidate there, ranked after
 * `IVF1024_HNSW32,SQ4` and was skipped by the time budget behind it.
 */
function tieBreak(x: Described): number {
  const graph = x.graph === "HNSW" ? 0 : 1;
  const codec = ["Flat", "SQfp16", "SQ8", "OPQ+PQ fast-scan", "PQ fast-scan", "OPQ+PQ", "PQ", "SQ6", "SQ4"].indexOf(x.codec);
  return graph * 10 + codec;
}

/**
 * The bits a ranking credits: a refined candidate re-ranks with the raw vectors, so its recall is
 * bounded by how many true neighbours its fast-scan pass shortlists, not by the codes: it is
 * credited with the bits of its codes plus one (a refined code outranks the same code alone, but
 * not a code twice as precise).
 */
function rankingBits(x: Described, key: string, d: number): number {
  if (!x.refine) return x.bitsPerDimension;
  const inner = describe(key.replace(/,RFlat$/, ""), d);
  return inner.bitsPerDimension + 1;
}

function reasonFor(x: Described, bits: number, heuristic: boolean, bytes: number, budget: number): string {
  const use = `${formatMemory(bytes)} (${Math.round((100 * bytes) / budget)}% of the budget)`;
  if (heuristic) return `the heuristic (Python-compatible) key, measured first as the baseline; ${use}`;
  const stored = x.refine
    ? `${x.codec} shortlist re-ranked on the raw vectors`
    : `${x.codec} codes, ${bits.toFixed(2)} bits per dimension`;
  return `${stored}, searched by ${x.graph === "none" ? "exhaustive scan" : x.graph}; ${use}`;
}

/**
 * The ranked candidates of measured selection for n vectors of dimension d under `budgetBytes`:
 * the heuristic key (./selection.ts) first, then every generated key whose size estimate fits,
 * most bits per dimension first (more bits: smaller quantization error, higher recall at the same
 * number of visited vectors), ties broken by search structure and codec ({@link tieBreak}), then by
 * size (smaller first: less to scan). Keys over the budget, without a size model, or beyond
 * `maxCandidates` are in `dropped` with the reason.
 *
 * @example selectionCandidates(60_000, 784, 50 * 2 ** 20).candidates[0].heuristic // true
 */
export function selectionCandidates(n: number, d: number, budgetBytes: number, options: CandidateOptions = {}): CandidateList {
  const max = options.maxCandidates ?? DEFAULT_MAX_CANDIDATES;
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`candidates: maxCandidates must be an integer >= 1 (got ${max})`);
  const heuristicKey = optimalIndexKeys(n, d, budgetBytes, options)[0] ?? null;
  const dropped: DroppedCandidate[] = [];
  const kept: Array<Omit<Candidate, "rank"> & { sortBits: number; tie: number }> = [];
  const seen = new Set<string>();
  for (const key of [...(heuristicKey ? [heuristicKey] : []), ...generatedKeys(n, d, options)]) {
    if (seen.has(key)) continue;
    seen.add(key);
    const bytes = estimatedIndexSizeBytes(key, n, d, options.makeDirectMap);
    if (bytes === null) {
      dropped.push({ key, estimatedBytes: null, reason: "no size model for this family" });
      continue;
    }
    if (bytes > budgetBytes) {
      dropped.push({ key, estimatedBytes: bytes, reason: `estimated ${formatMemory(bytes)} > max_index_memory_usage ${formatMemory(budgetBytes)}` });
      continue;
    }
    const x = describe(key, d);
    const heuristic = key === heuristicKey;
    const sortBits = rankingBits(x, key, d);
    kept.push({
      key,
      estimatedBytes: bytes,
      ...x,
      heuristic,
      reason: reasonFor(x, sortBits, heuristic, bytes, budgetBytes),
      sortBits,
      tie: tieBreak(x),
    });
  }
  kept.sort((a, b) =>
    Number(b.heuristic) - Number(a.heuristic) || b.sortBits - a.sortBits || a.tie - b.tie || a.estimatedBytes - b.estimatedBytes
  );
  const candidates: Candidate[] = kept.slice(0, max).map(({ sortBits: _s, tie: _t, ...c }, i) => ({ ...c, rank: i + 1 }));
  for (const c of kept.slice(max)) {
    dropped.push({ key: c.key, estimatedBytes: c.estimatedBytes, reason: `ranked beyond the ${max} candidates kept` });
  }
  return { heuristicKey, candidates, dropped };
}
