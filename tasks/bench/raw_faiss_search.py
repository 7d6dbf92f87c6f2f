"""Baseline for tasks/bench_parts.ts: search one index file or N part files with python3-faiss,
merge the per-part top-k by (distance, id) with numpy, and write one JSON line per query like
`autofaiss search`.

usage: raw_faiss_search.py QUERIES.npy K NPROBE OUT INDEX [INDEX ...]
"""
import json
import sys

import faiss
import numpy as np

queries_path, k, nprobe, out_path, paths = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:]
queries = np.load(queries_path)
dists, ids = [], []
metric = None
for path in paths:
    index = faiss.read_index(path)
    metric = index.metric_type
    faiss.ParameterSpace().set_index_parameter(index, "nprobe", nprobe)
    d, i = index.search(queries, k)
    dists.append(d)
    ids.append(i)
    del index
D = np.concatenate(dists, axis=1)
I = np.concatenate(ids, axis=1)
if len(paths) > 1:
    key = -D if metric == faiss.METRIC_INNER_PRODUCT else D
    # lexsort: last key is primary -> distance first, then id
    order = np.lexsort((np.where(I < 0, np.iinfo(np.int64).max, I), key), axis=1)[:, :k]
    D = np.take_along_axis(D, order, axis=1)
    I = np.take_along_axis(I, order, axis=1)
with open(out_path, "w") as f:
    for q in range(len(queries)):
        f.write(json.dumps({"ids": I[q].tolist(), "distances": D[q].tolist()}) + "\n")
