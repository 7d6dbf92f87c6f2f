import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseFireValue } from "../lib/cli/literal.ts";
import { ArgvError, coerce, editDistance, helpRequested, type ParamSpec, parseArgs, suggestion } from "../lib/cli/argv.ts";
import { BUILD_INDEX, BUILD_PARTITIONED_INDEXES, COMMANDS, SCORE_INDEX, TUNE_INDEX } from "../lib/commands/schema.ts";

describe("parseFireValue: python-fire literal rules", () => {
  const cases: Array<[string, string, unknown]> = [
    ["5", "int", 5], ["-5", "int", -5], ["0", "int", 0], ["1_000", "int", 1000], ["0x1F", "int", 31], ["0o17", "int", 15],
    ["0b101", "int", 5], ["5.0", "float", 5], ["1e9", "float", 1e9], ["1.5e-3", "float", 0.0015], [".5", "float", 0.5],
    ["5.", "float", 5], ["-2.5", "float", -2.5],
    ["True", "bool", true], ["False", "bool", false], ["None", "None", null],
    ["true", "str", "true"], ["ip", "str", "ip"], ["HNSW32", "str", "HNSW32"],
    ["'x'", "str", "x"], ['"a b"', "str", "a b"], ['"5"', "str", "5"], ['"None"', "str", "None"], [`"a" 'b'`, "str", "ab"],
    ['"tab\\there"', "str", "tab\there"],
    ["[a,b]", "list", ["a", "b"]], ['["a","b"]', "list", ["a", "b"]], ["[a, 'b c', 3]", "list", ["a", "b c", 3]],
    ["[]", "list", []], ["[a]", "list", ["a"]], ["[(a,b), c]", "list", [["a", "b"], "c"]],
    ["a,b", "tuple", ["a", "b"]], ["IVF256,Flat", "tuple", ["IVF256", "Flat"]], ["a,", "tuple", ["a"]], ["(a,)", "tuple", ["a"]],
    ["(5)", "int", 5],
    // Not Python literals: kept verbatim.
    ["16G", "raw", "16G"], ["32GB", "raw", "32GB"], ["1e3K", "raw", "1e3K"], ["nprobe=8,efSearch=16", "raw", "nprobe=8,efSearch=16"],
    ["knn.index", "raw", "knn.index"], ["my_index_folder/knn.index", "raw", "my_index_folder/knn.index"],
    ["s3://bucket/emb", "raw", "s3://bucket/emb"], ["/data/emb", "raw", "/data/emb"], ["[/a,/b]", "raw", "[/a,/b]"],
    ["007", "raw", "007"], ["1j", "raw", "1j"], ["1-2", "raw", "1-2"], ["-x", "raw", "-x"], ["", "raw", ""],
    ["  5", "raw", "  5"], ["a b", "raw", "a b"], ["{a: 1}", "raw", "{a: 1}"], ["r'x'", "raw", "r'x'"], ["'open", "raw", "'open"],
  ];
  for (const [text, kind, value] of cases) {
    test(`${JSON.stringify(text)} → ${kind} ${JSON.stringify(value)}`, () => {
      const lit = parseFireValue(text);
      assert.equal(lit.kind, kind);
      assert.deepEqual(lit.value, value);
    });
  }
});

const SPECS: readonly ParamSpec[] = [
  { name: "embeddings", type: "paths", required: true, help: "" },
  { name: "index_path", type: "string?", default: "knn.index", help: "" },
  { name: "save_on_disk", type: "bool", default: true, help: "" },
  { name: "id_columns", type: "list?", default: null, help: "" },
  { name: "max_index_memory_usage", type: "memory", default: "32GB", help: "" },
  { name: "max_index_query_time_ms", type: "float", default: 10, min: 0, help: "" },
  { name: "nb_cores", type: "int?", default: null, min: 1, help: "" },
  { name: "metric_type", type: "string", default: "ip", choices: ["ip", "l2"], help: "" },
  { name: "use_gpu", type: "bool", default: false, help: "" },
  { name: "use_cache", type: "bool", default: true, negatedAlias: "no_cache", help: "" },
];

const DEFAULTS = {
  embeddings: "emb", index_path: "knn.index", save_on_disk: true, id_columns: null, max_index_memory_usage: "32GB",
  max_index_query_time_ms: 10, nb_cores: null, metric_type: "ip", use_gpu: false, use_cache: true,
};

describe("parseArgs: fire rules", () => {
  const cases: Array<[string, string[], Record<string, unknown>]> = [
    ["--a=b", ["--embeddings=emb"], {}],
    ["--a b", ["--embeddings", "emb", "--index_path", "out.index"], { index_path: "out.index" }],
    ["positional fills in declared order", ["emb", "out.index"], { index_path: "out.index" }],
    ["positional skips params given by name", ["--embeddings=emb", "out.index"], { index_path: "out.index" }],
    ["positional after a named later param", ["--index_path=x", "emb"], { index_path: "x" }],
    ["--flag alone → True", ["emb", "--use_gpu"], { use_gpu: true }],
    ["--flag before another flag → True", ["--use_gpu", "--embeddings=emb"], { use_gpu: true }],
    ["--noflag → False", ["emb", "--nosave_on_disk"], { save_on_disk: false }],
    ["--no-flag → False", ["emb", "--no-save-on-disk"], { save_on_disk: false }],
    ["--no_flag → False", ["emb", "--no_save_on_disk"], { save_on_disk: false }],
    ["--flag=False", ["emb", "--save_on_disk=False"], { save_on_disk: false }],
    ["--flag False", ["emb", "--save_on_disk", "False"], { save_on_disk: false }],
    ["--flag=false (fire would pass a truthy string)", ["emb", "--save_on_disk=false"], { save_on_disk: false }],
    ["--flag=0", ["emb", "--use_gpu=0", "--save_on_disk=1"], { use_gpu: false, save_on_disk: true }],
    ["--flag word: word stays positional", ["--use_gpu", "emb"], { use_gpu: true }],
    ["negated alias", ["emb", "--no-cache"], { use_cache: false }],
    ["negated alias with a value", ["emb", "--no_cache=False"], { use_cache: true }],
    ["--nouse_cache", ["emb", "--nouse_cache"], { use_cache: false }],
    ["kebab-case like fire", ["--index-path=x", "--max-index-memory-usage", "4G", "emb"], { index_path: "x", max_index_memory_usage: "4G" }],
    ["last value wins", ["emb", "--index_path=a", "--index_path=b"], { index_path: "b" }],
    ["int to float", ["emb", "--max_index_query_time_ms=5"], { max_index_query_time_ms: 5 }],
    ["float", ["emb", "--max_index_query_time_ms", "2.5"], { max_index_query_time_ms: 2.5 }],
    ["1e9 float", ["emb", "--max_index_query_time_ms=1e9"], { max_index_query_time_ms: 1e9 }],
    ["int", ["emb", "--nb_cores=8"], { nb_cores: 8 }],
    ["integral float to int", ["emb", "--nb_cores=4.0"], { nb_cores: 4 }],
    ["None for nullable", ["emb", "--nb_cores=None", "--index_path=None"], { nb_cores: null, index_path: null }],
    ["quoted None is a string", ["emb", '--index_path="None"'], { index_path: "None" }],
    ["memory string", ["emb", "--max_index_memory_usage=16G"], { max_index_memory_usage: "16G" }],
    ["quoted memory string", ["emb", '--max_index_memory_usage="512MB"'], { max_index_memory_usage: "512MB" }],
    ["choice, case-insensitive", ["emb", "--metric_type=L2"], { metric_type: "l2" }],
    ["bare list param (#177)", ["emb", "--id_columns=id"], { id_columns: ["id"] }],
    ["list literal", ["emb", "--id_columns=[id,label]"], { id_columns: ["id", "label"] }],
    ["quoted list literal", ["emb", '--id_columns=["id","label"]'], { id_columns: ["id", "label"] }],
    ["comma tuple", ["emb", "--id_columns=id,label"], { id_columns: ["id", "label"] }],
    ["numbers in a list keep their text", ["emb", "--id_columns=[1,2.50]"], { id_columns: ["1", "2.50"] }],
    ["list None", ["emb", "--id_columns=None"], { id_columns: null }],
    ["empty list", ["emb", "--id_columns=[]"], { id_columns: [] }],
    ["paths: one path stays a string", ["--embeddings=/data/emb"], { embeddings: "/data/emb" }],
    ["paths: list literal", ["--embeddings=[a,b]"], { embeddings: ["a", "b"] }],
    ["paths: one-item list stays a list", ["--embeddings=[a]"], { embeddings: ["a"] }],
    ["paths: bracketed non-literal is split", ["--embeddings=[/data/a, s3://b/c]"], { embeddings: ["/data/a", "s3://b/c"] }],
    ["paths: quoted items in a bracketed non-literal", ["--embeddings=['/a', \"/b\"]"], { embeddings: ["/a", "/b"] }],
    ["paths: numeric text", ["--embeddings=123"], { embeddings: "123" }],
    ["string keeps commas (fire: tuple)", ["emb", "--index_path=IVF256,Flat"], { index_path: "IVF256,Flat" }],
    ["string keeps a number's text", ["emb", "--index_path=007"], { index_path: "007" }],
    ["string keeps = and ,", ["emb", "--index_path=nprobe=8,efSearch=16"], { index_path: "nprobe=8,efSearch=16" }],
    ["quoted string is unquoted", ["emb", "--index_path='a b'"], { index_path: "a b" }],
    ["empty string", ["emb", "--index_path="], { index_path: "" }],
    ["negative number value after --flag", ["emb", "--max_index_query_time_ms", "-0"], { max_index_query_time_ms: 0 }],
    ["shortcut -x value", ["-e", "emb", "-s=False"], { save_on_disk: false }],
    ["-- --help is ignored by the parser", ["emb", "--", "--help"], {}],
  ];
  for (const [title, argv, want] of cases) {
    test(`${title}: ${argv.join(" ")}`, () => {
      const { values } = parseArgs(SPECS, argv);
      assert.deepEqual(values, { ...DEFAULTS, ...want });
    });
  }

  test("given lists what the command line set", () => {
    const { given } = parseArgs(SPECS, ["emb", "--nouse_gpu", "--metric_type=l2"]);
    assert.deepEqual([...given].sort(), ["embeddings", "metric_type", "use_gpu"]);
  });

  test("defaults are copies", () => {
    const specs: ParamSpec[] = [{ name: "l", type: "list", default: ["a"], help: "" }];
    const a = parseArgs(specs, []).values.l as string[];
    a.push("b");
    assert.deepEqual(parseArgs(specs, []).values.l, ["a"]);
  });
});

describe("parseArgs: errors name the flag, the expectation and the value", () => {
  const cases: Array<[string[], string]> = [
    [[], "missing required flag --embeddings"],
    [["emb", "--max_index_memory_usage=100"], "max_index_memory_usage: expected a memory string like 16G or 512MB, got 100"],
    [["emb", "--max_index_memory_usage=16 G"], "max_index_memory_usage: expected a memory string like 16G or 512MB, got 16 G"],
    [["emb", "--max_index_memory_usage=16GiB"], "max_index_memory_usage: expected a memory string like 16G or 512MB, got 16GiB"],
    [["emb", "--max_index_memory_usage=1e9"], "max_index_memory_usage: expected a memory string like 16G or 512MB, got 1e9"],
    [["emb", "--max_index_memory_usage=None"], "max_index_memory_usage: expected a memory string like 16G or 512MB, got None"],
    [["emb", "--max_index_memory_usage="], 'max_index_memory_usage: expected a memory string like 16G or 512MB, got ""'],
    [["emb", "--nb_cores=four"], "nb_cores: expected an integer >= 1 or None, got four"],
    [["emb", "--nb_cores=2.5"], "nb_cores: expected an integer >= 1 or None, got 2.5"],
    [["emb", "--nb_cores=0"], "nb_cores: expected an integer >= 1 or None, got 0"],
    [["emb", "--nb_cores=True"], "nb_cores: expected an integer >= 1 or None, got True"],
    [["emb", "--max_index_query_time_ms=fast"], "max_index_query_time_ms: expected a number >= 0, got fast"],
    [["emb", "--max_index_query_time_ms=-1"], "max_index_query_time_ms: expected a number >= 0, got -1"],
    [["emb", "--save_on_disk=maybe"], "save_on_disk: expected True or False, got maybe"],
    [["emb", "--save_on_disk=None"], "save_on_disk: expected True or False, got None"],
    [["emb", "--metric_type=cosine"], "metric_type: expected one of ip, l2, got cosine"],
    [["emb", "--metric_type=None"], "metric_type: expected one of ip, l2, got None"],
    [["emb", "--id_columns=[[a]]"], "id_columns: expected a list like [a,b] or None, got [[a]]"],
    [["--embeddings=[]"], "embeddings: expected a path or a list of paths like [a,b], got []"],
    [["emb", "--index_path"], "index_path: expected a string or None, got no value (write --index_path=VALUE)"],
    [["emb", "--nb_cores", "--use_gpu"], "nb_cores: expected an integer >= 1 or None, got no value (write --nb_cores=VALUE)"],
    [["emb", "--index_pth=x"], "unknown flag --index_pth (did you mean --index_path?)"],
    [["emb", "--Index_Path=x"], "unknown flag --Index_Path (did you mean --index_path?)"],
    [["emb", "--embedding=x"], "unknown flag --embedding (did you mean --embeddings?)"],
    [["emb", "--memory=1"], "unknown flag --memory (did you mean --max_index_memory_usage?)"],
    [["emb", "--frobnicate"], "unknown flag --frobnicate"],
    [["emb", "--nometric_type"], "--nometric_type: metric_type is not a boolean flag (write --metric_type=VALUE)"],
    [["emb", "--nosave_ondisk"], "unknown flag --nosave_ondisk (did you mean --nosave_on_disk?)"],
    [["-m", "x", "emb"], "-m is ambiguous: it could be --max_index_memory_usage, --max_index_query_time_ms or --metric_type"],
    [["-z", "emb"], "unknown flag -z"],
    [["-em", "emb"], "unknown flag -em"],
    [["emb", "--", "--trace"], "python-fire flag --trace after -- is not supported (only -- --help)"],
  ];
  for (const [argv, message] of cases) {
    test(`${argv.join(" ") || "(nothing)"} → ${message}`, () => {
      assert.throws(() => parseArgs(SPECS, argv), (e: unknown) => {
        assert.ok(e instanceof ArgvError);
        assert.equal(e.message, message);
        return true;
      });
    });
  }
});

describe("suggestions and help detection", () => {
  test("editDistance", () => {
    assert.equal(editDistance("index_pth", "index_path"), 1);
    assert.equal(editDistance("", "abc"), 3);
    assert.equal(editDistance("kitten", "sitting"), 3);
  });
  test("several equally close flags", () => {
    const specs: ParamSpec[] = [{ name: "ab", type: "int", default: 0, help: "" }, { name: "ac", type: "int", default: 0, help: "" }];
    assert.equal(suggestion("ad", specs), " (did you mean --ab or --ac?)");
  });
  test("the memory flags by word", () => {
    assert.equal(suggestion("memory", BUILD_INDEX), " (did you mean --max_index_memory_usage, --current_memory_available or --should_be_memory_mappable?)");
  });
  test("more bare arguments than parameters", () => {
    const specs: ParamSpec[] = [{ name: "a", type: "string", required: true, help: "" }, { name: "b", type: "int", default: 1, help: "" }];
    assert.deepEqual(parseArgs(specs, ["x", "2"]).values, { a: "x", b: 2 });
    assert.throws(() => parseArgs(specs, ["x", "2", "extra"]), /^ArgvError: unexpected argument extra: every parameter already has a value$/);
    assert.throws(() => parseArgs(specs, ["x", "two"]), /^ArgvError: b: expected an integer, got two$/);
  });
  test("helpRequested", () => {
    assert.equal(helpRequested(["emb", "--help"]), true);
    assert.equal(helpRequested(["-h"]), true);
    assert.equal(helpRequested(["emb", "--", "--help"]), true);
    assert.equal(helpRequested(["emb", "--helpme"]), false);
  });
  test("coerce is usable alone", () => {
    assert.deepEqual(coerce({ name: "id_columns", type: "list?", help: "" }, "id"), ["id"]);
  });
});

describe("command schemas: Python's parameters, order and defaults", () => {
  const names = (specs: readonly ParamSpec[]) => specs.map((s) => s.name);

  test("build_index has Python's parameters in Python's order", () => {
    assert.deepEqual(names(BUILD_INDEX), [
      "embeddings", "index_path", "index_infos_path", "ids_path", "save_on_disk", "file_format", "embedding_column_name",
      "id_columns", "index_key", "index_param", "max_index_query_time_ms", "max_index_memory_usage",
      "min_nearest_neighbors_to_retrieve", "current_memory_available", "use_gpu", "metric_type", "nb_cores",
      "make_direct_map", "should_be_memory_mappable", "distributed", "temporary_indices_folder", "verbose", "nb_indices_to_keep",
      // our extensions, after Python's parameters
      "dry_run", "nb_shards", "slurm_args", "slurm_retries", "selection", "selection_time_budget", "report_path",
    ]);
  });

  test("build_index defaults (seed wins: 32GB, embeddings)", () => {
    const { values } = parseArgs(BUILD_INDEX, ["emb"]);
    assert.deepEqual(values, {
      embeddings: "emb", index_path: "knn.index", index_infos_path: "index_infos.json", ids_path: null, save_on_disk: true,
      file_format: "npy", embedding_column_name: "embeddings", id_columns: null, index_key: null, index_param: null,
      max_index_query_time_ms: 10, max_index_memory_usage: "32GB", min_nearest_neighbors_to_retrieve: 20,
      current_memory_available: "32GB", use_gpu: false, metric_type: "ip", nb_cores: null, make_direct_map: false,
      should_be_memory_mappable: false, distributed: null, temporary_indices_folder: "hdfs://root/tmp/distributed_autofaiss_indices",
      verbose: 20, nb_indices_to_keep: 1, dry_run: false, nb_shards: null, slurm_args: null, slurm_retries: 2,
      selection: "heuristic", selection_time_budget: null, report_path: null,
    });
  });

  test("the README command line", () => {
    const argv = ["--embeddings=embeddings", "--index_path=my_index_folder/knn.index", "--index_infos_path=my_index_folder/index_infos.json", "--metric_type=ip"];
    const { values } = parseArgs(BUILD_INDEX, argv);
    assert.equal(values.embeddings, "embeddings");
    assert.equal(values.index_path, "my_index_folder/knn.index");
    assert.equal(values.index_infos_path, "my_index_folder/index_infos.json");
  });

  test("tune_index order and required", () => {
    assert.deepEqual(names(TUNE_INDEX), [
      "index_path", "index_key", "index_param", "output_index_path", "save_on_disk", "min_nearest_neighbors_to_retrieve",
      "max_index_query_time_ms", "use_gpu", "verbose",
    ]);
    assert.deepEqual(parseArgs(TUNE_INDEX, ["knn.index", "IVF16,Flat"]).values, {
      index_path: "knn.index", index_key: "IVF16,Flat", index_param: null, output_index_path: "tuned_knn.index",
      save_on_disk: true, min_nearest_neighbors_to_retrieve: 20, max_index_query_time_ms: 10, use_gpu: false, verbose: 20,
    });
    assert.throws(() => parseArgs(TUNE_INDEX, ["knn.index"]), /^ArgvError: missing required flag --index_key$/);
  });

  test("score_index: Python's parameters first, then cache and format extensions", () => {
    assert.deepEqual(names(SCORE_INDEX), [
      "index_path", "embeddings", "save_on_disk", "output_index_info_path", "current_memory_available", "verbose",
      "file_format", "embedding_column_name", "use_cache", "cache_dir", "report_path",
    ]);
    const { values } = parseArgs(SCORE_INDEX, ["knn.index", "emb", "--no-cache"]);
    assert.equal(values.use_cache, false);
    assert.equal(values.current_memory_available, "32GB");
    assert.equal(parseArgs(SCORE_INDEX, ["knn.index", "emb", "--nouse_cache"]).values.use_cache, false);
    assert.equal(parseArgs(SCORE_INDEX, ["knn.index", "emb"]).values.use_cache, true);
  });

  test("build_partitioned_indexes order, defaults and a non-empty partitions list", () => {
    assert.deepEqual(names(BUILD_PARTITIONED_INDEXES), [
      "partitions", "output_root_dir", "embedding_column_name", "index_key", "index_path", "id_columns",
      "max_index_query_time_ms", "max_index_memory_usage", "min_nearest_neighbors_to_retrieve", "current_memory_available",
      "use_gpu", "metric_type", "nb_cores", "make_direct_map", "should_be_memory_mappable", "temp_root_dir", "verbose",
      "nb_splits_per_big_index", "big_index_threshold", "maximum_nb_threads", "file_format",
    ]);
    const { values } = parseArgs(BUILD_PARTITIONED_INDEXES, ["[p1,p2]", "out"]);
    assert.deepEqual(values.partitions, ["p1", "p2"]);
    assert.equal(values.big_index_threshold, 5_000_000);
    assert.equal(values.maximum_nb_threads, 256);
    assert.deepEqual(parseArgs(BUILD_PARTITIONED_INDEXES, ["p1", "out"]).values.partitions, ["p1"]);
    assert.throws(() => parseArgs(BUILD_PARTITIONED_INDEXES, ["[]", "out"]), /partitions: expected a non-empty list like \[a,b\], got \[\]/);
  });

  test("every schema is well formed", () => {
    for (const command of COMMANDS) {
      const seen = new Set<string>();
      for (const spec of command.params) {
        assert.ok(!seen.has(spec.name), `${command.name}: duplicate ${spec.name}`);
        seen.add(spec.name);
        assert.match(spec.name, /^[a-z][a-z0-9_]*$/);
        assert.ok(spec.help.length > 0 && !spec.help.includes("\n"), `${command.name} ${spec.name}: one-line help`);
        assert.ok(spec.required === true ? spec.default === undefined : "default" in spec, `${command.name} ${spec.name}: default`);
        // A default must survive its own parser (help shows it; users may pass it back).
        if (!spec.required && spec.default !== null && typeof spec.default !== "object") {
          assert.deepEqual(coerce(spec, String(spec.default === true ? "True" : spec.default === false ? "False" : spec.default)), spec.default);
        }
      }
      assert.ok(seen.has("verbose"), `${command.name}: verbose`);
    }
  });
});
