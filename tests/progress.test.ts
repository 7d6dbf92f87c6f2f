import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatCount, formatEta, formatRate, formatSi, progress, renderBar, renderLogLine } from "../lib/progress.ts";
import { Logger, WARNING } from "../lib/log.ts";

describe("formatting", () => {
  test("formatSi: three significant digits, SI prefixes (tqdm format_sizeof)", () => {
    const cases: Array<[number, string]> = [
      [0, "0.00"], [5, "5.00"], [9.994, "9.99"], [9.996, "10.0"], [12.34, "12.3"], [99.96, "100"], [523.4, "523"], [999.4, "999"],
      [999.6, "1.00k"], [12345, "12.3k"], [1234567, "1.23M"], [60_000, "60.0k"], [2.5e9, "2.50G"], [1e24, "1.0Y"], [1e27, "1000.0Y"],
    ];
    for (const [n, want] of cases) assert.equal(formatSi(n), want, String(n));
  });
  test("formatCount: exact below 1000", () => {
    assert.deepEqual([0, 999, 1000, 60_000, 10_000_000].map(formatCount), ["0", "999", "1.00k", "60.0k", "10.0M"]);
  });
  test("formatRate", () => {
    assert.deepEqual([12345, 523.4, 0, NaN, Infinity, -1].map(formatRate), ["12.3k/s", "523/s", "0.00/s", "?/s", "?/s", "?/s"]);
  });
  test("formatEta: h:mm:ss", () => {
    const cases: Array<[number, string]> = [
      [0, "0:00:00"], [59.4, "0:00:59"], [59.6, "0:01:00"], [115, "0:01:55"], [3725.4, "1:02:05"], [360_000, "100:00:00"],
      [Infinity, "?:??:??"], [NaN, "?:??:??"], [-1, "?:??:??"],
    ];
    for (const [s, want] of cases) assert.equal(formatEta(s), want, String(s));
  });
  test("renderBar with a total", () => {
    const s = { label: "Adding", done: 4_200_000, total: 10_000_000, unit: "vectors", elapsedSeconds: 84 };
    assert.equal(renderBar(s, 10), "Adding  42% |████      | 4.20M/10.0M vectors, 50.0k/s, ETA 0:01:56");
    assert.equal(renderBar({ ...s, done: 0, elapsedSeconds: 0 }, 10), "Adding   0% |          | 0/10.0M vectors, ?/s, ETA ?:??:??");
    assert.equal(renderBar({ ...s, done: 10_000_000, elapsedSeconds: 200 }, 10), "Adding 100% |██████████| 10.0M/10.0M vectors, 50.0k/s, ETA 0:00:00");
    // More than the total (a wrong estimate) never overflows the bar.
    assert.equal(renderBar({ ...s, done: 12_000_000, elapsedSeconds: 240 }, 4), "Adding 100% |████| 12.0M/10.0M vectors, 50.0k/s, ETA 0:00:00");
  });
  test("renderBar with a detail (training objective)", () => {
    const s = { label: "Training IVF k-means", done: 6, total: 10, unit: "iterations", elapsedSeconds: 120, detail: "objective 3.4412e+4" };
    assert.equal(renderBar(s, 10), "Training IVF k-means  60% |██████    | 6/10 iterations, objective 3.4412e+4, 0.05/s, ETA 0:01:20");
    assert.equal(renderLogLine(s, false), "Training IVF k-means: 6/10 iterations (60.0%), objective 3.4412e+4, 0.05/s, ETA 0:01:20");
    assert.equal(renderBar({ label: "Training", done: 3, unit: "steps", elapsedSeconds: 3, detail: "x" }), "Training 3 steps, x, 1.00/s, 0:00:03 elapsed");
  });
  test("renderBar without a total", () => {
    assert.equal(renderBar({ label: "Reading", done: 1500, unit: "rows", elapsedSeconds: 3 }), "Reading 1.50k rows, 500/s, 0:00:03 elapsed");
  });
  test("renderLogLine", () => {
    const s = { label: "Adding", done: 4_200_000, total: 10_000_000, unit: "vectors", elapsedSeconds: 84 };
    assert.equal(renderLogLine(s, false), "Adding: 4200000/10000000 vectors (42.0%), 50.0k/s, ETA 0:01:56");
    assert.equal(renderLogLine({ ...s, done: 10_000_000, elapsedSeconds: 198 }, true), "Adding: 10000000/10000000 vectors (100.0%) in 0:03:18, 50.5k/s");
    assert.equal(renderLogLine({ ...s, done: 9_999_999, elapsedSeconds: 198 }, false).split(" ")[3], "(99.9%),");
    assert.equal(renderLogLine({ label: "Reading", done: 1500, unit: "rows", elapsedSeconds: 3 }, false), "Reading: 1500 rows, 500/s");
    assert.equal(renderLogLine({ label: "Reading", done: 1500, unit: "rows", elapsedSeconds: 3 }, true), "Reading: 1500 rows in 0:00:03, 500/s");
  });
});

/** A logger capturing messages only, a fake clock, and a raw writer capturing terminal output. */
function harness(level = 20) {
  const logged: string[] = [];
  const written: string[] = [];
  const clock = { ms: 1000 };
  const log = new Logger({ level, sink: (l) => logged.push(l.replace(/^.*? \[INFO\]: /, "")), clock: () => clock.ms });
  return { logged, written, clock, log, write: (t: string) => void written.push(t), now: () => clock.ms };
}

describe("progress on a terminal", () => {
  test("redraws in place at most every 100 ms, finishes with a newline", () => {
    const h = harness();
    const p = progress({ label: "Adding", total: 1000, unit: "vectors", log: h.log, isTTY: true, now: h.now, write: h.write });
    h.clock.ms += 50;
    p.update(100); // first draw
    h.clock.ms += 50;
    p.update(200); // 50 ms later: skipped
    h.clock.ms += 50;
    p.add(100); // 100 ms after the first draw: drawn
    assert.equal(p.done, 300);
    h.clock.ms += 150;
    p.finish();
    p.finish(); // idempotent
    p.update(999); // ignored after finish
    assert.deepEqual(h.written, [
      "\rAdding  10% |██                      | 100/1.00k vectors, 2.00k/s, ETA 0:00:00\x1b[K",
      "\rAdding  30% |███████                 | 300/1.00k vectors, 2.00k/s, ETA 0:00:00\x1b[K",
      "\rAdding  30% |███████                 | 300/1.00k vectors, 1.00k/s, ETA 0:00:01\x1b[K",
      "\n",
    ]);
    assert.deepEqual(h.logged, []);
  });
  test("log lines erase the bar and it comes back below them", () => {
    const h = harness();
    const p = progress({ label: "Adding", total: 10, unit: "vectors", log: h.log, isTTY: true, now: h.now, write: h.write });
    h.log.info("before the first draw"); // nothing to erase yet
    h.clock.ms += 1000;
    p.update(5);
    h.log.info("hello");
    p.finish();
    h.log.info("after");
    const bar = "Adding  50% |████████████            | 5/10 vectors, 5.00/s, ETA 0:00:01";
    assert.deepEqual(h.written, [`\r${bar}\x1b[K`, "\r\x1b[K", `\r${bar}\x1b[K`, `\r${bar}\x1b[K`, "\n"]);
    assert.deepEqual(h.logged, ["before the first draw", "hello", "after"]);
  });
});

describe("progress in logs (not a terminal)", () => {
  test("an INFO line every 10 s and one at the end", () => {
    const h = harness();
    const p = progress({ label: "Adding", total: 100_000, unit: "vectors", log: h.log, isTTY: false, now: h.now, write: h.write });
    for (let i = 1; i <= 25; i++) {
      h.clock.ms += 1000;
      p.update(i * 4000); // 4000 vectors/s
    }
    p.finish();
    assert.deepEqual(h.logged, [
      "Adding: 40000/100000 vectors (40.0%), 4.00k/s, ETA 0:00:15",
      "Adding: 80000/100000 vectors (80.0%), 4.00k/s, ETA 0:00:05",
      "Adding: 100000/100000 vectors (100.0%) in 0:00:25, 4.00k/s",
    ]);
    assert.deepEqual(h.written, []);
  });
  test("a custom interval", () => {
    const h = harness();
    const p = progress({ label: "Reading", unit: "rows", log: h.log, isTTY: false, now: h.now, logEveryMs: 1000 });
    h.clock.ms += 999;
    p.update(1);
    h.clock.ms += 1;
    p.update(2);
    assert.deepEqual(h.logged, ["Reading: 2 rows, 2.00/s"]);
  });
  test("silent when the level is above INFO", () => {
    for (const isTTY of [true, false]) {
      const h = harness(WARNING);
      const p = progress({ label: "x", total: 1, log: h.log, isTTY, now: h.now, write: h.write });
      h.clock.ms += 20_000;
      p.update(1);
      p.finish();
      assert.deepEqual([h.logged, h.written], [[], []]);
    }
  });
});
