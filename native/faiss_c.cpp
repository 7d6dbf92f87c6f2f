// Our build of the FAISS C API subset autofaiss uses, compiled against Debian's static libfaiss.a.
//
// Every exported faiss_* function has the exact name and signature declared in
// /usr/include/faiss/c_api/*.h (this file includes those headers, so the compiler checks it), and
// behaves like upstream's c_api: int status, exceptions caught at the boundary, message kept in a
// thread-local exception and returned by faiss_get_last_error(). Our additions are autofaiss_*
// (autofaiss_ext.h). Nothing here may let a C++ exception cross into the FFI caller.

#include <faiss/AutoTune.h>
#include <faiss/IVFlib.h>
#include <faiss/Index.h>
#include <faiss/IndexFlatCodes.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFPQFastScan.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexNSG.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPQFastScan.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/VectorTransform.h>
#include <faiss/clone_index.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/invlists/InvertedLists.h>
#include <faiss/invlists/OnDiskInvertedLists.h>
#include <faiss/utils/utils.h>
#include <omp.h>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/clone_index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include <cinttypes>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include "autofaiss_ext.h"

#define EXPORT extern "C" __attribute__((visibility("default")))

thread_local std::exception_ptr faiss_last_exception;

// Same codes as upstream's CATCH_AND_HANDLE (macros_impl.h), without its debug-build stderr echo.
#define CATCH_AND_HANDLE                                                                   \
    catch (faiss::FaissException & e) {                                                    \
        faiss_last_exception = std::make_exception_ptr(e);                                 \
        return -2;                                                                         \
    }                                                                                      \
    catch (std::exception & e) {                                                           \
        faiss_last_exception = std::make_exception_ptr(std::runtime_error(e.what()));      \
        return -4;                                                                         \
    }                                                                                      \
    catch (...) {                                                                          \
        faiss_last_exception = std::make_exception_ptr(std::runtime_error("Unknown error")); \
        return -1;                                                                         \
    }                                                                                      \
    return 0;

namespace {

faiss::Index* I(FaissIndex* p) { return reinterpret_cast<faiss::Index*>(p); }
const faiss::Index* I(const FaissIndex* p) { return reinterpret_cast<const faiss::Index*>(p); }
faiss::IndexIVF* IVF(FaissIndexIVF* p) { return reinterpret_cast<faiss::IndexIVF*>(p); }
const faiss::IndexIVF* IVF(const FaissIndexIVF* p) { return reinterpret_cast<const faiss::IndexIVF*>(p); }

void require(bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(what);
}

// The C header's FAISS_IO_FLAG_MMAP (1) is not the C++ IO_FLAG_MMAP (0x646f0008): upstream passes
// the C value through unchanged, which silently disables mmap. Map bit 0 to the C++ flag and keep
// every other bit, so callers may also pass the C++ value directly (bit 0 is unused in C++).
int cxx_io_flags(int flags) {
    int out = flags & ~FAISS_IO_FLAG_MMAP;
    if (flags & FAISS_IO_FLAG_MMAP) out |= faiss::IO_FLAG_MMAP;
    return out;
}

// Counts bytes instead of storing them: the serialized size without allocating it.
struct CountingIOWriter : faiss::IOWriter {
    size_t total = 0;
    size_t operator()(const void*, size_t size, size_t nitems) override {
        total += size * nitems;
        return nitems;
    }
};

// Writes into a caller-owned buffer and fails instead of overflowing it.
struct SpanIOWriter : faiss::IOWriter {
    uint8_t* buf;
    size_t cap;
    size_t pos = 0;
    SpanIOWriter(uint8_t* b, size_t c) : buf(b), cap(c) {}
    size_t operator()(const void* ptr, size_t size, size_t nitems) override {
        size_t bytes = size * nitems;
        FAISS_THROW_IF_NOT_FMT(pos + bytes <= cap, "buffer too small: need more than %zu bytes", cap);
        if (bytes) std::memcpy(buf + pos, ptr, bytes);
        pos += bytes;
        return nitems;
    }
};

std::string class_name(const void* obj, const std::type_info& ti) {
    (void)obj;
    std::string n = ti.name();
    // Itanium mangling of faiss::X is N5faiss<len>XE
    auto p = n.find("5faiss");
    if (p != std::string::npos) {
        size_t i = p + 6, len = 0;
        while (i < n.size() && isdigit((unsigned char)n[i])) len = len * 10 + (n[i++] - '0');
        return n.substr(i, len);
    }
    return n;
}

void describe(const faiss::Index* idx, std::string& out) {
    out += class_name(idx, typeid(*idx));
    out += "(metric=" + std::to_string((int)idx->metric_type);
    if (auto ivf = dynamic_cast<const faiss::IndexIVF*>(idx)) {
        out += ",nlist=" + std::to_string(ivf->nlist) + ")";
        out += ">quantizer:";
        describe(ivf->quantizer, out);
        return;
    }
    out += ")";
    if (auto pt = dynamic_cast<const faiss::IndexPreTransform*>(idx)) {
        out += "[";
        for (size_t i = 0; i < pt->chain.size(); i++) {
            if (i) out += ",";
            out += class_name(pt->chain[i], typeid(*pt->chain[i]));
        }
        out += "]>";
        describe(pt->index, out);
    } else if (auto h = dynamic_cast<const faiss::IndexHNSW*>(idx)) {
        if (h->storage) {
            out += ">storage:";
            describe(h->storage, out);
        }
    }
}

int copy_string(const std::string& s, char* buf, size_t cap) {
    require(buf != nullptr && cap > 0, "output buffer is empty");
    size_t n = s.size() < cap - 1 ? s.size() : cap - 1;
    std::memcpy(buf, s.data(), n);
    buf[n] = 0;
    return 0;
}

// An exception that leaves an OpenMP parallel region calls std::terminate: the process aborts
// before the C API's try/catch can see it. The guards below keep FAISS 1.7.3 calls that would
// throw inside such a region from starting, or run the loop themselves and carry the exception
// out of the region.

// FAISS 1.7.3's default Index::reconstruct_n calls reconstruct() inside `omp parallel for` (e.g.
// IndexIDMap, whose reconstruct is "not implemented", aborts the process). Classes whose own
// reconstruct_n runs no such loop are called directly; every other index is reconstructed here,
// one key per iteration, with the first exception kept and rethrown after the region.
void guarded_reconstruct_n(const faiss::Index* idx, faiss::Index::idx_t i0, faiss::Index::idx_t ni, float* out) {
    FAISS_THROW_IF_NOT_FMT(i0 >= 0 && ni >= 0 && i0 + ni <= idx->ntotal,
                           "reconstruct_n: range [%" PRId64 ", %" PRId64 ") is outside [0, %" PRId64 ")",
                           int64_t(i0), int64_t(i0 + ni), int64_t(idx->ntotal));
    if (auto pt = dynamic_cast<const faiss::IndexPreTransform*>(idx)) {
        // IndexPreTransform::reconstruct_n calls its sub-index's reconstruct_n: guard that one.
        if (pt->chain.empty()) return guarded_reconstruct_n(pt->index, i0, ni, out);
        std::unique_ptr<float[]> inner(new float[size_t(ni) * pt->index->d]);
        guarded_reconstruct_n(pt->index, i0, ni, inner.get());
        pt->reverse_chain(ni, inner.get(), out);
        return;
    }
    // IndexIVF::reconstruct_n walks the inverted lists serially (no direct map needed);
    // IndexFlatCodes::reconstruct_n decodes its code array (sa_decode) without throwing per key.
    if (dynamic_cast<const faiss::IndexIVF*>(idx) || dynamic_cast<const faiss::IndexFlatCodes*>(idx)) {
        idx->reconstruct_n(i0, ni, out);
        return;
    }
    std::exception_ptr first;
#pragma omp parallel for if (ni > 1000)
    for (faiss::Index::idx_t i = 0; i < ni; i++) {
        try {
            idx->reconstruct(i0 + i, out + size_t(i) * idx->d);
        } catch (...) {
#pragma omp critical(autofaiss_reconstruct_n)
            if (!first) first = std::current_exception();
        }
    }
    if (first) std::rethrow_exception(first);
}

// Inverted lists that cannot change: a memory-mapped read (OnDiskInvertedLists opened read-only)
// or a ReadOnlyInvertedLists. IndexIVF::add_core and InvertedLists::merge_from modify lists inside
// `omp parallel`, where these classes throw ("read-only"), which aborts the process.
const char* readonly_lists_class(const faiss::Index* idx) {
    const faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(idx);
    if (!ivf || !ivf->invlists) return nullptr;
    if (auto od = dynamic_cast<const faiss::OnDiskInvertedLists*>(ivf->invlists)) {
        return od->read_only ? "OnDiskInvertedLists" : nullptr;
    }
    if (dynamic_cast<const faiss::ReadOnlyInvertedLists*>(ivf->invlists)) return "ReadOnlyInvertedLists";
    return nullptr;
}

void require_mutable_lists(const faiss::Index* idx, const char* what) {
    if (const char* cls = readonly_lists_class(idx)) {
        FAISS_THROW_FMT("%s: the index's inverted lists are read-only (%s, e.g. a memory-mapped read); "
                        "read the index without mmap to modify it", what, cls);
    }
}

} // namespace

// ---- error_c.h ----

EXPORT const char* faiss_get_last_error() {
    if (faiss_last_exception) {
        try {
            std::rethrow_exception(faiss_last_exception);
        } catch (std::exception& e) {
            return e.what();
        } catch (...) {
            return "Unknown error";
        }
    }
    return nullptr;
}

// ---- Index_c.h ----

EXPORT void faiss_Index_free(FaissIndex* obj) { delete I(obj); }
EXPORT int faiss_Index_d(const FaissIndex* obj) { return I(obj)->d; }
EXPORT int faiss_Index_is_trained(const FaissIndex* obj) { return I(obj)->is_trained; }
EXPORT idx_t faiss_Index_ntotal(const FaissIndex* obj) { return I(obj)->ntotal; }
EXPORT FaissMetricType faiss_Index_metric_type(const FaissIndex* obj) {
    return static_cast<FaissMetricType>(I(obj)->metric_type);
}
EXPORT int faiss_Index_verbose(const FaissIndex* obj) { return I(obj)->verbose; }
EXPORT void faiss_Index_set_verbose(FaissIndex* obj, int v) { I(obj)->verbose = v; }

EXPORT int faiss_Index_train(FaissIndex* index, idx_t n, const float* x) {
    try {
        I(index)->train(n, x);
    }
    CATCH_AND_HANDLE
}

EXPORT int faiss_Index_add(FaissIndex* index, idx_t n, const float* x) {
    try {
        require_mutable_lists(I(index), "add");
        I(index)->add(n, x);
    }
    CATCH_AND_HANDLE
}

EXPORT int faiss_Index_add_with_ids(FaissIndex* index, idx_t n, const float* x, const idx_t* xids) {
    try {
        require_mutable_lists(I(index), "add_with_ids");
        I(index)->add_with_ids(n, x, xids);
    }
    CATCH_AND_HANDLE
}

EXPORT int faiss_Index_search(const FaissIndex* index, idx_t n, const float* x, idx_t k,
                              float* distances, idx_t* labels) {
    try {
        I(index)->search(n, x, k, distances, labels);
    }
    CATCH_AND_HANDLE
}

EXPORT int faiss_Index_reset(FaissIndex* index) {
    try {
        require_mutable_lists(I(index), "reset");
        I(index)->reset();
    }
    CATCH_AND_HANDLE
}

EXPORT int faiss_Index_reconstruct(const FaissIndex* index, idx_t key, float* recons) {
    try {
        I(index)->reconstruct(key, recons);
    }
    CATCH_AND_HANDLE
}

EXPORT int faiss_Index_reconstruct_n(const FaissIndex* index, idx_t i0, idx_t ni, float* recons) {
    try {
        guarded_reconstruct_n(I(index), i0, ni, recons);
    }
    CATCH_AND_HANDLE
}

EXPORT int faiss_Index_sa_code_size(const FaissIndex* index, size_t* size) {
    try {
        *size = I(index)->sa_code_size();
    }
    CATCH_AND_HANDLE
}

EXPORT int faiss_Index_sa_encode(const FaissIndex* index, idx_t n, const float* x, uint8_t* bytes) {
    try {
        I(index)->sa_encode(n, x, bytes);
    }
    CATCH_AND_HANDLE
}

EXPORT int faiss_Index_sa_decode(const FaissIndex* index, idx_t n, const uint8_t* bytes, float* x) {
    try {
        I(index)->sa_decode(n, bytes, x);
    }
    CATCH_AND_HANDLE
}

// ---- index_factory_c.h, clone_index_c.h, index_io_c.h ----

EXPORT int faiss_index_factory(FaissIndex** p_index, int d, const char* description,
                               FaissMetricType metric) {
    try {
        *p_index = reinterpret_cast<FaissIndex*>(
                faiss::index_factory(d, description, static_cast<faiss::MetricType>(metric)));
    }
    CATCH_AND_HANDLE
}

EXPORT int faiss_clone_index(const FaissIndex* idx, FaissIndex** p_out) {
    try {
        *p_out = reinterpret_cast<FaissIndex*>(faiss::clone_index(I(idx)));
    }
    CATCH_AND_HANDLE
}

EXPORT int faiss_write_index_fname(const FaissIndex* idx, const char* fname) {
    try {
        faiss::write_index(I(idx), fname);
    }
    CATCH_AND_HANDLE
}

EXPORT int faiss_read_index_fname(const char* fname, int io_flags, FaissIndex** p_out) {
    try {
        *p_out = reinterpret_cast<FaissIndex*>(faiss::read_index(fname, cxx_io_flags(io_flags)));
    }
    CATCH_AND_HANDLE
}

// ---- AutoTune_c.h ----

EXPORT void faiss_ParameterSpace_free(FaissParameterSpace* obj) {
    delete reinterpret_cast<faiss::ParameterSpace*>(obj);
}

EXPORT int faiss_ParameterSpace_new(FaissParameterSpace** space) {
    try {
        *space = reinterpret_cast<FaissParameterSpace*>(new faiss::ParameterSpace());
    }
    CATCH_AND_HANDLE
}

EXPORT int faiss_ParameterSpace_set_index_parameters(const FaissParameterSpace* space,
                                                     FaissIndex* index, const char* params) {
    try {
        reinterpret_cast<const faiss::ParameterSpace*>(space)->set_index_parameters(I(index), params);
    }
    CATCH_AND_HANDLE
}

EXPORT int faiss_ParameterSpace_set_index_parameter(const FaissParameterSpace* space,
                                                    FaissIndex* index, const char* name,
                                                    double value) {
    try {
        reinterpret_cast<const faiss::ParameterSpace*>(space)->set_index_parameter(I(index), name,
                                                                                    value);
    }
    CATCH_AND_HANDLE
}

// ---- IndexIVF_c.h ----

EXPORT FaissIndexIVF* faiss_IndexIVF_cast(FaissIndex* index) {
    return reinterpret_cast<FaissIndexIVF*>(dynamic_cast<faiss::IndexIVF*>(I(index)));
}
EXPORT void faiss_IndexIVF_free(FaissIndexIVF* obj) { delete IVF(obj); }
EXPORT size_t faiss_IndexIVF_nlist(const FaissIndexIVF* obj) { return IVF(obj)->nlist; }
EXPORT size_t faiss_IndexIVF_nprobe(const FaissIndexIVF* obj) { return IVF(obj)->nprobe; }
EXPORT void faiss_IndexIVF_set_nprobe(FaissIndexIVF* obj, size_t v) { IVF(obj)->nprobe = v; }

EXPORT int faiss_IndexIVF_merge_from(FaissIndexIVF* index, FaissIndexIVF* other, idx_t add_id) {
    try {
        // merge_from empties `other` list by list inside `omp parallel`: both sides must be mutable.
        require_mutable_lists(IVF(index), "merge_from (destination)");
        require_mutable_lists(IVF(other), "merge_from (source)");
        FAISS_THROW_IF_NOT_MSG(index != other, "merge_from: an index cannot be merged into itself");
        IVF(index)->merge_from(*IVF(other), add_id);
    }
    CATCH_AND_HANDLE
}

EXPORT int faiss_IndexIVF_make_direct_map(FaissIndexIVF* index, int new_maintain_direct_map) {
    try {
        IVF(index)->make_direct_map(static_cast<bool>(new_maintain_direct_map));
    }
    CATCH_AND_HANDLE
}

EXPORT size_t faiss_IndexIVF_get_list_size(const FaissIndexIVF* index, size_t list_no) {
    return IVF(index)->get_list_size(list_no);
}

// ---- autofaiss_ext.h ----

EXPORT int autofaiss_build_info(char* buf, size_t cap, int* abi_version) {
    try {
        if (abi_version) *abi_version = AUTOFAISS_EXT_ABI;
        std::string s = std::to_string(FAISS_VERSION_MAJOR) + "." + std::to_string(FAISS_VERSION_MINOR) +
                        "." + std::to_string(FAISS_VERSION_PATCH) + "|" + faiss::get_compile_options();
        copy_string(s, buf, cap);
    }
    CATCH_AND_HANDLE
}

extern "C" void openblas_set_num_threads(int);

// BLAS threading depends on the OpenBLAS variant linked in (tasks/build_native.ts --blas):
// - OpenMP OpenBLAS shares FAISS's OpenMP pool: BLAS called inside FAISS's parallel regions runs
//   single-threaded (no nesting), BLAS called from the main thread uses all threads. Nothing to
//   do; note that its openblas_set_num_threads() would call omp_set_num_threads() and undo ours.
// - pthread OpenBLAS has its own pool that fights OpenMP's: pin it to one thread.
EXPORT int autofaiss_set_num_threads(int n) {
    try {
        omp_set_num_threads(n > 0 ? n : omp_get_num_procs());
#ifndef AUTOFAISS_BLAS_OPENMP
        openblas_set_num_threads(1);
#endif
    }
    CATCH_AND_HANDLE
}

EXPORT int autofaiss_get_num_threads(int* n) {
    try {
        *n = omp_get_max_threads();
    }
    CATCH_AND_HANDLE
}

EXPORT int autofaiss_serialized_size(const FaissIndex* index, size_t* size) {
    try {
        CountingIOWriter w;
        faiss::write_index(I(index), &w);
        *size = w.total;
    }
    CATCH_AND_HANDLE
}

EXPORT int autofaiss_write_index_buffer(const FaissIndex* index, uint8_t* buf, size_t cap,
                                        size_t* written) {
    try {
        SpanIOWriter w(buf, cap);
        faiss::write_index(I(index), &w);
        *written = w.pos;
    }
    CATCH_AND_HANDLE
}

EXPORT int autofaiss_read_index_buffer(const uint8_t* buf, size_t size, int io_flags,
                                       FaissIndex** p_out) {
    try {
        require(!(io_flags & FAISS_IO_FLAG_MMAP), "an in-memory buffer cannot be memory-mapped");
        faiss::VectorIOReader r;
        r.data.assign(buf, buf + size);
        *p_out = reinterpret_cast<FaissIndex*>(faiss::read_index(&r, io_flags));
    }
    CATCH_AND_HANDLE
}

EXPORT int autofaiss_extract_index_ivf(FaissIndex* index, FaissIndexIVF** p_ivf) {
    try {
        *p_ivf = reinterpret_cast<FaissIndexIVF*>(faiss::ivflib::extract_index_ivf(I(index)));
    }
    CATCH_AND_HANDLE
}

EXPORT int autofaiss_merge_into(FaissIndex* dst, FaissIndex* src) {
    try {
        FAISS_THROW_IF_NOT_MSG(faiss::ivflib::try_extract_index_ivf(I(dst)) && faiss::ivflib::try_extract_index_ivf(I(src)),
                               "merge_into: both indices need an IVF layer (only inverted lists are merged)");
        // InvertedLists::merge_from changes both sides inside `omp parallel`: refuse read-only lists first.
        require_mutable_lists(I(dst), "merge_into (destination)");
        require_mutable_lists(I(src), "merge_into (source)");
        FAISS_THROW_IF_NOT_MSG(dst != src, "merge_into: an index cannot be merged into itself");
        // Keeps src's ids; sets ntotal on both wrappers (IndexPreTransform), not only the IVF layers.
        faiss::ivflib::merge_into(I(dst), I(src), false);
    }
    CATCH_AND_HANDLE
}

EXPORT int autofaiss_copy_transforms(FaissIndex* dst, const FaissIndex* src) {
    try {
        auto* to = dynamic_cast<faiss::IndexPreTransform*>(I(dst));
        auto* from = dynamic_cast<const faiss::IndexPreTransform*>(I(src));
        FAISS_THROW_IF_NOT_MSG(to && from, "copy_transforms: both indices need a pre-transform (OPQ, PCA, RR, …)");
        FAISS_THROW_IF_NOT_MSG(static_cast<const void*>(to) != static_cast<const void*>(from),
                               "copy_transforms: an index cannot copy its own transforms");
        FAISS_THROW_IF_NOT_MSG(to->own_fields, "copy_transforms: the destination does not own its transforms");
        FAISS_THROW_IF_NOT_FMT(to->ntotal == 0, "copy_transforms: the destination already holds %" PRId64 " vectors",
                               int64_t(to->ntotal));
        FAISS_THROW_IF_NOT_FMT(to->chain.size() == from->chain.size(),
                               "copy_transforms: the source has %zu transforms, the destination %zu", from->chain.size(),
                               to->chain.size());
        // class, dimensions and, for an OPQ, the sub-spaces its rotation was trained for
        auto shape = [](const faiss::VectorTransform* t) {
            std::string out = class_name(t, typeid(*t)) + " " + std::to_string(t->d_in) + " -> " + std::to_string(t->d_out);
            if (auto* opq = dynamic_cast<const faiss::OPQMatrix*>(t)) out += " M=" + std::to_string(opq->M);
            return out;
        };
        for (size_t i = 0; i < to->chain.size(); i++) {
            const faiss::VectorTransform* a = from->chain[i];
            const faiss::VectorTransform* b = to->chain[i];
            FAISS_THROW_IF_NOT_FMT(shape(a) == shape(b), "copy_transforms: transform %zu differs (source %s, destination %s)", i,
                                   shape(a).c_str(), shape(b).c_str());
            FAISS_THROW_IF_NOT_FMT(a->is_trained, "copy_transforms: transform %zu of the source is not trained", i);
        }
        // every clone made before the destination changes, so a failure leaves it as it was
        std::vector<std::unique_ptr<faiss::VectorTransform>> clones;
        for (const faiss::VectorTransform* t : from->chain) clones.emplace_back(faiss::Cloner().clone_VectorTransform(t));
        for (size_t i = 0; i < to->chain.size(); i++) {
            delete to->chain[i];
            to->chain[i] = clones[i].release();
        }
        // IndexPreTransform is trained when its chain and its sub-index are
        to->is_trained = to->index->is_trained;
    }
    CATCH_AND_HANDLE
}

EXPORT int autofaiss_describe_index(const FaissIndex* index, char* buf, size_t cap) {
    try {
        std::string s;
        describe(I(index), s);
        copy_string(s, buf, cap);
    }
    CATCH_AND_HANDLE
}

EXPORT int autofaiss_invlists_class(const FaissIndex* index, char* buf, size_t cap) {
    try {
        const faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(I(index));
        FAISS_THROW_IF_NOT_MSG(ivf, "the index has no IVF layer, hence no inverted lists");
        FAISS_THROW_IF_NOT_MSG(ivf->invlists, "the IVF index has no inverted lists");
        const faiss::InvertedLists* il = ivf->invlists;
        copy_string(class_name(il, typeid(*il)), buf, cap);
    }
    CATCH_AND_HANDLE
}

/** Calls `visit` on every index a factory key can nest inside `root`: it descends pre-transforms,
 *  both stages of an IndexRefine, IDMap wrappers and the storage of HNSW / NSG graphs; and
 *  `visit_transform` on each vector transform of a pre-transform's chain (OPQ, PCA, RR…). */
template <typename Visit, typename VisitTransform>
static void for_each_nested_index(faiss::Index* root, Visit visit, VisitTransform visit_transform) {
    std::vector<faiss::Index*> todo = {root};
    while (!todo.empty()) {
        faiss::Index* idx = todo.back();
        todo.pop_back();
        if (idx == nullptr) continue;
        if (auto pt = dynamic_cast<faiss::IndexPreTransform*>(idx)) {
            for (faiss::VectorTransform* vt : pt->chain) visit_transform(vt);
            todo.push_back(pt->index);
        } else if (auto rf = dynamic_cast<faiss::IndexRefine*>(idx)) {
            todo.push_back(rf->base_index);
            todo.push_back(rf->refine_index);
        } else if (auto idmap = dynamic_cast<faiss::IndexIDMap*>(idx)) {
            todo.push_back(idmap->index);
        } else if (auto hnsw = dynamic_cast<faiss::IndexHNSW*>(idx)) {
            todo.push_back(hnsw->storage);
        } else if (auto nsg = dynamic_cast<faiss::IndexNSG*>(idx)) {
            todo.push_back(nsg->storage);
        } else {
            visit(idx);
        }
    }
}

template <typename Visit>
static void for_each_nested_index(faiss::Index* root, Visit visit) {
    for_each_nested_index(root, visit, [](faiss::VectorTransform*) {});
}

EXPORT int autofaiss_set_polysemous_training(FaissIndex* index, int enabled, int* applied) {
    try {
        *applied = 0;
        // Every PQ the factory can put in a key, wherever it is nested.
        for_each_nested_index(I(index), [&](faiss::Index* idx) {
            if (auto ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(idx)) {
                ivfpq->do_polysemous_training = enabled != 0;
                *applied = 1;
            } else if (auto pq = dynamic_cast<faiss::IndexPQ*>(idx)) {
                pq->do_polysemous_training = enabled != 0;
                *applied = 1;
            }
        });
    }
    CATCH_AND_HANDLE
}

EXPORT int autofaiss_fast_scan_use_heap(FaissIndex* index, int* applied) {
    try {
        *applied = 0;
        // Every fast-scan index a factory key can produce (PQ<m>x4fs, IVF<c>,PQ<m>x4fs), wherever it is nested.
        for_each_nested_index(I(index), [&](faiss::Index* idx) {
            if (auto fs = dynamic_cast<faiss::IndexFastScan*>(idx)) {
                // IndexFastScan::search_dispatch_implem: implem 0 picks 12 (bbs = 32) or 14, plus
                // one (the reservoir) when k > 20; 12 and 14 keep the top k in a heap.
                if (fs->implem == 0) fs->implem = fs->bbs == 32 ? 12 : 14;
                *applied = 1;
            } else if (auto ivffs = dynamic_cast<faiss::IndexIVFFastScan*>(idx)) {
                // IndexIVFFastScan::search_dispatch_implem: implem 0 picks 12 (bbs = 32) or 10,
                // plus one (the reservoir) when k > 20; 12 and 10 keep the top k in a heap.
                if (ivffs->implem == 0) ivffs->implem = ivffs->bbs == 32 ? 12 : 10;
                *applied = 1;
            }
        });
    }
    CATCH_AND_HANDLE
}

EXPORT int autofaiss_first_nonfinite(const float* x, size_t n, int64_t* index) {
    // A float32 is NaN or +-Inf exactly when its 8 exponent bits are all ones; adding one exponent
    // ulp to the masked exponent then carries into the sign bit. GCC vector extensions keep this
    // portable (SSE2 on x86-64, NEON on arm64) without -march flags; memcpy loads allow any
    // alignment. Blocks of 64 values: one branch per 256 bytes, then an exact scalar locate.
    typedef uint32_t u32x4 __attribute__((vector_size(16)));
    const unsigned char* bytes = reinterpret_cast<const unsigned char*>(x);
    const u32x4 expMask = {0x7f800000u, 0x7f800000u, 0x7f800000u, 0x7f800000u};
    const u32x4 ulp = {0x00800000u, 0x00800000u, 0x00800000u, 0x00800000u};
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        u32x4 acc = {0, 0, 0, 0};
        for (size_t j = 0; j < 64; j += 4) {
            u32x4 v;
            std::memcpy(&v, bytes + (i + j) * 4, 16);
            acc |= (v & expMask) + ulp;
        }
        if ((acc[0] | acc[1] | acc[2] | acc[3]) & 0x80000000u) break;
    }
    for (; i < n; i++) {
        uint32_t u;
        std::memcpy(&u, bytes + i * 4, 4);
        if ((u & 0x7f800000u) == 0x7f800000u) {
            *index = static_cast<int64_t>(i);
            return 0;
        }
    }
    *index = -1;
    return 0;
}

// Debian's static OpenBLAS embeds reference LAPACK compiled by gfortran, which concatenates
// strings through libgfortran. libgfortran.a is not PIC, so instead of shipping libgfortran.so we
// provide this one routine (semantics of libgfortran's intrinsics/string_intrinsics_inc.c:
// copy s1 then s2 into dest, truncate to destlen, pad with blanks).
extern "C" __attribute__((visibility("hidden"))) void _gfortran_concat_string(
        size_t destlen, char* dest, size_t len1, const char* s1, size_t len2, const char* s2) {
    if (len1 >= destlen) {
        std::memcpy(dest, s1, destlen);
        return;
    }
    std::memcpy(dest, s1, len1);
    dest += len1;
    destlen -= len1;
    if (len2 >= destlen) {
        std::memcpy(dest, s2, destlen);
        return;
    }
    std::memcpy(dest, s2, len2);
    std::memset(dest + len2, ' ', destlen - len2);
}

// ---- N-part indices (issue 13) ----

EXPORT int autofaiss_ivf_set_direct_map(FaissIndexIVF* ivf, int type) {
    try {
        require(type == faiss::DirectMap::NoMap || type == faiss::DirectMap::Array ||
                        type == faiss::DirectMap::Hashtable,
                "direct map type must be 0 (none), 1 (array) or 2 (hash table)");
        IVF(ivf)->set_direct_map_type(static_cast<faiss::DirectMap::Type>(type));
    }
    CATCH_AND_HANDLE
}

// ---- Training levers (issue 12) ----

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/impl/ProductQuantizer.h>

#include <algorithm>
#include <cmath>

#include "levers.h"
#include <limits>
#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace {

using lidx_t = faiss::Index::idx_t;

/** Nearest centroid of each of n points among nc centroids of dimension D (1..8), by a direct loop:
 *  argmin_j ||c_j||^2 - 2 x.c_j over centroids laid out 8 at a time, dimension-major, so each
 *  dimension costs one multiply-add for 8 centroids. FAISS's IndexFlatL2 computes the same
 *  expression through sgemm, whose inner dimension D this small leaves BLAS mostly idle and writes
 *  an n x nc distance matrix it then scans. Ties keep the smaller centroid number, as FAISS's heap. */
template <int D>
void nearest_centroid(lidx_t n, const float* x, size_t stride, lidx_t nc, const float* c, float* dis, lidx_t* lab) {
    const lidx_t blocks = (nc + 7) / 8;
    // Padding centroids get +inf as squared norm and are never chosen.
    std::vector<float> ct(blocks * 8 * D, 0.0f), norms(blocks * 8, std::numeric_limits<float>::infinity());
    for (lidx_t j = 0; j < nc; j++) {
        float s = 0;
        for (int t = 0; t < D; t++) {
            ct[((j / 8) * D + t) * 8 + j % 8] = c[j * D + t];
            s += c[j * D + t] * c[j * D + t];
        }
        norms[j] = s;
    }
#pragma omp parallel for if (n > 1024)
    for (lidx_t i = 0; i < n; i++) {
        const float* xi = x + i * stride;
        float m2x[D];
        float xnorm = 0;
        for (int t = 0; t < D; t++) {
            m2x[t] = -2.0f * xi[t];
            xnorm += xi[t] * xi[t];
        }
        float best;
        lidx_t bestj;
#ifdef __AVX2__
        __m256 vbest = _mm256_set1_ps(std::numeric_limits<float>::infinity());
        __m256i vidx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        __m256i cur = vidx;
        const __m256i step = _mm256_set1_epi32(8);
        __m256 mx[D];
        for (int t = 0; t < D; t++) mx[t] = _mm256_set1_ps(m2x[t]);
        for (lidx_t b = 0; b < blocks; b++) {
            __m256 acc = _mm256_loadu_ps(norms.data() + b * 8);
            const float* cb = ct.data() + b * 8 * D;
            for (int t = 0; t < D; t++) acc = _mm256_fmadd_ps(mx[t], _mm256_loadu_ps(cb + t * 8), acc);
            __m256 lt = _mm256_cmp_ps(acc, vbest, _CMP_LT_OQ);
            vbest = _mm256_blendv_ps(vbest, acc, lt);
            vidx = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(vidx), _mm256_castsi256_ps(cur), lt));
            cur = _mm256_add_epi32(cur, step);
        }
        alignas(32) float lv[8];
        alignas(32) int32_t li[8];
        _mm256_store_ps(lv, vbest);
        _mm256_store_si256(reinterpret_cast<__m256i*>(li), vidx);
        best = lv[0];
        bestj = li[0];
        for (int l = 1; l < 8; l++) {
            if (lv[l] < best || (lv[l] == best && li[l] < bestj)) {
                best = lv[l];
                bestj = li[l];
            }
        }
#else
        best = std::numeric_limits<float>::infinity();
        bestj = 0;
        for (lidx_t b = 0; b < blocks; b++) {
            float acc[8];
            const float* cb = ct.data() + b * 8 * D;
            for (int l = 0; l < 8; l++) acc[l] = norms[b * 8 + l];
            for (int t = 0; t < D; t++)
                for (int l = 0; l < 8; l++) acc[l] += m2x[t] * cb[t * 8 + l];
            for (int l = 0; l < 8; l++) {
                if (acc[l] < best) {
                    best = acc[l];
                    bestj = b * 8 + l;
                }
            }
        }
#endif
        // As FAISS's sgemm path: ||x||^2 + ||c||^2 - 2 x.c, clamped at 0 against rounding.
        dis[i] = std::max(0.0f, xnorm + best);
        lab[i] = bestj;
    }
}

/** nearest_centroid for a run-time dimension d in 1..8; point i starts at x + i * stride. */
void nearest_centroid_d(int d, lidx_t n, const float* x, size_t stride, lidx_t nc, const float* c, float* dis, lidx_t* lab) {
    switch (d) {
        case 1: nearest_centroid<1>(n, x, stride, nc, c, dis, lab); break;
        case 2: nearest_centroid<2>(n, x, stride, nc, c, dis, lab); break;
        case 3: nearest_centroid<3>(n, x, stride, nc, c, dis, lab); break;
        case 4: nearest_centroid<4>(n, x, stride, nc, c, dis, lab); break;
        case 5: nearest_centroid<5>(n, x, stride, nc, c, dis, lab); break;
        case 6: nearest_centroid<6>(n, x, stride, nc, c, dis, lab); break;
        case 7: nearest_centroid<7>(n, x, stride, nc, c, dis, lab); break;
        case 8: nearest_centroid<8>(n, x, stride, nc, c, dis, lab); break;
        default: throw std::invalid_argument("nearest_centroid: dimension must be 1..8");
    }
}

/** The assignment index of a sub-quantizer k-means (ProductQuantizer::assign_index): an IndexFlatL2
 *  whose 1-nearest-neighbour search of dimension <= 8 takes the direct loop above; any other search
 *  is IndexFlatL2's. */
struct DirectSubspaceIndex : faiss::IndexFlatL2 {
    /** Told of each search (one per k-means iteration) when set: the PQ this index assigns for, or
     *  the OPQ whose training PQ it assigns for. */
    autofaiss::TrainingObserver* observer = nullptr;
    const faiss::ProductQuantizer* for_pq = nullptr;
    const faiss::OPQMatrix* for_opq = nullptr;

    explicit DirectSubspaceIndex(lidx_t d) : faiss::IndexFlatL2(d) {}
    void search(lidx_t n, const float* x, lidx_t k, float* distances, lidx_t* labels,
                const faiss::SearchParameters* params = nullptr) const override {
        if (k != 1 || d < 1 || d > 8 || ntotal == 0 || params != nullptr) {
            faiss::IndexFlatL2::search(n, x, k, distances, labels, params);
        } else {
            nearest_centroid_d(d, n, x, d, ntotal, get_xb(), distances, labels);
        }
        if (observer == nullptr) return;
        if (for_opq != nullptr) {
            observer->opq_iteration(*for_opq);
        } else if (for_pq != nullptr) {
            observer->pq_iteration(*for_pq, autofaiss::mean_distance(n, k, distances));
        }
    }
};

/** The PQ that OPQMatrix::train trains at each outer iteration (OPQMatrix::pq), with its sub-quantizer
 *  k-means (the first from scratch, the next ones hot-started) run side by side, one per thread, each
 *  on one thread with the direct loop above.
 *  ProductQuantizer::train runs them one after the other, each spread over every thread: its k-means
 *  on 3-dimensional sub-vectors are so short (65,536 points x 256 centroids) that the threads spend
 *  most of the time waiting at OpenMP barriers (84 % of a profile on this 2-core machine, in libgomp),
 *  and far more when another process holds a core. Same seeds and parameters as FAISS's loop. */
struct DirectSubspacePQ : faiss::ProductQuantizer {
    /** The OPQ that trains this PQ at each outer iteration, and who hears about it (may be null). */
    const faiss::OPQMatrix* opq;
    autofaiss::TrainingObserver* observer;

    DirectSubspacePQ(const faiss::OPQMatrix* opq, autofaiss::TrainingObserver* observer)
            : faiss::ProductQuantizer(opq->d_out, opq->M, 8), opq(opq), observer(observer) {}
    void train(size_t n, const float* x) override {
        if (observer) observer->opq_outer_start(*opq);
        // OPQMatrix::train switches its PQ to Train_hot_start after the first outer iteration: each
        // k-means starts from the previous iteration's codebook, as ProductQuantizer::train does.
        if ((train_type != Train_default && train_type != Train_hot_start) || dsub < 1 || dsub > 8) {
            faiss::ProductQuantizer::train(n, x);
            if (observer) observer->opq_outer_end(*opq, NAN);
            return;
        }
        const bool hot_start = train_type == Train_hot_start;
        std::vector<std::exception_ptr> errors(M);
        std::vector<double> last_objective(M, 0.0);
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t m = 0; m < static_cast<int64_t>(M); m++) {
            try {
                std::vector<float> xslice(n * dsub);
                for (size_t j = 0; j < n; j++)
                    std::memcpy(xslice.data() + j * dsub, x + j * d + m * dsub, dsub * sizeof(float));
                faiss::Clustering clus(dsub, ksub, cp);
                if (hot_start) clus.centroids.assign(get_centroids(m, 0), get_centroids(m, 0) + dsub * ksub);
                DirectSubspaceIndex assign(dsub);
                assign.observer = observer;
                assign.for_opq = opq;
                clus.train(n, xslice.data(), assign);
                set_params(clus.centroids.data(), m);
                // Clustering's objective is the sum of its points' distances; the PQ error is a mean.
                if (!clus.iteration_stats.empty() && n > 0) last_objective[m] = clus.iteration_stats.back().obj / double(n);
            } catch (...) {
                errors[m] = std::current_exception();  // an exception must not leave the OpenMP region
            }
        }
        for (auto& e : errors)
            if (e) std::rethrow_exception(e);
        if (observer) {
            double error = 0;
            for (double o : last_objective) error += o;
            observer->opq_outer_end(*opq, error);
        }
    }
    /** OPQMatrix::train encodes its whole sample at every outer iteration. ProductQuantizer encodes a
     *  sub-vector with 256 calls of fvec_L2sqr (46 % of today's OPQ training in a profile); the
     *  direct loop finds the same nearest centroid (up to rounding of near ties). */
    void compute_codes(const float* x, uint8_t* codes, size_t n) const override {
        if (nbits != 8 || dsub < 1 || dsub > 8) {
            faiss::ProductQuantizer::compute_codes(x, codes, n);
            return;
        }
        std::vector<float> dis(n);
        std::vector<lidx_t> lab(n);
        for (size_t m = 0; m < M; m++) {
            nearest_centroid_d(dsub, n, x + m * dsub, d, ksub, get_centroids(m, 0), dis.data(), lab.data());
            for (size_t i = 0; i < n; i++) codes[i * code_size + m] = static_cast<uint8_t>(lab[i]);
        }
    }
};

/** The coarse k-means' assignment index for many lists (lever ivf_hnsw_assign_m, set as
 *  IndexIVF::clustering_index): FAISS's HNSW over the centroids, which Clustering::train_encoded
 *  rebuilds (reset + add) and searches once per iteration; each search is one iteration, told to the
 *  observer with its objective, as jobs.cpp's counting index does for FAISS's own assignment. */
struct ProgressHnswAssigner : faiss::IndexHNSWFlat {
    const faiss::IndexIVF* for_ivf;
    autofaiss::TrainingObserver* observer;  // may be null

    ProgressHnswAssigner(const faiss::IndexIVF* ivf, faiss::MetricType metric, int M,
                         autofaiss::TrainingObserver* observer)
            : faiss::IndexHNSWFlat(int(ivf->d), M, metric), for_ivf(ivf), observer(observer) {}

    void search(lidx_t n, const float* x, lidx_t k, float* distances, lidx_t* labels,
                const faiss::SearchParameters* params = nullptr) const override {
        faiss::IndexHNSWFlat::search(n, x, k, distances, labels, params);
        if (observer == nullptr) return;
        observer->ivf_iteration(*for_ivf, autofaiss::mean_distance(n, k, distances));
    }
};

}  // namespace

/** What attach_training_levers attaches for one training; its destructor detaches it all. */
struct autofaiss::LeverAttachments {
    std::vector<std::unique_ptr<DirectSubspaceIndex>> assigners;
    std::vector<std::unique_ptr<faiss::ProductQuantizer>> opq_pqs;
    std::vector<faiss::OPQMatrix*> opqs;
    std::vector<faiss::ProductQuantizer*> pqs;
    std::vector<std::unique_ptr<ProgressHnswAssigner>> hnsw_assigners;
    std::vector<faiss::IndexIVF*> ivfs;
    ~LeverAttachments() {
        for (auto* o : opqs) o->pq = nullptr;
        for (auto* p : pqs) p->assign_index = nullptr;
        for (auto* v : ivfs) v->clustering_index = nullptr;
    }
    void direct(faiss::ProductQuantizer* pq, autofaiss::TrainingObserver* observer) {
        if (pq->dsub < 1 || pq->dsub > 8 || pq->assign_index != nullptr) return;
        assigners.push_back(std::make_unique<DirectSubspaceIndex>(pq->dsub));
        assigners.back()->observer = observer;
        assigners.back()->for_pq = pq;
        pq->assign_index = assigners.back().get();
        pqs.push_back(pq);
    }
};

void autofaiss::LeverAttachmentsDeleter::operator()(LeverAttachments* a) const {
    delete a;
}

autofaiss::LeverAttachmentsPtr autofaiss::attach_training_levers(faiss::Index* index, const TrainingLevers& lv,
                                                                 int* applied, TrainingObserver* observer) {
    *applied = 0;
    LeverAttachmentsPtr att(new LeverAttachments());  // detaches everything if anything below throws
    std::vector<faiss::Index*> nested;
    for_each_nested_index(
        index, [&](faiss::Index* idx) { nested.push_back(idx); },
        [&](faiss::VectorTransform* vt) {
            auto* opq = dynamic_cast<faiss::OPQMatrix*>(vt);
            if (!opq) return;
            *applied |= 1;
            if (lv.opq_niter >= 0) opq->niter = lv.opq_niter;
            if (lv.opq_niter_pq >= 0) opq->niter_pq = lv.opq_niter_pq;
            if (lv.opq_max_train_points >= 0) opq->max_train_points = static_cast<size_t>(lv.opq_max_train_points);
            if (lv.direct_subspace && opq->pq == nullptr && !opq->is_trained) {
                // OPQMatrix::train's own default PQ: (d_out, M, 8 bits).
                att->opq_pqs.push_back(std::make_unique<DirectSubspacePQ>(opq, observer));
                opq->pq = att->opq_pqs.back().get();
                att->opqs.push_back(opq);
            }
        });
    for (faiss::Index* idx : nested) {
        if (auto ivf = dynamic_cast<faiss::IndexIVF*>(idx)) {
            *applied |= 2;
            if (lv.ivf_niter >= 0) ivf->cp.niter = lv.ivf_niter;
            if (lv.ivf_max_points_per_centroid >= 0) ivf->cp.max_points_per_centroid = lv.ivf_max_points_per_centroid;
            // Level1Quantizer::train_q1 runs the coarse k-means on `clustering_index` when set. It
            // assigns with IndexFlatL2 when the quantizer trains apart (quantizer_trains_alone 2:
            // HNSW quantizers), else with the quantizer itself (its metric): keep the same metric.
            if (lv.ivf_hnsw_assign_m > 0 && ivf->clustering_index == nullptr && !ivf->is_trained &&
                ivf->quantizer_trains_alone != 1) {
                faiss::MetricType mt = ivf->quantizer_trains_alone == 2 ? faiss::METRIC_L2 : ivf->metric_type;
                att->hnsw_assigners.push_back(
                        std::make_unique<ProgressHnswAssigner>(ivf, mt, lv.ivf_hnsw_assign_m, observer));
                ivf->clustering_index = att->hnsw_assigners.back().get();
                att->ivfs.push_back(ivf);
            }
        }
        faiss::ProductQuantizer* pq = nullptr;
        if (auto ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(idx)) pq = &ivfpq->pq;
        else if (auto ipq = dynamic_cast<faiss::IndexPQ*>(idx)) pq = &ipq->pq;
        if (pq) {
            *applied |= 4;
            if (lv.pq_niter >= 0) pq->cp.niter = lv.pq_niter;
            if (lv.direct_subspace) att->direct(pq, observer);
        }
    }
    return att;
}

namespace {

/** The IndexIVFPQ whose codes add_vectors computes itself, or null: exactly an IndexIVFPQ (not its
 *  subclasses, which add more per vector), trained, 8-bit codes, sub-vectors of 1 to 8 dimensions. */
faiss::IndexIVFPQ* direct_encodable(faiss::Index* idx) {
    auto* ivf = dynamic_cast<faiss::IndexIVFPQ*>(idx);
    if (ivf == nullptr || typeid(*ivf) != typeid(faiss::IndexIVFPQ) || !ivf->is_trained) return nullptr;
    const faiss::ProductQuantizer& pq = ivf->pq;
    if (pq.nbits != 8 || pq.dsub < 1 || pq.dsub > 8 || pq.code_size != pq.M) return nullptr;
    return ivf;
}

/** IndexIVFPQ::add_core_o (FAISS 1.7.3) with the codes from nearest_centroid: same coarse assignment
 *  (the quantizer's), same residuals, entries added in the same order, vectors without a list skipped. */
void add_direct_ivfpq(faiss::IndexIVFPQ* ivf, lidx_t n, const float* x, const lidx_t* xids) {
    ivf->direct_map.check_can_add(xids);
    const faiss::ProductQuantizer& pq = ivf->pq;
    const size_t d = ivf->d;
    const lidx_t block = 32768;  // add_core_o's block: bounds the residuals and codes held at once
    std::vector<lidx_t> list_nos, labels;
    std::vector<float> residuals, dis;
    std::vector<uint8_t> codes;
    for (lidx_t i0 = 0; i0 < n; i0 += block) {
        const lidx_t m = std::min(block, n - i0);
        const float* xb = x + size_t(i0) * d;
        list_nos.resize(m);
        ivf->quantizer->assign(m, xb, list_nos.data());
        const float* to_encode = xb;
        if (ivf->by_residual) {
            residuals.resize(size_t(m) * d);
#pragma omp parallel for if (m > 1024)
            for (lidx_t i = 0; i < m; i++) {
                float* r = residuals.data() + size_t(i) * d;
                if (list_nos[i] < 0) std::fill(r, r + d, 0.0f);
                else ivf->quantizer->compute_residual(xb + size_t(i) * d, r, list_nos[i]);
            }
            to_encode = residuals.data();
        }
        codes.resize(size_t(m) * pq.code_size);
        dis.resize(m);
        labels.resize(m);
        for (size_t sub = 0; sub < pq.M; sub++) {
            nearest_centroid_d(int(pq.dsub), m, to_encode + sub * pq.dsub, d, lidx_t(pq.ksub), pq.get_centroids(sub, 0),
                               dis.data(), labels.data());
            for (lidx_t i = 0; i < m; i++) codes[size_t(i) * pq.code_size + sub] = static_cast<uint8_t>(labels[i]);
        }
        for (lidx_t i = 0; i < m; i++) {
            const lidx_t key = list_nos[i];
            const lidx_t id = xids ? xids[i0 + i] : ivf->ntotal + i;
            if (key < 0) {
                ivf->direct_map.add_single_id(id, -1, 0);
                continue;
            }
            size_t offset = ivf->invlists->add_entry(key, id, codes.data() + size_t(i) * pq.code_size);
            ivf->direct_map.add_single_id(id, key, offset);
        }
        ivf->ntotal += m;
    }
}

}  // namespace

void autofaiss::add_vectors(faiss::Index* index, lidx_t n, const float* x, const lidx_t* xids) {
    if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(index)) {
        if (faiss::IndexIVFPQ* ivf = direct_encodable(pt->index)) {
            FAISS_THROW_IF_NOT(pt->is_trained);
            const float* xt = pt->apply_chain(n, x);
            std::unique_ptr<const float[]> owned(xt == x ? nullptr : xt);
            add_direct_ivfpq(ivf, n, xt, xids);
            pt->ntotal = ivf->ntotal;
            return;
        }
    } else if (faiss::IndexIVFPQ* ivf = direct_encodable(index)) {
        add_direct_ivfpq(ivf, n, x, xids);
        return;
    }
    if (xids) index->add_with_ids(n, x, xids);
    else index->add(n, x);
}

EXPORT int autofaiss_add(FaissIndex* index, int64_t n, const float* x, const int64_t* xids) {
    try {
        FAISS_THROW_IF_NOT_MSG(index != nullptr && (n == 0 || x != nullptr), "autofaiss_add: null argument");
        require_mutable_lists(I(index), xids ? "add_with_ids" : "add");
        autofaiss::add_vectors(I(index), n, x, reinterpret_cast<const lidx_t*>(xids));
    }
    CATCH_AND_HANDLE
}

EXPORT int autofaiss_train_with_levers(FaissIndex* index, int64_t n, const float* x, int opq_niter, int opq_niter_pq,
                                       int64_t opq_max_train_points, int ivf_niter, int ivf_max_points_per_centroid,
                                       int pq_niter, int direct_subspace, int ivf_hnsw_assign_m, int* applied) {
    try {
        const auto lv = autofaiss::TrainingLevers::from_c(opq_niter, opq_niter_pq, opq_max_train_points, ivf_niter,
                                                           ivf_max_points_per_centroid, pq_niter, direct_subspace,
                                                           ivf_hnsw_assign_m);
        auto att = autofaiss::attach_training_levers(I(index), lv, applied, nullptr);
        I(index)->train(n, x);
    }
    CATCH_AND_HANDLE
}
