/**
 * FFI lifetimes and aborts: calls FAISS 1.7.3 runs inside OpenMP regions (where an exception aborts
 * the process) come back as errors; memory-mapped reads really map the inverted lists; setters
 * refuse bad values with exact messages before anything reaches FAISS.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FaissError, GpuResources, Index, parseParameters, setNumThreads, withNumThreads } from "../ffi/faiss.ts";
import { clusteredData } from "./helpers/data.ts";

const d = 8;
const n = 2000;
const x = clusteredData(n, d, 8, 3);
const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(i));

/** Asserts `fn` throws a FaissError from `call` whose message is exactly `message`. */
function throwsExactly(fn: () => unknown, call: string, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FaissError, String(e));
    assert.deepEqual([e.call, e.faissMessage], [call, message]);
    return true;
  });
}

/** Asserts a FaissError from `call` whose FAISS message ends with `tail` (FAISS prefixes "Error in <function> at <file>:<line>: "). */
function throwsEndingWith(fn: () => unknown, call: string, tail: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FaissError, String(e));
    assert.equal(e.call, call);
    assert.ok(e.faissMessage.endsWith(tail), `"${e.faissMessage}" does not end with "${tail}"`);
    return true;
  });
}

describe("calls that would throw inside an OpenMP region", () => {
  test("reconstruct_n of an index without reconstruct (IDMap) is an error, on one thread and on many", () => {
    using idmap = Index.factory(d, "IDMap,Flat", "l2");
    idmap.addWithIds(x, ids);
    // FAISS runs the loop in parallel above 1000 rows: both paths.
    for (const rows of [10, n]) {
      throwsEndingWith(() => idmap.reconstructN(0, rows), "faiss_Index_reconstruct_n", "reconstruct not implemented for this type of index");
    }
    assert.equal(idmap.ntotal, n); // the process and the index go on
  });

  test("reconstruct_n still works where it should: IDMap2, a pre-transform over IVF, Flat", () => {
    using idmap2 = Index.factory(d, "IDMap2,Flat", "l2");
    idmap2.addWithIds(x, ids);
    assert.deepEqual(idmap2.reconstructN(0, n), x);
    using flat = Index.factory(d, "Flat", "l2");
    flat.add(x);
    assert.deepEqual(flat.reconstructN(100, 5), x.subarray(100 * d, 105 * d));
    using ivf = Index.factory(d, "PCA8,IVF4,Flat", "l2");
    ivf.train(x);
    ivf.add(x);
    const back = ivf.reconstructN(0, n);
    const worst = back.reduce((m, v, i) => Math.max(m, Math.abs(v - x[i])), 0);
    assert.ok(worst < 1e-3, `PCA round trip error ${worst}`);
  });
});

describe("memory-mapped reads", () => {
  let dir = "";
  let path = "";
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "autofaiss-mmap-"));
    path = join(dir, "ivf.index");
    using ivf = Index.factory(d, "RR8,IVF4,Flat", "l2");
    ivf.train(x);
    ivf.add(x);
    ivf.write(path);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("mmap keeps the inverted lists in the file (OnDiskInvertedLists); a plain read loads them (ArrayInvertedLists)", () => {
    using mapped = Index.read(path, { mmap: true });
    using loaded = Index.read(path);
    assert.deepEqual([mapped.invertedListsClass(), loaded.invertedListsClass()], ["OnDiskInvertedLists", "ArrayInvertedLists"]);
    assert.equal(mapped.ntotal, n);
  });

  test("an index without IVF layer has no inverted lists to report", () => {
    using flat = Index.factory(d, "Flat", "l2");
    throwsEndingWith(() => flat.invertedListsClass(), "autofaiss_invlists_class", "the index has no IVF layer, hence no inverted lists");
  });

  test("changing a mapped index is an error (FAISS would throw inside omp parallel and abort)", () => {
    using mapped = Index.read(path, { mmap: true });
    using loaded = Index.read(path);
    const ro = "the index's inverted lists are read-only (OnDiskInvertedLists, e.g. a memory-mapped read); read the index without mmap to modify it";
    throwsEndingWith(() => mapped.add(x.subarray(0, d)), "faiss_Index_add", `add: ${ro}`);
    throwsEndingWith(() => mapped.addWithIds(x.subarray(0, d), ids.subarray(0, 1)), "faiss_Index_add_with_ids", `add_with_ids: ${ro}`);
    throwsEndingWith(() => mapped.reset(), "faiss_Index_reset", `reset: ${ro}`);
    throwsEndingWith(() => mapped.ivf()!.mergeFrom(loaded.ivf()!), "faiss_IndexIVF_merge_from", `merge_from (destination): ${ro}`);
    throwsEndingWith(() => loaded.ivf()!.mergeFrom(mapped.ivf()!), "faiss_IndexIVF_merge_from", `merge_from (source): ${ro}`);
    assert.deepEqual([mapped.ntotal, loaded.ntotal], [n, n]);
    // a mapped Flat index is in memory anyway (mmap only concerns inverted lists): add works
    using flat = Index.factory(d, "Flat", "l2");
    flat.add(x);
    flat.write(join(dir, "flat.index"));
    using flatMapped = Index.read(join(dir, "flat.index"), { mmap: true });
    flatMapped.add(x.subarray(0, d));
    assert.equal(flatMapped.ntotal, n + 1);
  });
});

describe("setters and arguments are validated", () => {
  test("nprobe >= 1, list numbers within [0, nlist)", () => {
    using ivf = Index.factory(d, "IVF4,Flat", "l2");
    const view = ivf.ivf()!;
    for (const bad of [0, -1, 1.5, NaN]) {
      throwsExactly(() => (view.nprobe = bad), "faiss_IndexIVF_set_nprobe", `nprobe must be an integer >= 1, got ${bad}`);
    }
    view.nprobe = 3;
    assert.equal(view.nprobe, 3);
    for (const bad of [-1, 4, 0.5]) {
      throwsExactly(() => view.listSize(bad), "faiss_IndexIVF_get_list_size", `list must be an integer in [0, 4), got ${bad}`);
    }
    assert.equal(view.listSize(3), 0);
  });

  test("merge: not into itself, addId >= 0", () => {
    using ivf = Index.factory(d, "IVF4,Flat", "l2");
    using other = Index.factory(d, "IVF4,Flat", "l2");
    throwsExactly(() => ivf.ivf()!.mergeFrom(ivf.ivf()!), "faiss_IndexIVF_merge_from", "an index cannot be merged into itself");
    throwsExactly(() => ivf.ivf()!.mergeFrom(other.ivf()!, -5), "faiss_IndexIVF_merge_from", "addId must be an integer >= 0, got -5");
  });

  test("threads: setNumThreads takes an integer >= 0, withNumThreads >= 1", () => {
    for (const bad of [-1, 2.5]) {
      throwsExactly(() => setNumThreads(bad), "autofaiss_set_num_threads", `threads must be an integer >= 0 (0: every core), got ${bad}`);
    }
    throwsExactly(() => withNumThreads(0, () => 1), "autofaiss_set_num_threads", "threads must be an integer >= 1, got 0");
  });

  test("parameter strings: syntax and the values FAISS would store unchecked", () => {
    const cases: [string, string][] = [
      ["nprobe=0", 'nprobe must be an integer >= 1, got 0 (in "nprobe=0")'],
      ["nprobe=2.5", 'nprobe must be an integer >= 1, got 2.5 (in "nprobe=2.5")'],
      ["nprobe=4,efSearch=-1", 'efSearch must be an integer >= 1, got -1 (in "efSearch=-1")'],
      ["quantizer_efSearch=0", 'quantizer_efSearch must be an integer >= 1, got 0 (in "quantizer_efSearch=0")'],
      ["ht=-1", 'ht must be an integer >= 0, got -1 (in "ht=-1")'],
      ["nprobe", 'parameter "nprobe" is not name=value'],
      ["nprobe=", 'parameter "nprobe=" is not name=value'],
      ["=3", 'parameter name "" is not an identifier (in "=3")'],
      ["nprobe=abc", 'parameter nprobe must be a finite number, got NaN (in "nprobe=abc")'],
      ["nprobe=Infinity", 'parameter nprobe must be a finite number, got Infinity (in "nprobe=Infinity")'],
    ];
    using ivf = Index.factory(d, "IVF4_HNSW8,Flat", "l2");
    for (const [params, message] of cases) {
      throwsExactly(() => ivf.setParameters(params), "faiss_ParameterSpace_set_index_parameters", message);
    }
    assert.deepEqual(parseParameters("t", " nprobe=3 efSearch=6,ht=2048 "), [
      { name: "nprobe", value: 3 },
      { name: "efSearch", value: 6 },
      { name: "ht", value: 2048 },
    ]);
    ivf.setParameters("nprobe=3,efSearch=6");
    assert.equal(ivf.ivf()!.nprobe, 3);
    // a well-formed parameter the index does not have: FAISS's own message
    throwsEndingWith(() => ivf.setParameters("bogus=3"), "faiss_ParameterSpace_set_index_parameters", "could not set parameter bogus");
  });

  test("strings passed to C: no NUL, no empty key", () => {
    throwsExactly(() => Index.factory(d, "Flat\0IVF4", "l2"), "faiss_index_factory", 'index key contains a NUL character: "Flat\\u0000IVF4"');
    throwsExactly(() => Index.factory(d, " ", "l2"), "faiss_index_factory", "index key is empty");
    throwsExactly(() => Index.read("/tmp/a\0b"), "faiss_read_index_fname", 'path contains a NUL character: "/tmp/a\\u0000b"');
  });

  test("toGpu checks its device before touching the library", () => {
    using flat = Index.factory(d, "Flat", "l2");
    throwsExactly(() => flat.toGpu(null as unknown as GpuResources, -1), "faiss_index_cpu_to_gpu", "device must be an integer >= 0, got -1");
  });
});
