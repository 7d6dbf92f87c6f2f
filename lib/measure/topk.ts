/**
 * Streaming exact top-k for ground truth in bounded memory.
 *
 * The database is searched one batch at a time with an exact (flat) index; each batch search yields,
 * per query, its best `kBatch` results sorted best first, labelled 0..batchSize-1 (FAISS convention).
 * `TopK` keeps a running best-k per query and merges every batch into it in O(k) per query, so memory
 * is O(nq·k) whatever the database size.
 *
 * Differences from Python AutoFaiss: the metric is the index's own (Python always used inner product),
 * and ties on distance are broken by the smaller label, here, whatever order FAISS (1.7.3 does not
 * order ties) returned them in, so the result does not depend on the batch size.
 */

/** Similarity direction: `"ip"` larger is better (inner product), `"l2"` smaller is better (squared L2). */
export type Metric = "ip" | "l2";

/** Label of an empty slot, as FAISS pads results. */
const MISSING = -1;

/**
 * Distance of an empty slot. FAISS's heaps start from `numeric_limits<float>::lowest()` (IP) or `max()`
 * (L2), so padded results carry ∓FLT_MAX; we pad the same way.
 */
const FLT_MAX = 3.4028234663852886e38;

/** One batch search result: `nq` rows of `k` entries, row-major, best first. */
export interface BatchResult {
  distances: Float32Array;
  labels: BigInt64Array | Int32Array;
  /** entries per row in this batch result (may differ from the accumulator's k) */
  k: number;
}

/**
 * Running exact top-k per query.
 *
 * @example
 * const top = new TopK(nq, 40, "l2");
 * for (const [start, batch] of batches) top.push(flatSearch(queries, batch, 40), start);
 * const gt = top.labelsInt32(); // (nq × 40), -1 padded
 */
export class TopK {
  readonly nq: number;
  readonly k: number;
  readonly metric: Metric;
  /** row-major (nq × k), best first */
  private readonly dist: Float32Array;
  /** labels kept as doubles: exact up to 2^53 and much cheaper to compare than BigInt */
  private readonly lab: Float64Array;
  /** number of filled slots per query (filled slots are a prefix of the row) */
  private readonly fill: Int32Array;
  // scratch rows reused by every merge; the batch ones grow to the widest batch seen
  private bDist: Float32Array;
  private bLab: Float64Array;
  private readonly oDist: Float32Array;
  private readonly oLab: Float64Array;

  constructor(nq: number, k: number, metric: Metric) {
    if (!Number.isInteger(nq) || nq < 0) throw new RangeError(`topk: nq must be a non-negative integer (got ${nq})`);
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`topk: k must be an integer >= 1 (got ${k})`);
    if (metric !== "ip" && metric !== "l2") throw new RangeError(`topk: metric must be "ip" or "l2" (got ${metric})`);
    this.nq = nq;
    this.k = k;
    this.metric = metric;
    this.dist = new Float32Array(nq * k);
    this.lab = new Float64Array(nq * k);
    this.fill = new Int32Array(nq);
    this.bDist = new Float32Array(0);
    this.bLab = new Float64Array(0);
    this.oDist = new Float32Array(k);
    this.oLab = new Float64Array(k);
  }

  /**
   * Merges one batch result. Labels `>= 0` are shifted by `labelOffset` (the batch's first row in the
   * database); `-1` entries are skipped. Rows need not be sorted by label among equal distances.
   */
  push(batch: BatchResult, labelOffset: number): void {
    const { distances, labels, k: kb } = batch;
    if (!Number.isInteger(kb) || kb < 0) throw new RangeError(`topk: batch k must be a non-negative integer (got ${kb})`);
    if (distances.length !== this.nq * kb || labels.length !== this.nq * kb) {
      throw new RangeError(
        `topk: batch holds ${distances.length} distances and ${labels.length} labels, expected nq=${this.nq} × k=${kb} = ${this.nq * kb}`,
      );
    }
    if (!Number.isSafeInteger(labelOffset) || labelOffset < 0) {
      throw new RangeError(`topk: labelOffset must be a non-negative safe integer (got ${labelOffset})`);
    }
    const ip = this.metric === "ip";
    if (this.bDist.length < kb) {
      this.bDist = new Float32Array(kb);
      this.bLab = new Float64Array(kb);
    }
    const { dist, lab, fill, bDist, bLab, oDist, oLab, k } = this;
    for (let q = 0; q < this.nq; q++) {
      // 1. copy the batch row without -1 entries and order it by (distance, label): the row is already
      //    sorted by distance, so the insertion sort only reorders ties and costs O(kb) in practice.
      let nb = 0;
      const src = q * kb;
      for (let j = 0; j < kb; j++) {
        const l = Number(labels[src + j]);
        if (l === MISSING) continue;
        const d = distances[src + j];
        const L = l + labelOffset;
        let i = nb++;
        while (i > 0 && better(ip, d, L, bDist[i - 1], bLab[i - 1])) {
          bDist[i] = bDist[i - 1];
          bLab[i] = bLab[i - 1];
          i--;
        }
        bDist[i] = d;
        bLab[i] = L;
      }
      if (nb === 0) continue;
      // 2. merge two sorted lists (running row, batch row), keep the best k.
      const row = q * k;
      const na = fill[q];
      let a = 0;
      let b = 0;
      let o = 0;
      while (o < k && (a < na || b < nb)) {
        if (b >= nb || (a < na && !better(ip, bDist[b], bLab[b], dist[row + a], lab[row + a]))) {
          oDist[o] = dist[row + a];
          oLab[o++] = lab[row + a++];
        } else {
          oDist[o] = bDist[b];
          oLab[o++] = bLab[b++];
        }
      }
      dist.set(oDist.subarray(0, o), row);
      lab.set(oLab.subarray(0, o), row);
      fill[q] = o;
    }
  }

  /** Distances (nq × k), best first; empty slots hold -FLT_MAX (ip) or +FLT_MAX (l2) like FAISS. */
  distances(): Float32Array {
    const out = this.dist.slice();
    const pad = this.metric === "ip" ? -FLT_MAX : FLT_MAX;
    this.forEachEmpty((i) => (out[i] = pad));
    return out;
  }

  /** Labels (nq × k) as FAISS `idx_t`, best first, -1 padded. */
  labels(): BigInt64Array {
    const out = new BigInt64Array(this.lab.length);
    for (let q = 0; q < this.nq; q++) {
      const row = q * this.k;
      for (let j = 0; j < this.k; j++) out[row + j] = j < this.fill[q] ? BigInt(this.lab[row + j]) : -1n;
    }
    return out;
  }

  /** Labels (nq × k) as int32, the dtype of AutoFaiss's cached ground truth; throws past 2^31-1. */
  labelsInt32(): Int32Array {
    const out = new Int32Array(this.lab.length).fill(MISSING);
    for (let q = 0; q < this.nq; q++) {
      const row = q * this.k;
      for (let j = 0; j < this.fill[q]; j++) {
        const l = this.lab[row + j];
        if (l > 0x7fffffff) throw new RangeError(`topk: label ${l} does not fit in int32 (query ${q}, rank ${j})`);
        out[row + j] = l;
      }
    }
    return out;
  }

  private forEachEmpty(f: (i: number) => void): void {
    for (let q = 0; q < this.nq; q++) for (let j = this.fill[q]; j < this.k; j++) f(q * this.k + j);
  }
}

/** Whether (d1, l1) ranks strictly before (d2, l2): better distance, then smaller label. */
function better(ip: boolean, d1: number, l1: number, d2: number, l2: number): boolean {
  if (d1 !== d2) return ip ? d1 > d2 : d1 < d2;
  return l1 < l2;
}
