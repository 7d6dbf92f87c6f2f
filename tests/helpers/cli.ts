/** Runs the CLI in-process, capturing stdout, stderr and log lines. */
import { type CliIO, main } from "../../lib/cli/main.ts";

export async function runCli(...argv: string[]): Promise<{ code: number; out: string; err: string; logs: string[] }> {
  return await runCliWith({}, ...argv);
}

/** {@link runCli} with handlers, module loaders or `--version` providers passed to `main`. */
export async function runCliWith(
  options: Partial<Pick<CliIO, "handlers" | "modules" | "versionProviders">>,
  ...argv: string[]
): Promise<{ code: number; out: string; err: string; logs: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const logs: string[] = [];
  const code = await main(argv, { ...options, out: (t) => out.push(t), err: (t) => err.push(t), logSink: (l) => logs.push(l), stderrIsTTY: false });
  return { code, out: out.join(""), err: err.join(""), logs };
}
