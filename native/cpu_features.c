/*
 * libautofaiss_cpu.so: tells the loader (ffi/library.ts) whether this CPU can run the AVX2 variant of
 * our FAISS library, before either variant is opened. It is its own tiny library because the answer is
 * needed before choosing: the AVX2 FAISS library may run AVX2 instructions in its static constructors
 * (SIGILL on an older CPU), and opening the GENERIC one only to ask would map a second 30 MB FAISS.
 *
 * Why not /proc/cpuinfo: Deno (2.x) refuses to read files under /proc without --allow-all, and the CLI runs with
 * --allow-read/write/env/ffi. Calling a native function needs only --allow-ffi, which the CLI has anyway.
 *
 * Plain C with no dependency at run time: libgcc's CPU model (__cpu_model) is linked in statically.
 */

/** Bit i is set when the CPU (and the OS, for the AVX register state) supports feature i. */
enum {
  AUTOFAISS_CPU_AVX2 = 1 << 0,
  AUTOFAISS_CPU_FMA = 1 << 1,
  AUTOFAISS_CPU_F16C = 1 << 2,
  AUTOFAISS_CPU_POPCNT = 1 << 3,
};

/**
 * The features FAISS's faiss_avx2 target is compiled for (-mavx2 -mfma -mf16c -mpopcnt), as a bit set
 * (AUTOFAISS_CPU_*). GCC's __builtin_cpu_supports reads CPUID and, for the AVX family, checks with
 * XGETBV that the OS saves the YMM registers. Cannot fail.
 */
__attribute__((visibility("default"))) int autofaiss_cpu_features(void) {
  __builtin_cpu_init();
  int bits = 0;
  if (__builtin_cpu_supports("avx2")) bits |= AUTOFAISS_CPU_AVX2;
  if (__builtin_cpu_supports("fma")) bits |= AUTOFAISS_CPU_FMA;
  if (__builtin_cpu_supports("f16c")) bits |= AUTOFAISS_CPU_F16C;
  if (__builtin_cpu_supports("popcnt")) bits |= AUTOFAISS_CPU_POPCNT;
  return bits;
}
