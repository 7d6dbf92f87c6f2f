import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  createLogger, CRITICAL, DEBUG, ERROR, formatAsctime, formatRecord, formatTimeitDate, INFO, levelName, Logger, pyStr, WARNING,
} from "../lib/log.ts";

/** A logger writing to an array, with a fixed wall clock and a manual monotonic clock (ms). */
function capture(level = INFO) {
  const lines: string[] = [];
  const clock = { ms: 0 };
  const log = new Logger({ level, sink: (l) => lines.push(l), now: () => new Date(2026, 10, 25, 19, 58, 1, 123), clock: () => clock.ms });
  return { lines, clock, log };
}

const PREFIX = "2026-11-25 19:58:01,123";

describe("format (as Python's logging module prints it)", () => {
  test("asctime is Python's: local time, comma, milliseconds", () => {
    assert.equal(formatAsctime(new Date(2026, 10, 25, 19, 58, 1, 123)), "2026-11-25 19:58:01,123");
    assert.equal(formatAsctime(new Date(2026, 0, 5, 3, 4, 5, 6)), "2026-01-05 03:04:05,006");
  });
  test("Timeit date is %m/%d/%Y, %H:%M:%S", () => {
    assert.equal(formatTimeitDate(new Date(2026, 10, 25, 19, 58, 1, 999)), "11/25/2026, 19:58:01");
    assert.equal(formatTimeitDate(new Date(2026, 0, 5, 3, 4, 5)), "01/05/2026, 03:04:05");
  });
  test("record", () => {
    assert.equal(formatRecord(WARNING, "careful", new Date(2026, 10, 25, 19, 58, 1, 123)), `${PREFIX} [WARNING]: careful`);
  });
  test("level names, including unnamed levels", () => {
    assert.deepEqual([DEBUG, INFO, WARNING, ERROR, CRITICAL, 0, 15].map(levelName), ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "NOTSET", "Level 15"]);
  });
});

describe("levels", () => {
  test("INFO drops DEBUG and keeps the rest", () => {
    const { lines, log } = capture(INFO);
    log.debug("d");
    log.info("i");
    log.warning("w");
    log.error("e");
    log.critical("c");
    log.log(25, "custom");
    assert.deepEqual(lines, [
      `${PREFIX} [INFO]: i`, `${PREFIX} [WARNING]: w`, `${PREFIX} [ERROR]: e`, `${PREFIX} [CRITICAL]: c`, `${PREFIX} [Level 25]: custom`,
    ]);
  });
  test("--verbose=10 shows DEBUG; 40 only errors", () => {
    const debug = capture(DEBUG);
    debug.log.debug("d");
    assert.deepEqual(debug.lines, [`${PREFIX} [DEBUG]: d`]);
    const quiet = capture(ERROR);
    quiet.log.warning("w");
    quiet.log.error("e");
    assert.deepEqual(quiet.lines, [`${PREFIX} [ERROR]: e`]);
    assert.equal(quiet.log.isEnabledFor(ERROR), true);
    assert.equal(quiet.log.isEnabledFor(WARNING), false);
  });
  test("a multi-line message is one record", () => {
    const { lines, log } = capture();
    log.info("a\nb");
    assert.deepEqual(lines, [`${PREFIX} [INFO]: a\nb`]);
  });
  test("createLogger", () => {
    const lines: string[] = [];
    const log = createLogger(WARNING, (l) => lines.push(l));
    log.info("no");
    log.warning("yes");
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[WARNING\]: yes$/);
  });
});

describe("timed (Python Timeit)", () => {
  test("sync block with indent", () => {
    const { lines, clock, log } = capture();
    const result = log.timed("Creating the index", 1, () => {
      clock.ms += 1234.56789;
      return 42;
    });
    assert.equal(result, 42);
    assert.deepEqual(lines, [
      `${PREFIX} [INFO]: \tCreating the index 11/25/2026, 19:58:01`,
      `${PREFIX} [INFO]: \t>>> Finished "Creating the index" in 1.2346 secs`,
    ]);
  });
  test("async block, nested, indent 0 and 2", async () => {
    const { lines, clock, log } = capture();
    const v = await log.timed("Launching the whole pipeline", 0, async () => {
      await log.timed("-> Training the index with 100 vectors of dim 8", 2, async () => {
        await Promise.resolve();
        clock.ms += 500;
      });
      clock.ms += 250;
      return "done";
    });
    assert.equal(v, "done");
    assert.deepEqual(lines.map((l) => l.slice(PREFIX.length)), [
      " [INFO]: Launching the whole pipeline 11/25/2026, 19:58:01",
      " [INFO]: \t\t-> Training the index with 100 vectors of dim 8 11/25/2026, 19:58:01",
      ' [INFO]: \t\t>>> Finished "-> Training the index with 100 vectors of dim 8" in 0.5000 secs',
      ' [INFO]: >>> Finished "Launching the whole pipeline" in 0.7500 secs',
    ]);
  });
  test("the Finished line is written when the block throws (sync and async)", async () => {
    const { lines, log } = capture();
    assert.throws(() => log.timed("a", 0, () => {
      throw new Error("boom");
    }), /boom/);
    await assert.rejects(log.timed("b", 0, async () => {
      throw new Error("bang");
    }), /bang/);
    assert.deepEqual(lines.map((l) => l.slice(PREFIX.length + 9)), [
      "a 11/25/2026, 19:58:01", '>>> Finished "a" in 0.0000 secs', "b 11/25/2026, 19:58:01", '>>> Finished "b" in 0.0000 secs',
    ]);
  });
  test("silent above INFO, like Python", () => {
    const { lines, log } = capture(WARNING);
    assert.equal(log.timed("x", 0, () => 1), 1);
    assert.deepEqual(lines, []);
  });
});

describe("summary (Python _log_output_dict)", () => {
  test("braces and tab + key: value lines", () => {
    const { lines, log } = capture();
    log.summary({
      index_key: "IVF512,Flat", index_param: "nprobe=512", index_path: null, "size in bytes": 5575307,
      avg_search_speed_ms: 1.22, "reconstruction error %": "0.0", "compression ratio": 0.918, ok: true,
    });
    assert.deepEqual(lines.map((l) => l.slice(PREFIX.length)), [
      " [INFO]: {",
      " [INFO]: \tindex_key: IVF512,Flat",
      " [INFO]: \tindex_param: nprobe=512",
      " [INFO]: \tindex_path: None",
      " [INFO]: \tsize in bytes: 5575307",
      " [INFO]: \tavg_search_speed_ms: 1.22",
      " [INFO]: \treconstruction error %: 0.0",
      " [INFO]: \tcompression ratio: 0.918",
      " [INFO]: \tok: True",
      " [INFO]: }",
    ]);
  });
  test("with the int fields named, other numbers print as Python floats", () => {
    const { lines, log } = capture();
    log.summary({ "size in bytes": 5575307, "reconstruction error %": 0, "compression ratio": 1, avg_search_speed_ms: 1.5, big: 1e16 }, new Set(["size in bytes"]));
    assert.deepEqual(lines.map((l) => l.slice(PREFIX.length + " [INFO]: ".length)), [
      "{", "\tsize in bytes: 5575307", "\treconstruction error %: 0.0", "\tcompression ratio: 1.0", "\tavg_search_speed_ms: 1.5", "\tbig: 1e+16", "}",
    ]);
  });
  test("pyStr", () => {
    const cases: Array<[unknown, string]> = [
      [null, "None"], [undefined, "None"], [false, "False"], [5, "5"], [0.1, "0.1"], [1e-7, "1e-07"], [1.5e-5, "1.5e-05"],
      [0.0001, "0.0001"], [1e16, "1e+16"], [1.5e17, "1.5e+17"], [123456789012345, "123456789012345"], [NaN, "nan"],
      [-Infinity, "-inf"], ["s", "s"], [["a", 1, "it's"], "['a', 1, 'it\\'s']"], [10n, "10"], [{ a: 1 }, '{"a":1}'],
    ];
    for (const [v, want] of cases) assert.equal(pyStr(v), want, String(v));
  });
});

describe("live line (progress bar) around log lines", () => {
  test("cleared before and redrawn after each record; detach stops it", () => {
    const events: string[] = [];
    const log = new Logger({ sink: (l) => events.push(`line ${l.slice(PREFIX.length + 9)}`), now: () => new Date(2026, 10, 25, 19, 58, 1, 123) });
    const detach = log.attachLive({ clear: () => events.push("clear"), redraw: () => events.push("redraw") });
    log.info("a");
    log.debug("hidden");
    detach();
    log.info("b");
    assert.deepEqual(events, ["clear", "line a", "redraw", "line b"]);
  });
});
