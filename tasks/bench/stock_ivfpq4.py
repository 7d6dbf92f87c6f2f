"""Stock baseline for tasks/bench_avx2.ts: Debian's python3-faiss (FAISS 1.7.3 GENERIC, BLAS as Debian's
alternatives resolve it) on the ivfpq4 case, the same data and key as the TypeScript child. Prints one
JSON line: seconds per step, recall@10 against exact neighbours, FAISS's compile options.

    /usr/bin/python3 tasks/bench/stock_ivfpq4.py <ivf_n> <queries>
"""
import gzip
import json
import sys
import time

import faiss
import numpy as np

K = 10
KEY = "IVF1024,PQ49x8"


def pooled(path):
    """Fashion-MNIST IDX images averaged over 2 x 2 pixel blocks: 14 x 14 = 196 dimensions (as the TS child)."""
    raw = gzip.open(path).read()
    n = int.from_bytes(raw[4:8], "big")
    img = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, 14, 2, 14, 2).astype(np.float32)
    return np.ascontiguousarray((img.sum(axis=(2, 4)) / np.float32(4)).reshape(n, 196))


ivf_n, nq = int(sys.argv[1]), int(sys.argv[2])
base = pooled("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
x = base[: min(ivf_n, len(base))]
q = pooled("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")[:nq]
d = x.shape[1]
flat = faiss.IndexFlatL2(d)
flat.add(x)
_, truth = flat.search(q, K)

index = faiss.index_factory(d, KEY)
# extract_index_ivf returns the IndexIVF base: the flag must be set on the IndexIVFPQ itself, or a Python
# attribute is set and FAISS still runs the polysemous training (autofaiss and build_index turn it off).
ivfpq = faiss.downcast_index(faiss.extract_index_ivf(index))
assert isinstance(ivfpq, faiss.IndexIVFPQ), type(ivfpq)
ivfpq.do_polysemous_training = False
seconds = {}
t = time.perf_counter()
index.train(x)
seconds["ivfpq4_train"] = time.perf_counter() - t
t = time.perf_counter()
index.add(x)
seconds["ivfpq4_add"] = time.perf_counter() - t
faiss.ParameterSpace().set_index_parameters(index, "nprobe=16")
_, found = index.search(q, K)
hits = sum(len(set(truth[i]) & set(found[i])) for i in range(nq))
print(json.dumps({"seconds": seconds, "recall": hits / (nq * K), "compileOptions": "stock " + faiss.get_compile_options()}))
