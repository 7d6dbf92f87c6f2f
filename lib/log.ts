/**
 * Logging the way Python AutoFaiss does: levels 10–50, lines formatted as
 * `"%(asctime)s [%(levelname)s]: %(message)s"` with Python's asctime (`2026-11-25 19:58:01,123`, local
 * time), the `Timeit` blocks and the final `{ … }` summary. Output goes to a sink (stderr by default),
 * so tests and embedders can capture it; clocks are injectable.
 */

import process from "node:process";

/** Python logging levels. */
export const DEBUG = 10;
export const INFO = 20;
export const WARNING = 30;
export const ERROR = 40;
export const CRITICAL = 50;

const LEVEL_NAMES: Record<number, string> = { 0: "NOTSET", 10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL" };

/** Receives one formatted line, without the trailing newline. */
export type Sink = (line: string) => void;

/** Writes each line to stderr. */
export const stderrSink: Sink = (line) => {
  process.stderr.write(line + "\n");
};

/** Something drawn on the terminal's last line (a progress bar) that log lines must not tear. */
export interface LiveLine {
  /** Erase the live line so a log line can be written in its place. */
  clear(): void;
  /** Draw it again below the log line. */
  redraw(): void;
}

export interface LoggerOptions {
  /** Minimum level written; Python's default for autofaiss is INFO (20). */
  level?: number;
  sink?: Sink;
  /** Wall clock for asctime and Timeit dates. */
  now?: () => Date;
  /** Monotonic clock in milliseconds for Timeit durations (Python: perf_counter). */
  clock?: () => number;
}

/** Python `logging.getLevelName(level)`: the name, or `Level N` for other numbers. */
export function levelName(level: number): string {
  return LEVEL_NAMES[level] ?? `Level ${level}`;
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/**
 * Python logging's default asctime: local time, `%Y-%m-%d %H:%M:%S` then `,` and milliseconds.
 *
 * @example formatAsctime(new Date(2026, 10, 25, 19, 58, 1, 123)) === "2026-11-25 19:58:01,123"
 */
export function formatAsctime(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())},${pad(d.getMilliseconds(), 3)}`;
}

/**
 * The start date Timeit prints: `strftime("%m/%d/%Y, %H:%M:%S")`, local time.
 *
 * @example formatTimeitDate(new Date(2026, 10, 25, 19, 58, 1)) === "11/25/2026, 19:58:01"
 */
export function formatTimeitDate(d: Date): string {
  return `${pad(d.getMonth() + 1)}/${pad(d.getDate())}/${d.getFullYear()}, ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** One log line: `%(asctime)s [%(levelname)s]: %(message)s`. */
export function formatRecord(level: number, message: string, date: Date): string {
  return `${formatAsctime(date)} [${levelName(level)}]: ${message}`;
}

/**
 * Python `str(value)` for the values AutoFaiss logs: None, True/False, ints, floats (`1e-07`),
 * strings unquoted, lists as `['a', 1]`.
 *
 * @example pyStr(null) === "None"; pyStr(true) === "True"; pyStr(1e-7) === "1e-07"
 */
export function pyStr(value: unknown): string {
  if (value === null || value === undefined) return "None";
  if (typeof value === "boolean") return value ? "True" : "False";
  if (typeof value === "number") return pyNumber(value);
  if (typeof value === "bigint") return String(value);
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(", ")}]`;
  return JSON.stringify(value);
}

/**
 * The lines of Python's `_log_output_dict`: `{`, `\tkey: value` per entry, `}`. With `ints`, the
 * other numbers were Python floats and print as such (`0.0`, not `0`).
 */
export function summaryLines(infos: Record<string, unknown>, ints?: ReadonlySet<string>): string[] {
  const body = Object.entries(infos).map(([key, value]) =>
    `\t${key}: ${ints && typeof value === "number" && !ints.has(key) ? pyFloat(value) : pyStr(value)}`
  );
  return ["{", ...body, "}"];
}

/** Python `str(float(n))`: integral values keep their `.0` (`2.0`, `1e+16`). */
export function pyFloat(n: number): string {
  const text = pyNumber(n);
  return /^-?\d+$/.test(text) ? `${text}.0` : text;
}

function pyRepr(value: unknown): string {
  return typeof value === "string" ? `'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'` : pyStr(value);
}

function pyNumber(n: number): string {
  if (Number.isNaN(n)) return "nan";
  if (!Number.isFinite(n)) return n > 0 ? "inf" : "-inf";
  // Python's float repr uses an exponent below 1e-4 and from 1e16 on (JS: 1e-7 and 1e21), and pads
  // it to two digits (1e-05). Both print the shortest digits that round-trip.
  const a = Math.abs(n);
  if (a !== 0 && (a < 1e-4 || a >= 1e16)) return n.toExponential().replace(/e([+-])(\d)$/, "e$10$2");
  return String(n);
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === "object" && v !== null && typeof (v as PromiseLike<unknown>).then === "function";
}

/**
 * A logger with Python's levels and format.
 *
 * @example const log = new Logger({ level: 20, sink: (l) => lines.push(l) }); log.info("There are 10 embeddings of dim 4")
 */
export class Logger {
  level: number;
  readonly sink: Sink;
  readonly now: () => Date;
  readonly clock: () => number;
  #live: LiveLine | null = null;

  constructor(options: LoggerOptions = {}) {
    this.level = options.level ?? INFO;
    this.sink = options.sink ?? stderrSink;
    this.now = options.now ?? (() => new Date());
    this.clock = options.clock ?? (() => performance.now());
  }

  isEnabledFor(level: number): boolean {
    return level >= this.level;
  }

  /** Write `message` at `level` if enabled; multi-line messages stay one record, as in Python. */
  log(level: number, message: string): void {
    if (!this.isEnabledFor(level)) return;
    const line = formatRecord(level, message, this.now());
    const live = this.#live;
    live?.clear();
    this.sink(line);
    live?.redraw();
  }

  debug(message: string): void {
    this.log(DEBUG, message);
  }
  info(message: string): void {
    this.log(INFO, message);
  }
  warning(message: string): void {
    this.log(WARNING, message);
  }
  error(message: string): void {
    this.log(ERROR, message);
  }
  critical(message: string): void {
    this.log(CRITICAL, message);
  }

  /**
   * Python's `Timeit(label, indent)` block around `fn` (sync or async): logs `"{tabs}{label} {date}"`
   * on entry and `'{tabs}>>> Finished "{label}" in {secs:.4f} secs'` on exit, also when `fn` throws.
   *
   * @example const n = await log.timed("Reading total number of vectors and dimension", 0, () => reader.count())
   */
  timed<T>(label: string, indent: number, fn: () => Promise<T>): Promise<T>;
  timed<T>(label: string, indent: number, fn: () => T): T;
  timed<T>(label: string, indent: number, fn: () => T | Promise<T>): T | Promise<T> {
    const tabs = "\t".repeat(indent);
    this.info(`${tabs}${label} ${formatTimeitDate(this.now())}`);
    const start = this.clock();
    const finished = () => this.info(`${tabs}>>> Finished "${label}" in ${((this.clock() - start) / 1000).toFixed(4)} secs`);
    let result: T | Promise<T>;
    try {
      result = fn();
    } catch (e) {
      finished();
      throw e;
    }
    if (!isThenable(result)) {
      finished();
      return result;
    }
    return Promise.resolve(result).then(
      (v) => {
        finished();
        return v;
      },
      (e) => {
        finished();
        throw e;
      },
    );
  }

  /**
   * Python's `_log_output_dict`: `{`, one `\tkey: value` line per entry, `}` (values via {@link pyStr}).
   * With `ints`, the other numbers were Python floats and print as such (`0.0`, not `0`).
   */
  summary(infos: Record<string, unknown>, ints?: ReadonlySet<string>): void {
    for (const line of summaryLines(infos, ints)) this.info(line);
  }

  /** Let log lines step around a live line (progress bar); returns the function that detaches it. */
  attachLive(live: LiveLine): () => void {
    this.#live = live;
    return () => {
      if (this.#live === live) this.#live = null;
    };
  }
}

/** A logger at `level` writing to `sink` (stderr by default). */
export function createLogger(level: number = INFO, sink: Sink = stderrSink): Logger {
  return new Logger({ level, sink });
}
