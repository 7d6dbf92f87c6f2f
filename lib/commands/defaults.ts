/**
 * The one defaults table: each command's defaults read from its CLI schema (./schema.ts), so the
 * library API (`buildIndex`, `tuneIndex`, `scoreIndex`) and the CLI cannot drift apart.
 *
 * @example BUILD_DEFAULTS.max_index_memory_usage // "32GB"
 */
import { BUILD_INDEX, BUILD_PARTITIONED_INDEXES, type ParamSpec, SCORE_INDEX, SEARCH, TUNE_INDEX, type ValueOf } from "./schema.ts";

/** `{ name: default }` for every parameter of schema `S` that has a default. */
export type DefaultsOf<S extends readonly ParamSpec[]> = {
  readonly [P in S[number] as P extends { default: unknown } ? P["name"] : never]: ValueOf<P["type"]>;
};

/** The defaults of `schema`, keyed by the parameters' Python names. */
export function defaultsOf<S extends readonly ParamSpec[]>(schema: S): DefaultsOf<S> {
  const out: Record<string, unknown> = {};
  for (const spec of schema) if ("default" in spec) out[spec.name] = spec.default;
  return Object.freeze(out) as DefaultsOf<S>;
}

export const BUILD_DEFAULTS = defaultsOf(BUILD_INDEX);
export const TUNE_DEFAULTS = defaultsOf(TUNE_INDEX);
export const SCORE_DEFAULTS = defaultsOf(SCORE_INDEX);
export const PARTITIONED_DEFAULTS = defaultsOf(BUILD_PARTITIONED_INDEXES);
export const SEARCH_DEFAULTS = defaultsOf(SEARCH);
