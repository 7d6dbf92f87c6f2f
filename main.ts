#!/usr/bin/env bun
/**
 * `autofaiss` entry point: `bun main.ts build_index --embeddings=…`, or with Deno
 * `deno run --allow-read --allow-write --allow-env --allow-ffi main.ts …`. All the work is in lib/cli/.
 */
import process from "node:process";
import { main } from "./lib/cli/main.ts";
import { faissVersionLines } from "./lib/cli/version.ts";

process.exitCode = await main(process.argv.slice(2), { versionProviders: [faissVersionLines] });
