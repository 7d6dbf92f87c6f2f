#define _DEFAULT_SOURCE
/* C test of native/build/libfaiss_c.so: every exported entry point and every error path, run
 * before the JS tests. Exits non-zero on the first failure. Plain C11 against the upstream C API
 * headers, so it also documents how the library is meant to be called. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/clone_index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include "autofaiss_ext.h"

static int checks = 0;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        checks++;                                                                       \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "FAIL %s:%d: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
                    faiss_get_last_error() ? faiss_get_last_error() : "none");          \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

#define OK(call) CHECK((call) == 0)

/* OK inside a poll loop: fails the same way, but is not counted once per poll (the count of checks
 * would then say how fast the machine polled, not what was checked). */
#define POLL_OK(call)                          \
    do {                                       \
        int checks_before_poll = checks;       \
        OK(call);                              \
        checks = checks_before_poll;           \
    } while (0)

/* A call that must fail with a FAISS message containing `needle` (never empty: an empty needle
 * would match any message, including an empty one). */
#define FAILS_WITH(call, needle)                                                   \
    do {                                                                           \
        CHECK((needle)[0] != '\0');                                                \
        int rc_ = (call);                                                          \
        CHECK(rc_ != 0);                                                           \
        const char* e_ = faiss_get_last_error();                                   \
        CHECK(e_ != NULL);                                                         \
        if (!strstr(e_, needle)) {                                                 \
            fprintf(stderr, "FAIL %s:%d: error \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, e_, \
                    needle);                                                       \
            exit(1);                                                               \
        }                                                                          \
        checks++;                                                                  \
    } while (0)

static unsigned rng = 12345;
static float frand(void) {
    rng = rng * 1103515245u + 12345u;
    return (float)((rng >> 8) & 0xffff) / 65536.0f;
}

/* n clustered points: 20 centres plus noise, so IVF/PQ recall is meaningful. */
static float* make_data(int n, int d) {
    float* centres = malloc(sizeof(float) * 20 * d);
    for (int i = 0; i < 20 * d; i++) centres[i] = frand() * 10;
    float* x = malloc(sizeof(float) * (size_t)n * d);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) x[(size_t)i * d + j] = centres[(i % 20) * d + j] + frand();
    free(centres);
    return x;
}

static void test_flat_and_io(void) {
    const int d = 16, n = 500, k = 5;
    float* x = make_data(n, d);
    FaissIndex* idx = NULL;
    OK(faiss_index_factory(&idx, d, "Flat", METRIC_L2));
    CHECK(faiss_Index_d(idx) == d);
    CHECK(faiss_Index_is_trained(idx) == 1);
    CHECK(faiss_Index_metric_type(idx) == METRIC_L2);
    faiss_Index_set_verbose(idx, 0);
    CHECK(faiss_Index_verbose(idx) == 0);
    OK(faiss_Index_train(idx, n, x)); /* no-op for Flat, must succeed */
    OK(faiss_Index_add(idx, n, x));
    CHECK(faiss_Index_ntotal(idx) == n);

    float dist[5];
    idx_t lab[5];
    OK(faiss_Index_search(idx, 1, x + 7 * d, k, dist, lab));
    CHECK(lab[0] == 7 && dist[0] == 0.0f);

    float rec[16];
    OK(faiss_Index_reconstruct(idx, 3, rec));
    CHECK(memcmp(rec, x + 3 * d, sizeof rec) == 0);
    float* recn = malloc(sizeof(float) * 10 * d);
    OK(faiss_Index_reconstruct_n(idx, 10, 10, recn));
    CHECK(memcmp(recn, x + 10 * d, sizeof(float) * 10 * d) == 0);
    free(recn);

    size_t cs = 0;
    OK(faiss_Index_sa_code_size(idx, &cs));
    CHECK(cs == sizeof(float) * d);
    unsigned char* codes = malloc(cs * 2);
    float back[32];
    OK(faiss_Index_sa_encode(idx, 2, x, codes));
    OK(faiss_Index_sa_decode(idx, 2, codes, back));
    CHECK(memcmp(back, x, sizeof back) == 0);
    free(codes);

    /* file round trip, plain and mmap */
    char path[] = "/tmp/autofaiss_capi_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    OK(faiss_write_index_fname(idx, path));
    FaissIndex* back1 = NULL;
    OK(faiss_read_index_fname(path, 0, &back1));
    CHECK(faiss_Index_ntotal(back1) == n);
    FaissIndex* back2 = NULL;
    OK(faiss_read_index_fname(path, FAISS_IO_FLAG_MMAP | FAISS_IO_FLAG_READ_ONLY, &back2));
    CHECK(faiss_Index_ntotal(back2) == n);
    faiss_Index_free(back1);
    faiss_Index_free(back2);
    FaissIndex* none = NULL;
    FAILS_WITH(faiss_read_index_fname("/nonexistent/x.index", 0, &none), "could not open");

    /* buffer round trip and serialized size */
    size_t size = 0, written = 0;
    OK(autofaiss_serialized_size(idx, &size));
    FILE* f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    CHECK((size_t)ftell(f) == size);
    fclose(f);
    unlink(path);
    unsigned char* buf = malloc(size);
    FAILS_WITH(autofaiss_write_index_buffer(idx, buf, size - 1, &written), "buffer too small");
    OK(autofaiss_write_index_buffer(idx, buf, size, &written));
    CHECK(written == size);
    FaissIndex* back3 = NULL;
    OK(autofaiss_read_index_buffer(buf, size, 0, &back3));
    CHECK(faiss_Index_ntotal(back3) == n);
    FAILS_WITH(autofaiss_read_index_buffer(buf, size / 2, 0, &none), "read error");
    FAILS_WITH(autofaiss_read_index_buffer(buf, size, FAISS_IO_FLAG_MMAP, &none), "memory-mapped");
    faiss_Index_free(back3);
    free(buf);

    /* clone is independent of the original */
    FaissIndex* cl = NULL;
    OK(faiss_clone_index(idx, &cl));
    OK(faiss_Index_reset(idx));
    CHECK(faiss_Index_ntotal(idx) == 0);
    CHECK(faiss_Index_ntotal(cl) == n);
    faiss_Index_free(cl);

    /* a Flat index has no IVF layer */
    FaissIndexIVF* ivf = NULL;
    CHECK(faiss_IndexIVF_cast(idx) == NULL);
    FAILS_WITH(autofaiss_extract_index_ivf(idx, &ivf), "'ivf' failed");

    faiss_Index_free(idx);
    free(x);
}

static void test_ivf_paramspace(void) {
    const int d = 32, n = 4000;
    float* x = make_data(n, d);
    FaissIndex* a = NULL;
    FaissIndex* b = NULL;
    OK(faiss_index_factory(&a, d, "IVF16,Flat", METRIC_INNER_PRODUCT));
    CHECK(faiss_Index_is_trained(a) == 0);
    FAILS_WITH(faiss_Index_add(a, n, x), "is_trained"); /* untrained add */
    OK(faiss_Index_train(a, n, x));
    OK(faiss_clone_index(a, &b));
    OK(faiss_Index_add(a, n / 2, x));
    idx_t* ids = malloc(sizeof(idx_t) * n / 2);
    for (int i = 0; i < n / 2; i++) ids[i] = n / 2 + i;
    OK(faiss_Index_add_with_ids(b, n / 2, x + (size_t)(n / 2) * d, ids));
    free(ids);

    FaissIndexIVF* ia = faiss_IndexIVF_cast(a);
    FaissIndexIVF* ib = faiss_IndexIVF_cast(b);
    CHECK(ia != NULL && ib != NULL);
    CHECK(faiss_IndexIVF_nlist(ia) == 16);
    size_t total = 0;
    for (size_t l = 0; l < 16; l++) total += faiss_IndexIVF_get_list_size(ia, l);
    CHECK(total == (size_t)n / 2);
    OK(faiss_IndexIVF_merge_from(ia, ib, 0));
    CHECK(faiss_Index_ntotal(a) == n && faiss_Index_ntotal(b) == 0);

    FaissParameterSpace* ps = NULL;
    OK(faiss_ParameterSpace_new(&ps));
    OK(faiss_ParameterSpace_set_index_parameters(ps, a, "nprobe=7"));
    CHECK(faiss_IndexIVF_nprobe(ia) == 7);
    OK(faiss_ParameterSpace_set_index_parameter(ps, a, "nprobe", 5));
    CHECK(faiss_IndexIVF_nprobe(ia) == 5);
    faiss_IndexIVF_set_nprobe(ia, 16);
    CHECK(faiss_IndexIVF_nprobe(ia) == 16);
    FAILS_WITH(faiss_ParameterSpace_set_index_parameters(ps, a, "bogus=3"), "bogus");
    faiss_ParameterSpace_free(ps);

    FaissIndexIVF* ext = NULL;
    OK(autofaiss_extract_index_ivf(a, &ext));
    CHECK(ext == ia);
    FAILS_WITH(faiss_Index_reconstruct(a, 0, x), "direct map");
    OK(faiss_IndexIVF_make_direct_map(ia, 1));
    float rec[32];
    OK(faiss_Index_reconstruct(a, 10, rec));
    CHECK(memcmp(rec, x + 10 * d, sizeof rec) == 0);

    /* wrong dimension: merging indices of different d is refused by FAISS */
    FaissIndex* c = NULL;
    OK(faiss_index_factory(&c, 16, "IVF16,Flat", METRIC_INNER_PRODUCT));
    FAILS_WITH(faiss_IndexIVF_merge_from(ia, faiss_IndexIVF_cast(c), 0), "'other->d == d' failed");
    faiss_Index_free(c);

    /* the IVF view of a plain IVF index is the index itself: free through the owner only */
    faiss_Index_free(b);
    faiss_Index_free(a);
    /* faiss_IndexIVF_free is the destructor of an owned IVF handle */
    FaissIndex* own = NULL;
    OK(faiss_index_factory(&own, d, "IVF4,Flat", METRIC_L2));
    faiss_IndexIVF_free(faiss_IndexIVF_cast(own));
    free(x);
}

/* OPQ training reaches LAPACK (sgesvd), hence the provided _gfortran_concat_string. */
static void test_opq_fastscan(void) {
    const int d = 64, n = 6000;
    float* x = make_data(n, d);
    FaissIndex* idx = NULL;
    OK(faiss_index_factory(&idx, d, "OPQ16_64,IVF32_HNSW32,PQ16x4fs", METRIC_INNER_PRODUCT));
    char desc[512];
    OK(autofaiss_describe_index(idx, desc, sizeof desc));
    CHECK(strstr(desc, "IndexPreTransform") && strstr(desc, "OPQMatrix") &&
          strstr(desc, "IndexIVFPQFastScan") && strstr(desc, "IndexHNSWFlat"));
    CHECK(strstr(desc, "metric=1") == NULL); /* inner product on every level */
    OK(faiss_Index_train(idx, n, x));
    OK(faiss_Index_add(idx, n, x));
    CHECK(faiss_Index_ntotal(idx) == n);
    float dist[10];
    idx_t lab[10];
    OK(faiss_Index_search(idx, 1, x, 10, dist, lab));
    CHECK(lab[0] >= 0);
    faiss_Index_free(idx);
    free(x);
}

static void test_errors_and_ext(void) {
    FaissIndex* idx = NULL;
    FAILS_WITH(faiss_index_factory(&idx, 16, "NotAnIndex42", METRIC_L2), "NotAnIndex42");
    FAILS_WITH(faiss_index_factory(&idx, 30, "PQ7", METRIC_L2), "should be a multiple of the number of subquantizers"); /* 30 % 7 != 0 */
    const char* before = faiss_get_last_error();
    CHECK(before != NULL);

    char info[4096];
    int abi = 0;
    OK(autofaiss_build_info(info, sizeof info, &abi));
    CHECK(abi == AUTOFAISS_EXT_ABI);
    CHECK(strncmp(info, "1.7.3|", 6) == 0);
    FAILS_WITH(autofaiss_build_info(info, 0, &abi), "output buffer");

    int t = 0;
    OK(autofaiss_set_num_threads(1));
    OK(autofaiss_get_num_threads(&t));
    CHECK(t == 1);
    OK(autofaiss_set_num_threads(0));
    OK(autofaiss_get_num_threads(&t));
    CHECK(t >= 1);
}

/* the NaN/Inf scan: every position in and around the 64-value blocks, every non-finite kind,
 * unaligned starts, and finite extremes (max float, subnormals, -0) that must pass */
static void test_first_nonfinite(void) {
    enum { N = 300 };
    float buf[N + 1];
    int64_t at = 0;
    for (int i = 0; i <= N; i++) buf[i] = (float)(i % 7) - 3.0f;
    buf[5] = 3.4028235e38f;
    buf[6] = -3.4028235e38f;
    buf[7] = 1e-45f;
    buf[8] = -0.0f;
    OK(autofaiss_first_nonfinite(buf, N, &at));
    CHECK(at == -1);
    OK(autofaiss_first_nonfinite(buf, 0, &at));
    CHECK(at == -1);
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    int wrong = 0;
    for (int k = 0; k < 3; k++) {
        for (int pos = 0; pos < N; pos++) {
            float keep = buf[pos];
            buf[pos] = bad[k];
            OK(autofaiss_first_nonfinite(buf, N, &at));
            if (at != pos) wrong++;
            /* unaligned start: one float past the array start */
            OK(autofaiss_first_nonfinite(buf + 1, N - 1, &at));
            if (at != (pos == 0 ? -1 : pos - 1)) wrong++;
            buf[pos] = keep;
        }
    }
    CHECK(wrong == 0);
    /* the first of two is reported */
    buf[200] = NAN;
    buf[100] = INFINITY;
    OK(autofaiss_first_nonfinite(buf, N, &at));
    CHECK(at == 100);
}

/* Fast-scan PQ with k > 20 on tied distances: FAISS 1.7.3's reservoir (implem 0 picks it for
 * k > 20) aborts in partitioning.cpp `assert(n_eq == 0)` on this data; the heap does not. */
static void test_fast_scan_heap(void) {
    const int d = 16, n = 2000, k = 40;
    float* x = malloc(sizeof(float) * n * d);
    /* three distinct vectors, repeated: every distance ties with hundreds of others */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) x[i * d + j] = (float)((i % 3) * (j % 2));
    const char* keys[] = {"PQ8x4fs", "IVF4,PQ8x4fs", "PCA8,PQ4x4fs", "PQ8x4fs,RFlat"};
    for (size_t t = 0; t < sizeof keys / sizeof keys[0]; t++) {
        FaissIndex* idx = NULL;
        OK(faiss_index_factory(&idx, d, keys[t], METRIC_L2));
        int applied = -1;
        OK(autofaiss_fast_scan_use_heap(idx, &applied));
        CHECK(applied == 1);
        OK(faiss_Index_train(idx, n, x));
        OK(faiss_Index_add(idx, n, x));
        float dist[40];
        idx_t lab[40];
        OK(faiss_Index_search(idx, 1, x, k, dist, lab)); /* x[0] is the all-zero vector */
        for (int i = 0; i < k; i++) CHECK(lab[i] >= 0 && lab[i] % 3 == 0);
        faiss_Index_free(idx);
    }
    FaissIndex* flat = NULL;
    OK(faiss_index_factory(&flat, d, "Flat", METRIC_L2));
    int applied = -1;
    OK(autofaiss_fast_scan_use_heap(flat, &applied));
    CHECK(applied == 0);
    faiss_Index_free(flat);
    free(x);
}

/* Direct maps of an IVF part whose ids start past 0: the array map is refused, the hash map works
 * and survives a write/read round trip. */
static void test_direct_map_types(void) {
    const int d = 8, n = 200;
    float* x = make_data(n, d);
    FaissIndex* idx = NULL;
    OK(faiss_index_factory(&idx, d, "IVF4,Flat", METRIC_L2));
    OK(faiss_Index_train(idx, n, x));
    idx_t ids[200];
    for (int i = 0; i < n; i++) ids[i] = 1000 + i;
    OK(faiss_Index_add_with_ids(idx, n, x, ids));
    FaissIndexIVF* ivf = faiss_IndexIVF_cast(idx);
    CHECK(ivf != NULL);
    FAILS_WITH(autofaiss_ivf_set_direct_map(ivf, 1), "direct map supported only for seuquential ids"); /* FAISS's spelling */
    FAILS_WITH(autofaiss_ivf_set_direct_map(ivf, 3), "direct map type must be");
    OK(autofaiss_ivf_set_direct_map(ivf, 2));
    float back[8];
    OK(faiss_Index_reconstruct(idx, 1017, back));
    CHECK(memcmp(back, x + 17 * d, sizeof back) == 0);
    char path[] = "/tmp/autofaiss_capi_dm_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    OK(faiss_write_index_fname(idx, path));
    FaissIndex* again = NULL;
    OK(faiss_read_index_fname(path, 0, &again));
    unlink(path);
    OK(faiss_Index_reconstruct(again, 1199, back));
    CHECK(memcmp(back, x + 199 * d, sizeof back) == 0);
    faiss_Index_free(again);
    faiss_Index_free(idx);
    free(x);
}

/* autofaiss_copy_transforms: an OPQ rotation trained in one index serves another with a different
 * sub-index; searching through it gives what the owner of the rotation gives over a Flat sub-index;
 * a mismatched chain is an error, not an abort. */
static void test_copy_transforms(void) {
    const int d = 16, n = 1000, k = 5;
    float* x = make_data(n, d);
    FaissIndex* owner = NULL;
    FaissIndex* copy = NULL;
    FaissIndex* other = NULL;
    OK(faiss_index_factory(&owner, d, "OPQ4_16,Flat", METRIC_L2));
    OK(faiss_index_factory(&copy, d, "OPQ4_16,Flat", METRIC_L2));
    OK(faiss_index_factory(&other, d, "OPQ8_16,Flat", METRIC_L2));
    FAILS_WITH(autofaiss_copy_transforms(copy, owner), "transform 0 of the source is not trained");
    OK(faiss_Index_train(owner, n, x));
    OK(autofaiss_copy_transforms(copy, owner));
    CHECK(faiss_Index_is_trained(copy));
    OK(faiss_Index_add(owner, n, x));
    OK(faiss_Index_add(copy, n, x));
    idx_t lo[10 * 5], lc[10 * 5];
    float dist_o[10 * 5], dist_c[10 * 5];
    OK(faiss_Index_search(owner, 10, x, k, dist_o, lo));
    OK(faiss_Index_search(copy, 10, x, k, dist_c, lc));
    CHECK(memcmp(lo, lc, sizeof lo) == 0 && memcmp(dist_o, dist_c, sizeof dist_o) == 0);
    FAILS_WITH(autofaiss_copy_transforms(other, owner), "transform 0 differs (source OPQMatrix 16 -> 16 M=4, destination OPQMatrix 16 -> 16 M=8)");
    FAILS_WITH(autofaiss_copy_transforms(copy, owner), "the destination already holds 1000 vectors");
    faiss_Index_free(owner);
    faiss_Index_free(copy);
    faiss_Index_free(other);
    free(x);
}

/* autofaiss_merge_into: two clones of one trained pre-transformed IVF index, each filled with half
 * the rows under their global ids, merge into the same index (ntotal on the wrapper included) and
 * search exactly like one index filled in a single add. */
static void test_merge_into(void) {
    const int d = 32, n = 2000, k = 5;
    float* x = make_data(n, d);
    FaissIndex* trained = NULL;
    FaissIndex* whole = NULL;
    FaissIndex* a = NULL;
    FaissIndex* b = NULL;
    OK(faiss_index_factory(&trained, d, "PCA16,IVF8,Flat", METRIC_L2));
    OK(faiss_Index_train(trained, n, x));
    OK(faiss_clone_index(trained, &whole));
    OK(faiss_clone_index(trained, &a));
    OK(faiss_clone_index(trained, &b));
    OK(faiss_Index_add(whole, n, x));
    idx_t* ids = malloc(sizeof(idx_t) * n);
    for (int i = 0; i < n; i++) ids[i] = i;
    OK(faiss_Index_add_with_ids(a, n / 2, x, ids));
    OK(faiss_Index_add_with_ids(b, n - n / 2, x + (size_t)(n / 2) * d, ids + n / 2));
    OK(autofaiss_merge_into(a, b));
    CHECK(faiss_Index_ntotal(a) == n);
    CHECK(faiss_Index_ntotal(b) == 0);
    idx_t la[10 * 5], lw[10 * 5];
    float da[10 * 5], dw[10 * 5];
    FaissIndexIVF* ia = NULL;
    FaissIndexIVF* iw = NULL;
    OK(autofaiss_extract_index_ivf(a, &ia));
    OK(autofaiss_extract_index_ivf(whole, &iw));
    faiss_IndexIVF_set_nprobe(ia, 8);
    faiss_IndexIVF_set_nprobe(iw, 8);
    OK(faiss_Index_search(a, 10, x, k, da, la));
    OK(faiss_Index_search(whole, 10, x, k, dw, lw));
    CHECK(memcmp(la, lw, sizeof la) == 0);
    /* The PCA of a 1000-row batch and of a 2000-row batch may round differently (BLAS blocking):
     * the stored vectors, hence the distances, agree to float precision, not bit for bit. */
    for (int i = 0; i < 10 * 5; i++) CHECK(fabsf(da[i] - dw[i]) <= 1e-4f * (1.0f + fabsf(dw[i])));
    CHECK(la[0] == 0 && la[5] == 1);

    /* a flat index has no IVF layer: an error, not an abort */
    FaissIndex* flat = NULL;
    OK(faiss_index_factory(&flat, d, "Flat", METRIC_L2));
    FAILS_WITH(autofaiss_merge_into(flat, a), "merge_into: both indices need an IVF layer");
    faiss_Index_free(flat);

    /* a memory-mapped destination is refused before FAISS's OpenMP loop could abort */
    char path[] = "/tmp/autofaiss-capi-merge-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    OK(faiss_write_index_fname(a, path));
    FaissIndex* mapped = NULL;
    OK(faiss_read_index_fname(path, FAISS_IO_FLAG_MMAP | FAISS_IO_FLAG_READ_ONLY, &mapped));
    FAILS_WITH(autofaiss_merge_into(mapped, whole), "merge_into (destination): the index's inverted lists are read-only");
    CHECK(faiss_Index_ntotal(whole) == n);
    faiss_Index_free(mapped);
    unlink(path);

    free(ids);
    faiss_Index_free(b);
    faiss_Index_free(a);
    faiss_Index_free(whole);
    faiss_Index_free(trained);
    free(x);
}

/* polysemous switch: applied to PQ and IVFPQ (also under a pre-transform), not to other indices */
static void test_polysemous(void) {
    const char* keys[] = {"PQ4x8", "IVF4,PQ4x8", "OPQ4_16,IVF4,PQ4x8", "IVF4,Flat", "HNSW8"};
    const int want[] = {1, 1, 1, 0, 0};
    for (int i = 0; i < 5; i++) {
        FaissIndex* idx = NULL;
        int applied = -1;
        OK(faiss_index_factory(&idx, 16, keys[i], METRIC_L2));
        OK(autofaiss_set_polysemous_training(idx, 0, &applied));
        if (applied != want[i]) {
            fprintf(stderr, "FAIL polysemous %s: applied %d, want %d\n", keys[i], applied, want[i]);
            exit(1);
        }
        OK(autofaiss_set_polysemous_training(idx, 1, &applied));
        CHECK(applied == want[i]);
        faiss_Index_free(idx);
    }
}

/* Calls that FAISS 1.7.3 runs inside OpenMP regions, where an exception aborts the process: each
 * must come back as an error with FAISS's or our message, and the process must go on. */
static void test_openmp_guards(void) {
    const int d = 8, n = 2000;
    float* x = make_data(n, d);
    float* out = malloc(sizeof(float) * (size_t)n * d);
    idx_t* ids = malloc(sizeof(idx_t) * n);
    for (int i = 0; i < n; i++) ids[i] = i;

    /* IndexIDMap has no reconstruct: Index::reconstruct_n's parallel loop used to abort (n > 1000
     * runs the loop on several threads, n = 10 on one) */
    FaissIndex* idmap = NULL;
    OK(faiss_index_factory(&idmap, d, "IDMap,Flat", METRIC_L2));
    OK(faiss_Index_add_with_ids(idmap, n, x, ids));
    FAILS_WITH(faiss_Index_reconstruct_n(idmap, 0, 10, out), "reconstruct not implemented");
    FAILS_WITH(faiss_Index_reconstruct_n(idmap, 0, n, out), "reconstruct not implemented");
    FAILS_WITH(faiss_Index_reconstruct_n(idmap, 5, n, out), "reconstruct_n: range [5, 2005) is outside [0, 2000)");
    faiss_Index_free(idmap);

    /* IDMap2 reconstructs by id through the guarded loop; PCA (pre-transform) over IVF too */
    FaissIndex* idmap2 = NULL;
    OK(faiss_index_factory(&idmap2, d, "IDMap2,Flat", METRIC_L2));
    OK(faiss_Index_add_with_ids(idmap2, n, x, ids));
    OK(faiss_Index_reconstruct_n(idmap2, 0, n, out));
    CHECK(memcmp(out, x, sizeof(float) * (size_t)n * d) == 0);
    faiss_Index_free(idmap2);
    FaissIndex* rr = NULL;
    OK(faiss_index_factory(&rr, d, "RR8,IVF4,Flat", METRIC_L2));
    OK(faiss_Index_train(rr, n, x));
    OK(faiss_Index_add(rr, n, x));
    OK(faiss_Index_reconstruct_n(rr, 100, 50, out)); /* rotation back: equal up to rounding */
    float maxerr = 0;
    for (int i = 0; i < 50 * d; i++) {
        float e = out[i] - x[100 * d + i];
        if (e < 0) e = -e;
        if (e > maxerr) maxerr = e;
    }
    CHECK(maxerr < 1e-4f);
    faiss_Index_free(rr);

    /* memory-mapped IVF: its OnDiskInvertedLists are read-only; add/reset/merge throw inside
     * `omp parallel` in FAISS, so they are refused before */
    FaissIndex* ivf = NULL;
    OK(faiss_index_factory(&ivf, d, "IVF4,Flat", METRIC_L2));
    OK(faiss_Index_train(ivf, n, x));
    OK(faiss_Index_add(ivf, n, x));
    char cls[64];
    OK(autofaiss_invlists_class(ivf, cls, sizeof cls));
    CHECK(strcmp(cls, "ArrayInvertedLists") == 0);
    char path[] = "/tmp/autofaiss_capi_mmap_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    OK(faiss_write_index_fname(ivf, path));
    FaissIndex* mapped = NULL;
    OK(faiss_read_index_fname(path, FAISS_IO_FLAG_MMAP | FAISS_IO_FLAG_READ_ONLY, &mapped));
    OK(autofaiss_invlists_class(mapped, cls, sizeof cls));
    CHECK(strcmp(cls, "OnDiskInvertedLists") == 0);
    FaissIndex* loaded = NULL;
    OK(faiss_read_index_fname(path, 0, &loaded));
    OK(autofaiss_invlists_class(loaded, cls, sizeof cls));
    CHECK(strcmp(cls, "ArrayInvertedLists") == 0);
    const char* ro = "the index's inverted lists are read-only (OnDiskInvertedLists, e.g. a memory-mapped read)";
    FAILS_WITH(faiss_Index_add(mapped, 10, x), ro);
    FAILS_WITH(faiss_Index_add(mapped, 10, x), "add: ");
    FAILS_WITH(faiss_Index_add_with_ids(mapped, 10, x, ids), "add_with_ids: ");
    FAILS_WITH(faiss_Index_reset(mapped), "reset: ");
    FAILS_WITH(faiss_IndexIVF_merge_from(faiss_IndexIVF_cast(mapped), faiss_IndexIVF_cast(loaded), 0),
               "merge_from (destination): ");
    FAILS_WITH(faiss_IndexIVF_merge_from(faiss_IndexIVF_cast(loaded), faiss_IndexIVF_cast(mapped), 0),
               "merge_from (source): ");
    FAILS_WITH(faiss_IndexIVF_merge_from(faiss_IndexIVF_cast(loaded), faiss_IndexIVF_cast(loaded), 0),
               "merge_from: an index cannot be merged into itself");
    CHECK(faiss_Index_ntotal(mapped) == n && faiss_Index_ntotal(loaded) == n);
    /* reading a mapped index works: reconstruct_n walks the lists */
    OK(faiss_Index_reconstruct_n(mapped, 0, n, out));
    CHECK(memcmp(out + 7 * d, x + 7 * d, sizeof(float) * d) == 0);
    unlink(path);
    faiss_Index_free(mapped);
    faiss_Index_free(loaded);

    FaissIndex* flat = NULL;
    OK(faiss_index_factory(&flat, d, "Flat", METRIC_L2));
    FAILS_WITH(autofaiss_invlists_class(flat, cls, sizeof cls), "the index has no IVF layer, hence no inverted lists");
    FAILS_WITH(autofaiss_invlists_class(ivf, cls, 0), "output buffer is empty");
    faiss_Index_free(flat);
    faiss_Index_free(ivf);
    free(ids);
    free(out);
    free(x);
}

/* Training levers: the direct sub-space k-means must train codebooks as good as FAISS's, report
 * what the index holds, and leave no pointer behind when training fails. */
static double reconstruction_mse(FaissIndex* idx, const float* x, int n, int d) {
    float* r = malloc(sizeof(float) * (size_t)n * d);
    OK(faiss_Index_reconstruct_n(idx, 0, n, r));
    double s = 0;
    for (size_t i = 0; i < (size_t)n * d; i++) s += (double)(r[i] - x[i]) * (r[i] - x[i]);
    free(r);
    return s / n;
}

static void test_train_levers(void) {
    const int d = 12, n = 5000;
    float* x = make_data(n, d);
    int applied = -1;

    /* PQ4x6 on 12 dimensions: 3-dimensional sub-vectors, the direct loop's case */
    FaissIndex *plain = NULL, *direct = NULL;
    OK(faiss_index_factory(&plain, d, "PQ4x6", METRIC_L2));
    OK(faiss_index_factory(&direct, d, "PQ4x6", METRIC_L2));
    OK(faiss_Index_train(plain, n, x));
    OK(autofaiss_train_with_levers(direct, n, x, -1, -1, -1, -1, -1, -1, 1, 0, &applied));
    CHECK(applied == 4);
    CHECK(faiss_Index_is_trained(direct) == 1);
    OK(faiss_Index_add(plain, n, x));
    OK(faiss_Index_add(direct, n, x));
    /* k-means from the same seed: an assignment that rounds the other way at a near tie moves a
     * centroid slightly and later iterations drift apart (95 % of codes equal on the GENERIC
     * variant), so the test compares the quantization error, which must stay within 1 %. */
    double e_plain = reconstruction_mse(plain, x, n, d), e_direct = reconstruction_mse(direct, x, n, d);
    if (!(e_direct <= e_plain * 1.01 && e_direct >= e_plain * 0.99)) {
        fprintf(stderr, "FAIL train levers: PQ quantization error %g with the direct loop, %g with FAISS's\n", e_direct, e_plain);
        exit(1);
    }
    faiss_Index_free(plain);
    faiss_Index_free(direct);

    /* OPQ + IVF + PQ: every part found; fewer OPQ iterations still give a working index */
    FaissIndex* opq = NULL;
    OK(faiss_index_factory(&opq, d, "OPQ4_12,IVF8,PQ4x6", METRIC_L2));
    OK(autofaiss_train_with_levers(opq, n, x, 5, 2, 4000, 10, 200, 10, 1, 16, &applied));
    CHECK(applied == 7);
    OK(faiss_Index_add(opq, n, x));
    float dist[1];
    idx_t lab[1];
    OK(faiss_Index_search(opq, 1, x + 42 * d, 1, dist, lab));
    CHECK(lab[0] >= 0 && lab[0] < n);
    faiss_Index_free(opq);

    /* a failing training (too few points for 64 centroids) is FAISS's error, and the OPQ's training
     * PQ and the assignment index were detached: a plain training of the same index then works */
    FaissIndex* again = NULL;
    OK(faiss_index_factory(&again, d, "OPQ4_12,PQ4x6", METRIC_L2));
    FAILS_WITH(autofaiss_train_with_levers(again, 10, x, 2, -1, -1, -1, -1, -1, 1, 0, &applied),
               "should be at least as large as number of clusters");
    OK(faiss_Index_train(again, n, x));
    CHECK(faiss_Index_is_trained(again) == 1);
    faiss_Index_free(again);

    /* coarse k-means through an HNSW over the centroids: the IVF finds the true nearest neighbour
     * (nprobe 2 of 32 lists) about as often as FAISS's exhaustive assignment gives */
    float hits[2] = {0, 0};
    FaissIndex* exact = NULL;
    OK(faiss_index_factory(&exact, d, "Flat", METRIC_L2));
    OK(faiss_Index_add(exact, n, x));
    for (int v = 0; v < 2; v++) {
        FaissIndex* ivf = NULL;
        OK(faiss_index_factory(&ivf, d, "IVF32,Flat", METRIC_L2));
        OK(autofaiss_train_with_levers(ivf, n, x, -1, -1, -1, -1, -1, -1, 0, v == 0 ? 0 : 16, &applied));
        CHECK(applied == 2);
        OK(faiss_Index_add(ivf, n, x));
        FaissParameterSpace* ps = NULL;
        OK(faiss_ParameterSpace_new(&ps));
        OK(faiss_ParameterSpace_set_index_parameters(ps, ivf, "nprobe=2"));
        faiss_ParameterSpace_free(ps);
        for (int q = 0; q < 200; q++) {
            /* a query between two data points, so it is not one of them */
            float qv[12];
            for (int j = 0; j < d; j++) qv[j] = 0.5f * (x[(size_t)q * 7 * d + j] + x[((size_t)q * 7 + 3) * d + j]);
            float de[1], di[1];
            idx_t le[1], li[1];
            OK(faiss_Index_search(exact, 1, qv, 1, de, le));
            OK(faiss_Index_search(ivf, 1, qv, 1, di, li));
            hits[v] += le[0] == li[0];
        }
        faiss_Index_free(ivf);
    }
    faiss_Index_free(exact);
    if (hits[1] < hits[0] - 10) {
        fprintf(stderr, "FAIL train levers: HNSW-assigned k-means finds %g of 200 neighbours, FAISS's %g\n", hits[1], hits[0]);
        exit(1);
    }

    /* nothing to set: trains as faiss_Index_train */
    FaissIndex* flat = NULL;
    OK(faiss_index_factory(&flat, d, "Flat", METRIC_L2));
    OK(autofaiss_train_with_levers(flat, n, x, 3, -1, -1, -1, -1, -1, 1, 8, &applied));
    CHECK(applied == 0);
    faiss_Index_free(flat);
    free(x);
}

/* ---- progress jobs (native/jobs.cpp) ---- */

/* Serialized bytes of an index (malloc'ed; *size receives the length). */
static uint8_t* serialize(const FaissIndex* idx, size_t* size) {
    OK(autofaiss_serialized_size(idx, size));
    uint8_t* buf = malloc(*size);
    size_t written = 0;
    OK(autofaiss_write_index_buffer(idx, buf, *size, &written));
    CHECK(written == *size);
    return buf;
}

/* True when both indices serialize to the same bytes. */
static int same_bytes(const FaissIndex* a, const FaissIndex* b) {
    size_t sa, sb;
    uint8_t* ba = serialize(a, &sa);
    uint8_t* bb = serialize(b, &sb);
    int same = sa == sb && memcmp(ba, bb, sa) == 0;
    free(ba);
    free(bb);
    return same;
}

/* Polls a started job until done, joins it, and records the highest done count seen per phase and
 * the job's final count of every phase in seen_done (totals in seen_total). */
static void job_poll_join(AutofaissJob* job, double seen_done[8], double seen_total[8]) {
    double st[AUTOFAISS_JOB_STATUS_LEN];
    int phases_valid = 1; /* one check for the whole poll loop, not one per poll */
    for (;;) {
        POLL_OK(autofaiss_job_status(job, st, AUTOFAISS_JOB_STATUS_LEN));
        int phase = (int)st[1];
        if (phase < 1 || phase > 5) {
            phases_valid = 0;
            break;
        }
        if (st[2] > seen_done[phase]) seen_done[phase] = st[2];
        seen_total[phase] = st[3];
        if (st[0] == 1) break;
        usleep(200);
    }
    CHECK(phases_valid);
    /* the whole job's count of every phase, also of phases whose end the polls missed */
    for (int p = 1; p <= 5; p++) {
        CHECK(st[6 + p] >= seen_done[p]);
        seen_done[p] = st[6 + p];
    }
    OK(autofaiss_job_join(job));
}

/* Trains through a job (with the training levers opq_niter, direct_subspace, ivf_hnsw_assign_m; -1 / 0 /
 * 0: FAISS's own training), polling until done; returns the highest done count seen per phase. */
static void job_train_levers(FaissIndex* idx, int n, const float* x, int opq_niter, int direct_subspace,
                             int ivf_hnsw_assign_m, double seen_done[8], double seen_total[8]) {
    AutofaissJob* job = NULL;
    int applied = -1;
    OK(autofaiss_job_train(idx, n, x, opq_niter, -1, -1, -1, -1, -1, direct_subspace, ivf_hnsw_assign_m, &applied,
                           &job));
    CHECK(applied >= 0);
    job_poll_join(job, seen_done, seen_total);
}

static void job_train(FaissIndex* idx, int n, const float* x, double seen_done[8], double seen_total[8]) {
    job_train_levers(idx, n, x, -1, 0, 0, seen_done, seen_total);
}

/* Two indices of `key` with polysemous training off (unused at search time, costs seconds): `a` to
 * train the blocking way, `b` through a job; the caller frees both. */
static void untrained_pair(const char* key, int d, FaissIndex** a, FaissIndex** b) {
    OK(faiss_index_factory(a, d, key, METRIC_L2));
    OK(faiss_index_factory(b, d, key, METRIC_L2));
    int applied;
    OK(autofaiss_set_polysemous_training(*a, 0, &applied));
    OK(autofaiss_set_polysemous_training(*b, 0, &applied));
}

/* Switches FAISS to one OpenMP thread and returns the previous count, to restore with
 * autofaiss_set_num_threads. Each k-means iteration of the job tests is tiny, and spinning OpenMP
 * threads make such loops crawl on a loaded machine; the jobs must also run with the caller's count. */
static int one_thread(void) {
    int threads = 0;
    OK(autofaiss_get_num_threads(&threads));
    OK(autofaiss_set_num_threads(1));
    return threads;
}

/* The transforms of a pre-transformed index trained by a job of their own, then the sub-index by a
 * second job on the same vectors: the same bytes as one training job, the sub-index untrained in
 * between, each job counting only its own k-means (the rotation's in the first, IVF and PQ in the
 * second). An index without pre-transform is refused with a message; a second transform job on
 * trained transforms does nothing. */
static void test_job_train_transforms(void) {
    const int d = 32, n = 3000;
    float* x = make_data(n, d);
    int threads = one_thread();
    const char* keys[] = {"OPQ4_32,IVF64,PQ4", "PCA16,IVF64,PQ4"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const int opq = strstr(keys[k], "OPQ") != NULL;
        FaissIndex *a = NULL, *b = NULL;
        untrained_pair(keys[k], d, &a, &b);
        double one_done[8] = {0}, one_total[8] = {0};
        job_train_levers(a, n, x, 3, 1, 0, one_done, one_total);

        AutofaissJob* job = NULL;
        int applied = -1;
        OK(autofaiss_job_train_ex(b, n, x, 3, -1, -1, -1, -1, -1, 1, 0, AUTOFAISS_TRAIN_TRANSFORMS_ONLY, &applied, &job));
        double first_done[8] = {0}, first_total[8] = {0};
        job_poll_join(job, first_done, first_total);
        CHECK(faiss_Index_is_trained(b) == 0);
        CHECK(first_done[AUTOFAISS_JOB_IVF_KMEANS] == 0 && first_done[AUTOFAISS_JOB_PQ_KMEANS] == 0);
        /* the lever's 3 outer iterations: 4 sub-quantizers x (40 + 2 x 4) PQ k-means iterations */
        if (opq) CHECK(first_done[AUTOFAISS_JOB_OPQ] == 4 * 48 && first_done[AUTOFAISS_JOB_OPQ] == one_done[AUTOFAISS_JOB_OPQ]);

        double second_done[8] = {0}, second_total[8] = {0};
        job_train_levers(b, n, x, 3, 1, 0, second_done, second_total);
        CHECK(faiss_Index_is_trained(b) == 1);
        CHECK(second_done[AUTOFAISS_JOB_OPQ] == 0);
        CHECK(second_done[AUTOFAISS_JOB_IVF_KMEANS] == 10 && second_done[AUTOFAISS_JOB_PQ_KMEANS] == 4 * 25);
        CHECK(same_bytes(a, b));

        /* every transform trained already: nothing happens */
        OK(autofaiss_job_train_ex(b, n, x, 3, -1, -1, -1, -1, -1, 1, 0, AUTOFAISS_TRAIN_TRANSFORMS_ONLY, &applied, &job));
        double again_done[8] = {0}, again_total[8] = {0};
        job_poll_join(job, again_done, again_total);
        CHECK(same_bytes(a, b));
        faiss_Index_free(a);
        faiss_Index_free(b);
    }
    /* AUTOFAISS_TRAIN_DISCARD_INPUT: the same trained index; the input's inner pages read as zeros after */
    {
        FaissIndex *a = NULL, *b = NULL;
        untrained_pair("OPQ4_32,IVF64,PQ4", d, &a, &b);
        OK(faiss_Index_train(a, n, x));
        float* input = malloc(sizeof(float) * (size_t)n * d);
        memcpy(input, x, sizeof(float) * (size_t)n * d);
        AutofaissJob* job = NULL;
        int applied = -1;
        OK(autofaiss_job_train_ex(b, n, input, -1, -1, -1, -1, -1, -1, 0, 0, AUTOFAISS_TRAIN_DISCARD_INPUT, &applied, &job));
        double done[8] = {0}, total[8] = {0};
        job_poll_join(job, done, total);
        CHECK(same_bytes(a, b));
        /* 384 KB: whole pages from 4 KB in to 4 KB before the end */
        int zeros = 1;
        for (size_t i = 1024; i < (size_t)n * d - 1024; i++) zeros &= input[i] == 0.0f;
        CHECK(zeros);
        free(input);
        faiss_Index_free(a);
        faiss_Index_free(b);
    }
    FaissIndex* plain = NULL;
    OK(faiss_index_factory(&plain, d, "IVF64,PQ4", METRIC_L2));
    AutofaissJob* job = NULL;
    int applied = -1;
    FAILS_WITH(autofaiss_job_train_ex(plain, n, x, -1, -1, -1, -1, -1, -1, 0, 0, AUTOFAISS_TRAIN_TRANSFORMS_ONLY,
                                      &applied, &job),
               "no pre-transform");
    CHECK(job == NULL);
    FAILS_WITH(autofaiss_job_train_ex(plain, n, x, -1, -1, -1, -1, -1, -1, 0, 0, 4, &applied, &job), "unknown flags 4");
    CHECK(job == NULL);
    faiss_Index_free(plain);
    OK(autofaiss_set_num_threads(threads));
    free(x);
}

static void test_jobs(void) {
    const int d = 32, n = 3000;
    float* x = make_data(n, d);
    int threads = one_thread();
    const char* keys[] = {"OPQ4_32,IVF32,PQ4", "IVF32,Flat", "PQ8x6", "IVF32_HNSW8,PQ4", "HNSW16"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        FaissIndex *a = NULL, *b = NULL;
        untrained_pair(keys[k], d, &a, &b);
        OK(faiss_Index_train(a, n, x));
        double done[8] = {0}, total[8] = {0};
        job_train(b, n, x, done, total);
        CHECK(faiss_Index_is_trained(b) == 1);
        /* the same trained index, byte for byte */
        CHECK(same_bytes(a, b));
        /* every hooked phase counted all its k-means iterations (FAISS 1.7.3 defaults: IVF 10, PQ 25;
         * OPQ: 8 sub-quantizers x (40 + 49 x 4)) */
        if (strstr(keys[k], "IVF")) CHECK(done[AUTOFAISS_JOB_IVF_KMEANS] == 10 && total[AUTOFAISS_JOB_IVF_KMEANS] == 10);
        if (strstr(keys[k], "OPQ")) CHECK(done[AUTOFAISS_JOB_OPQ] == 4 * 236 && total[AUTOFAISS_JOB_OPQ] == 4 * 236);
        if (k == 0) CHECK(done[AUTOFAISS_JOB_PQ_KMEANS] == 4 * 25);
        if (k == 2) CHECK(done[AUTOFAISS_JOB_PQ_KMEANS] == 8 * 25 && total[AUTOFAISS_JOB_PQ_KMEANS] == 200);
        if (k == 3) CHECK(done[AUTOFAISS_JOB_PQ_KMEANS] == 4 * 25);

        /* adding in chunks: done reaches n, the same index as one autofaiss_add call */
        AutofaissJob* job = NULL;
        OK(autofaiss_add(a, n, x, NULL));
        OK(autofaiss_job_add(b, n, x, NULL, 333, &job));
        double st[AUTOFAISS_JOB_STATUS_LEN];
        int adding = 1; /* every poll shows the add phase of n vectors */
        do {
            POLL_OK(autofaiss_job_status(job, st, AUTOFAISS_JOB_STATUS_LEN));
            adding &= st[1] == AUTOFAISS_JOB_ADD && st[3] == n;
        } while (st[0] == 0);
        CHECK(adding);
        CHECK(st[2] == n);
        OK(autofaiss_job_join(job));
        CHECK(faiss_Index_ntotal(b) == n);
        /* on one thread HNSW insertion is deterministic: the HNSW16 graph added by the job (one call,
         * counted from inside) is the one autofaiss_add builds in one call */
        if (k != 3) CHECK(same_bytes(a, b)); /* the HNSW quantizer is trained from its own k-means: compared above */
        faiss_Index_free(a);
        faiss_Index_free(b);
    }

    /* training levers inside a job (direct sub-space k-means, 3 OPQ outer iterations): the index
     * autofaiss_train_with_levers trains with the same options, byte for byte, and the direct loops
     * are counted as FAISS's own: OPQ 4 sub-quantizers x (40 + 2 x 4), PQ 4 x 25 */
    {
        FaissIndex *a = NULL, *b = NULL;
        untrained_pair("OPQ4_32,IVF32,PQ4", d, &a, &b);
        int applied = -1;
        OK(autofaiss_train_with_levers(a, n, x, 3, -1, -1, -1, -1, -1, 1, 0, &applied));
        double done[8] = {0}, total[8] = {0};
        job_train_levers(b, n, x, 3, 1, 0, done, total);
        CHECK(same_bytes(a, b));
        CHECK(done[AUTOFAISS_JOB_OPQ] == 4 * 48 && total[AUTOFAISS_JOB_OPQ] == 4 * 48);
        CHECK(done[AUTOFAISS_JOB_IVF_KMEANS] == 10);
        CHECK(done[AUTOFAISS_JOB_PQ_KMEANS] == 4 * 25 && total[AUTOFAISS_JOB_PQ_KMEANS] == 100);
        faiss_Index_free(a);
        faiss_Index_free(b);
    }

    /* the HNSW assignment of the IVF k-means counts its iterations like FAISS's own assignment, and
     * trains lists as good: with one probe, as many of a query's 10 exact neighbours are found */
    {
        FaissIndex* hnsw_assigned = NULL;
        OK(faiss_index_factory(&hnsw_assigned, d, "IVF32,Flat", METRIC_L2));
        double done[8] = {0}, total[8] = {0};
        job_train_levers(hnsw_assigned, n, x, -1, 0, 8, done, total);
        CHECK(faiss_Index_is_trained(hnsw_assigned) == 1);
        CHECK(done[AUTOFAISS_JOB_IVF_KMEANS] == 10 && total[AUTOFAISS_JOB_IVF_KMEANS] == 10);
        FaissIndex* own = NULL;
        OK(faiss_index_factory(&own, d, "IVF32,Flat", METRIC_L2));
        OK(faiss_Index_train(own, n, x));
        OK(faiss_Index_add(hnsw_assigned, n, x));
        OK(faiss_Index_add(own, n, x));
        enum { NQ = 200, K = 10 };
        float dist[NQ * K];
        idx_t exact[NQ * K], found[NQ * K];
        faiss_IndexIVF_set_nprobe(faiss_IndexIVF_cast(own), 32); /* every list: exact */
        OK(faiss_Index_search(own, NQ, x, K, dist, exact));
        int hits[2] = {0, 0};
        FaissIndex* pair[2] = {own, hnsw_assigned};
        for (int w = 0; w < 2; w++) {
            faiss_IndexIVF_set_nprobe(faiss_IndexIVF_cast(pair[w]), 1);
            OK(faiss_Index_search(pair[w], NQ, x, K, dist, found));
            for (int q = 0; q < NQ; q++)
                for (int i = 0; i < K; i++)
                    for (int j = 0; j < K; j++) hits[w] += found[q * K + i] == exact[q * K + j];
        }
        CHECK(hits[0] > NQ * K / 4);            /* one list of 32 holds a good share of them */
        CHECK(hits[1] >= hits[0] - NQ * K / 50); /* within 0.02 of recall@10 */
        faiss_Index_free(own);
        faiss_Index_free(hnsw_assigned);
    }

    /* an error inside the job comes back at join with FAISS's message */
    FaissIndex* ivf = NULL;
    OK(faiss_index_factory(&ivf, d, "IVF32,Flat", METRIC_L2));
    AutofaissJob* job = NULL;
    int applied_ivf = -1;
    OK(autofaiss_job_train(ivf, 10, x, -1, -1, -1, -1, -1, -1, 1, 0, &applied_ivf, &job));
    CHECK(applied_ivf == 2);
    FAILS_WITH(autofaiss_job_join(job), "should be at least as large as number of clusters");
    CHECK(faiss_Index_is_trained(ivf) == 0);
    /* the hooks were undone: a normal training still works */
    OK(faiss_Index_train(ivf, n, x));
    /* adding to an untrained index fails in the job thread, not the process */
    FaissIndex* untrained = NULL;
    OK(faiss_index_factory(&untrained, d, "IVF32,Flat", METRIC_L2));
    OK(autofaiss_job_add(untrained, n, x, NULL, 100, &job));
    FAILS_WITH(autofaiss_job_join(job), "is_trained");
    CHECK(autofaiss_job_join(NULL) == 0);
    faiss_Index_free(untrained);
    faiss_Index_free(ivf);
    free(x);
    OK(autofaiss_set_num_threads(threads));
}

/* autofaiss_add: an IVF-PQ with 3-dimensional sub-vectors (OPQ in front) gets its codes from the direct
 * loop; the index is FAISS's up to near ties: same size (same lists), at most 1 % of bytes differ, and
 * the same neighbours for almost every query. Other keys are FAISS's add, byte for byte. */
static void test_direct_add(void) {
    const int d = 24, n = 6000;
    float* x = make_data(n, d);
    const char* keys[] = {"OPQ8_24,IVF16,PQ8", "IVF16,PQ8", "IVF16,PQ4x4", "IVF16,SQ8"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        FaissIndex *a = NULL, *b = NULL;
        OK(faiss_index_factory(&a, d, keys[k], METRIC_L2));
        int applied;
        OK(autofaiss_set_polysemous_training(a, 0, &applied));
        OK(faiss_Index_train(a, n, x));
        OK(faiss_clone_index(a, &b));
        OK(faiss_Index_add(a, n, x));
        idx_t* ids = malloc(sizeof(idx_t) * n);
        for (int i = 0; i < n; i++) ids[i] = 1000 + 7 * i;
        OK(autofaiss_add(b, n / 2, x, NULL));
        OK(autofaiss_add(b, n - n / 2, x + (size_t)(n / 2) * d, NULL));
        CHECK(faiss_Index_ntotal(b) == n);
        size_t sa, sb;
        uint8_t* ba = serialize(a, &sa);
        uint8_t* bb = serialize(b, &sb);
        CHECK(sa == sb);
        size_t differ = 0;
        for (size_t i = 0; i < sa; i++) differ += ba[i] != bb[i];
        if (k < 2) CHECK(differ * 100 <= sa);
        else CHECK(differ == 0); /* 4-bit PQ and SQ: FAISS's own add */
        free(ba);
        free(bb);
        /* explicit ids land as given */
        FaissIndex* c = NULL;
        OK(faiss_clone_index(a, &c));
        OK(faiss_Index_reset(c));
        OK(autofaiss_add(c, n, x, ids));
        float dist[1];
        idx_t lab[1];
        OK(faiss_Index_search(c, 1, x + 77 * d, 1, dist, lab));
        CHECK(lab[0] >= 1000 && (lab[0] - 1000) % 7 == 0);
        faiss_Index_free(c);
        free(ids);
        faiss_Index_free(a);
        faiss_Index_free(b);
    }
    /* an untrained index: FAISS's error, no crash */
    FaissIndex* untrained = NULL;
    OK(faiss_index_factory(&untrained, d, "OPQ8_24,IVF16,PQ8", METRIC_L2));
    FAILS_WITH(autofaiss_add(untrained, n, x, NULL), "is_trained");
    faiss_Index_free(untrained);
    free(x);
}

/* A training job over an IndexPreTransform says when it stops reading its input (status out[12]);
 * overwriting the input from then on leaves the trained index what blocking training gives. Other
 * jobs never say so. ABI 7's status length (12) is still accepted, a shorter one refused. */
static void test_job_releases_input(void) {
    const int d = 32, n = 3000;
    float* x = make_data(n, d);
    int threads = one_thread();
    /* after the transform, IVF and 256-centroid PQ k-means (~0.1 s): far longer than a poll */
    /* PQ4x2: its PQ trains on 4 x 256 of the 3000 rows, drawn before the transformed rows are freed */
    const char* keys[] = {"OPQ4_32,IVF64,PQ4", "PCA16,IVF64,PQ4", "OPQ4_32,IVF64,PQ4x2", "IVF64,PQ4"};
    const int pretransformed[] = {1, 1, 1, 0};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        FaissIndex *a = NULL, *b = NULL;
        untrained_pair(keys[k], d, &a, &b);
        OK(faiss_Index_train(a, n, x));
        float* input = malloc(sizeof(float) * (size_t)n * d);
        memcpy(input, x, sizeof(float) * (size_t)n * d);
        AutofaissJob* job = NULL;
        int applied;
        OK(autofaiss_job_train(b, n, input, -1, -1, -1, -1, -1, -1, 0, 0, &applied, &job));
        double st[AUTOFAISS_JOB_STATUS_LEN];
        double short_status[AUTOFAISS_JOB_STATUS_MIN_LEN];
        int released = 0, finished_before_release = 0;
        POLL_OK(autofaiss_job_status(job, short_status, AUTOFAISS_JOB_STATUS_MIN_LEN));
        for (;;) {
            POLL_OK(autofaiss_job_status(job, st, AUTOFAISS_JOB_STATUS_LEN));
            if (st[12] == 1 && !released) {
                released = 1;
                finished_before_release = st[0] == 1;
                /* NaN poisons any k-means that would still read it */
                for (size_t i = 0; i < (size_t)n * d; i++) input[i] = NAN;
            }
            if (st[0] == 1) break;
            usleep(200);
        }
        OK(autofaiss_job_join(job));
        CHECK(released == pretransformed[k]);
        if (pretransformed[k]) {
            CHECK(!finished_before_release);
            CHECK(same_bytes(a, b));
        }
        free(input);
        faiss_Index_free(a);
        faiss_Index_free(b);
    }
    AutofaissJob* job = NULL;
    FaissIndex* flat = NULL;
    OK(faiss_index_factory(&flat, d, "IVF4,Flat", METRIC_L2));
    int applied;
    OK(autofaiss_job_train(flat, n, x, -1, -1, -1, -1, -1, -1, 0, 0, &applied, &job));
    double too_short[AUTOFAISS_JOB_STATUS_MIN_LEN - 1];
    FAILS_WITH(autofaiss_job_status(job, too_short, AUTOFAISS_JOB_STATUS_MIN_LEN - 1), "cap < AUTOFAISS_JOB_STATUS_MIN_LEN");
    OK(autofaiss_job_join(job));
    faiss_Index_free(flat);
    OK(autofaiss_set_num_threads(threads));
    free(x);
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* autofaiss_job_wait: a slice shorter than the job returns 0 after about its length; a long slice
 * returns 1 as the job ends, not when the slice would; a finished job answers 1 at once; bad
 * arguments are refused with a message. */
static void test_job_wait(void) {
    const int d = 32, n = 20000;
    float* x = make_data(n, d);
    int threads = one_thread();
    FaissIndex* ivf = NULL;
    OK(faiss_index_factory(&ivf, d, "IVF256,Flat", METRIC_L2));
    AutofaissJob* job = NULL;
    int applied = -1, finished = -1;
    double t0 = now_ms();
    /* 10 k-means iterations of 20,000 x 256 distances on one thread: far more than 5 ms */
    OK(autofaiss_job_train(ivf, n, x, -1, -1, -1, -1, -1, -1, 0, 0, &applied, &job));
    OK(autofaiss_job_wait(job, 5, &finished));
    CHECK(finished == 0);
    CHECK(now_ms() - t0 >= 5);
    double st[AUTOFAISS_JOB_STATUS_LEN];
    OK(autofaiss_job_wait(job, 120000, &finished));
    double waited = now_ms() - t0;
    CHECK(finished == 1);
    CHECK(waited < 60000); /* woken by the end of the job, not by the 120 s slice */
    OK(autofaiss_job_status(job, st, AUTOFAISS_JOB_STATUS_LEN));
    CHECK(st[0] == 1);
    finished = -1;
    t0 = now_ms();
    OK(autofaiss_job_wait(job, 0, &finished));
    CHECK(finished == 1);
    OK(autofaiss_job_wait(job, 120000, &finished));
    CHECK(finished == 1 && now_ms() - t0 < 60000);
    FAILS_WITH(autofaiss_job_wait(job, -1, &finished), "timeout_ms < 0");
    FAILS_WITH(autofaiss_job_wait(job, 0, NULL), "null argument");
    FAILS_WITH(autofaiss_job_wait(NULL, 0, &finished), "null argument");
    OK(autofaiss_job_join(job));
    CHECK(faiss_Index_is_trained(ivf) == 1);
    faiss_Index_free(ivf);
    OK(autofaiss_set_num_threads(threads));
    free(x);
}

int main(void) {
    test_direct_map_types();
    test_first_nonfinite();
    test_errors_and_ext();
    test_flat_and_io();
    test_ivf_paramspace();
    test_opq_fastscan();
    test_fast_scan_heap();
    test_polysemous();
    test_openmp_guards();
    test_merge_into();
    test_copy_transforms();
    test_train_levers();

    test_jobs();
    test_job_releases_input();
    test_job_train_transforms();
    test_job_wait();
    test_direct_add();
    printf("native C test: %d checks passed\n", checks);
    return 0;
}
