/**
 * A FAISS 1.7.3 `index_factory` key as a structure: pre-transforms, the base index (Flat, PQ, SQ,
 * LSH, HNSW, NSG, IVF/IMI with its quantizer and codec) and an optional refinement stage.
 * The grammar follows faiss/index_factory.cpp (1.7.3) in its order of precedence: refinement
 * (`…,RFlat` / `…,Refine(…)`) first, then leading vector transforms, then `IDMap`, then the basic
 * indices, then HNSW / NSG, then IVF. A key this model does not know is `family: "other"`, not an
 * error: FAISS decides whether it is valid (a dry factory call in the build), and the training,
 * memory and tuning rules fall back to their generic answers for it.
 * Pure functions, no I/O, no FAISS.
 */

// ---------------------------------------------------------------------------------------------
// Constants

/** PQ bits per sub-quantizer when the key omits `x<bits>` (index_factory: `mres_to_int(sm[2], 8, 1)`). */
const DEFAULT_PQ_NBITS = 8;
/** HNSW degree / NSG out-degree when the key gives none (`HNSW`, `NSG`: `mres_to_int(sm[1], 32)`). */
const DEFAULT_GRAPH_DEGREE = 32;
/** HNSW degree of an `IVFc_HNSW` coarse quantizer without a number (index_factory: 32). */
const DEFAULT_QUANTIZER_HNSW_M = 32;
/** Fast-scan PQ codes are 4-bit (`PQmx4fs`). */
const FAST_SCAN_NBITS = 4;
/** OPQ trains an 8-bit PQ of M sub-quantizers inside (OPQMatrix: `ProductQuantizer pq_regular(d2, M, 8)`). */
const OPQ_PQ_NBITS = 8;

// ---------------------------------------------------------------------------------------------
// Types

/** A vector transform in front of the index (faiss `parse_VectorTransform`). */
export type FactoryTransform =
  | { kind: "PCA"; outD: number; whiten: boolean; rotate: boolean }
  | { kind: "OPQ"; m: number; outD: number }
  | { kind: "RR"; outD: number }
  | { kind: "ITQ"; outD: number }
  | { kind: "L2norm" }
  | { kind: "Pad"; outD: number };

/** Scalar quantizer types of the 1.7.3 factory (`sq_types`). */
export type SqType = "SQ4" | "SQ6" | "SQ8" | "SQfp16";

/** How vectors are stored: raw floats, product-quantized, or scalar-quantized. */
export type FactoryCodec =
  | { kind: "Flat" }
  | { kind: "PQ"; m: number; nbits: number; fastScan: boolean; byResidual?: boolean }
  | { kind: "SQ"; type: SqType };

/** Coarse quantizer of an IVF key. */
export type CoarseQuantizer =
  | { kind: "Flat" }
  | { kind: "HNSW"; m: number }
  | { kind: "NSG"; r: number }
  /** `IMI2xb`: two sub-quantizers of 2^b centroids each, 2^(2b) lists (L2 only in FAISS). */
  | { kind: "IMI"; nbits: number };

/** The index under the transforms. */
export type FactoryBase =
  | { family: "Flat" }
  | { family: "PQ"; codec: Extract<FactoryCodec, { kind: "PQ" }> }
  | { family: "SQ"; codec: Extract<FactoryCodec, { kind: "SQ" }> }
  /** `LSH[r][t]`: d-bit codes; `t` trains thresholds, `r` rotates (L2 only in FAISS). */
  | { family: "LSH"; rotate: boolean; trainThresholds: boolean }
  | { family: "HNSW"; m: number; storage: FactoryCodec }
  | { family: "NSG"; r: number; storage: FactoryCodec }
  | { family: "IVF"; nlist: number; quantizer: CoarseQuantizer; codec: FactoryCodec }
  /** Valid or not, a key this model does not describe (additive quantizers, lattices, IDMap, …). */
  | { family: "other"; text: string };

/** Re-ranking stage: `,RFlat` (exact distances on raw vectors) or `,Refine(<key>)`. */
export type FactoryRefine = { kind: "RFlat" } | { kind: "Refine"; index: FactoryKey };

/** A parsed factory key. */
export interface FactoryKey {
  key: string;
  /** Transforms in application order. */
  transforms: FactoryTransform[];
  base: FactoryBase;
  refine?: FactoryRefine;
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** Full-string match, like the factory's `std::regex_match`. */
function full(re: RegExp, s: string): RegExpExecArray | null {
  const m = re.exec(s);
  return m !== null && m[0].length === s.length && m.index === 0 ? m : null;
}

/** A transform component at input dimension d, or null (faiss `parse_VectorTransform`). */
function parseTransform(part: string, d: number): FactoryTransform | null {
  let m = full(/PCA(W?)(R?)(\d+)/, part);
  if (m) return { kind: "PCA", outD: Number(m[3]), whiten: m[1] !== "", rotate: m[2] !== "" };
  if (full(/L2[nN]orm/, part)) return { kind: "L2norm" };
  m = full(/RR(\d+)?/, part);
  if (m) return { kind: "RR", outD: m[1] === undefined ? d : Number(m[1]) };
  m = full(/ITQ(\d+)?/, part);
  if (m) return { kind: "ITQ", outD: m[1] === undefined ? d : Number(m[1]) };
  m = full(/OPQ(\d+)(?:_(\d+))?/, part);
  if (m) return { kind: "OPQ", m: Number(m[1]), outD: m[2] === undefined ? d : Number(m[2]) };
  m = full(/Pad(\d+)/, part);
  if (m) return { kind: "Pad", outD: Math.max(Number(m[1]), d) };
  return null;
}

/** Output dimension of a transform applied to d-dimensional vectors. */
export function transformOutD(t: FactoryTransform, d: number): number {
  return t.kind === "L2norm" ? d : t.outD;
}

function parseSq(s: string): Extract<FactoryCodec, { kind: "SQ" }> | null {
  const m = full(/SQ(4|6|8|fp16)/, s);
  return m ? { kind: "SQ", type: `SQ${m[1]}` as SqType } : null;
}

/** PQ codec of a standalone or IVF index: `PQm[xb][np]`, `PQmx4fs[r][_bbs]`. */
function parsePqCodec(s: string, allowResidual: boolean): Extract<FactoryCodec, { kind: "PQ" }> | null {
  let m = full(allowResidual ? /PQ(\d+)x4fs(r?)(?:_\d+)?/ : /PQ(\d+)x4fs()(?:_\d+)?/, s);
  if (m) {
    return { kind: "PQ", m: Number(m[1]), nbits: FAST_SCAN_NBITS, fastScan: true, ...(allowResidual ? { byResidual: m[2] === "r" } : {}) };
  }
  m = full(/PQ(\d+)(?:x(\d+))?(?:np)?/, s);
  if (m) return { kind: "PQ", m: Number(m[1]), nbits: m[2] === undefined ? DEFAULT_PQ_NBITS : Number(m[2]), fastScan: false };
  return null;
}

/** Storage of an HNSW / NSG graph index: ``, `Flat`, `PQm[np]` (8-bit), `SQ…`. */
function parseGraphStorage(s: string): FactoryCodec | null {
  if (s === "" || s === "Flat") return { kind: "Flat" };
  const pq = full(/PQ(\d+)(?:np)?/, s);
  if (pq) return { kind: "PQ", m: Number(pq[1]), nbits: DEFAULT_PQ_NBITS, fastScan: false };
  return parseSq(s);
}

function parseIvfCodec(s: string): FactoryCodec | null {
  if (s === "Flat") return { kind: "Flat" };
  return parseSq(s) ?? parsePqCodec(s, true);
}

function parseCoarse(s: string): { nlist: number; quantizer: CoarseQuantizer } | null {
  let m = full(/IVF(\d+)/, s);
  if (m) return { nlist: Number(m[1]), quantizer: { kind: "Flat" } };
  m = full(/IMI2x(\d+)/, s);
  if (m) return { nlist: 2 ** (2 * Number(m[1])), quantizer: { kind: "IMI", nbits: Number(m[1]) } };
  m = full(/IVF(\d+)_HNSW(\d*)/, s);
  if (m) return { nlist: Number(m[1]), quantizer: { kind: "HNSW", m: m[2] === "" ? DEFAULT_QUANTIZER_HNSW_M : Number(m[2]) } };
  m = full(/IVF(\d+)_NSG(\d+)/, s);
  if (m) return { nlist: Number(m[1]), quantizer: { kind: "NSG", r: Number(m[2]) } };
  return null;
}

function parseBase(description: string): FactoryBase {
  const other: FactoryBase = { family: "other", text: description };
  if (description === "Flat") return { family: "Flat" };
  let m = full(/LSH(r?)(t?)/, description);
  if (m) return { family: "LSH", rotate: m[1] === "r", trainThresholds: m[2] === "t" };
  const sq = parseSq(description);
  if (sq) return { family: "SQ", codec: sq };
  const pq = parsePqCodec(description, false);
  if (pq) return { family: "PQ", codec: pq };
  m = full(/(HNSW|NSG)(\d*)(?:[,_](.*))?/, description);
  if (m) {
    const degree = m[2] === "" ? DEFAULT_GRAPH_DEGREE : Number(m[2]);
    const storage = parseGraphStorage(m[3] ?? "");
    if (storage === null) return other;
    return m[1] === "HNSW" ? { family: "HNSW", m: degree, storage } : { family: "NSG", r: degree, storage };
  }
  const comma = description.indexOf(",");
  if (comma < 0) return other;
  const coarse = parseCoarse(description.slice(0, comma));
  const codec = parseIvfCodec(description.slice(comma + 1));
  if (coarse === null || codec === null) return other;
  return { family: "IVF", ...coarse, codec };
}

/**
 * Parses a factory key for input dimension `d` (needed because `OPQm`, `RR`, `ITQ` and `Pad`
 * keep or derive their output dimension from it).
 *
 * @example parseFactoryKey("PCA64,IVF256_HNSW32,SQ8,RFlat", 128)
 *   // { transforms: [{ kind: "PCA", outD: 64, … }], base: { family: "IVF", nlist: 256,
 *   //   quantizer: { kind: "HNSW", m: 32 }, codec: { kind: "SQ", type: "SQ8" } }, refine: { kind: "RFlat" } }
 */
export function parseFactoryKey(key: string, d: number): FactoryKey {
  // Refinement wraps everything before it, at the input dimension (index_factory_sub, first rule).
  let m = full(/(.+),RFlat/, key);
  if (m) return { ...parseFactoryKey(m[1], d), key, refine: { kind: "RFlat" } };
  m = full(/(.+),Refine\((.+)\)/, key);
  if (m) return { ...parseFactoryKey(m[1], d), key, refine: { kind: "Refine", index: parseFactoryKey(m[2], d) } };

  const transforms: FactoryTransform[] = [];
  let rest = key;
  let dim = d;
  for (;;) {
    const comma = rest.indexOf(",");
    if (comma < 0) break;
    const t = parseTransform(rest.slice(0, comma), dim);
    if (t === null) break;
    transforms.push(t);
    dim = transformOutD(t, dim);
    rest = rest.slice(comma + 1);
  }
  return { key, transforms, base: parseBase(rest) };
}

/** Dimension the base index works in (after all transforms). */
export function baseDim(fk: FactoryKey, d: number): number {
  return fk.transforms.reduce((dim, t) => transformOutD(t, dim), d);
}

// ---------------------------------------------------------------------------------------------
// What FAISS trains

/** One k-means FAISS runs while training a key: `k` centroids (for PQ: per sub-quantizer). */
export interface KMeansRun {
  what: string;
  k: number;
}

/**
 * The k-means FAISS runs to train `fk`, and the other steps that need data.
 * - IVF: `nlist` centroids (Clustering in IndexIVF::train_q1); IMI: two 2^b k-means (MultiIndexQuantizer).
 * - PQ: 2^nbits centroids per sub-quantizer (ProductQuantizer::train), also inside IVF-PQ,
 *   HNSW_PQ, NSG_PQ and IMI.
 * - OPQ: an 8-bit PQ of its M sub-quantizers, so 256 centroids (OPQMatrix::train).
 * - A `Refine(<key>)` stage is trained with the same vectors (IndexRefine::train).
 * Returns `dataSteps` for non-k-means training: SQ ranges, PCA/ITQ covariance, LSH thresholds.
 */
export function trainingSteps(fk: FactoryKey): { kmeans: KMeansRun[]; dataSteps: string[] } {
  const kmeans: KMeansRun[] = [];
  const dataSteps: string[] = [];
  for (const t of fk.transforms) {
    if (t.kind === "OPQ") kmeans.push({ what: `OPQ${t.m}`, k: 2 ** OPQ_PQ_NBITS });
    if (t.kind === "PCA" || t.kind === "ITQ") dataSteps.push(t.kind);
  }
  const codec = (c: FactoryCodec, where: string) => {
    if (c.kind === "PQ") kmeans.push({ what: `${where}PQ${c.m}x${c.nbits}`, k: 2 ** c.nbits });
    if (c.kind === "SQ" && c.type !== "SQfp16") dataSteps.push(`${where}${c.type}`);
  };
  const b = fk.base;
  switch (b.family) {
    case "PQ":
    case "SQ":
      codec(b.codec, "");
      break;
    case "LSH":
      if (b.trainThresholds) dataSteps.push("LSH thresholds");
      break;
    case "HNSW":
    case "NSG":
      codec(b.storage, `${b.family} storage `);
      break;
    case "IVF":
      if (b.quantizer.kind === "IMI") kmeans.push({ what: `IMI2x${b.quantizer.nbits}`, k: 2 ** b.quantizer.nbits });
      else kmeans.push({ what: `IVF${b.nlist}`, k: b.nlist });
      codec(b.codec, "IVF ");
      break;
    case "other":
      dataSteps.push(`unknown (${b.text})`);
      break;
  }
  if (fk.refine?.kind === "Refine") {
    const inner = trainingSteps(fk.refine.index);
    kmeans.push(...inner.kmeans.map((r) => ({ ...r, what: `refine ${r.what}` })));
    dataSteps.push(...inner.dataSteps.map((s) => `refine ${s}`));
  }
  return { kmeans, dataSteps };
}
