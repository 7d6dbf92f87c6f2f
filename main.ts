#!/usr/bin/env bun
/**
 * `autofaiss` entry point: `bun main.ts build_index --embeddings=…`, or with Deno
 * `deno run --allow-read --allow-write --allow-env --allow-ffi main.ts …`. All the work is in lib/cli/.
 */
import process from "node:process";
import { main } from "./lib/cli/main.ts";
import { faissVersionLines } from "./lib/cli/version.ts";

const args = process.argv.slice(2);
if (args[0] === "__partition_child") {
  // build_partitioned_indexes running a compiled binary as its own child process
  // (PARTITION_CHILD_ARGUMENT in lib/commands/partition_child.ts; imported only here, so --help stays light)
  const { partitionChildMain } = await import("./lib/commands/partition_child.ts");
  process.exitCode = await partitionChildMain(args[1] ?? "");
} else {
  process.exitCode = await main(args, { versionProviders: [faissVersionLines] });
}
