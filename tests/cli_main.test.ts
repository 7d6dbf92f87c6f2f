import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import process from "node:process";
import type { CommandModule } from "../lib/cli/main.ts";
import type { CommandContext, Handler } from "../lib/cli/commands.ts";
import { BUILD_INDEX, type CommandName, COMMANDS } from "../lib/commands/schema.ts";
import { formatDefault } from "../lib/cli/help.ts";
import type { ParamSpec } from "../lib/cli/argv.ts";
import { VERSION, versionLines } from "../lib/cli/version.ts";
import { runCliWith } from "./helpers/cli.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PKG_VERSION: string = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")).version;

/** Handlers passed to `main` by {@link run}: set for the duration of one {@link withHandler}. */
let handlers: Partial<Record<CommandName, Handler>> = {};
const run = (...argv: string[]) => runCliWith({ handlers }, ...argv);

/** Runs fn with `handler` replacing the command's module. */
async function withHandler(name: "build_index" | "tune_index", handler: Handler, fn: () => Promise<void>) {
  handlers = { [name]: handler };
  try {
    await fn();
  } finally {
    handlers = {};
  }
}

describe("help", () => {
  test("no arguments, --help and -h print the commands and exit 0", async () => {
    for (const argv of [[], ["--help"], ["-h"]]) {
      const r = await run(...argv);
      assert.equal(r.code, 0);
      assert.equal(r.err, "");
      assert.ok(r.out.startsWith(`autofaiss ${PKG_VERSION}: build FAISS k-NN indices`), r.out);
      for (const c of COMMANDS) assert.ok(r.out.split("\n").includes(`  ${c.name.padEnd(27)}${c.summary}`), c.name);
    }
    assert.deepEqual(COMMANDS.map((c) => c.name), [
      "build_index", "tune_index", "score_index", "build_partitioned_indexes", "search", "plan_build", "add_shard", "merge_shards",
    ]);
  });

  test("search --help and build_partitioned_indexes --help: usage and the flags", async () => {
    const s = await run("search", "--help");
    assert.equal(s.code, 0);
    assert.ok(s.out.startsWith("Usage: autofaiss search --index_path=STRING --queries=STRING [--flag=value ...]\n"), s.out);
    for (const line of ["  --k=INT  (default: 10)", "  --ids_path=STRING  (default: None)", "  --mmap | --nommap  (default: False)"]) {
      assert.ok(s.out.split("\n").includes(line), line);
    }
    const b = await run("build_partitioned_indexes", "--help");
    assert.equal(b.code, 0);
    assert.ok(b.out.startsWith("Usage: autofaiss build_partitioned_indexes --partitions=[A,B] --output_root_dir=STRING [--flag=value ...]\n"), b.out);
    for (const line of ['  --file_format=npy|parquet  (default: "parquet")', "  --maximum_nb_threads=INT  (default: 256)", "  --nb_splits_per_big_index=INT  (default: 1)"]) {
      assert.ok(b.out.split("\n").includes(line), line);
    }
  });

  test("build_index --help lists every flag with its type or choices and its default", async () => {
    const r = await run("build_index", "--help");
    assert.equal(r.code, 0);
    assert.ok(r.out.startsWith("Usage: autofaiss build_index --embeddings=PATH|[A,B] [--flag=value ...]\n"));
    for (const spec of BUILD_INDEX as readonly ParamSpec[]) {
      const status = spec.required ? "required" : `default: ${formatDefault(spec.default)}`;
      const line = r.out.split("\n").find((l) => l.startsWith(`  --${spec.name}`) && l.endsWith(`(${status})`));
      assert.ok(line, `--${spec.name} (${status})`);
    }
    for (
      const line of [
        '  --max_index_memory_usage=MEMORY  (default: "32GB")',
        '  --current_memory_available=MEMORY  (default: "32GB")',
        "  --save_on_disk | --nosave_on_disk  (default: True)",
        '  --metric_type=ip|l2  (default: "ip")',
        "  --nb_cores=INT  (default: None)",
        "  --max_index_query_time_ms=FLOAT  (default: 10)",
        "  --id_columns=[A,B]  (default: None)",
        '  --temporary_indices_folder=STRING  (default: "hdfs://root/tmp/distributed_autofaiss_indices")',
        "  --verbose=INT  (default: 20)",
        "  --embeddings=PATH|[A,B]  (required)",
      ]
    ) assert.ok(r.out.includes(`\n${line}\n`), line);
  });

  test("help is asked for in every way fire allows", async () => {
    const want = (await run("build_index", "--help")).out;
    for (const argv of [["build_index", "-h"], ["build_index", "emb", "--help"], ["build_index", "--", "--help"], ["--help", "build_index"]]) {
      const r = await run(...argv);
      assert.equal(r.code, 0, argv.join(" "));
      assert.equal(r.out, want, argv.join(" "));
    }
  });

  test("every command has help naming each of its flags", async () => {
    for (const c of COMMANDS) {
      const r = await run(c.name, "--help");
      assert.equal(r.code, 0);
      for (const spec of c.params) assert.ok(r.out.includes(`  --${spec.name}`), `${c.name} --${spec.name}`);
    }
    assert.match((await run("score_index", "--help")).out, /--use_cache \| --nouse_cache \| --no_cache {2}\(default: True\)/);
  });

  test("help, version and usage errors never load a command module", async () => {
    const loaded: string[] = [];
    const modules: Partial<Record<CommandName, () => Promise<CommandModule>>> = {};
    for (const c of COMMANDS) {
      modules[c.name] = () => {
        loaded.push(c.name);
        return Promise.reject(new Error("loaded"));
      };
    }
    const runLoading = (...argv: string[]) => runCliWith({ modules }, ...argv);
    for (const c of COMMANDS) {
      await runLoading(c.name, "--help");
      await runLoading(c.name, "--frobnicate");
    }
    await runLoading("--version");
    await runLoading();
    await runLoading("nope");
    assert.deepEqual(loaded, []);
    // …while running a command does load it.
    const r = await runLoading("tune_index", "knn.index", "Flat");
    assert.deepEqual([loaded, r.code, r.err], [["tune_index"], 1, "autofaiss tune_index: error: loaded\n"]);
  });
});

describe("--version", () => {
  test("prints autofaiss <package.json version>", async () => {
    assert.equal(VERSION, PKG_VERSION);
    const r = await run("--version");
    assert.deepEqual([r.code, r.out, r.err], [0, `autofaiss ${PKG_VERSION}\n`, ""]);
  });
  test("providers add lines (sync or async)", async () => {
    const versionProviders = [() => ["extra one"], async () => ["extra two", "extra three"]];
    assert.deepEqual(await versionLines(versionProviders), [`autofaiss ${PKG_VERSION}`, "extra one", "extra two", "extra three"]);
    assert.equal((await runCliWith({ versionProviders }, "--version")).out, `autofaiss ${PKG_VERSION}\nextra one\nextra two\nextra three\n`);
    assert.deepEqual(await versionLines(), [`autofaiss ${PKG_VERSION}`]);
  });
});

describe("errors: one line, non-zero exit", () => {
  const cases: Array<[string[], string]> = [
    [["buid_index"], 'autofaiss: error: unknown command "buid_index" (did you mean build_index? commands: build_index, tune_index, score_index, build_partitioned_indexes, search, plan_build, add_shard, merge_shards)'],
    [["index"], 'autofaiss: error: unknown command "index" (commands: build_index, tune_index, score_index, build_partitioned_indexes, search, plan_build, add_shard, merge_shards)'],
    [["--embeddings=x"], "autofaiss: error: expected a command before --embeddings=x (commands: build_index, tune_index, score_index, build_partitioned_indexes, search, plan_build, add_shard, merge_shards)"],
    [["build_index"], "autofaiss build_index: error: missing required flag --embeddings"],
    [["build_index", "emb", "--max_index_memory_usage=100"], "autofaiss build_index: error: max_index_memory_usage: expected a memory string like 16G or 512MB, got 100"],
    [["build_index", "emb", "--index_pth=x"], "autofaiss build_index: error: unknown flag --index_pth (did you mean --index_path?)"],
    [["build_index", "emb", "--metric_type=cosine"], "autofaiss build_index: error: metric_type: expected one of ip, l2, got cosine"],
  ];
  for (const [argv, line] of cases) {
    test(argv.join(" "), async () => {
      const r = await run(...argv);
      assert.deepEqual([r.code, r.out, r.err], [2, "", line + "\n"]);
    });
  }
});

describe("handlers", () => {
  test("a registered handler gets validated params and a context, and its exit code is returned", async () => {
    let seen: { params: Record<string, unknown>; ctx: CommandContext } | undefined;
    await withHandler("build_index", (params, ctx) => {
      seen = { params, ctx };
      ctx.log.debug("debug line");
      ctx.log.info("info line");
      ctx.out("result\n");
      return 3;
    }, async () => {
      const r = await run("build_index", "emb", "--id_columns=id", "--nosave_on_disk", "--verbose=30");
      assert.deepEqual([r.code, r.out, r.err, r.logs], [3, "result\n", "", []]);
      const r2 = await run("build_index", "emb");
      assert.equal(r2.logs.length, 1);
      assert.match(r2.logs[0], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[INFO\]: info line$/);
    });
    assert.ok(seen);
    assert.equal(seen.params.embeddings, "emb");
    assert.equal(seen.params.max_index_memory_usage, "32GB");
    assert.equal(seen.ctx.command.name, "build_index");
    assert.equal(seen.ctx.stderrIsTTY, false);
    assert.deepEqual([...seen.ctx.given], ["embeddings"]);
  });

  test("list and negated bool values reach the handler", async () => {
    let params: Record<string, unknown> = {};
    await withHandler("build_index", (p) => {
      params = p;
      return 0;
    }, async () => {
      assert.equal((await run("build_index", "emb", "--id_columns=id", "--nosave_on_disk")).code, 0);
    });
    assert.deepEqual([params.id_columns, params.save_on_disk], [["id"], false]);
  });

  test("async handlers; a handler returning nothing exits 0", async () => {
    await withHandler("tune_index", async () => {
      await Promise.resolve();
      return undefined as unknown as number;
    }, async () => {
      assert.equal((await run("tune_index", "knn.index", "Flat")).code, 0);
    });
  });

  test("a throwing handler: one line on stderr, exit 1; the stack only with --verbose=10", async () => {
    await withHandler("build_index", () => {
      throw new Error("npy header: emb/a.npy: descr '<i4' is not a float type\n(expected <f2, <f4 or <f8)");
    }, async () => {
      const r = await run("build_index", "emb");
      assert.deepEqual([r.code, r.out, r.err], [
        1, "", "autofaiss build_index: error: npy header: emb/a.npy: descr '<i4' is not a float type (expected <f2, <f4 or <f8)\n",
      ]);
      const v = await run("build_index", "emb", "--verbose=10");
      assert.equal(v.code, 1);
      const lines = v.err.trimEnd().split("\n");
      assert.equal(lines[0], "autofaiss build_index: error: npy header: emb/a.npy: descr '<i4' is not a float type (expected <f2, <f4 or <f8)");
      assert.ok(lines.length > 2 && v.err.includes("cli_main.test.ts"), v.err);
    });
    await withHandler("build_index", async () => {
      throw "plain string";
    }, async () => {
      assert.deepEqual((await run("build_index", "emb")).err, "autofaiss build_index: error: plain string\n");
    });
  });
});

describe("main.ts as a process", () => {
  const bun = `${ROOT}node_modules/.bin/bun`;
  const deno = `${ROOT}node_modules/.bin/deno`;
  // FAISS must not be needed for help, version or usage errors: point it at nothing.
  const env = { ...process.env, AUTOFAISS_FAISS_LIB: "/nonexistent/libfaiss_c.so" };
  const spawn = (cmd: string, args: string[]) => spawnSync(cmd, args, { cwd: ROOT, env, encoding: "utf8", timeout: 60_000 });

  test("bun main.ts --help exits 0 without FAISS", () => {
    const r = spawn(bun, ["main.ts", "--help"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ {2}build_index /m);
    assert.equal(r.stderr, "");
  });
  test("bun main.ts build_index --help and --version", () => {
    const h = spawn(bun, ["main.ts", "build_index", "--help"]);
    assert.equal(h.status, 0, h.stderr);
    assert.match(h.stdout, /--max_index_memory_usage=MEMORY {2}\(default: "32GB"\)/);
    const v = spawn(bun, ["main.ts", "--version"]);
    assert.deepEqual([v.status, v.stdout.split("\n")[0]], [0, `autofaiss ${PKG_VERSION}`]);
  });
  test("bun main.ts: unknown command and bad value exit 2 with one line", () => {
    const u = spawn(bun, ["main.ts", "nope"]);
    assert.deepEqual([u.status, u.stdout, u.stderr.split("\n").length], [2, "", 2]);
    const b = spawn(bun, ["main.ts", "build_index", "emb", "--max_index_memory_usage=100"]);
    assert.deepEqual([b.status, b.stderr], [2, "autofaiss build_index: error: max_index_memory_usage: expected a memory string like 16G or 512MB, got 100\n"]);
  });
  test("deno run main.ts without --allow-ffi: help, version and usage errors still work", () => {
    const h = spawn(deno, ["run", "--allow-read", "main.ts", "build_index", "--help"]);
    assert.equal(h.status, 0, h.stderr);
    assert.match(h.stdout, /^Usage: autofaiss build_index /);
    const v = spawn(deno, ["run", "main.ts", "--version"]);
    assert.deepEqual([v.status, v.stdout.split("\n")[0]], [0, `autofaiss ${PKG_VERSION}`]);
    const b = spawn(deno, ["run", "main.ts", "build_index", "emb", "--nb_cores=0"]);
    assert.deepEqual([b.status, b.stderr], [2, "autofaiss build_index: error: nb_cores: expected an integer >= 1 or None, got 0\n"]);
  });
});
