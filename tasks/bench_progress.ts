/**
 * Cost of progress from inside FAISS (issue 12 item 4): training and adding through the native jobs
 * with a terminal bar redrawn as they report (lib/commands/faiss_progress.ts, the path build_index
 * takes), against the blocking calls without progress (`trainForKey`, `Index.add`), same process,
 * same library, back to back, repeated (--repeat, best time kept: the machine may be shared).
 * A short training (about a second) shows what noticing a job's end costs.
 * Prints seconds, the ratio with / without progress (target: ≤ 1.02), whether the trained indices
 * are byte-identical, recall@10 of both HNSW graphs against exact neighbours, and the load average.
 *
 *   bun tasks/bench_progress.ts [--train_key=OPQ16_64,IVF256,PQ16] [--train_n=20000]
 *                               [--add_key=HNSW32] [--add_n=20000] [--repeat=2]
 *
 * Data: Fashion-MNIST (Debian's dataset-fashion-mnist), 60,000 × 784, the test images as queries.
 * FAISS threads: all cores, as a build uses them.
 */
import { loadavg } from "node:os";
import process from "node:process";
import { Index, buildInfo } from "../ffi/faiss.ts";
import { addProgressRows, trainWithProgress } from "../lib/commands/faiss_progress.ts";
import { trainForKey } from "../lib/measure/train_index.ts";
import { createLogger, INFO } from "../lib/log.ts";
import { progress } from "../lib/progress.ts";
import { type BuildReporter, silentReporter } from "../lib/reporter.ts";
import { readIdxImages } from "./convert_fashion_mnist.ts";

const arg = (name: string, dflt: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const trainKey = arg("train_key", "OPQ16_64,IVF256,PQ16");
const trainN = Number(arg("train_n", "20000"));
const addKey = arg("add_key", "HNSW32");
const addN = Number(arg("add_n", "20000"));
const repeat = Number(arg("repeat", "2"));

const base = readIdxImages("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
const queries = readIdxImages("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
const d = base.dim;
const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");
console.log(`FAISS ${buildInfo()?.faissVersion} (${buildInfo()?.compileOptions}); load average before: ${load()}`);

// A terminal bar whose output is thrown away: the drawing and formatting costs are paid.
let drawnBytes = 0;
const log = createLogger(INFO, () => {});
const reporter: BuildReporter = {
  ...silentReporter,
  progress: (label, total, unit) => progress({ label, total, unit, log, isTTY: true, write: (t) => void (drawnBytes += t.length) }),
};

async function timeIt(fn: () => Promise<void> | void): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

const sample = base.vectors.subarray(0, trainN * d);
const addVectors = base.vectors.subarray(0, addN * d);
const best = { trainOff: Infinity, trainOn: Infinity, addOff: Infinity, addOn: Infinity, shortOff: Infinity, shortOn: Infinity };
// A job of about a second, where noticing the end late would show: the native job wakes the JS
// thread when it ends (autofaiss_job_wait); polling every 250 ms added 125 ms on average.
const SHORT_KEY = "IVF256,Flat";
const shortSample = base.vectors.subarray(0, 10_000 * d);
let identical = true;
let recallOff = 0, recallOn = 0;
const nq = 200;
const q = queries.vectors.subarray(0, nq * d);
const truth = Index.factory(d, "Flat", "l2");
truth.add(addVectors);
const exact = truth.search(q, 10).labels;
truth.free();
const recall = (labels: BigInt64Array) => {
  let hit = 0;
  for (let i = 0; i < nq; i++) {
    const want = new Set(Array.from(exact.subarray(i * 10, i * 10 + 10)));
    for (const l of labels.subarray(i * 10, i * 10 + 10)) if (want.has(l)) hit++;
  }
  return hit / (nq * 10);
};

for (let r = 0; r < repeat; r++) {
  using off = Index.factory(d, trainKey, "l2");
  using on = Index.factory(d, trainKey, "l2");
  off.setPolysemousTraining(false);
  on.setPolysemousTraining(false);
  best.trainOff = Math.min(best.trainOff, await timeIt(() => trainForKey(off, sample, trainKey)));
  best.trainOn = Math.min(best.trainOn, await timeIt(() => trainWithProgress(on, sample, trainKey, reporter)));
  const a = off.toBytes(), b = on.toBytes();
  identical &&= a.length === b.length && a.every((v, i) => v === b[i]);

  using addOff = Index.factory(d, addKey, "l2");
  using addOn = Index.factory(d, addKey, "l2");
  best.addOff = Math.min(best.addOff, await timeIt(() => addOff.add(addVectors)));
  best.addOn = Math.min(best.addOn, await timeIt(async () => {
    const bar = reporter.progress("Adding", addN, "vectors");
    await addOn.addWithProgress(addVectors, { progressRows: addProgressRows(addN), onProgress: (added) => bar.update(added) });
    bar.finish();
  }));
  for (let i = 0; i < 3; i++) {
    using off = Index.factory(d, SHORT_KEY, "l2");
    using on = Index.factory(d, SHORT_KEY, "l2");
    best.shortOff = Math.min(best.shortOff, await timeIt(() => trainForKey(off, shortSample, SHORT_KEY)));
    best.shortOn = Math.min(best.shortOn, await timeIt(() => trainWithProgress(on, shortSample, SHORT_KEY, reporter)));
  }
  recallOff = recall(addOff.search(q, 10).labels);
  recallOn = recall(addOn.search(q, 10).labels);
  console.log(`round ${r + 1}/${repeat} done; load average: ${load()}`);
}

const row = (name: string, off: number, on: number) =>
  console.log(`${name.padEnd(44)} ${off.toFixed(2).padStart(8)} s ${on.toFixed(2).padStart(8)} s   ${(on / off).toFixed(3)}`);
console.log(`${"case".padEnd(44)} ${"no progress".padStart(10)} ${"progress".padStart(10)}   ratio`);
row(`train ${trainKey} on ${trainN}`, best.trainOff, best.trainOn);
row(`add ${addN} into ${addKey}`, best.addOff, best.addOn);
row(`short job: train ${SHORT_KEY} on 10000`, best.shortOff, best.shortOn);
console.log(`trained indices byte-identical: ${identical}; recall@10 of ${addKey}: ${recallOff.toFixed(4)} (one call) vs ${recallOn.toFixed(4)} (chunks)`);
console.log(`bar output: ${drawnBytes} bytes; load average after: ${load()}`);
