/**
 * Measured selection: each candidate of lib/plan/candidates.ts, in rank order, unless its predicted
 * cost (measured_choice.ts `predictedCandidateSeconds`) no longer fits the time budget, is trained
 * and filled on a uniform sample, tuned at the (scaled) latency bound by the build's own tuner, and
 * scored by recall@10 against the exact neighbours of held-out queries; the
 * winner is lib/plan/measured_choice.ts's `chooseMeasured`. How the sample predicts the full index
 * (nlist, nprobe, efSearch and latency scaling) is documented in lib/plan/measured_choice.ts.
 */
import { FaissError, Index, type Metric } from "../../ffi/faiss.ts";
import type { CandidateList, Candidate, DroppedCandidate } from "../plan/candidates.ts";
import {
  AUTO_BUDGET_FRACTION,
  autoBudgetCanCompare,
  autoBudgetOutlook,
  budgetToMeasure,
  chooseMeasured,
  fullBuildWork,
  type HeuristicSampleCost,
  predictedCandidateSeconds,
  predictedFullBuildSeconds,
  predictedLatencyMs,
  probedListShare,
  grownSampleRows,
  rotationCharge,
  sampleBuildWork,
  REFINE_K_FACTOR,
  rotationAhead,
  type RotationAhead,
  saturatedSampleSearch,
  usesRotationAhead,
  sampleKey,
  sampleLatencyBound,
  searchKind,
  SELECTION_RECALL_AT,
  selectionBudgetSeconds,
  type SpentCandidate,
  startCandidate,
} from "../plan/measured_choice.ts";
import type { BuildReporter } from "../reporter.ts";
import { rRecallAtR } from "./recall.ts";
import { singleQueryTimer } from "./single_query_timer.ts";
import { SPEED_TEST_K } from "./latency_stats.ts";
import { tuneIndexParameters } from "./tune_parameters.ts";
import { trainForKey } from "./train_index.ts";

/** Time spent timing the tuned parameters once more, per candidate (ms). */
const FINAL_TIMING_MS = 500;

/** One candidate's outcome, for the log's `selection` section and the HTML report. */
export interface CandidateMeasurement extends Candidate {
  /** measured; rejected by FAISS's factory; failed while measured; skipped (time budget). */
  status: "measured" | "rejected" | "failed" | "skipped";
  /** Key built on the sample (nlist scaled). */
  sampleKey?: string;
  /** Search parameters tuned on the sample: the full index's predicted parameters. */
  param?: string;
  /** Predicted recall@10 of the full index. */
  recall?: number;
  /** Predicted single-query latency (k = 40, one thread) of the full index, ms. */
  latencyMs?: number;
  /** Latency measured on the sample, ms. */
  sampleLatencyMs?: number;
  /** The tuned sample search probed most of the sample's lists (measured_choice.ts `saturatedSampleSearch`): no prediction. */
  saturated?: boolean;
  /** Wall seconds spent on this candidate. */
  seconds?: number;
  /** Where those seconds went: training, adding, tuning, and the final latency and recall measurement. */
  stepSeconds?: { train: number; add: number; tune: number; measure: number };
  /** Why rejected / failed / skipped. */
  note?: string;
}

/** The `selection` section: everything measured selection did, JSON-serialisable. */
export interface SelectionReport {
  mode: "measured";
  heuristicKey: string | null;
  chosenKey: string;
  /** Parameters to set before tuning the full index (refinement's k_factor), "" when none. */
  presetParam: string;
  reason: string;
  vectors: number;
  dimension: number;
  sampleRows: number;
  queries: number;
  maxQueryTimeMs: number;
  maxIndexMemoryBytes: number;
  budgetSeconds: number | null;
  /** The heuristic key's full training and adding as its sample predicts them (null: not measured). */
  predictedBuildSeconds: number | null;
  /** Seconds measuring the candidates took (the rotation trained ahead not included). */
  seconds: number;
  /**
   * The heuristic key's OPQ rotation, trained before measuring on the full build's own rotation
   * sample (measured_choice.ts `rotationAhead`); `reusedByBuild` when the chosen key has the same
   * rotation, so those seconds are the build's and not the selection's (the build copies it unless its
   * own rotation sample turns out different, a memory-capped training sample, which it logs). Null
   * when none was trained.
   */
  rotation: { spec: string; rows: number; seconds: number; reusedByBuild: boolean } | null;
  /**
   * The first round, when the heuristic's search saturated its sample and the candidates were measured
   * again on a larger one (`resampleRows`): its rows, the share of lists the heuristic probed there, and
   * its seconds (included in `seconds`). Null when there was one round.
   */
  resampled: { fromRows: number; probedShare: number; seconds: number } | null;
  /**
   * The highest-ranked candidate skipped for time, and the `--selection_time_budget` predicted to
   * measure it (measured_choice.ts `budgetToMeasure`); null when nothing was skipped for time.
   */
  budgetHint: { key: string; seconds: number } | null;
  candidates: CandidateMeasurement[];
  dropped: DroppedCandidate[];
}

export interface MeasuredSelectionOptions {
  /** Vectors of the full data. */
  n: number;
  metric: Metric;
  maxQueryTimeMs: number;
  minNearestNeighbors: number;
  maxIndexMemoryBytes: number;
  /** `--selection_time_budget`, seconds; null = a quarter of the predicted full build. */
  timeBudgetSeconds: number | null;
  /** The rotation the caller trains before measuring (measured_choice.ts `rotationAhead`), null when none. */
  ahead?: RotationAhead | null;
  /** Seconds an earlier round on a smaller sample spent (a saturated heuristic's, `resampleRows`), counted against the budget. */
  spentSeconds?: number;
  /** Rows of that earlier round's sample, for the budget hint. */
  firstRoundRows?: number;
  log?: BuildReporter;
  /** Seconds since an arbitrary origin (tests pass a fake clock). */
  clock?: () => number;
}

/** The rotation trained ahead: its owner (an index of the heuristic key whose transforms only are trained, borrowed), and its cost. */
export interface TrainedRotation extends RotationAhead {
  owner: Index;
  seconds: number;
}

/** Refinement parameters set before tuning: the tuner only sets nprobe / efSearch. */
export function presetParamFor(key: string): string {
  return /,(RFlat|Refine\()/.test(key) ? `k_factor_rf=${REFINE_K_FACTOR}` : "";
}

/**
 * Splits a uniform sample into the index rows and `queries` held-out rows, interleaved so that both
 * cover the whole collection.
 */
export function splitSample(vectors: Float32Array, d: number, queries: number): { base: Float32Array; queries: Float32Array } {
  const total = vectors.length / d;
  const isQuery = new Uint8Array(total);
  for (let j = 0; j < queries; j++) isQuery[Math.floor(((j + 0.5) * total) / queries)] = 1;
  const base = new Float32Array((total - queries) * d);
  const q = new Float32Array(queries * d);
  let b = 0;
  let k = 0;
  for (let i = 0; i < total; i++) {
    const row = vectors.subarray(i * d, (i + 1) * d);
    if (isQuery[i]) q.set(row, (k++) * d);
    else base.set(row, (b++) * d);
  }
  return { base, queries: q };
}

/**
 * The selection report when measuring is not worth its time, else null: with the automatic budget
 * (a quarter of the heuristic key's build), when measuring the heuristic key and the cheapest other
 * candidate on the sample would take more than that quarter (measured_choice.ts
 * `autoBudgetCanCompare`), nothing could be compared with the heuristic and the time would be spent
 * for nothing. Decided from the shapes alone, before any vector is read.
 */
export function selectionWithoutMeasuring(
  list: CandidateList,
  d: number,
  sampleRows: number,
  queries: number,
  o: MeasuredSelectionOptions,
): SelectionReport | null {
  const n = o.n;
  if (o.timeBudgetSeconds !== null || list.heuristicKey === null) return null;
  const outlook = autoBudgetOutlook(list.heuristicKey, list.candidates.map((c) => c.key), n, sampleRows, d, o.ahead ?? null);
  if (autoBudgetCanCompare(outlook)) return null;
  const pct = (x: number) => `~${Math.round(100 * x)}%`;
  const why = outlook.cheapest === null
    ? "no other candidate fits the memory bound"
    : `measuring the heuristic key on ${sampleRows} sampled vectors would cost ${pct(outlook.heuristicShare)} of its full training and adding ` +
      `and the cheapest other candidate (${outlook.cheapest.key}) ${pct(outlook.cheapest.share)}: ` +
      `together over the automatic time budget's ${Math.round(100 * AUTO_BUDGET_FRACTION)}%`;
  o.log?.info(`selection: ${why}; building the heuristic key (--selection_time_budget=<seconds> measures the candidates anyway)`);
  return selectionReport(list, d, sampleRows, queries, o, {
    candidates: list.candidates.map((c): CandidateMeasurement => ({ ...c, status: "skipped", note: why })),
    chosenKey: list.heuristicKey,
    reason: `${why}; kept the heuristic key unmeasured (give --selection_time_budget to measure)`,
    budgetSeconds: null,
    predictedBuildSeconds: null,
    seconds: 0,
    rotation: null,
    budgetHint: null,
  });
}

/** A selection report: the shapes and bounds of the selection, and what it found. */
function selectionReport(
  list: CandidateList,
  d: number,
  sampleRows: number,
  queries: number,
  o: MeasuredSelectionOptions,
  found: Pick<SelectionReport, "candidates" | "chosenKey" | "reason" | "budgetSeconds" | "predictedBuildSeconds" | "seconds" | "rotation" | "budgetHint">,
): SelectionReport {
  return {
    mode: "measured",
    heuristicKey: list.heuristicKey,
    chosenKey: found.chosenKey,
    presetParam: presetParamFor(found.chosenKey),
    reason: found.reason,
    vectors: o.n,
    dimension: d,
    sampleRows,
    queries,
    maxQueryTimeMs: o.maxQueryTimeMs,
    maxIndexMemoryBytes: o.maxIndexMemoryBytes,
    budgetSeconds: found.budgetSeconds,
    predictedBuildSeconds: found.predictedBuildSeconds,
    seconds: found.seconds,
    rotation: found.rotation,
    resampled: null,
    budgetHint: found.budgetHint,
    candidates: found.candidates,
    dropped: list.dropped,
  };
}

/**
 * Measures the candidates of `list` on `base` (index rows) with `queries` held out, and chooses.
 * Candidates with the rotation of `rotation` (trained ahead by the caller, which keeps owning it)
 * get a copy of it instead of training one on the sample; its seconds are not counted against the
 * budget, as the build of such a key spends them no more. Every FAISS index created here is freed
 * before returning.
 */
export async function measuredSelection(
  list: CandidateList,
  base: Float32Array,
  queries: Float32Array,
  d: number,
  o: MeasuredSelectionOptions,
  rotation: TrainedRotation | null = null,
): Promise<SelectionReport> {
  const clock = o.clock ?? (() => performance.now() / 1000);
  const start = clock();
  const s = base.length / d;
  const nq = queries.length / d;
  const report = (
    candidates: CandidateMeasurement[],
    chosenKey: string,
    reason: string,
    budget: number | null,
    h: HeuristicSampleCost | null,
    budgetHint: SelectionReport["budgetHint"] = null,
  ): SelectionReport =>
    selectionReport(list, d, s, nq, o, {
      candidates,
      chosenKey,
      reason,
      budgetSeconds: budget,
      predictedBuildSeconds: h === null ? null : predictedFullBuildSeconds(h),
      seconds: clock() - start,
      rotation: rotation && { spec: rotation.spec, rows: rotation.rows, seconds: rotation.seconds, reusedByBuild: usesRotationAhead(chosenKey, rotation) },
      budgetHint,
    });
  const unmeasured = selectionWithoutMeasuring(list, d, s, nq, o);
  if (unmeasured !== null) return { ...unmeasured, seconds: clock() - start };
  const gt = exactNeighbours(base, queries, d, o.metric);
  const out: CandidateMeasurement[] = [];
  const spent: SpentCandidate[] = [];
  let budget = o.timeBudgetSeconds;
  let heuristicCost: HeuristicSampleCost | null = null;
  // set once the heuristic's sample search saturates: nothing measured after it could be ranked against it
  let unrankable: string | null = null;
  // the highest-ranked candidate the budget skipped (not one skipped after a saturated heuristic)
  let firstSkippedForTime: number | null = null;
  for (const c of list.candidates) {
    if (unrankable !== null) {
      out.push({ ...c, status: "skipped", note: unrankable });
      continue;
    }
    const ahead = rotation !== null && usesRotationAhead(c.key, rotation) ? rotation : null;
    const work = sampleBuildWork(c.key, o.n, s, d, rotation);
    // a key with another rotation would leave the one trained ahead spent for nothing if it won
    const forfeit = rotationCharge(c.key, rotation, rotation?.seconds ?? 0);
    const measuring = predictedCandidateSeconds(work, spent);
    const predicted = measuring === null ? null : measuring + forfeit;
    const elapsed = clock() - start + (o.spentSeconds ?? 0);
    if (!startCandidate(elapsed, predicted, budget)) {
      const left = Math.max(0, budget! - elapsed);
      const cost = forfeit > 0
        ? `predicted ${measuring!.toFixed(1)} s + the ${forfeit.toFixed(1)} s of the ${rotation!.spec} rotation, spent for nothing if it won`
        : `predicted ${predicted!.toFixed(1)} s`;
      firstSkippedForTime ??= out.length;
      out.push({ ...c, status: "skipped", note: `${cost}, ${left.toFixed(1)} s of the ${budget!.toFixed(1)} s time budget left` });
      o.log?.info(`selection: ${c.key}: skipped (${cost}, ${left.toFixed(1)} s of the budget left)`);
      continue;
    }
    const t0 = clock();
    const m = await measureOne(c, base, queries, gt, d, s, nq, o, ahead?.owner ?? null);
    m.seconds = clock() - t0;
    out.push(m);
    if (m.status === "measured") {
      const st = m.stepSeconds!;
      spent.push({ work, buildSeconds: st.train + st.add, otherSeconds: st.tune + st.measure });
    } else if (m.status === "failed") {
      spent.push({ work, buildSeconds: m.seconds, otherSeconds: 0 }); // its steps are unknown; its time counts
    }
    if (c.heuristic) {
      const buildSeconds = m.status === "measured" ? m.stepSeconds!.train + m.stepSeconds!.add : m.seconds;
      heuristicCost = {
        buildSeconds,
        sampleWork: work,
        fullWork: fullBuildWork(c.key, o.n, d, { rotationTrained: ahead !== null }),
        aheadSeconds: ahead?.seconds ?? 0,
      };
      if (budget === null) budget = selectionBudgetSeconds(null, heuristicCost);
      if (m.saturated) {
        unrankable = `the heuristic's sample search probed most of the sample's lists (${m.param}): the sample cannot rank candidates at this latency bound`;
      }
    }
    o.log?.info(
      m.status === "measured"
        ? `selection: ${c.key}: recall@10 ${m.recall!.toFixed(3)} at ${m.latencyMs!.toFixed(3)} ms (${m.param || "no parameter"}), ${m.seconds.toFixed(1)} s` +
          ` (train ${m.stepSeconds!.train.toFixed(1)}, add ${m.stepSeconds!.add.toFixed(1)}, tune ${m.stepSeconds!.tune.toFixed(1)}, measure ${m.stepSeconds!.measure.toFixed(1)} s)`
        : `selection: ${c.key}: ${m.status} (${m.note})`,
    );
    if (unrankable !== null) o.log?.info(`selection: ${unrankable}; measuring no other candidate`);
  }
  const choice = chooseMeasured(
    out.map((m) => ({
      key: m.key,
      heuristic: m.heuristic,
      estimatedBytes: m.estimatedBytes,
      recall: m.recall ?? null,
      latencyMs: m.latencyMs ?? null,
      saturated: m.saturated,
    })),
    o.maxQueryTimeMs,
  );
  const chosenKey = choice?.key ?? list.heuristicKey ?? list.candidates[0]?.key;
  if (chosenKey === undefined) throw new RangeError("measured selection: no candidate to choose from");
  const hint = firstSkippedForTime === null
    ? null
    : budgetHint(list, out.slice(0, firstSkippedForTime + 1), d, s, o.n, spent, rotation, o.firstRoundRows ?? null);
  if (hint !== null) {
    o.log?.info(
      `selection: ${hint.key} and the candidates ranked after it were skipped for time; ` +
        `--selection_time_budget=${hint.seconds} is predicted to measure it and every candidate ranked before it`,
    );
  }
  return report(out, chosenKey, choice?.reason ?? "no candidate could be measured; keeping the heuristic key", budget, heuristicCost, hint);
}

/**
 * Rows of a larger sample to measure again on, with the share of lists the heuristic probed, when its
 * sample search saturated (it probed most of the sample's lists, so nothing could be ranked against it), or null
 * (measured_choice.ts `grownSampleRows`). The cost of measuring the heuristic and the cheapest other
 * candidate on the grown sample is predicted at the rate the heuristic's own measurement ran, and
 * must fit the budget left; a candidate with another rotation than the one trained ahead is charged
 * its seconds, as in the first round.
 */
export function resampleRows(
  report: SelectionReport,
  list: CandidateList,
  n: number,
  d: number,
  rotation: RotationAhead & { seconds: number } | null,
): { rows: number; probedShare: number } | null {
  const h = report.candidates.find((c) => c.heuristic);
  if (h?.status !== "measured" || !h.saturated || h.stepSeconds === undefined) return null;
  const share = probedListShare(h.sampleKey!, h.param ?? "");
  if (share === null) return null;
  const s = report.sampleRows;
  const spent: SpentCandidate[] = [{
    work: sampleBuildWork(h.key, n, s, d, rotation),
    buildSeconds: h.stepSeconds.train + h.stepSeconds.add,
    otherSeconds: h.stepSeconds.tune + h.stepSeconds.measure,
  }];
  const seconds = (key: string, rows: number) =>
    predictedCandidateSeconds(sampleBuildWork(key, n, rows, d, rotation), spent)! + rotationCharge(key, rotation, rotation?.seconds ?? 0);
  const others = list.candidates.filter((c) => !c.heuristic).map((c) => c.key);
  if (others.length === 0) return null;
  const cost = (rows: number) => seconds(h.key, rows) + Math.min(...others.map((k) => seconds(k, rows)));
  const left = report.budgetSeconds === null ? null : report.budgetSeconds - report.seconds;
  const rows = grownSampleRows(share, s, n, report.queries, cost, left);
  return rows === null ? null : { rows, probedShare: share };
}

/**
 * The budget a run of its own would need to measure the last of `upTo` (candidates in rank order,
 * ending with the first one skipped for time): measured_choice.ts `budgetToMeasure`, with the
 * rotation trained ahead only if a given budget would train it too, and the heuristic's first round
 * when this one ran on a grown sample. Keys FAISS rejected cost nothing.
 */
function budgetHint(
  list: CandidateList,
  upTo: CandidateMeasurement[],
  d: number,
  s: number,
  n: number,
  spent: SpentCandidate[],
  rotation: TrainedRotation | null,
  firstRoundRows: number | null,
): SelectionReport["budgetHint"] {
  const target = upTo[upTo.length - 1];
  const givenAhead = rotation !== null && rotationAhead(list.heuristicKey, n, d, true) !== null ? rotation : null;
  const keys = upTo.filter((c) => c.status !== "rejected").map((c) => c.key);
  const seconds = budgetToMeasure(keys, n, s, d, spent, givenAhead, rotation?.seconds ?? 0, firstRoundRows);
  return seconds === null ? null : { key: target.key, seconds };
}

/** Exact top-10 row numbers of `queries` among `base`, by a flat index of the metric. */
function exactNeighbours(base: Float32Array, queries: Float32Array, d: number, metric: Metric): BigInt64Array {
  using flat = Index.factory(d, "Flat", metric);
  flat.add(base);
  return flat.search(queries, SELECTION_RECALL_AT).labels;
}

async function measureOne(
  c: Candidate,
  base: Float32Array,
  queries: Float32Array,
  gt: BigInt64Array,
  d: number,
  s: number,
  nq: number,
  o: MeasuredSelectionOptions,
  rotationOwner: Index | null,
): Promise<CandidateMeasurement> {
  const sk = sampleKey(c.key, o.n, s);
  const kind = searchKind(c.key, d);
  let index: Index;
  try {
    index = Index.factory(d, sk, o.metric);
  } catch (e) {
    if (!(e instanceof FaissError)) throw e;
    return { ...c, status: "rejected", sampleKey: sk, note: `FAISS 1.7.3 rejects ${sk}: ${e.faissMessage.split("\n")[0]}` };
  }
  try {
    index.setPolysemousTraining(false); // unused at search time, costs minutes (README)
    // wall time of each step, for the log and the report (the budget uses the injectable clock)
    const wall = () => performance.now() / 1000;
    let t = wall();
    const lap = () => {
      const now = wall();
      const seconds = now - t;
      t = now;
      return seconds;
    };
    // the rotation trained ahead, copied in: training then trains only the IVF / codes on the sample
    if (rotationOwner !== null) index.copyTransformsFrom(rotationOwner);
    if (!index.isTrained) trainForKey(index, base, sk);
    const train = lap();
    index.add(base);
    const add = lap();
    const preset = presetParamFor(c.key);
    if (preset) index.setParameters(preset);
    const tuned = await tuneIndexParameters(index, sk, queries, {
      maxQueryTimeMs: sampleLatencyBound(o.maxQueryTimeMs, kind, o.n, s),
      minNearestNeighbors: Math.min(o.minNearestNeighbors, s),
    });
    const tune = lap();
    const param = [preset, tuned.param].filter((p) => p !== "").join(",");
    // latency and recall at the tuned parameters (measured_choice.ts: the same nprobe predicts both)
    if (param !== "") index.setParameters(param);
    const sampleMs = singleQueryTimer(index, queries, { k: SPEED_TEST_K, nQueries: nq })({ timeoutMs: FINAL_TIMING_MS }).msPerQuery;
    const found = index.search(queries, SELECTION_RECALL_AT).labels;
    // a sample that is the whole data predicts nothing: it is the measurement itself
    const saturated = s < o.n && saturatedSampleSearch(sk, param);
    const recall = rRecallAtR({ labels: found, k: SELECTION_RECALL_AT }, { labels: gt, k: SELECTION_RECALL_AT }, SELECTION_RECALL_AT);
    return {
      ...c,
      status: "measured",
      sampleKey: sk,
      param,
      recall,
      sampleLatencyMs: sampleMs,
      latencyMs: predictedLatencyMs(sampleMs, kind, o.n, s),
      ...(saturated ? { saturated, note: "its tuned sample search probed most of the sample's lists: not a prediction of the full index" } : {}),
      stepSeconds: { train, add, tune, measure: lap() },
    };
  } catch (e) {
    if (!(e instanceof FaissError)) throw e;
    return { ...c, status: "failed", sampleKey: sk, note: e.faissMessage.split("\n")[0] };
  } finally {
    index.free();
  }
}
