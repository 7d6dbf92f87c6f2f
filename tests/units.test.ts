import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatDuration, formatFixed1, formatMemory, parseMemory, pyFloorDiv, pyRound } from "../lib/plan/units.ts";

describe("pyRound (Python's round: half-to-even)", () => {
  const cases: Array<[number, number]> = [
    [8.5, 8], [2.5, 2], [3.5, 4], [0.5, 0], [1.5, 2], [-0.5, 0], [-1.5, -2], [-2.5, -2],
    [10.5, 10], [11.5, 12], [8.4999999, 8], [8.5000001, 9], [-8.5000001, -9],
    [0, 0], [7, 7], [-7, -7], [2.675, 3], [125.49999999999999, 125], [4503599627370497, 4503599627370497],
  ];
  for (const [x, want] of cases) {
    test(`pyRound(${x}) === ${want}`, () => assert.equal(pyRound(x), want));
  }
  test("never returns -0", () => assert.ok(Object.is(pyRound(-0.5), 0) && Object.is(pyRound(-0.2), 0)));
  test("rejects non-finite", () => assert.throws(() => pyRound(NaN), /pyRound: expected a finite number, got NaN/));
});

describe("pyFloorDiv (Python float //)", () => {
  const cases: Array<[number, number, number]> = [
    [7, 2, 3], [-7, 2, -4], [7, -2, -4], [1000, 3600, 0], [7200, 3600, 2], [3599.9999999999995, 3600, 0],
    [0.30000000000000004, 0.1, 3], [1, 0.1, 9],
  ];
  for (const [a, b, want] of cases) {
    test(`${a} // ${b} === ${want}`, () => assert.equal(pyFloorDiv(a, b), want));
  }
});

describe("formatFixed1 (Python %.1f, ties to even on exact binary values)", () => {
  const cases: Array<[number, string]> = [
    [0.25, "0.2"], [0.75, "0.8"], [1.25, "1.2"], [2.25, "2.2"], [1023.75, "1023.8"], [-0.25, "-0.2"],
    [-0.04, "-0.0"], [0.05, "0.1"], [0.35, "0.3"], [953.6743164, "953.7"], [1023.96, "1024.0"], [0, "0.0"],
  ];
  for (const [x, want] of cases) {
    test(`${x} -> ${want}`, () => assert.equal(formatFixed1(x), want));
  }
});

describe("parseMemory (Python cast_memory_to_bytes: powers of 1024)", () => {
  const ok: Array<[string, number]> = [
    ["16G", 17179869184], ["16GB", 17179869184], ["16gb", 17179869184], ["16Gb", 17179869184],
    ["1.5G", 1610612736], ["512KB", 524288], ["100B", 100], ["1K", 1024], ["0.1K", 102.4],
    [".5M", 524288], ["32GB", 34359738368], ["100M", 104857600], ["1T", 1099511627776],
    ["1Z", 1024 ** 7], ["1ZB", 1024 ** 7], ["007K", 7168], ["200G", 214748364800],
  ];
  for (const [s, want] of ok) {
    test(`"${s}" = ${want}`, () => assert.equal(parseMemory(s), want));
  }
  const rejected = ["100", "16 G", "16GiB", "1e3K", "-1G", "+1G", "1.G", "1..5G", "G", "", "16G ", " 16G", "1BB", "1Y", "1.5.5G", "1KK"];
  for (const s of rejected) {
    test(`rejects "${s}"`, () =>
      assert.throws(() => parseMemory(s), {
        message: `memory string: expected <number><unit> like 16G or 512MB, got "${s}"`,
      }));
  }
  test("rejects a number (python-fire turns --max_index_memory_usage=100 into an int)", () =>
    assert.throws(() => parseMemory(100 as unknown as string), {
      message: 'memory string: expected <number><unit> like 16G or 512MB, got "100"',
    }));
});

describe("formatMemory (Python cast_bytes_to_memory_string)", () => {
  const cases: Array<[number, string]> = [
    [0, "0.0B"], [1536, "1.5KB"], [1e9, "953.7MB"], [17179869184, "16.0GB"], [1023, "1023.0B"], [1024, "1.0KB"],
    [2 * 1024 ** 3, "2.0GB"], [-1.5 * 1024 ** 3, "-1.5GB"], [1280, "1.2KB"], [1024 ** 8, "1.0YB"],
    [2384800, "2.3MB"], [7156531456, "6.7GB"], [100.4, "100.4B"],
  ];
  for (const [b, want] of cases) {
    test(`${b} -> ${want}`, () => assert.equal(formatMemory(b), want));
  }
  test("round-trips through parseMemory at one-decimal precision", () =>
    assert.equal(parseMemory(formatMemory(2.04 * 1024 ** 3)), 2.0 * 1024 ** 3));
});

describe("formatDuration (Python to_readable_time)", () => {
  const cases: Array<[number, string]> = [
    [1000, "16.7 minutes"], [572.2, "9.5 minutes"], [1572.2, "26.2 minutes"], [7200, "2.0 hours"],
    [3600, "1.0 hours"], [3599, "60.0 minutes"], [59.99, "60.0 seconds"], [60, "1.0 minutes"], [0.5, "0.5 seconds"],
    [0, "0.0 seconds"], [90000, "25.0 hours"],
  ];
  for (const [s, want] of cases) {
    test(`${s}s -> ${want}`, () => assert.equal(formatDuration(s), want));
  }
});
