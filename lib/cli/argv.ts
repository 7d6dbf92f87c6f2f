/**
 * Command-line parsing compatible with python-fire, driven by a typed parameter schema.
 * This is the one module that knows how argv becomes values; no third-party parser is used because
 * none has fire's rules (`--noflag`, Python-literal values, positionals filling parameters in order).
 *
 * Rules, in fire's order:
 * - `--name=value` and `--name value` (a next argument that starts with `--` is not a value);
 *   `--name-with-dashes` is the same as `--name_with_dashes` (fire replaces `-` by `_`).
 * - `--flag` alone → True; `--noflag` → False when `flag` is a declared bool (also `--no-flag`).
 * - Bare arguments fill, in declared order, the parameters not given by name.
 * - Values are Python literals when they parse as one (see literal.ts), else strings.
 * - `-x` is fire's shortcut for the one parameter whose name starts with x.
 * - `-h`/`--help` ask for help (see {@link helpRequested}); after `--` only fire's `--help` is accepted.
 *
 * Decisions where fire's result is a known trap (each is listed in the README's differences):
 * - list parameters take a bare string as a one-element list: `--id_columns=id` → ["id"] (issue #177),
 *   and `[/a,/b]`, which is not a Python literal, as the two strings "/a" and "/b";
 * - string parameters keep the text verbatim unless it is a quoted string or None:
 *   `--index_key=IVF256,Flat` is the string "IVF256,Flat" (fire makes it a tuple);
 * - memory parameters must be memory strings: `--max_index_memory_usage=100` is a clear error, not an int;
 * - bool parameters accept True/False in any case, yes/no and 1/0 (fire passes the string "false",
 *   which Python treats as true); `--flag word` only consumes `word` when it is such a value;
 * - a value-taking flag with no value (`--index_key` at the end) is an error, not True;
 * - unknown flags are errors that suggest the closest known flag (fire silently ignores some).
 */

import { parseMemory } from "../plan/units.ts";
import { type Literal, parseFireValue } from "./literal.ts";

// The schema types live with the command schemas; argv.ts parses against them.
import type { ParamSpec, ParamType, ParamValue } from "../commands/schema.ts";
export type { ParamSpec, ParamType, ParamValue };

/** Result of {@link parseArgs}: every parameter's value (defaults filled) and which were given. */
export interface ParsedArgs {
  values: Record<string, ParamValue>;
  /** Names of the parameters set on the command line (by flag or position). */
  given: Set<string>;
}

/** A usage error: the message is one line that names the flag, the expectation and the actual value. */
export class ArgvError extends Error {
  override name = "ArgvError";
}

const HELP_FLAGS: ReadonlySet<string> = new Set(["-h", "--help"]);

/** Words accepted as a bool value (case-insensitive). */
const BOOL_WORDS: Record<string, boolean> = { true: true, false: false, yes: true, no: false, "1": true, "0": false };

/** What each type expects, for error messages. */
const EXPECTED: Record<ParamType, string> = {
  string: "a string",
  "string?": "a string or None",
  int: "an integer",
  "int?": "an integer or None",
  float: "a number",
  bool: "True or False",
  memory: "a memory string like 16G or 512MB",
  list: "a list like [a,b]",
  "list?": "a list like [a,b] or None",
  paths: "a path or a list of paths like [a,b]",
};

/** True when argv asks for help: `-h`/`--help` anywhere (fire also reads them after `--`). */
export function helpRequested(argv: readonly string[]): boolean {
  return argv.some((a) => HELP_FLAGS.has(a));
}

/**
 * Parse a command's arguments (the words after the command name) against its schema.
 * Throws {@link ArgvError} with a one-line message on any usage error.
 *
 * @example parseArgs(specs, ["emb", "--metric_type=l2", "--nosave_on_disk"]).values
 *          → { embeddings: "emb", metric_type: "l2", save_on_disk: false, ... }
 */
export function parseArgs(specs: readonly ParamSpec[], argv: readonly string[]): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const aliases = new Map(specs.filter((s) => s.negatedAlias).map((s) => [s.negatedAlias!, s]));
  const values: Record<string, ParamValue> = {};
  const given = new Set<string>();
  const positional: string[] = [];
  const set = (spec: ParamSpec, value: ParamValue) => {
    values[spec.name] = value;
    given.add(spec.name);
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    // fire's value test: the next word is a value unless it starts with "--".
    const next = argv[i + 1];
    const nextIsValue = next !== undefined && !next.startsWith("--");

    if (arg === "--") {
      // fire reads its own flags after "--"; only help makes sense here.
      const extra = argv.slice(i + 1).find((a) => !HELP_FLAGS.has(a));
      if (extra !== undefined) throw new ArgvError(`python-fire flag ${extra} after -- is not supported (only -- --help)`);
      break;
    }
    if (HELP_FLAGS.has(arg)) continue;

    let key: string;
    let text: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      key = (eq < 0 ? arg.slice(2) : arg.slice(2, eq)).replaceAll("-", "_");
      text = eq < 0 ? undefined : arg.slice(eq + 1);
    } else if (/^-[A-Za-z]/.test(arg)) {
      key = shortcut(specs, arg);
      text = arg.length > 2 ? arg.slice(3) : undefined;
    } else {
      positional.push(arg); // includes negative numbers such as -5
      continue;
    }
    const flag = arg.startsWith("--") ? `--${key}` : arg.split("=")[0];

    const spec = byName.get(key);
    if (spec !== undefined) {
      if (text !== undefined) set(spec, coerce(spec, text));
      else if (spec.type === "bool") {
        if (nextIsValue && next.toLowerCase() in BOOL_WORDS) set(spec, coerce(spec, argv[++i]));
        else set(spec, true);
      } else if (nextIsValue) set(spec, coerce(spec, argv[++i]));
      else throw new ArgvError(`${spec.name}: expected ${describe(spec)}, got no value (write --${spec.name}=VALUE)`);
      continue;
    }

    const alias = aliases.get(key);
    // fire's `--noflag`; `--no_flag` / `--no-flag` too, as most CLIs spell it.
    const negated = key.startsWith("no") ? (byName.get(key.slice(2)) ?? (key[2] === "_" ? byName.get(key.slice(3)) : undefined)) : undefined;
    const target = alias ?? (negated?.type === "bool" ? negated : undefined);
    if (target !== undefined) {
      if (text !== undefined) {
        // `--no_cache=True` reads naturally; `--nouse_cache=...` is not fire syntax but is unambiguous.
        const v = coerce({ ...target, name: key }, text);
        set(target, !(v as boolean));
      } else set(target, false);
      continue;
    }
    if (negated !== undefined) {
      throw new ArgvError(`${flag}: ${negated.name} is not a boolean flag (write --${negated.name}=VALUE)`);
    }
    throw new ArgvError(`unknown flag ${flag}${suggestion(key, specs)}`);
  }

  // Bare arguments fill the parameters not given by name, in declared order (fire's _ParseArgs).
  for (const spec of specs) {
    if (positional.length === 0) break;
    if (!given.has(spec.name)) set(spec, coerce(spec, positional.shift()!));
  }
  if (positional.length > 0) {
    throw new ArgvError(`unexpected argument ${show(positional[0])}: every parameter already has a value`);
  }

  for (const spec of specs) {
    if (given.has(spec.name)) continue;
    if (spec.required) throw new ArgvError(`missing required flag --${spec.name}`);
    values[spec.name] = copyDefault(spec.default ?? null);
  }
  return { values, given };
}

/** Resolve fire's single-letter shortcut `-x` / `-x=v` to a parameter name. */
function shortcut(specs: readonly ParamSpec[], arg: string): string {
  const name = arg.split("=")[0];
  if (name.length !== 2) throw new ArgvError(`unknown flag ${name}${suggestion(name.slice(1), specs)}`);
  const matches = specs.filter((s) => s.name[0] === name[1]);
  if (matches.length === 1) return matches[0].name;
  if (matches.length > 1) {
    throw new ArgvError(`${name} is ambiguous: it could be ${orList(matches.map((s) => `--${s.name}`))}`);
  }
  throw new ArgvError(`unknown flag ${name}`);
}

function copyDefault(v: ParamValue): ParamValue {
  return Array.isArray(v) ? [...v] : v;
}

function describe(spec: ParamSpec): string {
  if (spec.choices) return `one of ${spec.choices.join(", ")}${spec.type.endsWith("?") ? " or None" : ""}`;
  if (spec.min !== undefined && (spec.type === "int" || spec.type === "int?" || spec.type === "float")) {
    return `${EXPECTED[spec.type].replace(" or None", "")} >= ${spec.min}${spec.type.endsWith("?") ? " or None" : ""}`;
  }
  if (spec.nonEmpty) return `a non-empty list like [a,b]`;
  return EXPECTED[spec.type];
}

function show(text: string): string {
  return text === "" ? '""' : text;
}

function fail(spec: ParamSpec, text: string): never {
  throw new ArgvError(`${spec.name}: expected ${describe(spec)}, got ${show(text)}`);
}

/**
 * Turn one raw command-line value into the parameter's typed value, or throw an ArgvError naming the
 * parameter, what it expects and what it got.
 *
 * @example coerce({ name: "id_columns", type: "list?", help: "" }, "id") → ["id"]
 */
export function coerce(spec: ParamSpec, text: string): ParamValue {
  const lit = parseFireValue(text);
  const nullable = spec.type.endsWith("?");
  if (lit.kind === "None") {
    if (nullable) return null;
    fail(spec, text);
  }
  switch (spec.type) {
    case "string":
    case "string?":
      return checkChoice(spec, text, lit.kind === "str" ? (lit.value as string) : text);
    case "memory": {
      const s = lit.kind === "str" ? (lit.value as string) : lit.kind === "raw" ? text : null;
      if (s === null) fail(spec, text);
      try {
        parseMemory(s);
      } catch {
        fail(spec, text);
      }
      return s;
    }
    case "int":
    case "int?": {
      const n = lit.value;
      // An integral float (4.0, 5e6) is accepted: Python would pass a float that FAISS then rejects.
      if ((lit.kind !== "int" && lit.kind !== "float") || !Number.isSafeInteger(n)) fail(spec, text);
      return checkMin(spec, text, n as number);
    }
    case "float":
      if (lit.kind !== "int" && lit.kind !== "float") fail(spec, text);
      return checkMin(spec, text, lit.value as number);
    case "bool": {
      if (lit.kind === "bool") return lit.value as boolean;
      const word = BOOL_WORDS[text.toLowerCase()];
      if (word === undefined) fail(spec, text);
      return word;
    }
    case "list":
    case "list?":
    case "paths": {
      const items = listItems(lit, text);
      if (items === null) fail(spec, text);
      if (spec.type === "paths" && lit.kind !== "list" && lit.kind !== "tuple" && items.length === 1 && !bracketed(text)) {
        return items[0]; // one path stays a string, as Python receives it
      }
      if (items.length === 0 && (spec.nonEmpty || spec.type === "paths")) fail(spec, text);
      return items;
    }
  }
}

function bracketed(text: string): boolean {
  return text.startsWith("[") && text.endsWith("]");
}

/** Items of a list value as strings; a scalar is a one-item list; null if an item is not a scalar. */
function listItems(lit: Literal, text: string): string[] | null {
  if (lit.kind === "list" || lit.kind === "tuple") {
    const out: string[] = [];
    for (const item of lit.items!) {
      if (item.kind === "str") out.push(item.value as string);
      else if (item.kind === "int" || item.kind === "float" || item.kind === "bool") out.push(item.text);
      else return null;
    }
    return out;
  }
  if (lit.kind === "raw" && bracketed(text)) {
    // `[/data/a, s3://b/c]` is not a Python literal; split it instead of treating it as one path.
    const inner = text.slice(1, -1).trim();
    if (inner === "") return [];
    return inner.split(",").map((s) => s.trim().replace(/^(["'])(.*)\1$/, "$2"));
  }
  if (lit.kind === "str") return [lit.value as string];
  return [text];
}

function checkChoice(spec: ParamSpec, text: string, value: string): string {
  if (spec.choices === undefined) return value;
  const lower = value.toLowerCase();
  if (!spec.choices.includes(lower)) fail(spec, text);
  return lower;
}

function checkMin(spec: ParamSpec, text: string, n: number): number {
  if (spec.min !== undefined && !(n >= spec.min)) fail(spec, text);
  return n;
}

/** Levenshtein distance (insert, delete, substitute: 1 each). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * The known flags closest to an unknown one: by edit distance (at most a third of the length, at
 * least 2), else the flags that contain every word of it (`--memory` → both memory flags).
 * Returns "" or " (did you mean --a or --b?)".
 */
export function suggestion(unknown: string, specs: readonly ParamSpec[]): string {
  const key = unknown.toLowerCase().replaceAll("-", "_");
  const names = specs.flatMap((s) => [s.name, ...(s.type === "bool" ? [`no${s.name}`] : []), ...(s.negatedAlias ? [s.negatedAlias] : [])]);
  const scored = names.map((name) => ({ name, d: editDistance(key, name) })).sort((a, b) => a.d - b.d);
  const limit = Math.max(2, Math.floor(key.length / 3));
  let picks = scored.filter((s) => s.d <= limit && s.d === scored[0].d).map((s) => s.name);
  if (picks.length === 0) {
    const words = key.split("_").filter((w) => w.length > 1);
    if (words.length > 0) picks = specs.map((s) => s.name).filter((name) => words.every((w) => name.split("_").includes(w)));
  }
  if (picks.length === 0 || picks.length > 3) return "";
  return ` (did you mean ${orList(picks.map((p) => `--${p}`))}?)`;
}

/** "a", "a or b", "a, b or c". */
function orList(items: string[]): string {
  return items.length === 1 ? items[0] : `${items.slice(0, -1).join(", ")} or ${items[items.length - 1]}`;
}
