/*
 * autofaiss extensions to the FAISS C API.
 *
 * Everything here is what the tool needs and upstream `libfaiss_c.so` (FAISS 1.7.3 C API) lacks.
 * Same conventions as the C API: every function returns 0 on success and a negative code on error
 * (-2 FaissException, -4 std::exception, -1 unknown), with the message available from
 * faiss_get_last_error() until the next failing call on the same thread.
 *
 * Ownership: pointers returned through `FaissIndex**` are owned by the caller and freed with
 * faiss_Index_free(). `autofaiss_extract_index_ivf` returns a BORROWED pointer into its argument:
 * never free it, never use it after the parent index is freed.
 * Buffers are always allocated by the caller; the library never returns memory to free.
 *
 * Callers that load an upstream libfaiss_c.so must treat every symbol here as optional.
 */
#ifndef AUTOFAISS_EXT_H
#define AUTOFAISS_EXT_H

#include <stddef.h>
#include <stdint.h>

#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/IndexIVF_c.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of this extension ABI; bump when a signature or a guarantee changes.
 *  2: faiss_Index_reconstruct_n, faiss_Index_add, faiss_Index_add_with_ids, faiss_Index_reset and
 *     faiss_IndexIVF_merge_from return an error instead of aborting the process where FAISS 1.7.3
 *     would throw inside an OpenMP region (reconstruct of an index without reconstruct, changes to
 *     read-only / memory-mapped inverted lists); autofaiss_invlists_class added.
 *  3: autofaiss_fast_scan_use_heap added.
 *  4: autofaiss_ivf_set_direct_map added (hash-table direct map for the parts of a split index).
 *  5: autofaiss_merge_into added (distributed builds: shard indices merged into a part).
 *  6: autofaiss_train_with_levers added (training options and the direct sub-space k-means).
 *  7: autofaiss_job_* added (train with levers / add on a thread of their own, with progress);
 *     autofaiss_add added (IVF-PQ codes by the direct loop).
 *  8: autofaiss_job_status reports in out[12] when a training job no longer reads its input
 *     (AUTOFAISS_JOB_STATUS_LEN 13; callers passing the 12 of ABI 7 still get out[0 .. 11]).
 *  9: autofaiss_job_wait added (wait for a job's end with a timeout instead of polling its status).
 * 10: autofaiss_job_train_ex added (an OPQ rotation trained on a sample of its own, before the
 *     sub-index's larger training sample is read; a training input given up page by page as the
 *     first transform consumes it); training jobs give freed memory back to the OS (malloc_trim).
 * 11: autofaiss_copy_transforms added (a rotation trained once serves several indices). */
#define AUTOFAISS_EXT_ABI 11

/** Writes "<faiss version>|<compile options>" (NUL-terminated, truncated to cap) into buf. */
int autofaiss_build_info(char* buf, size_t cap, int* abi_version);

/** Sets the OpenMP thread count FAISS uses (n <= 0: number of cores) and keeps BLAS at one
 *  thread per caller, because FAISS calls BLAS from inside its own parallel regions. */
int autofaiss_set_num_threads(int n);

/** Current OpenMP max threads. */
int autofaiss_get_num_threads(int* n);

/** Size in bytes that faiss_write_index would produce, computed without touching the disk. */
int autofaiss_serialized_size(const FaissIndex* index, size_t* size);

/** Serializes into a caller buffer of `cap` bytes (use autofaiss_serialized_size first).
 *  `written` receives the number of bytes written; error if cap is too small. */
int autofaiss_write_index_buffer(const FaissIndex* index, uint8_t* buf, size_t cap, size_t* written);

/** Deserializes an index from `size` bytes at buf (the buffer is copied; io_flags as read_index). */
int autofaiss_read_index_buffer(const uint8_t* buf, size_t size, int io_flags, FaissIndex** p_out);

/** The IVF layer of an index (through IndexPreTransform / IndexIDMap / IndexRefine), or error
 *  if there is none. Borrowed pointer: see the ownership note above. */
int autofaiss_extract_index_ivf(FaissIndex* index, FaissIndexIVF** p_ivf);

/** Moves every vector of `src` into `dst` (FAISS ivflib::merge_into without shifting ids): both
 *  must be IVF indices (through pre-transforms) cloned from the same trained index. After the call
 *  `src` is empty (ntotal 0) and `dst->ntotal` counts both, on the wrappers as on the IVF layers.
 *  Error (no change) if `dst`'s inverted lists are not in memory, e.g. a memory-mapped read. */
int autofaiss_merge_into(FaissIndex* dst, FaissIndex* src);

/** Replaces the transforms of `dst` (a pre-transformed index, factory-made, holding no vectors) by
 *  copies of the trained transforms of `src`: same number, classes and dimensions, checked first, so
 *  an error leaves `dst` unchanged. `dst` is then trained when its sub-index is; training it trains
 *  only the sub-index, through the copied transforms. `src` is only read. */
int autofaiss_copy_transforms(FaissIndex* dst, const FaissIndex* src);

/** Describes the concrete class chain of an index with the metric of every sub-index, e.g.
 *  "IndexPreTransform[OPQMatrix]>IndexIVFPQ(metric=0,nlist=64)>quantizer:IndexHNSWFlat(metric=0)
 *  >storage:IndexFlat(metric=0)", so tests can prove that inner product reaches every level. */
int autofaiss_describe_index(const FaissIndex* index, char* buf, size_t cap);

/** Class name of the inverted lists of the index's IVF layer (through pre-transforms), e.g.
 *  "ArrayInvertedLists" for an index in memory, "OnDiskInvertedLists" after a memory-mapped read
 *  (faiss_read_index_fname with FAISS_IO_FLAG_MMAP). Error if the index has no IVF layer. */
int autofaiss_invlists_class(const FaissIndex* index, char* buf, size_t cap);

/** Turns polysemous training of every IVFPQ / PQ in an index (through pre-transforms, both
 *  stages of an IndexRefine, and the storage of HNSW_PQ / NSG_PQ graphs) on or off before
 *  train(). The 1.7.3 factory turns it on for 8-bit PQ; it costs tens of seconds per
 *  sub-quantizer, and is useless when searches run with ht >= 8*code_size (autofaiss tunes with
 *  ht=2048). `applied` is 1 when the index has such a flag, else 0 (not an error). */
int autofaiss_set_polysemous_training(FaissIndex* index, int enabled, int* applied);

/** Makes every fast-scan index inside `index` (PQ<m>x4fs, IVF<c>,PQ<m>x4fs; through
 *  pre-transforms, IDMap and both stages of an IndexRefine) keep its top k in a heap instead of
 *  the reservoir FAISS 1.7.3 picks for k > 20. The reservoir's partition
 *  (utils/partitioning.cpp, partition_fuzzy_median3, the path of a build without AVX2) breaks
 *  off when every remaining candidate distance ties, then compress_array fails
 *  `assert(n_eq == 0)` and aborts the process: PQ16x4fs on 784-d Fashion-MNIST did so in
 *  one-query k=40 searches. Sets `implem` (12 for bbs = 32; else 14, IVF 10) only where it is
 *  0 (FAISS's "choose"); write_index stores it, so the written index also searches this way when
 *  reopened. The heap finds the same k nearest codes (ties may come out in another order). `applied` is 1 when the
 *  index has a fast-scan part, else 0 (not an error). */
int autofaiss_fast_scan_use_heap(FaissIndex* index, int* applied);

/** Index of the first NaN or +-Inf among the n floats at x, or -1 in *index; never fails. The
 *  readers refuse such values (they poison k-means); this SIMD scan keeps that check far below
 *  the cost of reading the data, where a JavaScript loop costs about as much as the read. */
int autofaiss_first_nonfinite(const float* x, size_t n, int64_t* index);

/* ---- N-part indices (issue 13) ---- */

/** Sets (and builds from the inverted lists) the direct map that reconstruct(id) needs:
 *  type 0 none, 1 array (8 bytes per vector; FAISS requires ids 0..ntotal-1), 2 hash table (any
 *  ids: the parts of a split index hold ids that do not start at 0). Serialized with the index. */
int autofaiss_ivf_set_direct_map(FaissIndexIVF* ivf, int type);

/* ---- Training levers (issue 12) ---- */

/** Trains `index` on n vectors like faiss_Index_train, after setting on every OPQ matrix, IVF and PQ
 *  it nests (pre-transform chains, IVF, IndexPQ, HNSW / NSG storage, refine stages) the options below;
 *  a negative value keeps FAISS's default:
 *   opq_niter, opq_niter_pq, opq_max_train_points: OPQMatrix::niter (outer iterations, FAISS 50),
 *     niter_pq (PQ k-means iterations of every outer iteration after the first, FAISS 4),
 *     max_train_points (FAISS 65,536: a larger sample is subsampled);
 *   ivf_niter, ivf_max_points_per_centroid: the coarse k-means (IndexIVF::cp; FAISS 25 and 256);
 *   pq_niter: the k-means iterations of a PQ's sub-quantizers (ProductQuantizer::cp.niter, FAISS 25);
 *   direct_subspace: 1 = the sub-quantizer k-means of PQs and OPQs with sub-vectors of at most 8
 *     dimensions assign points with a direct loop (SIMD on the AVX2 variant) instead of FAISS's
 *     IndexFlatL2, whose BLAS sgemm has an inner dimension of the sub-vector's (3 for OPQ48_144).
 *     Assignments equal FAISS's up to float rounding of near ties;
 *   ivf_hnsw_assign_m: > 0 = the coarse k-means assigns points through an HNSW graph (M links) over the
 *     centroids, rebuilt at each iteration (FAISS's IndexIVF::clustering_index), instead of
 *     comparing every point with every centroid; approximate, for large nlist. 0 = FAISS's way.
 *  `applied` receives a bit mask of what the index holds: 1 an OPQ matrix, 2 an IVF, 4 a PQ.
 *  The objects set only for training (OPQMatrix::pq, ProductQuantizer::assign_index) are owned by this
 *  call and detached before it returns, on success and on error: the index keeps no pointer to them. */
int autofaiss_train_with_levers(FaissIndex* index, int64_t n, const float* x, int opq_niter, int opq_niter_pq,
                                int64_t opq_max_train_points, int ivf_niter, int ivf_max_points_per_centroid,
                                int pq_niter, int direct_subspace, int ivf_hnsw_assign_m, int* applied);

/** faiss_Index_add_with_ids (xids NULL: faiss_Index_add), except that an IndexIVFPQ (alone or under
 *  pre-transforms such as OPQ) with 8-bit codes on sub-vectors of at most 8 dimensions computes its
 *  PQ codes with the direct nearest-centroid loop of the training levers: FAISS 1.7.3 encodes each
 *  such sub-vector with ksub calls of fvec_L2sqr on 3 to 8 floats. Same lists, ids and order; codes
 *  equal FAISS's up to float rounding of near ties. autofaiss_job_add adds through it. */
int autofaiss_add(FaissIndex* index, int64_t n, const float* x, const int64_t* xids);

/* ---- progress jobs (issue 12): native/jobs.cpp ---- */

/** Long work (train, add) running on a thread of its own, so that a caller whose FFI calls block
 *  (Bun, Deno) can poll its progress between calls. Owned by the caller from a successful
 *  autofaiss_job_train / autofaiss_job_add until autofaiss_job_join, which waits for the work,
 *  frees the job and returns the work's status (its FAISS message through faiss_get_last_error()
 *  on the joining thread). Every started job must be joined exactly once, also when the caller
 *  gives up. Until then the index must not be used by anyone else, and the caller's buffers (x,
 *  xids) must stay alive and unchanged, except x once autofaiss_job_status says the job no longer
 *  reads it (out[12]). The job runs FAISS with the starting thread's OpenMP
 *  thread count. Results are those of faiss_Index_train / faiss_Index_add on the same thread
 *  count (training: same centroids, rotation and codebooks). */
typedef struct AutofaissJob AutofaissJob;

/** Starts autofaiss_train_with_levers(index, n, x, <the same options>, applied) with progress from
 *  inside: k-means iterations of the IVF coarse quantizer, of the PQ sub-quantizers, and of the PQ
 *  trainings inside an OPQ rotation (one status phase each). `applied` is written before the call
 *  returns. With every option negative / 0 this is faiss_Index_train's training. */
int autofaiss_job_train(FaissIndex* index, idx_t n, const float* x, int opq_niter, int opq_niter_pq,
                        int64_t opq_max_train_points, int ivf_niter, int ivf_max_points_per_centroid, int pq_niter,
                        int direct_subspace, int ivf_hnsw_assign_m, int* applied, AutofaissJob** p_job);

/** autofaiss_job_train with options (flags, OR-ed):
 *  AUTOFAISS_TRAIN_TRANSFORMS_ONLY: train only the untrained transforms of an IndexPreTransform
 *    (OPQ, PCA, …), each on the previous one's output; the sub-index stays untrained. A later
 *    training job (or faiss_Index_train) on other vectors passes them through the trained transforms
 *    and trains the sub-index, so a rotation can train on a sample of its own: FAISS's OPQ trains on
 *    at most max_train_points (65,536) rows of whatever it is given, while the sub-index wants many
 *    more, and the two samples need not be alive together. Both jobs on the same x give byte for
 *    byte what one autofaiss_job_train gives. Refused for an index without pre-transform; nothing
 *    to do when every transform is trained. Reads x until the job finishes.
 *  AUTOFAISS_TRAIN_DISCARD_INPUT: the caller gives up x's contents. The first transform of an
 *    IndexPreTransform is applied in blocks, and each block's whole pages of x are given back to the
 *    OS (madvise MADV_DONTNEED) once read, so x and its transformed copy are never resident together;
 *    x reads as zeros (or its file's contents, for a file mapping) afterwards. The trained index is
 *    the same. Without a pre-transform to apply, x is left alone.
 *  Other flags are refused. */
#define AUTOFAISS_TRAIN_TRANSFORMS_ONLY 1
#define AUTOFAISS_TRAIN_DISCARD_INPUT 2
int autofaiss_job_train_ex(FaissIndex* index, idx_t n, const float* x, int opq_niter, int opq_niter_pq,
                           int64_t opq_max_train_points, int ivf_niter, int ivf_max_points_per_centroid, int pq_niter,
                           int direct_subspace, int ivf_hnsw_assign_m, int flags, int* applied, AutofaissJob** p_job);

/** Starts adding n vectors (with ids xids, or NULL for ids ntotal…) in calls of chunk_rows rows
 *  (<= 0: one call). Graphs get one call: NSG refuses a second, and an HNSW built from chunks
 *  searches worse (FAISS inserts one call's vertices level by level); an HNSW's progress counts the
 *  vertices it inserts, from inside the call. */
int autofaiss_job_add(FaissIndex* index, idx_t n, const float* x, const idx_t* xids, idx_t chunk_rows,
                      AutofaissJob** p_job);

/** Phases reported in out[1]. */
#define AUTOFAISS_JOB_TRAIN 1      /* training without finer progress (SQ, PCA, …): no counts */
#define AUTOFAISS_JOB_OPQ 2        /* OPQ rotation: PQ k-means iterations of all outer iterations */
#define AUTOFAISS_JOB_IVF_KMEANS 3 /* IVF coarse quantizer k-means iterations */
#define AUTOFAISS_JOB_PQ_KMEANS 4  /* PQ k-means iterations, all sub-quantizers */
#define AUTOFAISS_JOB_ADD 5        /* vectors added */
#define AUTOFAISS_JOB_STATUS_LEN 13
/** Shortest `cap` autofaiss_job_status accepts (ABI 7's length). */
#define AUTOFAISS_JOB_STATUS_MIN_LEN 12

/** Copies the job's status into out[0 .. AUTOFAISS_JOB_STATUS_LEN-1] (cap: length of out):
 *  0 finished (1) or running (0); 1 phase; 2 done and 3 total in the phase's unit (k-means
 *  iterations, or vectors for ADD; total 0: unknown); 4 objective (mean distance of the training
 *  vectors to their centroid at the last k-means iteration; for OPQ, the PQ's mean squared error
 *  after the last outer iteration; NaN: none yet); 5 outer iterations done and 6 their total (OPQ);
 *  7 … 11 the count of phase 1 … 5 over the whole job (never reset: what a poller that missed the
 *  end of a phase needs to close its bar at the right count); 12 (when cap >= 13) 1 once the job
 *  no longer reads its input x, else 0: a training job over an IndexPreTransform sets it when the
 *  first transform's output exists (the sub-index trains on that), and the caller may free x from
 *  then on; other jobs read x until they finish.
 *  Never blocks; callable from any thread while the job runs. */
int autofaiss_job_status(const AutofaissJob* job, double* out, size_t cap);

/** Waits until the job has finished or timeout_ms milliseconds have passed (0: does not wait),
 *  whichever comes first, and writes 1 (finished) or 0 to *finished. A caller that must stay
 *  responsive waits in short slices between its own work: it learns of the end as it happens,
 *  where polling autofaiss_job_status every t ms learns of it t/2 ms late on average. Callable
 *  from any thread while the job runs. */
int autofaiss_job_wait(AutofaissJob* job, int64_t timeout_ms, int* finished);

/** Waits for the work, frees the job, returns the work's status (0, or a negative code with its
 *  message in faiss_get_last_error()). NULL: returns 0. */
int autofaiss_job_join(AutofaissJob* job);

#ifdef __cplusplus
}
#endif

#endif
