"""Independent oracle: load an index with Debian's python3-faiss and search it.

usage: search.py INDEX QUERIES_F32 D K [--mmap]
Prints JSON {"ntotal", "d", "metric", "labels", "distances"} on stdout.
"""
import json
import sys

import faiss
import numpy as np

path, queries_path, d, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if "--mmap" in sys.argv else 0
index = faiss.read_index(path, flags)
queries = np.fromfile(queries_path, dtype="<f4").reshape(-1, d)
distances, labels = index.search(queries, k)
print(json.dumps({
    "ntotal": int(index.ntotal),
    "d": int(index.d),
    "metric": int(index.metric_type),
    "labels": labels.tolist(),
    "distances": distances.tolist(),
}))
