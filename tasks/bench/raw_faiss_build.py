"""Baseline for tasks/bench_build.ts: a plain python3-faiss train + add + write of one key.

usage: raw_faiss_build.py KEY METRIC(ip|l2) TRAIN_SIZE OUT_INDEX FILE.npy [FILE.npy ...]
Trains on the first TRAIN_SIZE vectors (what Python AutoFaiss does), adds every file in batches,
writes the index. Polysemous training is off, as in our build (see README), so both do the same work.
"""
import sys
import time

import faiss
import numpy as np

# which OpenBLAS variant the dynamic loader gave faiss (tasks/bench_build.ts asks for the OpenMP one)
with open("/proc/self/maps") as maps:
    blas = sorted({line.split()[-1].split("/")[-2] for line in maps if "libopenblas" in line}) or ["unknown"]

key, metric, train_size, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
files = sys.argv[5:]
arrays = [np.load(f, mmap_mode="r") for f in files]
d = arrays[0].shape[1]
index = faiss.index_factory(d, key, faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2)
# extract_index_ivf returns an IndexIVF proxy: setting do_polysemous_training on it only made a Python
# attribute (until session 11 this baseline ran FAISS's polysemous training on IVF-PQ keys). Downcast.
try:
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
except Exception:
    ivf = None  # no IVF layer
if isinstance(ivf, faiss.IndexIVFPQ):
    ivf.do_polysemous_training = False
t0 = time.time()
if not index.is_trained:
    parts, left = [], train_size
    for a in arrays:
        if left <= 0:
            break
        parts.append(np.ascontiguousarray(a[:left], dtype="float32"))
        left -= len(parts[-1])
    index.train(np.concatenate(parts))
t1 = time.time()
batch = 100_000
for a in arrays:
    for i in range(0, len(a), batch):
        index.add(np.ascontiguousarray(a[i:i + batch], dtype="float32"))
t2 = time.time()
faiss.write_index(index, out)
print(f"train {t1 - t0:.1f} s, add {t2 - t1:.1f} s, write {time.time() - t2:.1f} s, ntotal {index.ntotal}, blas {'+'.join(blas)}", flush=True)
