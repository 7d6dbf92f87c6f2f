// Long FAISS work (train, add) on a thread of its own, with progress read from inside the work
// (autofaiss_job_* in autofaiss_ext.h).
//
// Why: Bun's and Deno's FFI calls are synchronous, so one 18-minute faiss_Index_train call blocks
// the JavaScript thread and nothing can be printed until it returns. Here the caller starts the
// work, polls a status every few hundred milliseconds from JavaScript (between async sleeps), and
// joins. The caller's buffers must stay alive and unchanged until join.
//
// Progress inside FAISS 1.7.3 training, without patching FAISS, through hooks FAISS already has
// (read in 1.7.3's IndexIVF.cpp, Clustering.cpp, impl/ProductQuantizer.cpp, VectorTransform.cpp):
// - Clustering::train_encoded calls index.search(nx, x, 1, dis, assign) exactly once per k-means
//   iteration (no codec) and sums `dis` into its objective. A CountingFlat (an IndexFlat whose
//   search counts calls and averages the distances) given as the assignment index therefore
//   yields "iteration i of niter" and the objective, computed by the very same IndexFlat::search.
// - IVF k-means: Level1Quantizer::train_q1 uses IndexIVF::clustering_index when set. With
//   quantizer_trains_alone == 0 it then resets the quantizer and adds the final centroids to it
//   (instead of clustering directly "in" the flat quantizer): same centroids, same quantizer. With
//   quantizer_trains_alone == 2 (HNSW quantizer) it replaces a local IndexFlatL2.
// - PQ k-means: ProductQuantizer::train clusters each sub-space against `assign_index` when set,
//   instead of a local IndexFlatL2(dsub); Clustering resets the index before use.
// - OPQ: OPQMatrix::train trains `*pq` when set instead of a local ProductQuantizer(d_out, M, 8);
//   ProductQuantizer::train is virtual (Quantizer), so a subclass counts the outer iterations.
//   The subclass sets assign_index only for the duration of its own train(): OPQMatrix encodes
//   with compute_codes_with_assign_index (BLAS distances) whenever assign_index is set, which could
//   change codes by rounding, so it must be unset when OPQ encodes.
// Every hook is undone when the training ends (success or error), before the job reports done.
//
// Adding: split into chunks inside the job thread; `done` moves after each chunk. IVF, PQ, SQ and
// flat adds give the same index in chunks (IVF lists keep the insertion order). Graphs are not cut:
// - HNSW: 1.7.3's hnsw_add_vertices inserts the vertices of one add call level by level, highest
//   first; added in chunks of 1,000, 20,000 clustered 32-d vectors gave recall@10 0.90 instead of
//   0.99 (efSearch 16). So an HNSW gets the caller's calls unchanged, and progress comes from inside
//   the call: its storage is wrapped, for the call, in an Index whose distance computer counts
//   set_query(), which hnsw_add_vertices calls once per inserted vertex (same graph: the wrapper
//   forwards every distance).
// - NSG refuses a second add: one call.
//
// OpenMP's thread count (omp_set_num_threads) is a per-thread setting in libgomp: a new thread
// starts from the process default. The job copies the starting thread's omp_get_max_threads().

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexIVFPQFastScan.h>
#include <faiss/IndexNSG.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPQFastScan.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/ProductQuantizer.h>
#include <faiss/utils/utils.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cmath>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include "autofaiss_ext.h"
#include "levers.h"

#define EXPORT extern "C" __attribute__((visibility("default")))

// faiss_c.cpp's error channel: faiss_get_last_error() returns this thread's message.
extern thread_local std::exception_ptr faiss_last_exception;

namespace {

faiss::Index* I(FaissIndex* p) { return reinterpret_cast<faiss::Index*>(p); }

// What the job is doing; the values are part of the ABI (autofaiss_ext.h).
enum Phase : int {
    PHASE_TRAIN = 1,      // training without a finer hook (SQ, PCA, …): no counts
    PHASE_OPQ = 2,        // OPQ rotation: k-means iterations of all its PQ trainings
    PHASE_IVF_KMEANS = 3, // IVF coarse quantizer k-means iterations
    PHASE_PQ_KMEANS = 4,  // PQ sub-quantizer k-means iterations (all sub-quantizers)
    PHASE_ADD = 5,        // vectors added
};

struct Status {
    std::atomic<int> phase{PHASE_TRAIN};
    std::atomic<int64_t> done{0};
    std::atomic<int64_t> total{0};
    std::atomic<double> objective{NAN};
    std::atomic<int64_t> outer{0};
    std::atomic<int64_t> outer_total{0};
    std::atomic<int> finished{0};
    // 1 once the job no longer reads its input (training through an IndexPreTransform: the chain's
    // output exists); the caller may then free the input while the job goes on.
    std::atomic<int> input_released{0};
    // Count of each phase (index: Phase) over the whole job, never reset: a poller that missed a
    // phase's last iterations (the next phase had started) still learns how many there were.
    std::atomic<int64_t> phase_count[PHASE_ADD + 1] = {};

    // One more unit of work in phase p (the current phase). Any thread.
    void count(Phase p) {
        done.fetch_add(1, std::memory_order_relaxed);
        phase_count[p].fetch_add(1, std::memory_order_relaxed);
    }

    // A new phase: counts start again. Called from the job thread only.
    void enter(Phase p, int64_t new_total, int64_t new_outer_total) {
        if (phase.load(std::memory_order_relaxed) == p) return;
        done.store(0, std::memory_order_relaxed);
        total.store(new_total, std::memory_order_relaxed);
        objective.store(NAN, std::memory_order_relaxed);
        outer.store(0, std::memory_order_relaxed);
        outer_total.store(new_outer_total, std::memory_order_relaxed);
        phase.store(p, std::memory_order_release);
    }
};

// An IndexFlat whose search (one call per k-means iteration) advances the job's status.
struct CountingFlat : faiss::IndexFlat {
    Status* st;
    Phase phase;
    int64_t phase_total;
    int64_t phase_outer_total;
    bool report_objective;
    // Set by OpqProgressPQ: k-means iterations per sub-quantizer in its current train() call, and
    // the sum of each sub-quantizer's last objective (the PQ's mean squared error).
    mutable int64_t calls_in_train = 0;
    mutable int64_t niter_in_train = 0;
    mutable double last_objectives = 0;

    CountingFlat(int d, faiss::MetricType metric, Status* st, Phase phase, int64_t total, int64_t outer_total,
                 bool report_objective)
            : faiss::IndexFlat(d, metric),
              st(st),
              phase(phase),
              phase_total(total),
              phase_outer_total(outer_total),
              report_objective(report_objective) {}

    void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                const faiss::SearchParameters* params) const override {
        faiss::IndexFlat::search(n, x, k, distances, labels, params);
        double mean = autofaiss::mean_distance(n, k, distances);
        st->enter(phase, phase_total, phase_outer_total);
        if (niter_in_train > 0 && ++calls_in_train % niter_in_train == 0) last_objectives += mean;
        if (report_objective) st->objective.store(mean, std::memory_order_relaxed);
        st->count(phase);
    }
};

// The ProductQuantizer OPQMatrix::train trains at each outer iteration (OPQMatrix::pq), counting
// the outer iterations and reporting the PQ's error after each one.
struct OpqProgressPQ : faiss::ProductQuantizer {
    Status* st;
    CountingFlat* assigner;

    OpqProgressPQ(size_t d, size_t M, Status* st, CountingFlat* assigner)
            : faiss::ProductQuantizer(d, M, 8), st(st), assigner(assigner) {}

    void train(size_t n, const float* x) override {
        st->enter(PHASE_OPQ, assigner->phase_total, assigner->phase_outer_total);
        assigner->calls_in_train = 0;
        assigner->niter_in_train = int64_t(cp.niter) * cp.nredo;
        assigner->last_objectives = 0;
        assign_index = assigner;
        try {
            faiss::ProductQuantizer::train(n, x);
        } catch (...) {
            assign_index = nullptr;
            throw;
        }
        assign_index = nullptr;
        st->objective.store(assigner->last_objectives, std::memory_order_relaxed);
        st->outer.fetch_add(1, std::memory_order_relaxed);
    }
};

bool is_plain_flat(const faiss::Index* q) {
    const std::type_info& t = typeid(*q);
    return t == typeid(faiss::IndexFlat) || t == typeid(faiss::IndexFlatL2) || t == typeid(faiss::IndexFlatIP);
}

// Installs the hooks into an untrained index tree and undoes them when destroyed.
struct TrainHooks {
    Status* st;
    std::vector<std::unique_ptr<faiss::Index>> indexes;
    std::vector<std::unique_ptr<faiss::ProductQuantizer>> pqs;
    std::vector<std::function<void()>> undo;

    explicit TrainHooks(Status* st) : st(st) {}
    TrainHooks(const TrainHooks&) = delete;
    TrainHooks& operator=(const TrainHooks&) = delete;
    ~TrainHooks() {
        for (auto it = undo.rbegin(); it != undo.rend(); ++it) (*it)();
    }

    CountingFlat* counter(int d, faiss::MetricType metric, Phase phase, int64_t total, int64_t outer_total,
                          bool objective) {
        indexes.emplace_back(new CountingFlat(d, metric, st, phase, total, outer_total, objective));
        return static_cast<CountingFlat*>(indexes.back().get());
    }

    void hook_pq(faiss::ProductQuantizer& pq) {
        if (pq.assign_index != nullptr) return;
        int64_t slices = pq.train_type == faiss::ProductQuantizer::Train_shared ? 1 : int64_t(pq.M);
        pq.assign_index = counter(int(pq.dsub), faiss::METRIC_L2, PHASE_PQ_KMEANS,
                                  slices * pq.cp.niter * pq.cp.nredo, 0, true);
        faiss::ProductQuantizer* p = &pq;
        undo.push_back([p] { p->assign_index = nullptr; });
    }

    void hook_opq(faiss::OPQMatrix* opq) {
        if (opq->is_trained || opq->pq != nullptr) return;
        // OPQMatrix::train: niter_pq_0 k-means iterations at the first outer iteration, niter_pq after.
        int64_t per_slice = opq->niter <= 0 ? 0 : int64_t(opq->niter_pq_0) + int64_t(opq->niter - 1) * opq->niter_pq;
        CountingFlat* assigner = counter(opq->d_out / opq->M, faiss::METRIC_L2, PHASE_OPQ,
                                         per_slice * opq->M, opq->niter, false);
        pqs.emplace_back(new OpqProgressPQ(opq->d_out, opq->M, st, assigner));
        opq->pq = pqs.back().get();
        undo.push_back([opq] { opq->pq = nullptr; });
    }

    void hook_ivf(faiss::IndexIVF* ivf) {
        faiss::Index* q = ivf->quantizer;
        bool needs_kmeans = !(q->is_trained && size_t(q->ntotal) == ivf->nlist);
        bool usable = ivf->clustering_index == nullptr &&
                      ((ivf->quantizer_trains_alone == 0 && is_plain_flat(q)) || ivf->quantizer_trains_alone == 2);
        if (needs_kmeans && usable) {
            faiss::MetricType metric = ivf->quantizer_trains_alone == 2 ? faiss::METRIC_L2 : q->metric_type;
            ivf->clustering_index = counter(int(q->d), metric, PHASE_IVF_KMEANS,
                                            int64_t(ivf->cp.niter) * ivf->cp.nredo, 0, true);
            undo.push_back([ivf] { ivf->clustering_index = nullptr; });
        }
        if (auto* pq = dynamic_cast<faiss::IndexIVFPQ*>(ivf)) hook_pq(pq->pq);
        if (auto* fs = dynamic_cast<faiss::IndexIVFPQFastScan*>(ivf)) hook_pq(fs->pq);
    }

    void walk(faiss::Index* idx) {
        if (idx == nullptr || idx->is_trained) return;
        if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(idx)) {
            for (faiss::VectorTransform* vt : pt->chain) {
                if (auto* opq = dynamic_cast<faiss::OPQMatrix*>(vt)) hook_opq(opq);
            }
            walk(pt->index);
        } else if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(idx)) {
            hook_ivf(ivf);
        } else if (auto* m = dynamic_cast<faiss::IndexIDMap*>(idx)) {
            walk(m->index);
        } else if (auto* r = dynamic_cast<faiss::IndexRefine*>(idx)) {
            walk(r->base_index);
            walk(r->refine_index);
        } else if (auto* h = dynamic_cast<faiss::IndexHNSW*>(idx)) {
            walk(h->storage);
        } else if (auto* pq = dynamic_cast<faiss::IndexPQ*>(idx)) {
            hook_pq(pq->pq);
        } else if (auto* fs = dynamic_cast<faiss::IndexPQFastScan*>(idx)) {
            hook_pq(fs->pq);
        }
    }
};

// Counts the k-means iterations of the training levers' direct sub-space loops (faiss_c.cpp), which
// take the place of the assignment indices TrainHooks would otherwise install: the same phases and
// totals as those hooks give FAISS's own loops.
struct LeverProgress : autofaiss::TrainingObserver {
    Status* st;
    std::atomic<int64_t> outer_started{0};
    explicit LeverProgress(Status* st) : st(st) {}

    static int64_t pq_total(const faiss::ProductQuantizer& pq) {
        int64_t slices = pq.train_type == faiss::ProductQuantizer::Train_shared ? 1 : int64_t(pq.M);
        return slices * pq.cp.niter * pq.cp.nredo;
    }
    static int64_t opq_total(const faiss::OPQMatrix& opq) {
        int64_t per_slice = opq.niter <= 0 ? 0 : int64_t(opq.niter_pq_0) + int64_t(opq.niter - 1) * opq.niter_pq;
        return per_slice * opq.M;
    }
    void pq_iteration(const faiss::ProductQuantizer& pq, double mean_distance) override {
        st->enter(PHASE_PQ_KMEANS, pq_total(pq), 0);
        st->objective.store(mean_distance, std::memory_order_relaxed);
        st->count(PHASE_PQ_KMEANS);
    }
    // Called on the training thread, outside the parallel region: enter() is not thread-safe.
    void opq_outer_start(const faiss::OPQMatrix& opq) override {
        st->enter(PHASE_OPQ, opq_total(opq), opq.niter);
    }
    void opq_iteration(const faiss::OPQMatrix&) override {
        st->count(PHASE_OPQ);
    }
    void ivf_iteration(const faiss::IndexIVF& ivf, double mean_distance) override {
        st->enter(PHASE_IVF_KMEANS, int64_t(ivf.cp.niter) * ivf.cp.nredo, 0);
        st->objective.store(mean_distance, std::memory_order_relaxed);
        st->count(PHASE_IVF_KMEANS);
    }
    void opq_outer_end(const faiss::OPQMatrix&, double pq_error) override {
        if (!std::isnan(pq_error)) st->objective.store(pq_error, std::memory_order_relaxed);
        st->outer.fetch_add(1, std::memory_order_relaxed);
    }
};

// Forwards every distance to the storage's own computer; counts the vertices HNSW inserts.
struct CountingDistanceComputer : faiss::DistanceComputer {
    std::unique_ptr<faiss::DistanceComputer> inner;
    Status* st;
    CountingDistanceComputer(faiss::DistanceComputer* inner, Status* st) : inner(inner), st(st) {}
    void set_query(const float* x) override {
        inner->set_query(x);
        st->count(PHASE_ADD);
    }
    float operator()(idx_t i) override { return (*inner)(i); }
    float symmetric_dis(idx_t i, idx_t j) override { return inner->symmetric_dis(i, j); }
};

// Stands in for an IndexHNSW's storage during one add: IndexHNSW::add calls storage->add, reads
// storage->ntotal, and hnsw_add_vertices asks storage_distance_computer(storage) (metric_type, then
// get_distance_computer). Everything else is forwarded too.
struct CountingStorage : faiss::Index {
    faiss::Index* real;
    Status* st;
    CountingStorage(faiss::Index* real, Status* st) : faiss::Index(real->d, real->metric_type), real(real), st(st) {
        ntotal = real->ntotal;
        is_trained = real->is_trained;
        metric_arg = real->metric_arg;
    }
    void add(idx_t n, const float* x) override {
        real->add(n, x);
        ntotal = real->ntotal;
    }
    void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                const faiss::SearchParameters* params) const override {
        real->search(n, x, k, distances, labels, params);
    }
    void reset() override {
        real->reset();
        ntotal = real->ntotal;
    }
    void reconstruct(idx_t key, float* recons) const override { real->reconstruct(key, recons); }
    faiss::DistanceComputer* get_distance_computer() const override {
        return new CountingDistanceComputer(real->get_distance_computer(), st);
    }
};

// The HNSW an add goes to (through pre-transforms and IDMap), or null.
faiss::IndexHNSW* top_hnsw(faiss::Index* idx) {
    if (idx == nullptr) return nullptr;
    if (auto* h = dynamic_cast<faiss::IndexHNSW*>(idx)) return h;
    if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(idx)) return top_hnsw(pt->index);
    if (auto* m = dynamic_cast<faiss::IndexIDMap*>(idx)) return top_hnsw(m->index);
    return nullptr;
}

// True when an NSG graph sits in the index (through pre-transforms, IDMap, refinement).
bool holds_nsg(const faiss::Index* idx) {
    if (idx == nullptr) return false;
    if (dynamic_cast<const faiss::IndexNSG*>(idx)) return true;
    if (auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(idx)) return holds_nsg(pt->index);
    if (auto* m = dynamic_cast<const faiss::IndexIDMap*>(idx)) return holds_nsg(m->index);
    if (auto* r = dynamic_cast<const faiss::IndexRefine*>(idx)) return holds_nsg(r->base_index);
    return false;
}

/**
 * `index->train(n, x)`, except that an IndexIVFPQ (exactly that class) whose PQ trains on a subset
 * frees `owned` (the caller's copy of x) before the PQ's training: IndexIVF::train of FAISS 1.7.3 runs
 * the coarse k-means on all n rows, then IndexIVFPQ::train_residual_o draws
 * `pq.cp.max_points_per_centroid * pq.ksub` rows (fvecs_maybe_subsample, seed pq.cp.seed), and
 * computes their residuals while x stays alive. Here the same subset is drawn first, x freed, then
 * train_residual is given the subset (which it does not subsample again): the same trained index,
 * without x under the residuals (200k x 192 floats: 154 MB less at the PQ training's peak).
 */
void train_sub_index(faiss::Index* index, idx_t n, const float* x, std::unique_ptr<float[]>& owned) {
    auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(index);
    if (ivfpq == nullptr || typeid(*ivfpq) != typeid(faiss::IndexIVFPQ) || owned.get() != x || x == nullptr) {
        index->train(n, x);
        return;
    }
    ivfpq->train_q1(n, x, ivfpq->verbose, ivfpq->metric_type);
    size_t rows = size_t(n);
    const float* subset = faiss::fvecs_maybe_subsample(size_t(ivfpq->d), &rows,
                                                       ivfpq->pq.cp.max_points_per_centroid * ivfpq->pq.ksub, x,
                                                       ivfpq->verbose, ivfpq->pq.cp.seed);
    std::unique_ptr<float[]> owned_subset(subset == x ? nullptr : const_cast<float*>(subset));
    if (owned_subset) owned.reset();  // the n rows are not read again
    ivfpq->train_residual(idx_t(rows), subset);
    ivfpq->is_trained = true;
}

/**
 * `t->apply(n, x)` in blocks of rows, each block's whole pages of x given back to the OS
 * (madvise MADV_DONTNEED: anonymous memory reads as zeros afterwards, a file mapping re-reads the
 * file) once transformed. The output's pages fill as the input's go, so the two are never resident
 * together: 200k x 128 into OPQ64_192, 102 MB of input under 154 MB of output, only 154 MB at once.
 * The caller gives up x's contents; pages it shares with memory outside x are kept.
 */
std::unique_ptr<float[]> apply_discarding_input(faiss::VectorTransform* t, idx_t n, const float* x) {
    std::unique_ptr<float[]> out(new float[size_t(n) * size_t(t->d_out)]);
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    const idx_t block = 16384;
    for (idx_t i0 = 0; i0 < n; i0 += block) {
        const idx_t rows = std::min(block, n - i0);
        const float* in = x + size_t(i0) * size_t(t->d_in);
        t->apply_noalloc(rows, in, out.get() + size_t(i0) * size_t(t->d_out));
        // whole pages inside [x, end of this block); the first may start in the previous block
        const uintptr_t begin = (reinterpret_cast<uintptr_t>(x) + page - 1) / page * page;
        const uintptr_t end = reinterpret_cast<uintptr_t>(in + size_t(rows) * size_t(t->d_in)) / page * page;
        const uintptr_t from = std::max(begin, reinterpret_cast<uintptr_t>(in) / page * page);
        if (end > from) madvise(reinterpret_cast<void*>(from), end - from, MADV_DONTNEED);  // advice only
    }
    return out;
}

/**
 * IndexPreTransform::train of FAISS 1.7.3, step for step (each untrained transform trained on the
 * previous output, applied, then the sub-index trained on the last output), except that it says
 * when it stops reading `x`: after the first transform's output exists. The sub-index training
 * that follows (IVF and PQ k-means) holds the transformed vectors, often larger than `x` (OPQ64_192
 * on 128-d input: 1.5×), so a caller that frees `x` there lowers the training's peak by the size of `x`.
 * With AUTOFAISS_TRAIN_TRANSFORMS_ONLY in `flags`, it stops after training the last untrained
 * transform (not applied) and leaves the sub-index untrained: a later call trains the sub-index
 * through the trained transforms. With AUTOFAISS_TRAIN_DISCARD_INPUT, the first transform is applied
 * in blocks, each block's input pages given back to the OS once read (apply_discarding_input).
 */
void train_pretransform_releasing_input(faiss::IndexPreTransform* pt, idx_t n, const float* x, Status* st,
                                        int flags) {
    const bool transforms_only = (flags & AUTOFAISS_TRAIN_TRANSFORMS_ONLY) != 0;
    int last_untrained = 0;
    if (!pt->index->is_trained && !transforms_only) {
        last_untrained = int(pt->chain.size());
    } else {
        last_untrained = -1;
        for (int i = int(pt->chain.size()) - 1; i >= 0; i--) {
            if (!pt->chain[i]->is_trained) {
                last_untrained = i;
                break;
            }
        }
        if (last_untrained < 0) {
            // every transform trained: FAISS's IndexPreTransform::train still marks the index
            // trained when the sub-index is; nothing to train
            if (!transforms_only) pt->is_trained = pt->index->is_trained;
            return;
        }
    }
    const float* prev_x = x;
    std::unique_ptr<float[]> owned;
    for (int i = 0; i <= last_untrained; i++) {
        if (i < int(pt->chain.size())) {
            faiss::VectorTransform* t = pt->chain[i];
            if (!t->is_trained) t->train(n, prev_x);
        } else {
            train_sub_index(pt->index, n, prev_x, owned);
        }
        if (i == last_untrained) break;
        if (i == 0 && (flags & AUTOFAISS_TRAIN_DISCARD_INPUT)) owned = apply_discarding_input(pt->chain[0], n, x);
        else owned.reset(pt->chain[i]->apply(n, prev_x));  // frees the previous output, as FAISS does
        prev_x = owned.get();
        st->input_released.store(1, std::memory_order_release);
    }
    if (!transforms_only) pt->is_trained = true;
}

}  // namespace

struct AutofaissJob {
    Status st;
    std::unique_ptr<LeverProgress> lever_progress;
    // Destroyed (detached) after `hooks`, in start()'s thread and again by the destructor if start failed.
    autofaiss::LeverAttachmentsPtr levers;
    std::unique_ptr<TrainHooks> hooks;
    std::thread thread;
    int rc = 0;
    std::exception_ptr error;
    // autofaiss_job_wait sleeps on this until st.finished is set (under the mutex, so no wake is lost).
    std::mutex finished_mutex;
    std::condition_variable finished_cv;

    AutofaissJob() = default;
    AutofaissJob(const AutofaissJob&) = delete;
    AutofaissJob& operator=(const AutofaissJob&) = delete;

    // Runs `work` (a C API call returning a status) on the job's thread with the caller's OpenMP
    // thread count; keeps the error of a failing call for join().
    void start(std::function<int()> work) {
        int threads = omp_get_max_threads();
        thread = std::thread([this, threads, work = std::move(work)] {
            omp_set_num_threads(threads);
            try {
                rc = work();
                if (rc != 0) error = faiss_last_exception;
            } catch (...) {
                rc = -1;
                error = std::current_exception();
            }
            try {
                hooks.reset();  // undo the hooks and levers before anyone can see the job finished
                levers.reset();
            } catch (...) {
            }
            // FAISS's temporaries (an OPQ training's ~4 copies of its sample, k-means buffers) are
            // freed by now, but glibc keeps the pages of its arenas mapped: 200k x 128 into
            // OPQ64_192 kept 84 MB resident after the rotation's training, under the next phase's
            // peak. Giving them back costs milliseconds.
            malloc_trim(0);
            {
                std::lock_guard<std::mutex> lock(finished_mutex);
                st.finished.store(1, std::memory_order_release);
            }
            finished_cv.notify_all();
        });
    }
};

namespace {
// faiss_c.cpp's codes (CATCH_AND_HANDLE).
int fail(const std::exception_ptr& e, int code) {
    faiss_last_exception = e;
    return code;
}
}  // namespace

#define JOB_CATCH                                                                                 \
    catch (faiss::FaissException & e) {                                                          \
        return fail(std::make_exception_ptr(e), -2);                                              \
    }                                                                                             \
    catch (std::exception & e) {                                                                  \
        return fail(std::make_exception_ptr(std::runtime_error(e.what())), -4);                   \
    }                                                                                             \
    catch (...) {                                                                                 \
        return fail(std::make_exception_ptr(std::runtime_error("Unknown error")), -1);            \
    }                                                                                             \
    return 0;

namespace {
// autofaiss_job_train and autofaiss_job_train_ex: the levers and hooks attached, the work
// started on the job's thread.
AutofaissJob* start_training_job(FaissIndex* index, idx_t n, const float* x, const autofaiss::TrainingLevers& lv,
                                 int* applied, int flags) {
    auto job = std::make_unique<AutofaissJob>();
    job->lever_progress = std::make_unique<LeverProgress>(&job->st);
    // Levers first: the hooks leave alone what the levers attached (their loops report through
    // LeverProgress) and count FAISS's own loops everywhere else.
    job->levers = autofaiss::attach_training_levers(I(index), lv, applied, job->lever_progress.get());
    job->hooks = std::make_unique<TrainHooks>(&job->st);
    job->hooks->walk(I(index));
    auto* pt = dynamic_cast<faiss::IndexPreTransform*>(I(index));
    if (pt != nullptr && n > 0 && x != nullptr) {
        Status* st = &job->st;
        job->start([pt, n, x, st, flags] {
            train_pretransform_releasing_input(pt, n, x, st, flags);
            return 0;
        });
    } else {
        job->start([index, n, x] { return faiss_Index_train(index, n, x); });
    }
    return job.release();
}
}  // namespace

EXPORT int autofaiss_job_train(FaissIndex* index, idx_t n, const float* x, int opq_niter, int opq_niter_pq,
                               int64_t opq_max_train_points, int ivf_niter, int ivf_max_points_per_centroid,
                               int pq_niter, int direct_subspace, int ivf_hnsw_assign_m, int* applied,
                               AutofaissJob** p_job) {
    try {
        if (index == nullptr || p_job == nullptr || applied == nullptr)
            throw std::invalid_argument("autofaiss_job_train: null argument");
        const auto lv = autofaiss::TrainingLevers::from_c(opq_niter, opq_niter_pq, opq_max_train_points, ivf_niter,
                                                           ivf_max_points_per_centroid, pq_niter, direct_subspace,
                                                           ivf_hnsw_assign_m);
        *p_job = start_training_job(index, n, x, lv, applied, 0);
    }
    JOB_CATCH
}

EXPORT int autofaiss_job_train_ex(FaissIndex* index, idx_t n, const float* x, int opq_niter, int opq_niter_pq,
                                  int64_t opq_max_train_points, int ivf_niter, int ivf_max_points_per_centroid,
                                  int pq_niter, int direct_subspace, int ivf_hnsw_assign_m, int flags, int* applied,
                                  AutofaissJob** p_job) {
    try {
        if (index == nullptr || p_job == nullptr || applied == nullptr)
            throw std::invalid_argument("autofaiss_job_train_ex: null argument");
        if ((flags & ~(AUTOFAISS_TRAIN_TRANSFORMS_ONLY | AUTOFAISS_TRAIN_DISCARD_INPUT)) != 0)
            throw std::invalid_argument("autofaiss_job_train_ex: unknown flags " + std::to_string(flags));
        if (flags & AUTOFAISS_TRAIN_TRANSFORMS_ONLY) {
            if (x == nullptr || n <= 0) throw std::invalid_argument("autofaiss_job_train_ex: no vectors to train the transforms on");
            if (dynamic_cast<faiss::IndexPreTransform*>(I(index)) == nullptr)
                throw std::invalid_argument("autofaiss_job_train_ex: the index has no pre-transform (OPQ, PCA, …) to train alone");
        }
        const auto lv = autofaiss::TrainingLevers::from_c(opq_niter, opq_niter_pq, opq_max_train_points, ivf_niter,
                                                           ivf_max_points_per_centroid, pq_niter, direct_subspace,
                                                           ivf_hnsw_assign_m);
        *p_job = start_training_job(index, n, x, lv, applied, flags);
    }
    JOB_CATCH
}

EXPORT int autofaiss_job_add(FaissIndex* index, idx_t n, const float* x, const idx_t* xids, idx_t chunk_rows,
                             AutofaissJob** p_job) {
    try {
        if (index == nullptr || p_job == nullptr) throw std::invalid_argument("autofaiss_job_add: null argument");
        if (n < 0) throw std::invalid_argument("autofaiss_job_add: n < 0");
        auto job = std::make_unique<AutofaissJob>();
        job->st.enter(PHASE_ADD, n, 0);
        faiss::IndexHNSW* hnsw = top_hnsw(I(index));
        idx_t chunk = chunk_rows > 0 && hnsw == nullptr && !holds_nsg(I(index)) ? chunk_rows : n;
        size_t d = size_t(I(index)->d);
        Status* st = &job->st;
        job->start([index, n, x, xids, chunk, d, st, hnsw] {
            std::unique_ptr<CountingStorage> counting;
            if (hnsw != nullptr && hnsw->storage != nullptr) {
                counting.reset(new CountingStorage(hnsw->storage, st));
                hnsw->storage = counting.get();
            }
            int rc = 0;
            for (idx_t i = 0; i < n && rc == 0; i += chunk) {
                idx_t rows = std::min(chunk, n - i);
                rc = autofaiss_add(index, rows, x + size_t(i) * d, xids ? xids + i : nullptr);
                if (rc == 0) {
                    st->done.store(i + rows, std::memory_order_relaxed);
                    st->phase_count[PHASE_ADD].store(i + rows, std::memory_order_relaxed);
                }
            }
            if (counting) hnsw->storage = counting->real;
            return rc;
        });
        *p_job = job.release();
    }
    JOB_CATCH
}

EXPORT int autofaiss_job_status(const AutofaissJob* job, double* out, size_t cap) {
    try {
        if (job == nullptr || out == nullptr) throw std::invalid_argument("autofaiss_job_status: null argument");
        if (cap < AUTOFAISS_JOB_STATUS_MIN_LEN) throw std::invalid_argument("autofaiss_job_status: cap < AUTOFAISS_JOB_STATUS_MIN_LEN");
        const Status& s = job->st;
        // finished first (acquire): a finished job's counts are final when read after it.
        out[0] = s.finished.load(std::memory_order_acquire);
        out[1] = s.phase.load(std::memory_order_acquire);
        out[2] = double(s.done.load(std::memory_order_relaxed));
        out[3] = double(s.total.load(std::memory_order_relaxed));
        out[4] = s.objective.load(std::memory_order_relaxed);
        out[5] = double(s.outer.load(std::memory_order_relaxed));
        out[6] = double(s.outer_total.load(std::memory_order_relaxed));
        for (int p = PHASE_TRAIN; p <= PHASE_ADD; p++) out[6 + p] = double(s.phase_count[p].load(std::memory_order_relaxed));
        if (cap >= AUTOFAISS_JOB_STATUS_LEN) out[12] = s.input_released.load(std::memory_order_acquire);
    }
    JOB_CATCH
}

EXPORT int autofaiss_job_wait(AutofaissJob* job, int64_t timeout_ms, int* finished) {
    try {
        if (job == nullptr || finished == nullptr) throw std::invalid_argument("autofaiss_job_wait: null argument");
        if (timeout_ms < 0) throw std::invalid_argument("autofaiss_job_wait: timeout_ms < 0");
        std::unique_lock<std::mutex> lock(job->finished_mutex);
        bool done = job->finished_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                              [job] { return job->st.finished.load(std::memory_order_acquire) == 1; });
        *finished = done ? 1 : 0;
    }
    JOB_CATCH
}

EXPORT int autofaiss_job_join(AutofaissJob* job) {
    if (job == nullptr) return 0;
    std::unique_ptr<AutofaissJob> owned(job);
    if (owned->thread.joinable()) owned->thread.join();
    if (owned->rc != 0) faiss_last_exception = owned->error;
    return owned->rc;
}
