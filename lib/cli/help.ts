/** `--help` texts: the command list, and one command's flags with type, default and help. */

import type { ParamSpec, ParamValue } from "./argv.ts";
import { COMMANDS, type CommandSpec } from "../commands/schema.ts";
import { VERSION } from "./version.ts";

/** Placeholder shown after `--name=` for each type. */
const METAVAR: Record<ParamSpec["type"], string> = {
  string: "STRING",
  "string?": "STRING",
  int: "INT",
  "int?": "INT",
  float: "FLOAT",
  bool: "BOOL",
  memory: "MEMORY",
  list: "[A,B]",
  "list?": "[A,B]",
  paths: "PATH|[A,B]",
};

/** A default as AutoFaiss's README table writes it: "npy", None, False, 10. */
export function formatDefault(v: ParamValue | undefined): string {
  if (v === null || v === undefined) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.join(",")}]`;
  return String(v);
}

function flagSyntax(spec: ParamSpec): string {
  if (spec.type === "bool") {
    const alias = spec.negatedAlias ? ` | --${spec.negatedAlias}` : "";
    return `--${spec.name} | --no${spec.name}${alias}`;
  }
  const value = spec.choices ? spec.choices.join("|") + (spec.type.endsWith("?") ? "|None" : "") : METAVAR[spec.type];
  return `--${spec.name}=${value}`;
}

/** Help of one command: usage, summary, then each flag with its type/default line and its help line. */
export function commandHelp(command: CommandSpec): string {
  const required = command.params.filter((s) => s.required);
  const usage = ["autofaiss", command.name, ...required.map((s) => `--${s.name}=${METAVAR[s.type]}`), "[--flag=value ...]"];
  const lines = [
    `Usage: ${usage.join(" ")}`,
    "",
    `${command.summary}.`,
    "",
    "Flags (python-fire style: --name=value or --name value; --flag / --noflag for booleans; values are",
    "Python literals such as 5, 1e9, True, None, [a,b]; bare arguments fill the flags in this order):",
  ];
  for (const spec of command.params) {
    const status = spec.required ? "required" : `default: ${formatDefault(spec.default)}`;
    lines.push(`  ${flagSyntax(spec)}  (${status})`, `      ${spec.help}`);
  }
  lines.push("", "Memory values use binary units: 512MB, 16G, 1.5TB (K, M, G, T, P with an optional B).");
  return lines.join("\n") + "\n";
}

/** Help without a command: what the tool is and its commands. */
export function topLevelHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    `autofaiss ${VERSION}: build FAISS k-NN indices under memory and latency constraints`,
    "",
    "Usage: autofaiss <command> [--flag=value ...]",
    "       autofaiss <command> --help",
    "       autofaiss --version",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
    "Example:",
    '  autofaiss build_index --embeddings="embeddings" --index_path="my_index_folder/knn.index" \\',
    '    --index_infos_path="my_index_folder/index_infos.json" --metric_type="ip"',
  ].join("\n") + "\n";
}
