/**
 * Release artifact: dist/autofaiss-linux-x64 (tasks/compile.ts) and dist/autofaiss-linux-x64.sha256
 * (`sha256sum -c` format), then the start-up figures of the binary: median wall time of `--help` and
 * `--version` over 20 runs each, against the targets (100 ms and 200 ms).
 *
 *   bun tasks/release.ts
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import process from "node:process";

const root = resolve(import.meta.dirname ?? ".", "..");
const TARGET = `${process.platform}-${process.arch}`;
const RUNS = 20;
/** Start-up budgets (issue 6): --help never loads FAISS; --version loads it for its version line. */
const STARTUP_TARGET_MS: Record<string, number> = { "--help": 100, "--version": 200 };

if (TARGET !== "linux-x64") throw new Error(`release: the release binary is built on linux-x64 (bun build --compile embeds the running Bun), this is ${TARGET}`);
const outfile = join(root, "dist", `autofaiss-${TARGET}`);

console.log(`$ bun tasks/compile.ts --outfile=${outfile}`);
execFileSync(join(root, "node_modules/.bin/bun"), [join(root, "tasks/compile.ts"), `--outfile=${outfile}`], { stdio: "inherit" });

const digest = createHash("sha256").update(readFileSync(outfile)).digest("hex");
writeFileSync(`${outfile}.sha256`, `${digest}  ${basename(outfile)}\n`);
console.log(`wrote ${basename(outfile)}.sha256: ${digest}`);
console.log(`size: ${statSync(outfile).size} bytes (${(statSync(outfile).size / 2 ** 20).toFixed(1)} MiB)`);

function medianWallMs(arg: string): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    const r = spawnSync(outfile, [arg], { stdio: "ignore" });
    times.push(performance.now() - started);
    if (r.status !== 0) throw new Error(`release: ${basename(outfile)} ${arg} exited ${r.status ?? r.signal}`);
  }
  times.sort((a, b) => a - b);
  return (times[RUNS / 2 - 1] + times[RUNS / 2]) / 2;
}

for (const arg of ["--help", "--version"]) {
  const ms = medianWallMs(arg);
  const target = STARTUP_TARGET_MS[arg];
  console.log(`start-up ${arg}: median ${ms.toFixed(1)} ms over ${RUNS} runs (target < ${target} ms)${ms < target ? "" : "  ** OVER TARGET **"}`);
}
