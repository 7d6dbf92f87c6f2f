"""Plain FAISS reference for tests/index_keys.test.ts, with Debian's python3-faiss.

usage: plain_build.py JOBS_JSON
JOBS_JSON: {"base", "queries" (float32 files), "d", "k",
            "jobs": [{"id", "key", "metric" ("l2"|"ip"), "ours" (index file written by our build),
                      "param" (our tuned params), "train" (float32 file: our build's training set)}]}
For each job: builds `key` with index_factory, trains on our training set,
adds the base in one call, searches with FAISS's default search parameters; then reads our index
file and searches it with our tuned parameters. One thread, so both builds are deterministic.
Prints JSON {id: {"plain": labels, "ours": labels, "ours_ntotal": n, "ours_metric": m}}.
"""
import json
import sys

import faiss
import numpy as np

faiss.omp_set_num_threads(1)
spec = json.load(open(sys.argv[1]))
d, k = spec["d"], spec["k"]
base = np.fromfile(spec["base"], dtype="<f4").reshape(-1, d)
queries = np.fromfile(spec["queries"], dtype="<f4").reshape(-1, d)


def no_polysemous(index):
    # Polysemous training only permutes PQ code ids for Hamming filtering, which default searches
    # do not use (polysemous_ht = 0): same distances, and it costs minutes on a loaded machine.
    index = faiss.downcast_index(index)
    if hasattr(index, "do_polysemous_training"):
        index.do_polysemous_training = False
    for name in ("index", "base_index", "refine_index", "storage"):
        sub = getattr(index, name, None)
        if isinstance(sub, faiss.Index):
            no_polysemous(sub)


out = {}
for job in spec["jobs"]:
    metric = faiss.METRIC_L2 if job["metric"] == "l2" else faiss.METRIC_INNER_PRODUCT
    plain = faiss.index_factory(d, job["key"], metric)
    no_polysemous(plain)
    if not plain.is_trained:
        plain.train(np.fromfile(job["train"], dtype="<f4").reshape(-1, d))
    plain.add(base)
    _, plain_labels = plain.search(queries, k)
    ours = faiss.read_index(job["ours"])
    if job["param"]:
        faiss.ParameterSpace().set_index_parameters(ours, job["param"])
    _, ours_labels = ours.search(queries, k)
    out[job["id"]] = {
        "plain": plain_labels.tolist(),
        "ours": ours_labels.tolist(),
        "ours_ntotal": int(ours.ntotal),
        "ours_metric": int(ours.metric_type),
    }
print(json.dumps(out))
