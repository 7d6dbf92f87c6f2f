/* Native baseline for tasks/bench_ffi.ts: median time of one faiss_Index_search of 1 query (k=10)
 * on a Flat index of 1000 × 16, of the same call with n = 0, and of faiss_Index_d, called from C. Prints three numbers in ns. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/index_factory_c.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}
static int cmp(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

int main(void) {
    enum { D = 16, N = 1000, CALLS = 20000, K = 10 };
    float* x = malloc(sizeof(float) * N * D);
    for (int i = 0; i < N * D; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f;
    FaissIndex* idx;
    if (faiss_index_factory(&idx, D, "Flat", METRIC_L2) || faiss_Index_add(idx, N, x)) return 1;
    float dist[K];
    idx_t lab[K];
    static double t[CALLS];
    for (int i = 0; i < 2000; i++) faiss_Index_search(idx, 1, x, K, dist, lab);
    for (int i = 0; i < CALLS; i++) {
        double s = now_ns();
        faiss_Index_search(idx, 1, x + (i % N) * D, K, dist, lab);
        t[i] = now_ns() - s;
    }
    qsort(t, CALLS, sizeof(double), cmp);
    double search = t[CALLS / 2];
    for (int i = 0; i < CALLS; i++) {
        double s = now_ns();
        faiss_Index_search(idx, 0, x, K, dist, lab); /* n = 0: the call itself */
        t[i] = now_ns() - s;
    }
    qsort(t, CALLS, sizeof(double), cmp);
    double empty = t[CALLS / 2];
    volatile int sink = 0;
    for (int i = 0; i < CALLS; i++) {
        double s = now_ns();
        sink += faiss_Index_d(idx);
        t[i] = now_ns() - s;
    }
    qsort(t, CALLS, sizeof(double), cmp);
    printf("%.0f %.0f %.0f\n", search, empty, t[CALLS / 2]);
    faiss_Index_free(idx);
    free(x);
    return sink == 0;
}
