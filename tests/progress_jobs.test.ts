/**
 * Progress from inside FAISS (native/jobs.cpp through ffi Index.trainWithProgress / addWithProgress
 * and lib/commands/faiss_progress.ts): statuses arrive while FAISS works, counts reach FAISS
 * 1.7.3's iteration numbers, the trained / filled index is the one the blocking calls give, errors
 * come back with FAISS's message, and the index is never left busy.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FaissError, Index, type JobStatus, numThreads, setNumThreads } from "../ffi/faiss.ts";
import { buildIndex } from "../lib/commands/build_index.ts";
import { addProgressRows, trainingDetail, trainWithProgress } from "../lib/commands/faiss_progress.ts";
import { type BuildReporter, silentReporter } from "../lib/reporter.ts";
import { trainingLevers } from "../lib/plan/training_plan.ts";
import { bruteForce, clusteredData, recallAtK, rows } from "./helpers/data.ts";
import { oracleAvailable, pythonSearch } from "./helpers/python_oracle.ts";

/** One OpenMP thread: tiny k-means iterations crawl when spinning OpenMP threads share a loaded machine. */
async function oneThread<T>(fn: () => Promise<T>): Promise<T> {
  const previous = numThreads()!;
  setNumThreads(1);
  try {
    return await fn();
  } finally {
    setNumThreads(previous);
  }
}

/** The highest `done` seen per phase, and how many statuses arrived before the last one. */
function summarize(statuses: JobStatus[]) {
  const done = new Map<string, number>();
  const total = new Map<string, number>();
  for (const s of statuses) {
    // within a phase, counts never go back
    if (done.has(s.phase)) assert.ok(s.done >= done.get(s.phase)!, `${s.phase}: ${s.done} after ${done.get(s.phase)}`);
    done.set(s.phase, Math.max(done.get(s.phase) ?? 0, s.done));
    total.set(s.phase, s.total);
  }
  return { done, total, running: statuses.filter((s) => !s.finished).length };
}

describe("trainWithProgress", () => {
  const d = 32, n = 3000;
  const x = clusteredData(n, d, 20, 7);

  /** Two indices of `key`, polysemous training off as build_index trains: `reference` trained the
   *  blocking way with the key's levers, `untrained` for the path under test; disposing frees both. */
  function leverPair(key: string) {
    const levers = trainingLevers(key);
    const reference = Index.factory(d, key, "l2");
    const untrained = Index.factory(d, key, "l2");
    reference.setPolysemousTraining(false);
    untrained.setPolysemousTraining(false);
    reference.trainWithLevers(x, levers);
    return { levers, reference, untrained, [Symbol.dispose]: () => (reference.free(), untrained.free()) };
  }

  test("OPQ + IVF + PQ: every k-means iteration counted, same trained index as train()", async () => {
    await oneThread(async () => {
      using plain = Index.factory(d, "OPQ4_32,IVF32,PQ4", "l2");
      using jobbed = Index.factory(d, "OPQ4_32,IVF32,PQ4", "l2");
      plain.setPolysemousTraining(false);
      jobbed.setPolysemousTraining(false);
      plain.train(x);
      const statuses: JobStatus[] = [];
      await jobbed.trainWithProgress(x, {}, (s) => statuses.push(s));
      assert.deepEqual(jobbed.toBytes(), plain.toBytes());
      const { done, total, running } = summarize(statuses);
      // FAISS 1.7.3 defaults: OPQMatrix 50 outer iterations, its PQ 40 k-means iterations at the first
      // and 4 after, per sub-quantizer (4 × 236); IVF k-means 10 iterations; PQ 25 per sub-quantizer.
      // A phase that ends between two polls shows its last polled count; the job's whole counts are exact.
      assert.equal(total.get("opq"), 4 * 236);
      assert.ok(done.get("opq")! > 0 && done.get("opq")! <= 4 * 236);
      // the 10 IVF iterations on 3,000 points may all fall between two polls
      if (total.has("ivf-kmeans")) assert.equal(total.get("ivf-kmeans"), 10);
      assert.equal(total.get("pq-kmeans"), 100);
      const last = statuses.at(-1)!;
      assert.equal(last.finished, true);
      assert.deepEqual(last.phaseCounts, { "opq": 4 * 236, "ivf-kmeans": 10, "pq-kmeans": 100, "add": 0 });
      assert.ok(running >= 3, `statuses while training: ${running}`);
      assert.ok(statuses.some((s) => s.phase === "opq" && s.outer > 0 && s.outerTotal === 50 && s.objective !== null && s.objective > 0));
    });
  });

  test("with the key's training levers: the index trainWithLevers gives, the direct loops counted", async () => {
    await oneThread(async () => {
      const key = "OPQ4_32,IVF32,PQ4";
      const levers = trainingLevers(key);
      assert.ok(levers.directSubspace && levers.opqNiter !== undefined, JSON.stringify(levers));
      using blocking = Index.factory(d, key, "l2");
      using jobbed = Index.factory(d, key, "l2");
      blocking.setPolysemousTraining(false);
      jobbed.setPolysemousTraining(false);
      assert.deepEqual(blocking.trainWithLevers(x, levers), { opq: true, ivf: true, pq: true });
      const statuses: JobStatus[] = [];
      assert.deepEqual(await jobbed.trainWithProgress(x, levers, (s) => statuses.push(s)), { opq: true, ivf: true, pq: true });
      assert.deepEqual(jobbed.toBytes(), blocking.toBytes());
      // OPQ: 40 k-means iterations at the first outer iteration, 4 at each later one, per sub-quantizer
      const opq = 4 * (40 + (levers.opqNiter! - 1) * 4);
      assert.deepEqual(statuses.at(-1)!.phaseCounts, { "opq": opq, "ivf-kmeans": 10, "pq-kmeans": 100, "add": 0 });
      assert.ok(statuses.some((s) => s.phase === "opq" && s.total === opq && s.outerTotal === levers.opqNiter));
    });
  });

  test("OPQ: the input is released once rotated; overwriting it then leaves the index trainWithLevers gives", async () => {
    await oneThread(async () => {
      // after the rotation: IVF and 256-centroid PQ k-means, far longer than a poll
      using pair = leverPair("OPQ4_32,IVF64,PQ4");
      const { levers, reference: blocking, untrained: jobbed } = pair;
      const input = x.slice();
      let releases = 0;
      let phaseAtRelease: string | null = null;
      let last: JobStatus | null = null;
      await jobbed.trainWithProgress(input, levers, (s) => (last = s), {
        onInputReleased: () => {
          releases++;
          phaseAtRelease = (last as JobStatus | null)?.phase ?? null;
          input.fill(Number.NaN); // any k-means still reading it would be poisoned
        },
      });
      assert.equal(releases, 1);
      assert.equal(phaseAtRelease, "opq");
      assert.deepEqual(jobbed.toBytes(), blocking.toBytes());
    });
  });

  test("discardInput: the same index; the input is given up (its inner pages read as zeros)", async () => {
    await oneThread(async () => {
      using pair = leverPair("OPQ4_32,IVF64,PQ4");
      const { levers, reference: blocking, untrained: jobbed } = pair;
      const input = x.slice();
      await jobbed.trainWithProgress(input, levers, undefined, { discardInput: true });
      assert.deepEqual(jobbed.toBytes(), blocking.toBytes());
      // whole pages only: 4 KiB in from each end is inside them whatever the buffer's alignment
      const inner = input.subarray(1024, input.length - 1024);
      assert.equal(inner.every((v) => v === 0), true, "the rotated rows' input pages were given back");
    });
  });

  test("the rotation alone, then the rest on the same rows: the index one training gives; refused without a transform", async () => {
    await oneThread(async () => {
      using pair = leverPair("OPQ4_32,IVF64,PQ4");
      const { levers, reference: blocking, untrained: split } = pair;
      const first: JobStatus[] = [];
      assert.equal(await split.trainTransformsWithProgress(x, levers, (s) => first.push(s)), true);
      assert.equal(split.isTrained, false, "the IVF and its PQ are not trained yet");
      const last = first.at(-1)!;
      assert.deepEqual([last.phaseCounts["ivf-kmeans"], last.phaseCounts["pq-kmeans"]], [0, 0]);
      assert.ok(last.phaseCounts.opq > 0);
      const second: JobStatus[] = [];
      await split.trainWithProgress(x, levers, (s) => second.push(s));
      assert.equal(second.at(-1)!.phaseCounts.opq, 0, "the rotation is not trained again");
      assert.deepEqual(split.toBytes(), blocking.toBytes());

      using plain = Index.factory(d, "IVF64,PQ4", "l2");
      await assert.rejects(plain.trainTransformsWithProgress(x, {}), (e: unknown) => e instanceof FaissError && /no pre-transform/.test(e.message));
      assert.equal(plain.isTrained, false);
    });
  });

  test("a rotation trained in another index and copied in: the index one training gives; mismatches refused, the destination unchanged", async () => {
    await oneThread(async () => {
      using pair = leverPair("OPQ4_32,IVF64,PQ4");
      const { levers, reference, untrained: copied } = pair;
      // the rotation's owner has another sub-index (as a selection sample's key has fewer lists)
      using owner = Index.factory(d, "OPQ4_32,IVF16,PQ4", "l2");
      assert.equal(await owner.trainTransformsWithProgress(x, levers), true);
      assert.equal(copied.copyTransformsFrom(owner), true);
      assert.equal(copied.isTrained, false, "its IVF and PQ are not trained yet");
      const statuses: JobStatus[] = [];
      await copied.trainWithProgress(x, levers, (s) => statuses.push(s));
      assert.equal(statuses.at(-1)!.phaseCounts.opq, 0, "the rotation is not trained again");
      assert.deepEqual(copied.toBytes(), reference.toBytes());

      const refused = (message: RegExp) => (e: unknown) => e instanceof FaissError && message.test(e.message);
      using other = Index.factory(d, "OPQ8_32,IVF64,PQ8", "l2");
      const before = other.toBytes();
      assert.throws(() => other.copyTransformsFrom(owner), refused(/transform 0 differs \(source OPQMatrix 32 -> 32 M=4, destination OPQMatrix 32 -> 32 M=8\)/));
      using notTrained = Index.factory(d, "OPQ4_32,IVF64,PQ4", "l2");
      assert.throws(() => other.copyTransformsFrom(notTrained), refused(/differs/));
      using sameShape = Index.factory(d, "OPQ8_32,IVF64,PQ8", "l2");
      assert.throws(() => other.copyTransformsFrom(sameShape), refused(/transform 0 of the source is not trained/));
      assert.deepEqual(other.toBytes(), before, "a refused copy leaves the destination as it was");
      using plain = Index.factory(d, "IVF64,PQ4", "l2");
      assert.throws(() => plain.copyTransformsFrom(owner), refused(/both indices need a pre-transform/));
      using full = Index.factory(d, "OPQ4_32,Flat", "l2");
      full.copyTransformsFrom(owner);
      assert.equal(full.isTrained, true, "a Flat sub-index needs no training: the copy completes it");
      full.add(x.subarray(0, 10 * d));
      assert.throws(() => full.copyTransformsFrom(owner), refused(/already holds 10 vectors/));
    });
  });

  test("without a pre-transform the input is read to the end: never released", async () => {
    await oneThread(async () => {
      using index = Index.factory(d, "IVF64,PQ4", "l2");
      index.setPolysemousTraining(false);
      let releases = 0;
      await index.trainWithProgress(x, trainingLevers("IVF64,PQ4"), undefined, { onInputReleased: () => releases++ });
      assert.equal(releases, 0);
      assert.equal(index.isTrained, true);
    });
  });

  test("an error in the native thread is a FaissError with FAISS's message; the index is usable after", async () => {
    using index = Index.factory(d, "IVF32,Flat", "l2");
    await assert.rejects(index.trainWithProgress(x.subarray(0, 10 * d), {}), (e: unknown) => {
      assert.ok(e instanceof FaissError);
      assert.equal(e.call, "faiss_Index_train");
      assert.match(e.faissMessage, /Number of training points \(10\) should be at least as large as number of clusters \(32\)/);
      return true;
    });
    assert.equal(index.isTrained, false);
    index.train(x);
    assert.equal(index.isTrained, true);
  });

  test("while a job runs the index is busy; an exception in onStatus still joins the job", async () => {
    await oneThread(async () => {
      using index = Index.factory(d, "IVF32,PQ8x4", "l2");
      let busyError: unknown;
      const failing = index.trainWithProgress(x, {}, (s) => {
        if (!s.finished) {
          try {
            void index.ntotal;
          } catch (e) {
            busyError = e;
          }
          throw new Error("renderer broke");
        }
      });
      await assert.rejects(failing, /renderer broke/);
      assert.match(String(busyError), /busy: faiss_Index_train is running on it/);
      // joined: the training finished and the index is free again
      assert.equal(index.isTrained, true);
      index.free();
    });
  });

});

describe("addWithProgress", () => {
  const d = 32, n = 20_000;
  const x = clusteredData(n, d, 50, 11);

  test("IVF: done reaches n in chunks, same index as one add call", async () => {
    using plain = Index.factory(d, "IVF64,Flat", "l2");
    plain.train(x);
    using jobbed = plain.clone();
    plain.add(x);
    const seen: number[] = [];
    await jobbed.addWithProgress(x, { progressRows: 1000, onProgress: (added, total) => {
      assert.equal(total, n);
      seen.push(added);
    } });
    assert.equal(seen.at(-1), n);
    assert.ok(seen.filter((v) => v > 0 && v < n).length >= 1, `intermediate counts: ${seen}`);
    assert.deepEqual(seen, [...seen].sort((a, b) => a - b));
    assert.deepEqual(jobbed.toBytes(), plain.toBytes());
  });

  test("with ids: the ids are the given ones", async () => {
    using index = Index.factory(d, "IVF16,Flat", "l2");
    index.train(x);
    const ids = BigInt64Array.from({ length: 3000 }, (_, i) => BigInt(1_000_000 + i));
    await index.addWithProgress(rows(x, d, 0, 3000), { ids, progressRows: 1000 });
    assert.equal(index.ntotal, 3000);
    const r = index.search(rows(x, d, 1234, 1235), 1);
    assert.equal(r.labels[0], 1_001_234n);
  });

  test("HNSW32: one FAISS call counted from inside; the same graph on one thread; python3-faiss reads it", async () => {
    await oneThread(async () => {
      using plain = Index.factory(d, "HNSW32", "l2");
      using jobbed = Index.factory(d, "HNSW32", "l2");
      plain.add(x);
      const seen: number[] = [];
      await jobbed.addWithProgress(x, { progressRows: addProgressRows(n), onProgress: (added) => seen.push(added) });
      assert.equal(jobbed.ntotal, n);
      assert.equal(seen.at(-1), n);
      assert.ok(seen.some((v) => v > 0 && v < n), `counts from inside the call: ${seen}`);
      // FAISS inserts one call's vertices level by level: chunks would build another, worse graph
      assert.deepEqual(jobbed.toBytes(), plain.toBytes());
      const queries = rows(x, d, 0, 200);
      const truth = bruteForce(x, queries, d, 10, "l2").labels;
      assert.ok(recallAtK(jobbed.search(queries, 10).labels, truth, 10) >= 0.95);
      if (oracleAvailable()) {
        const dir = mkdtempSync(join(tmpdir(), "progress-jobs-"));
        try {
          jobbed.write(join(dir, "knn.index"));
          const oracle = pythonSearch(join(dir, "knn.index"), queries, d, 10);
          assert.deepEqual(oracle.labels.flat(), Array.from(jobbed.search(queries, 10).labels, Number));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
    });
  });
});

describe("build_index reports training and adding from inside FAISS", () => {
  test("one bar per training phase reaching its iteration count, adding bar reaching n", async () => {
    const d = 16, n = 20_000;
    const bars: { label: string; total: number; unit: string; updates: [number, string?][]; finished: boolean }[] = [];
    const reporter: BuildReporter = {
      ...silentReporter,
      progress(label, total, unit) {
        const bar = { label, total, unit, updates: [] as [number, string?][], finished: false };
        bars.push(bar);
        return { update: (done, detail) => bar.updates.push([done, detail]), finish: () => void (bar.finished = true) };
      },
    };
    const { index } = await buildIndex({ vectors: clusteredData(n, d, 30, 3), dim: d }, {
      saveOnDisk: false, indexPath: null, indexKey: "IVF64,PQ4", metricType: "l2", reporter, nbCores: 1,
    });
    index.free();
    const ivf = bars.find((b) => b.label === "Training IVF k-means")!;
    assert.equal(ivf.total, 10);
    assert.equal(ivf.updates.at(-1)![0], 10);
    // the objective when a status showed the phase running; a phase over between two reads has none
    assert.match(ivf.updates.at(-1)![1]!, /^(objective \d.*)?$/);
    const pq = bars.find((b) => b.label === "Training PQ k-means")!;
    assert.equal(pq.total, 4 * 25);
    assert.equal(pq.updates.at(-1)![0], 100);
    const adding = bars.find((b) => b.label === "Adding")!;
    assert.equal(adding.total, n);
    assert.equal(adding.updates.at(-1)![0], n);
    assert.ok(bars.every((b) => b.finished));
  });

  test("a phase that began and ended between two status reads still gets its bar, at the job's count", async () => {
    const status = (phase: JobStatus["phase"], done: number, total: number, finished: boolean, counts: Partial<JobStatus["phaseCounts"]>): JobStatus => ({
      phase, done, total, finished, inputReleased: false, objective: 1.5, outer: 0, outerTotal: 0,
      phaseCounts: { "opq": 0, "ivf-kmeans": 0, "pq-kmeans": 0, "add": 0, ...counts },
    });
    // what the job reported: OPQ running, then PQ k-means (IVF's 10 iterations fell between), then the end
    const fake = {
      trainWithProgress: async (_x: Float32Array, _levers: unknown, onStatus: (s: JobStatus) => void) => {
        onStatus(status("opq", 5, 48, false, { "opq": 5 }));
        onStatus(status("pq-kmeans", 30, 100, false, { "opq": 48, "ivf-kmeans": 10, "pq-kmeans": 30 }));
        onStatus(status("pq-kmeans", 100, 100, true, { "opq": 48, "ivf-kmeans": 10, "pq-kmeans": 100 }));
        return null;
      },
    } as unknown as Index;
    const bars: { label: string; total: number; last: number; finished: boolean }[] = [];
    const reporter: BuildReporter = {
      ...silentReporter,
      progress(label, total) {
        const bar = { label, total, last: -1, finished: false };
        bars.push(bar);
        return { update: (done) => void (bar.last = done), finish: () => void (bar.finished = true) };
      },
    };
    await trainWithProgress(fake, new Float32Array(8), "OPQ4_8,IVF4,PQ4", reporter);
    assert.deepEqual(bars, [
      { label: "Training OPQ rotation", total: 48, last: 48, finished: true },
      { label: "Training IVF k-means", total: 10, last: 10, finished: true },
      { label: "Training PQ k-means", total: 100, last: 100, finished: true },
    ]);
  });

  test("trainingDetail", () => {
    const base = { done: 3, total: 10, outer: 0, outerTotal: 0, finished: false, inputReleased: false, phaseCounts: { "opq": 0, "ivf-kmeans": 3, "pq-kmeans": 0, "add": 0 } };
    assert.equal(trainingDetail({ ...base, phase: "ivf-kmeans", objective: 2.2006123 }), "objective 2.2006");
    assert.equal(trainingDetail({ ...base, phase: "pq-kmeans", objective: null }), "");
    assert.equal(trainingDetail({ ...base, phase: "opq", objective: 123456.7, outer: 12, outerTotal: 50 }), "outer iteration 12/50, PQ error 1.2346e+5");
    assert.equal(trainingDetail({ ...base, phase: "opq", objective: null, outer: 0, outerTotal: 50 }), "outer iteration 0/50");
  });
});
