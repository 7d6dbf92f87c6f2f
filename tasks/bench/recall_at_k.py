"""Recall@k of built indices against exact neighbours, for tasks/bench_peer.ts.

usage: recall_at_k.py BASE_DIR QUERIES.npy METRIC K GT_CACHE.npy INDEX PARAM [INDEX PARAM ...]

BASE_DIR holds the .npy files both tools indexed (read in sorted name order, as both tools do, so row
numbers are the ids). The exact top-k (IndexFlatL2 / IndexFlatIP) is cached in GT_CACHE.npy. PARAM is
the index_param string of the build's index_infos.json ("" for none), applied before searching.
Prints one JSON object: {"recalls": [r1, ...], "latencies_ms": [l1, ...]}: the mean over queries of
|found ∩ exact| / k, and the mean single-query search time on one thread (the first LATENCY_QUERIES
queries, one search call each, k neighbours), as an independent reader of the file measures it.
"""
import json
import os
import sys

import time

import faiss
import numpy as np

LATENCY_QUERIES = 300

base_dir, queries_path, metric, k, gt_path = sys.argv[1:6]
k = int(k)
pairs = sys.argv[6:]
queries = np.ascontiguousarray(np.load(queries_path), dtype="float32")
if os.path.exists(gt_path):
    gt = np.load(gt_path)
else:
    files = sorted(f for f in os.listdir(base_dir) if f.endswith(".npy"))
    flat = faiss.IndexFlatIP(queries.shape[1]) if metric == "ip" else faiss.IndexFlatL2(queries.shape[1])
    for f in files:
        flat.add(np.ascontiguousarray(np.load(os.path.join(base_dir, f)), dtype="float32"))
    _, gt = flat.search(queries, k)
    np.save(gt_path, gt)
    del flat
recalls = []
latencies = []
for path, param in zip(pairs[0::2], pairs[1::2]):
    index = faiss.read_index(path)
    if param:
        faiss.ParameterSpace().set_index_parameters(index, param)
    _, found = index.search(queries, k)
    hits = sum(len(set(found[q].tolist()) & set(gt[q].tolist())) for q in range(len(queries)))
    recalls.append(hits / (k * len(queries)))
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    timed = queries[:LATENCY_QUERIES]
    start = time.perf_counter()
    for q in range(len(timed)):
        index.search(timed[q:q + 1], k)
    latencies.append((time.perf_counter() - start) / len(timed) * 1000)
    faiss.omp_set_num_threads(threads)
    del index
print(json.dumps({"recalls": recalls, "latencies_ms": latencies}))
