/**
 * Numeric and unit helpers that must behave exactly like Python AutoFaiss
 * (memory strings, readable durations, Python's half-to-even rounding).
 * Pure functions, no I/O.
 */

/** Binary memory units, index = power of 1024 (AutoFaiss `utils/cast.py`). */
const MEMORY_UNITS = ["B", "K", "M", "G", "T", "P", "E", "Z"] as const;

/** Suffixes printed by `cast_bytes_to_memory_string`, then "YB" past ZB. */
const MEMORY_PRINT_UNITS = ["B", "KB", "MB", "GB", "TB", "PB", "EB", "ZB"] as const;

/** One binary kilo (units are powers of 1024, as in AutoFaiss). */
const KIBI = 1024;

/**
 * `<number><unit>`: digits, `digits.digits` or `.digits`; unit B,K,M,G,T,P,E,Z with an optional
 * trailing B (not `BB`), case-insensitive. Anchored because Python requires the single
 * match to span the whole string.
 */
const MEMORY_STRING = /^([0-9]*\.[0-9]+|[0-9]+)(KB|MB|GB|TB|PB|EB|ZB|B|K|M|G|T|P|E|Z)$/i;

/** Seconds per hour / minute for {@link formatDuration}. */
const SECONDS_PER_HOUR = 3600;
const SECONDS_PER_MINUTE = 60;

/**
 * Python 3 `round(x)` for a float: nearest integer, exact halves go to the even neighbour
 * (Python's `round`; `Math.round` rounds halves up, which changes cluster counts).
 *
 * @example pyRound(8.5) === 8; pyRound(2.5) === 2; pyRound(3.5) === 4; pyRound(-0.5) === 0
 */
export function pyRound(x: number): number {
  if (!Number.isFinite(x)) throw new RangeError(`pyRound: expected a finite number, got ${x}`);
  const floor = Math.floor(x);
  // x - floor(x) is exact for doubles, so a true half is detected exactly.
  const frac = x - floor;
  if (frac < 0.5) return floor + 0; // + 0 turns -0 into 0
  if (frac > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor + 0 : floor + 1;
}

/**
 * Python float floor division `a // b` (CPython `float_floor_div`): computed from `fmod`, so it can
 * differ from `Math.floor(a / b)` when the quotient rounds up to an integer.
 *
 * @example pyFloorDiv(7, 2) === 3; pyFloorDiv(-7, 2) === -4
 */
export function pyFloorDiv(a: number, b: number): number {
  if (b === 0) throw new RangeError("pyFloorDiv: division by zero");
  const mod = a % b; // JS % is C fmod
  let div = (a - mod) / b;
  if (mod !== 0 && (b < 0) !== (mod < 0)) div -= 1;
  if (div === 0) return 0;
  let floorDiv = Math.floor(div);
  if (div - floorDiv > 0.5) floorDiv += 1;
  return floorDiv;
}

/**
 * Python `"%.1f" % x`: one decimal, correctly rounded, exact ties to even.
 * JS `toFixed` breaks exact ties away from zero (`(0.25).toFixed(1) === "0.3"`, Python prints "0.2").
 * A double is an exact tie at one decimal iff 4·|x| is an odd integer.
 *
 * @example formatFixed1(0.25) === "0.2"; formatFixed1(0.75) === "0.8"; formatFixed1(953.67) === "953.7"
 */
export function formatFixed1(x: number): string {
  const ax = Math.abs(x);
  const quad = ax * 4; // exact: multiplying by a power of two
  if (Number.isInteger(quad) && quad % 2 === 1 && quad < Number.MAX_SAFE_INTEGER) {
    const low = Math.floor(ax * 10); // ax*10 = 2.5·odd, exact in this range
    const even = low % 2 === 0 ? low : low + 1;
    return (x < 0 ? "-" : "") + (even / 10).toFixed(1);
  }
  return x.toFixed(1);
}

/**
 * Parse a memory string like Python AutoFaiss `cast_memory_to_bytes`: binary units,
 * `16G` = `16GB` = `16gb` = 17179869184, `1.5G` = 1610612736, `512KB` = 524288, `100B` = 100.
 * The result may be fractional (`0.1K` = 102.4), as in Python.
 * Rejects a bare number, spaces, signs, exponents and `GiB` with a message naming the value.
 *
 * @example parseMemory("16G") === 17179869184
 */
export function parseMemory(s: string): number {
  const match = typeof s === "string" ? MEMORY_STRING.exec(s) : null;
  if (match === null) {
    throw new Error(`memory string: expected <number><unit> like 16G or 512MB, got "${String(s)}"`);
  }
  const power = MEMORY_UNITS.indexOf(match[2][0].toUpperCase() as (typeof MEMORY_UNITS)[number]);
  return Number(match[1]) * KIBI ** power;
}

/**
 * Format bytes like Python `cast_bytes_to_memory_string`: divide by 1024 until
 * |value| < 1024, one decimal, suffix B…ZB then YB.
 *
 * @example formatMemory(0) === "0.0B"; formatMemory(1536) === "1.5KB"; formatMemory(1e9) === "953.7MB"
 */
export function formatMemory(bytes: number): string {
  let value = bytes;
  for (const unit of MEMORY_PRINT_UNITS) {
    if (Math.abs(value) < KIBI) return formatFixed1(value) + unit;
    value /= KIBI;
  }
  return formatFixed1(value) + "YB";
}

/**
 * Readable duration like Python `to_readable_time(s, rounding=True)`: hours with one
 * decimal if at least one whole hour, else minutes if at least one whole minute, else seconds.
 *
 * @example formatDuration(1000) === "16.7 minutes"; formatDuration(7200) === "2.0 hours"
 */
export function formatDuration(seconds: number): string {
  // Python: hours = floor(s // 3600); minutes = floor((s - 3600·hours) // 60).
  const hours = pyFloorDiv(seconds, SECONDS_PER_HOUR);
  const minutes = pyFloorDiv(seconds - SECONDS_PER_HOUR * hours, SECONDS_PER_MINUTE);
  if (hours !== 0) return `${formatFixed1(seconds / SECONDS_PER_HOUR)} hours`;
  if (minutes !== 0) return `${formatFixed1(seconds / SECONDS_PER_MINUTE)} minutes`;
  return `${formatFixed1(seconds)} seconds`;
}
