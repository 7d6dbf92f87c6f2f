"""Independent oracle: open index files with Debian's python3-faiss and list the ids their IVF lists hold.

usage: part_ids.py INDEX [INDEX ...]
Prints JSON [{"ntotal", "d", "nlist", "ids": [sorted ids], "centroids_sha": hex}] on stdout, one entry per file.
"""
import hashlib
import json
import sys

import faiss
import numpy as np

out = []
for path in sys.argv[1:]:
    index = faiss.read_index(path)
    ivf = faiss.extract_index_ivf(index)
    ids = []
    for lst in range(ivf.nlist):
        size = ivf.invlists.list_size(lst)
        if size:
            ids.extend(faiss.rev_swig_ptr(ivf.invlists.get_ids(lst), size).tolist())
    centroids = ivf.quantizer.reconstruct_n(0, ivf.nlist)
    out.append({
        "ntotal": int(index.ntotal),
        "d": int(index.d),
        "nlist": int(ivf.nlist),
        "ids": sorted(int(i) for i in ids),
        "centroids_sha": hashlib.sha256(np.ascontiguousarray(centroids, dtype="<f4").tobytes()).hexdigest(),
    })
print(json.dumps(out))
