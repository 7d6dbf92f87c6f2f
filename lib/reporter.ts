/**
 * How the build reports what it does: log lines at Python's levels, timed steps and progress.
 * The pipeline only sees this interface; the CLI backs it with lib/log.ts and lib/progress.ts,
 * library users get silence unless they pass their own.
 */
export interface ProgressHandle {
  /** `detail` is shown after the count (e.g. the k-means objective) until changed. */
  update(done: number, detail?: string): void;
  finish(): void;
}

export interface BuildReporter {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  /** Runs `fn` as a named step (Python's Timeit blocks: a start line and a "Finished" line). */
  timed<T>(label: string, indent: number, fn: () => T | Promise<T>): Promise<T>;
  progress(label: string, total: number, unit: string): ProgressHandle;
}

const noop = () => {};

export const silentReporter: BuildReporter = {
  debug: noop,
  info: noop,
  warning: noop,
  error: noop,
  timed: async (_label, _indent, fn) => await fn(),
  progress: () => ({ update: noop, finish: noop }),
};
