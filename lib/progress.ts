/**
 * Progress of long loops (reading, adding vectors, ground truth). On a terminal: one line redrawn in
 * place at most every 100 ms with done/total, percentage, rate and ETA. Elsewhere (CI logs, files):
 * an INFO log line every 10 s and one at the end, so logs stay readable. Nothing is shown when the
 * logger's level is above INFO (`--verbose=30`).
 *
 * The formatting functions are pure; the reporter takes its clock and writer as options, so tests
 * drive it with a fake clock.
 */

import process from "node:process";
import { INFO, type Logger } from "./log.ts";

/** Redraw interval of the terminal bar (ms): smooth enough, cheap enough. */
export const REDRAW_EVERY_MS = 100;
/** Interval between log lines when stderr is not a terminal (ms). */
export const LOG_EVERY_MS = 10_000;
/** Cells of the terminal bar. */
export const BAR_WIDTH = 24;

const SI_PREFIXES = ["", "k", "M", "G", "T", "P", "E", "Z"];

/**
 * Three significant digits with an SI prefix, like tqdm's `format_sizeof` (divisor 1000).
 *
 * @example formatSi(12345) === "12.3k"; formatSi(1234567) === "1.23M"; formatSi(523.4) === "523"; formatSi(5) === "5.00"
 */
export function formatSi(n: number): string {
  let x = n;
  for (const prefix of SI_PREFIXES) {
    const a = Math.abs(x);
    if (a < 999.5) {
      if (a < 9.995) return x.toFixed(2) + prefix;
      if (a < 99.95) return x.toFixed(1) + prefix;
      return x.toFixed(0) + prefix;
    }
    x /= 1000;
  }
  return x.toFixed(1) + "Y";
}

/**
 * A count: exact below 1000, else {@link formatSi}.
 *
 * @example formatCount(999) === "999"; formatCount(60000) === "60.0k"
 */
export function formatCount(n: number): string {
  return Number.isInteger(n) && Math.abs(n) < 1000 ? String(n) : formatSi(n);
}

/**
 * Items per second with an SI prefix; `?/s` when unknown (no time elapsed yet).
 *
 * @example formatRate(12345) === "12.3k/s"; formatRate(NaN) === "?/s"
 */
export function formatRate(perSecond: number): string {
  return Number.isFinite(perSecond) && perSecond >= 0 ? `${formatSi(perSecond)}/s` : "?/s";
}

/**
 * A duration as h:mm:ss (seconds rounded; hours not capped); `?:??:??` when unknown.
 *
 * @example formatEta(115) === "0:01:55"; formatEta(3725.4) === "1:02:05"; formatEta(Infinity) === "?:??:??"
 */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?:??:??";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

/** What the bar and the log lines show. */
export interface ProgressState {
  label: string;
  done: number;
  /** Unknown when undefined (or not positive): no percentage, no ETA. */
  total?: number;
  unit: string;
  elapsedSeconds: number;
  /** Shown after the count, e.g. "objective 1.234e+4" (training progress). */
  detail?: string;
}

function rateOf(s: ProgressState): number {
  return s.elapsedSeconds > 0 ? s.done / s.elapsedSeconds : NaN;
}

function hasTotal(s: ProgressState): s is ProgressState & { total: number } {
  return s.total !== undefined && s.total > 0;
}

/** Fraction done in [0, 1]. */
function fraction(s: ProgressState & { total: number }): number {
  return Math.min(1, Math.max(0, s.done / s.total));
}

function etaOf(s: ProgressState & { total: number }): number {
  const rate = rateOf(s);
  return rate > 0 ? Math.max(0, s.total - s.done) / rate : NaN;
}

/**
 * The terminal line: `label  42% |██████████              | 4.20M/10.0M vectors, 50.6k/s, ETA 0:01:55`;
 * without a total: `label 4.20M vectors, 50.6k/s, 0:01:23 elapsed`.
 */
export function renderBar(s: ProgressState, width = BAR_WIDTH): string {
  const rate = formatRate(rateOf(s));
  const detail = s.detail ? `, ${s.detail}` : "";
  if (!hasTotal(s)) return `${s.label} ${formatCount(s.done)} ${s.unit}${detail}, ${rate}, ${formatEta(s.elapsedSeconds)} elapsed`;
  const f = fraction(s);
  const filled = Math.floor(f * width);
  const bar = "█".repeat(filled) + " ".repeat(width - filled);
  const percent = String(Math.floor(f * 100)).padStart(3, " ");
  return `${s.label} ${percent}% |${bar}| ${formatCount(s.done)}/${formatCount(s.total)} ${s.unit}${detail}, ${rate}, ETA ${formatEta(etaOf(s))}`;
}

/**
 * The periodic log line (exact counts, for logs that are read later):
 * `label: 4200000/10000000 vectors (42.0%), 50.6k/s, ETA 0:01:55`; when finished:
 * `label: 10000000/10000000 vectors (100.0%) in 0:03:18, 50.5k/s`.
 */
export function renderLogLine(s: ProgressState, finished: boolean): string {
  const rate = formatRate(rateOf(s));
  const count = (hasTotal(s) ? `${s.done}/${s.total} ${s.unit} (${(Math.floor(fraction(s) * 1000) / 10).toFixed(1)}%)` : `${s.done} ${s.unit}`) +
    (s.detail ? `, ${s.detail}` : "");
  if (finished) return `${s.label}: ${count} in ${formatEta(s.elapsedSeconds)}, ${rate}`;
  return `${s.label}: ${count}, ${rate}` + (hasTotal(s) ? `, ETA ${formatEta(etaOf(s))}` : "");
}

export interface ProgressOptions {
  label: string;
  total?: number;
  /** What is counted, plural: "vectors", "rows", "queries". */
  unit?: string;
  log: Logger;
  /** Default: whether stderr is a terminal. */
  isTTY?: boolean;
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number;
  /** Raw writer for the terminal bar (default: stderr). */
  write?: (text: string) => void;
  logEveryMs?: number;
  redrawEveryMs?: number;
}

export interface Progress {
  /** Set the number of items done so far (and the detail shown after the count, kept until changed). */
  update(done: number, detail?: string): void;
  /** Add to the number of items done. */
  add(n: number): void;
  /** Draw or log the final state; idempotent. */
  finish(): void;
  readonly done: number;
}

/**
 * Start reporting progress.
 *
 * @example const p = progress({ label: "Adding", total: n, unit: "vectors", log }); for (…) p.add(batch); p.finish();
 */
export function progress(options: ProgressOptions): Progress {
  const log = options.log;
  const now = options.now ?? (() => performance.now());
  const write = options.write ?? ((text: string) => void process.stderr.write(text));
  const tty = options.isTTY ?? process.stderr.isTTY === true;
  const logEvery = options.logEveryMs ?? LOG_EVERY_MS;
  const redrawEvery = options.redrawEveryMs ?? REDRAW_EVERY_MS;
  const enabled = log.isEnabledFor(INFO);
  const start = now();
  let done = 0;
  let finished = false;
  let lastDraw = -Infinity;
  let lastLog = start;
  let drawn = "";
  let detail: string | undefined;

  const state = (): ProgressState => ({
    label: options.label, done, total: options.total, unit: options.unit ?? "items", elapsedSeconds: (now() - start) / 1000, detail,
  });
  const draw = () => {
    drawn = renderBar(state());
    write(`\r${drawn}\x1b[K`);
  };
  // Log lines written while the bar is up erase it first and get it back below them.
  const detach = enabled && tty
    ? log.attachLive({
      clear: () => drawn !== "" && write("\r\x1b[K"),
      redraw: () => drawn !== "" && write(`\r${drawn}\x1b[K`),
    })
    : () => {};

  const update = (value: number, newDetail?: string) => {
    done = value;
    if (newDetail !== undefined) detail = newDetail;
    if (!enabled || finished) return;
    const t = now();
    if (tty) {
      if (t - lastDraw >= redrawEvery) {
        lastDraw = t;
        draw();
      }
    } else if (t - lastLog >= logEvery) {
      lastLog = t;
      log.info(renderLogLine(state(), false));
    }
  };

  return {
    update,
    add: (n: number) => update(done + n),
    finish() {
      if (finished) return;
      finished = true;
      if (!enabled) return;
      if (tty) {
        detach();
        draw();
        write("\n");
      } else log.info(renderLogLine(state(), true));
    },
    get done() {
      return done;
    },
  };
}
