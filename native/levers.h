// Internal C++ interface between the speed levers (faiss_c.cpp: training levers, direct IVF-PQ
// encoding) and the progress jobs (jobs.cpp), which run both. Not part of the C API: both files are
// compiled into the same library.
#pragma once

#include <faiss/Index.h>
#include <faiss/IndexIVF.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/ProductQuantizer.h>

#include <cstdint>
#include <memory>

namespace autofaiss {

/** The k-means objective per point of one assignment search (k = 1: the sum Clustering::train_encoded
 *  makes of the same distances, divided by the n points); 0 for no point. */
inline double mean_distance(faiss::Index::idx_t n, faiss::Index::idx_t k, const float* distances) {
    double sum = 0;
    for (faiss::Index::idx_t i = 0; i < n * k; i++) sum += distances[i];
    return n > 0 ? sum / double(n) : 0;
}

/** The options of autofaiss_train_with_levers (autofaiss_ext.h); negative keeps FAISS's default. */
struct TrainingLevers {
    int opq_niter = -1;
    int opq_niter_pq = -1;
    int64_t opq_max_train_points = -1;
    int ivf_niter = -1;
    int ivf_max_points_per_centroid = -1;
    int pq_niter = -1;
    bool direct_subspace = false;
    int ivf_hnsw_assign_m = 0;

    /** The options as autofaiss_train_with_levers / autofaiss_job_train take them, in their C order. */
    static TrainingLevers from_c(int opq_niter, int opq_niter_pq, int64_t opq_max_train_points, int ivf_niter,
                                 int ivf_max_points_per_centroid, int pq_niter, int direct_subspace,
                                 int ivf_hnsw_assign_m) {
        return {opq_niter, opq_niter_pq, opq_max_train_points, ivf_niter, ivf_max_points_per_centroid, pq_niter,
                direct_subspace != 0, ivf_hnsw_assign_m};
    }
};

/** Told about the k-means work the direct sub-space loops do, so that a progress job can count it
 *  (FAISS's own loops are counted through the assignment indices jobs.cpp installs). Called from
 *  OpenMP worker threads, concurrently: implementations must be thread-safe. */
struct TrainingObserver {
    virtual ~TrainingObserver() = default;
    /** One k-means iteration of a sub-quantizer of `pq` (an IndexPQ / IVFPQ codebook) ended;
     *  mean_distance: mean squared distance of its points to their centroid. */
    virtual void pq_iteration(const faiss::ProductQuantizer& pq, double mean_distance) = 0;
    /** An outer iteration of `opq` starts (before its sub-quantizers train side by side). */
    virtual void opq_outer_start(const faiss::OPQMatrix& opq) = 0;
    /** One k-means iteration of one sub-quantizer inside an outer iteration of `opq` ended. */
    virtual void opq_iteration(const faiss::OPQMatrix& opq) = 0;
    /** An outer iteration of `opq` ended; pq_error: sum over sub-quantizers of the last iteration's
     *  mean squared distance (the PQ's mean squared error). */
    virtual void opq_outer_end(const faiss::OPQMatrix& opq, double pq_error) = 0;
    /** One iteration of `ivf`'s coarse k-means ended (assigned through the lever's HNSW over the
     *  centroids); mean_distance: the iteration's objective per point. Called on the training thread. */
    virtual void ivf_iteration(const faiss::IndexIVF& ivf, double mean_distance) = 0;
};

/** What attach_training_levers set on an index only for its training; destroying it detaches all of
 *  it (the index keeps no pointer to anything it owns). */
struct LeverAttachments;
struct LeverAttachmentsDeleter {
    void operator()(LeverAttachments* a) const;
};
using LeverAttachmentsPtr = std::unique_ptr<LeverAttachments, LeverAttachmentsDeleter>;

/** Sets the levers on every OPQ matrix, IVF and PQ nested in `index`; `applied` gets the bit mask of
 *  autofaiss_train_with_levers. `observer` (may be null) hears about the direct loops' iterations. */
LeverAttachmentsPtr attach_training_levers(faiss::Index* index, const TrainingLevers& levers, int* applied,
                                           TrainingObserver* observer);

/** index->add_with_ids(n, x, xids) (xids null: add(n, x)), with the PQ codes of an IndexIVFPQ (under
 *  pre-transforms) with 8-bit codes on sub-vectors of at most 8 dimensions computed by the direct
 *  nearest-centroid loop instead of ProductQuantizer::compute_code, which FAISS 1.7.3 runs as ksub
 *  calls of fvec_L2sqr on 3 to 8 floats per sub-vector (80 % of such an add in a profile). Same
 *  lists, ids and order as FAISS; codes equal FAISS's up to float rounding of near ties. Any other
 *  index: FAISS's own add. */
void add_vectors(faiss::Index* index, faiss::Index::idx_t n, const float* x, const faiss::Index::idx_t* xids);

}  // namespace autofaiss
