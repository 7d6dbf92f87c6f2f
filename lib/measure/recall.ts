/**
 * Recall metrics of `score_index`, as pure functions over label matrices.
 *
 * Both functions reproduce Python AutoFaiss 2.18.0 `metrics/recalls.py` value for value, including
 * how `-1` (missing neighbour) labels are treated. The searches themselves happen elsewhere: callers
 * pass the labels the index returned and the exact ground truth.
 */

/** Row-major matrix of neighbour labels: `labels.length / k` rows (queries) of `k` labels, `-1` = none. */
export interface LabelMatrix {
  labels: Int32Array | BigInt64Array;
  /** labels per row */
  k: number;
}

/** Label FAISS and the ground truth use for "no neighbour here". */
const MISSING = -1;

/**
 * Mean 1-recall@R: for each query, how many of the first `R` ground-truth labels equal the
 * single label the index returned first (`results` column 0; `-1` never counts), averaged over queries.
 * With duplicate-free ground truth this is the fraction of queries whose top-1 is in the true top-R.
 *
 * @example
 * oneRecallAtR({ labels: Int32Array.of(7, -1), k: 1 }, { labels: Int32Array.of(3, 7, 1, 2), k: 2 }, 2) // 0.5
 */
export function oneRecallAtR(results: LabelMatrix, gt: LabelMatrix, R: number): number {
  const nq = checkShapes("oneRecallAtR", results, gt, R);
  if (results.k < 1) throw new RangeError(`oneRecallAtR: results.k must be >= 1 (got ${results.k})`);
  if (nq === 0) return Number.NaN; // numpy: mean of an empty axis
  let total = 0;
  for (let q = 0; q < nq; q++) {
    const first = Number(results.labels[q * results.k]);
    if (first === MISSING) continue;
    const row = q * gt.k;
    // Python takes a cumulative sum of equalities, so a duplicated ground-truth label counts twice.
    for (let j = 0; j < R; j++) if (Number(gt.labels[row + j]) === first) total++;
  }
  return total / nq;
}

/**
 * Mean R-recall@R (intersection recall): per query, the size of the intersection of the
 * index's top-R and the ground truth's top-R (`-1` ignored), divided by `min(R, ntotal, position of
 * the first -1 in the ground-truth row)`, averaged over queries.
 *
 * The count follows Python's incremental walk over positions 1..R (equal labels at the same position,
 * or a label already seen on the other side, each add one), which equals the set intersection when
 * rows hold no duplicate labels.
 *
 * Differences from Python: a query whose ground-truth row starts with `-1` (nothing retrievable)
 * scores 1 instead of NaN (0/0), consistent with Python's "ntotal <= 0 → all ones" rule.
 *
 * @param results labels returned by the index, `k >= R` per query
 * @param gt exact ground truth (AutoFaiss: 40 per query), `k >= R`
 * @param options.ntotal vectors in the index; when given, the divisor is also capped by it and
 *   `ntotal <= 0` returns 1 (Python caps by `min(r_max, ntotal)` with r_max = 40 ≥ R, hence min(R, ntotal))
 * @example
 * rRecallAtR({ labels: Int32Array.of(1, 9), k: 2 }, { labels: Int32Array.of(9, 1), k: 2 }, 2) // 1
 */
export function rRecallAtR(
  results: LabelMatrix,
  gt: LabelMatrix,
  R: number,
  options: { ntotal?: number } = {},
): number {
  const nq = checkShapes("rRecallAtR", results, gt, R);
  if (results.k < R) throw new RangeError(`rRecallAtR: results.k must be >= R (got k=${results.k}, R=${R})`);
  const ntotal = options.ntotal ?? Number.POSITIVE_INFINITY;
  if (ntotal <= 0) return 1;
  if (nq === 0) return Number.NaN; // numpy: 0/0 average over no queries
  const seenTrue = new Set<number>();
  const seenPred = new Set<number>();
  let sum = 0;
  for (let q = 0; q < nq; q++) {
    const gRow = q * gt.k;
    const rRow = q * results.k;
    let divisor = Math.min(R, ntotal);
    // Python searches the whole row (all 40 columns) for the first -1, not only the first R.
    for (let j = 0; j < gt.k; j++) {
      if (Number(gt.labels[gRow + j]) === MISSING) {
        divisor = Math.min(divisor, j);
        break;
      }
    }
    if (divisor === 0) {
      sum += 1;
      continue;
    }
    seenTrue.clear();
    seenPred.clear();
    let hits = 0;
    for (let j = 0; j < R; j++) {
      const t = Number(gt.labels[gRow + j]);
      const p = Number(results.labels[rRow + j]);
      if (t === p && t !== MISSING) hits++;
      else {
        if (t !== MISSING && seenPred.has(t)) hits++;
        if (p !== MISSING && seenTrue.has(p)) hits++;
      }
      seenTrue.add(t);
      seenPred.add(p);
    }
    sum += hits / divisor;
  }
  return sum / nq;
}

/** Validates the two matrices and R; returns the number of queries. */
function checkShapes(fn: string, results: LabelMatrix, gt: LabelMatrix, R: number): number {
  if (!Number.isInteger(R) || R < 1) throw new RangeError(`${fn}: R must be an integer >= 1 (got ${R})`);
  if (!Number.isInteger(gt.k) || gt.k < R) {
    throw new RangeError(`${fn}: ground truth must have at least R=${R} labels per query (got k=${gt.k})`);
  }
  if (!Number.isInteger(results.k) || results.k < 0) {
    throw new RangeError(`${fn}: results.k must be a non-negative integer (got ${results.k})`);
  }
  if (gt.labels.length % gt.k !== 0) {
    throw new RangeError(`${fn}: ground truth length ${gt.labels.length} is not a multiple of k=${gt.k}`);
  }
  const nq = gt.labels.length / gt.k;
  if (results.labels.length !== nq * results.k) {
    throw new RangeError(
      `${fn}: results hold ${results.labels.length} labels, expected ${nq} queries × k=${results.k} = ${nq * results.k}`,
    );
  }
  return nq;
}
