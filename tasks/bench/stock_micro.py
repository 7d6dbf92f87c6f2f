"""Stock baseline for tasks/bench_avx2.ts: Debian's python3-faiss (FAISS 1.7.3 GENERIC, BLAS as Debian's
alternatives resolve it) on the same data and keys as the TypeScript children. Prints one JSON line:
seconds per step, recall@10 against exact neighbours, FAISS's compile options.

    /usr/bin/python3 tasks/bench/stock_micro.py hnsw_add <hnsw_n> <queries>
    /usr/bin/python3 tasks/bench/stock_micro.py ivfpq4_train <ivf_n> <queries> [pool196|crop128]
"""
import gzip
import json
import sys
import time

import faiss
import numpy as np

K = 10
SHAPE = sys.argv[4] if len(sys.argv) > 4 else "pool196"
IVFPQ4_KEY = "IVF1024,PQ32x8" if SHAPE == "crop128" else "IVF1024,PQ49x8"
TRAIN = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
TEST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def images(path, pooled):
    """Fashion-MNIST IDX images as float32 rows; pooled: averaged over 2 x 2 pixel blocks, 14 x 14 = 196-d
    (as the TS child's pool2x2), or with crop128 the central 16 x 8 pixels (as its crop128)."""
    raw = gzip.open(path).read()
    n = int.from_bytes(raw[4:8], "big")
    img = np.frombuffer(raw, dtype=np.uint8, offset=16)
    if not pooled:
        return img.reshape(n, 784).astype(np.float32)
    if SHAPE == "crop128":
        return np.ascontiguousarray(img.reshape(n, 28, 28)[:, 6:22, 10:18].reshape(n, 128).astype(np.float32))
    img = img.reshape(n, 14, 2, 14, 2).astype(np.float32)
    return np.ascontiguousarray((img.sum(axis=(2, 4)) / np.float32(4)).reshape(n, 196))


case, rows, nq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pooled = case == "ivfpq4_train"
x = images(TRAIN, pooled)[:rows]
q = images(TEST, pooled)[:nq]
d = x.shape[1]
flat = faiss.IndexFlatL2(d)
flat.add(x)
_, truth = flat.search(q, K)

seconds = {}
if case == "hnsw_add":
    index = faiss.IndexHNSWFlat(d, 32)
    t = time.perf_counter()
    index.add(x)
    seconds["hnsw_add"] = time.perf_counter() - t
    index.hnsw.efSearch = 64
else:
    index = faiss.index_factory(d, IVFPQ4_KEY)
    # extract_index_ivf returns the IndexIVF base: the flag must be set on the IndexIVFPQ itself, or a
    # Python attribute is set and FAISS still runs the polysemous training (build_index turns it off).
    ivfpq = faiss.downcast_index(faiss.extract_index_ivf(index))
    assert isinstance(ivfpq, faiss.IndexIVFPQ), type(ivfpq)
    ivfpq.do_polysemous_training = False
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
