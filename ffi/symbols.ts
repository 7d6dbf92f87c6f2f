/**
 * Every native symbol autofaiss calls, in FAISS C API names (`/usr/include/faiss/c_api/*.h`),
 * with the C declaration in a trailing comment. No other module names a native symbol.
 *
 * Types are runtime-neutral; the adapters (ffi/bun.ts, ffi/deno.ts) map them:
 * - `handle`: a pointer carried as a bigint address (FaissIndex*, FaissParameterSpace*, …);
 * - `buffer`: a JS typed array passed as a pointer to its bytes (float*, idx_t*, char*, T** out-params);
 * - `cstring`: a returned `const char*`, copied into a JS string (null stays null).
 * `optional: true` marks symbols an upstream libfaiss_c.so may lack: all autofaiss_* extensions, and
 * the GPU functions (only in upstream builds with GPU support; not in Debian's headers).
 */
export type ArgType = "i32" | "i64" | "u64" | "f64" | "handle" | "buffer";
export type ResultType = "void" | "i32" | "i64" | "u64" | "handle" | "cstring";

export interface SymbolSpec {
  readonly args: readonly ArgType[];
  readonly returns: ResultType;
  readonly optional?: boolean;
}

export const SYMBOLS = {
  // ---- error_c.h ----
  faiss_get_last_error: { args: [], returns: "cstring" }, // const char* faiss_get_last_error()

  // ---- index_factory_c.h ----
  faiss_index_factory: {
    // int faiss_index_factory(FaissIndex** p_index, int d, const char* description, FaissMetricType metric)
    args: ["buffer", "i32", "buffer", "i32"],
    returns: "i32",
  },

  // ---- Index_c.h ----
  faiss_Index_free: { args: ["handle"], returns: "void" }, // void faiss_Index_free(FaissIndex* obj)
  faiss_Index_d: { args: ["handle"], returns: "i32" }, // int faiss_Index_d(const FaissIndex*)
  faiss_Index_is_trained: { args: ["handle"], returns: "i32" }, // int faiss_Index_is_trained(const FaissIndex*)
  faiss_Index_ntotal: { args: ["handle"], returns: "i64" }, // idx_t faiss_Index_ntotal(const FaissIndex*)
  faiss_Index_metric_type: { args: ["handle"], returns: "i32" }, // FaissMetricType faiss_Index_metric_type(const FaissIndex*)
  faiss_Index_set_verbose: { args: ["handle", "i32"], returns: "void" }, // void faiss_Index_set_verbose(FaissIndex*, int)
  faiss_Index_train: {
    args: ["handle", "i64", "buffer"], // int faiss_Index_train(FaissIndex* index, idx_t n, const float* x)
    returns: "i32",
  },
  faiss_Index_add: {
    args: ["handle", "i64", "buffer"], // int faiss_Index_add(FaissIndex* index, idx_t n, const float* x)
    returns: "i32",
  },
  faiss_Index_add_with_ids: {
    // int faiss_Index_add_with_ids(FaissIndex* index, idx_t n, const float* x, const idx_t* xids)
    args: ["handle", "i64", "buffer", "buffer"],
    returns: "i32",
  },
  faiss_Index_search: {
    // int faiss_Index_search(const FaissIndex* index, idx_t n, const float* x, idx_t k, float* distances, idx_t* labels)
    args: ["handle", "i64", "buffer", "i64", "buffer", "buffer"],
    returns: "i32",
  },
  faiss_Index_reset: { args: ["handle"], returns: "i32" }, // int faiss_Index_reset(FaissIndex* index)
  faiss_Index_reconstruct: {
    args: ["handle", "i64", "buffer"], // int faiss_Index_reconstruct(const FaissIndex* index, idx_t key, float* recons)
    returns: "i32",
  },
  faiss_Index_reconstruct_n: {
    // int faiss_Index_reconstruct_n(const FaissIndex* index, idx_t i0, idx_t ni, float* recons)
    args: ["handle", "i64", "i64", "buffer"],
    returns: "i32",
  },
  faiss_Index_sa_code_size: {
    args: ["handle", "buffer"], // int faiss_Index_sa_code_size(const FaissIndex* index, size_t* size)
    returns: "i32",
  },
  faiss_Index_sa_encode: {
    // int faiss_Index_sa_encode(const FaissIndex* index, idx_t n, const float* x, uint8_t* bytes)
    args: ["handle", "i64", "buffer", "buffer"],
    returns: "i32",
  },
  faiss_Index_sa_decode: {
    // int faiss_Index_sa_decode(const FaissIndex* index, idx_t n, const uint8_t* bytes, float* x)
    args: ["handle", "i64", "buffer", "buffer"],
    returns: "i32",
  },

  // ---- clone_index_c.h, index_io_c.h ----
  faiss_clone_index: { args: ["handle", "buffer"], returns: "i32" }, // int faiss_clone_index(const FaissIndex*, FaissIndex** p_out)
  faiss_write_index_fname: {
    args: ["handle", "buffer"], // int faiss_write_index_fname(const FaissIndex* idx, const char* fname)
    returns: "i32",
  },
  faiss_read_index_fname: {
    args: ["buffer", "i32", "buffer"], // int faiss_read_index_fname(const char* fname, int io_flags, FaissIndex** p_out)
    returns: "i32",
  },

  // ---- AutoTune_c.h ----
  faiss_ParameterSpace_new: { args: ["buffer"], returns: "i32" }, // int faiss_ParameterSpace_new(FaissParameterSpace** space)
  faiss_ParameterSpace_free: { args: ["handle"], returns: "void" }, // void faiss_ParameterSpace_free(FaissParameterSpace*)
  faiss_ParameterSpace_set_index_parameters: {
    // int faiss_ParameterSpace_set_index_parameters(const FaissParameterSpace*, FaissIndex*, const char*)
    args: ["handle", "handle", "buffer"],
    returns: "i32",
  },
  faiss_ParameterSpace_set_index_parameter: {
    // int faiss_ParameterSpace_set_index_parameter(const FaissParameterSpace*, FaissIndex*, const char*, double)
    args: ["handle", "handle", "buffer", "f64"],
    returns: "i32",
  },

  // ---- IndexIVF_c.h ----
  faiss_IndexIVF_cast: { args: ["handle"], returns: "handle" }, // FaissIndexIVF* faiss_IndexIVF_cast(FaissIndex*)
  faiss_IndexIVF_nlist: { args: ["handle"], returns: "u64" }, // size_t faiss_IndexIVF_nlist(const FaissIndexIVF*)
  faiss_IndexIVF_nprobe: { args: ["handle"], returns: "u64" }, // size_t faiss_IndexIVF_nprobe(const FaissIndexIVF*)
  faiss_IndexIVF_set_nprobe: { args: ["handle", "u64"], returns: "void" }, // void faiss_IndexIVF_set_nprobe(FaissIndexIVF*, size_t)
  faiss_IndexIVF_merge_from: {
    // int faiss_IndexIVF_merge_from(FaissIndexIVF* index, FaissIndexIVF* other, idx_t add_id)
    args: ["handle", "handle", "i64"],
    returns: "i32",
  },
  faiss_IndexIVF_make_direct_map: {
    // int faiss_IndexIVF_make_direct_map(FaissIndexIVF* index, int new_maintain_direct_map)
    args: ["handle", "i32"],
    returns: "i32",
  },
  faiss_IndexIVF_get_list_size: {
    args: ["handle", "u64"], // size_t faiss_IndexIVF_get_list_size(const FaissIndexIVF* index, size_t list_no)
    returns: "u64",
  },

  // ---- c_api/gpu/*.h (upstream GPU builds only; FaissStandardGpuResources is a FaissGpuResourcesProvider,
  //      FaissGpuIndex is a FaissIndex) ----
  faiss_get_num_gpus: { args: ["buffer"], returns: "i32", optional: true }, // int faiss_get_num_gpus(int* p_output)
  faiss_StandardGpuResources_new: {
    args: ["buffer"], // int faiss_StandardGpuResources_new(FaissStandardGpuResources**)
    returns: "i32",
    optional: true,
  },
  faiss_StandardGpuResources_free: {
    args: ["handle"], // void faiss_StandardGpuResources_free(FaissStandardGpuResources* obj)
    returns: "void",
    optional: true,
  },
  faiss_index_cpu_to_gpu: {
    // int faiss_index_cpu_to_gpu(FaissGpuResourcesProvider* provider, int device, const FaissIndex* index, FaissGpuIndex** p_out)
    args: ["handle", "i32", "handle", "buffer"],
    returns: "i32",
    optional: true,
  },
  faiss_index_gpu_to_cpu: {
    args: ["handle", "buffer"], // int faiss_index_gpu_to_cpu(const FaissIndex* gpu_index, FaissIndex** p_out)
    returns: "i32",
    optional: true,
  },

  // ---- autofaiss_ext.h (ours; absent from upstream libfaiss_c.so) ----
  autofaiss_build_info: {
    args: ["buffer", "u64", "buffer"], // int autofaiss_build_info(char* buf, size_t cap, int* abi_version)
    returns: "i32",
    optional: true,
  },
  autofaiss_set_num_threads: { args: ["i32"], returns: "i32", optional: true }, // int autofaiss_set_num_threads(int n)
  autofaiss_get_num_threads: { args: ["buffer"], returns: "i32", optional: true }, // int autofaiss_get_num_threads(int* n)
  autofaiss_serialized_size: {
    args: ["handle", "buffer"], // int autofaiss_serialized_size(const FaissIndex* index, size_t* size)
    returns: "i32",
    optional: true,
  },
  autofaiss_write_index_buffer: {
    // int autofaiss_write_index_buffer(const FaissIndex* index, uint8_t* buf, size_t cap, size_t* written)
    args: ["handle", "buffer", "u64", "buffer"],
    returns: "i32",
    optional: true,
  },
  autofaiss_read_index_buffer: {
    // int autofaiss_read_index_buffer(const uint8_t* buf, size_t size, int io_flags, FaissIndex** p_out)
    args: ["buffer", "u64", "i32", "buffer"],
    returns: "i32",
    optional: true,
  },
  autofaiss_extract_index_ivf: {
    args: ["handle", "buffer"], // int autofaiss_extract_index_ivf(FaissIndex* index, FaissIndexIVF** p_ivf)
    returns: "i32",
    optional: true,
  },
  autofaiss_merge_into: {
    args: ["handle", "handle"], // int autofaiss_merge_into(FaissIndex* dst, FaissIndex* src)
    returns: "i32",
    optional: true,
  },
  autofaiss_copy_transforms: {
    args: ["handle", "handle"], // int autofaiss_copy_transforms(FaissIndex* dst, const FaissIndex* src)
    returns: "i32",
    optional: true,
  },
  autofaiss_describe_index: {
    args: ["handle", "buffer", "u64"], // int autofaiss_describe_index(const FaissIndex* index, char* buf, size_t cap)
    returns: "i32",
    optional: true,
  },
  autofaiss_invlists_class: {
    args: ["handle", "buffer", "u64"], // int autofaiss_invlists_class(const FaissIndex* index, char* buf, size_t cap)
    returns: "i32",
    optional: true,
  },
  autofaiss_set_polysemous_training: {
    // int autofaiss_set_polysemous_training(FaissIndex* index, int enabled, int* applied)
    args: ["handle", "i32", "buffer"],
    returns: "i32",
    optional: true,
  },
  autofaiss_fast_scan_use_heap: {
    // int autofaiss_fast_scan_use_heap(FaissIndex* index, int* applied)
    args: ["handle", "buffer"],
    returns: "i32",
    optional: true,
  },
  autofaiss_first_nonfinite: {
    args: ["buffer", "u64", "buffer"], // int autofaiss_first_nonfinite(const float* x, size_t n, int64_t* index)
    returns: "i32",
    optional: true,
  },

  // ---- N-part indices (issue 13) ----
  autofaiss_ivf_set_direct_map: {
    args: ["handle", "i32"], // int autofaiss_ivf_set_direct_map(FaissIndexIVF* ivf, int type)
    returns: "i32",
    optional: true,
  },

  // ---- Training levers (issue 12) ----
  autofaiss_train_with_levers: {
    // int autofaiss_train_with_levers(FaissIndex* index, int64_t n, const float* x, int opq_niter, int opq_niter_pq,
    //     int64_t opq_max_train_points, int ivf_niter, int ivf_max_points_per_centroid, int pq_niter,
    //     int direct_subspace, int ivf_hnsw_assign_m, int* applied)
    args: ["handle", "i64", "buffer", "i32", "i32", "i64", "i32", "i32", "i32", "i32", "i32", "buffer"],
    returns: "i32",
    optional: true,
  },

  autofaiss_add: {
    args: ["handle", "i64", "buffer", "buffer"], // int autofaiss_add(FaissIndex* index, int64_t n, const float* x, const int64_t* xids /* or NULL */)
    returns: "i32",
    optional: true,
  },

  // ---- progress jobs (issue 12): native/jobs.cpp ----
  autofaiss_job_train: {
    // int autofaiss_job_train(FaissIndex* index, idx_t n, const float* x, <the 8 options of autofaiss_train_with_levers>,
    //     int* applied, AutofaissJob** p_job)
    args: ["handle", "i64", "buffer", "i32", "i32", "i64", "i32", "i32", "i32", "i32", "i32", "buffer", "buffer"],
    returns: "i32",
    optional: true,
  },
  autofaiss_job_train_ex: {
    // int autofaiss_job_train_ex(<the arguments of autofaiss_job_train before applied>, int flags, int* applied,
    //     AutofaissJob** p_job); ABI 10
    args: ["handle", "i64", "buffer", "i32", "i32", "i64", "i32", "i32", "i32", "i32", "i32", "i32", "buffer", "buffer"],
    returns: "i32",
    optional: true,
  },
  autofaiss_job_add: {
    // int autofaiss_job_add(FaissIndex* index, idx_t n, const float* x, const idx_t* xids /* or NULL */, idx_t chunk_rows, AutofaissJob** p_job)
    args: ["handle", "i64", "buffer", "buffer", "i64", "buffer"],
    returns: "i32",
    optional: true,
  },
  autofaiss_job_status: {
    args: ["handle", "buffer", "u64"], // int autofaiss_job_status(const AutofaissJob* job, double* out, size_t cap)
    returns: "i32",
    optional: true,
  },
  autofaiss_job_wait: {
    args: ["handle", "i64", "buffer"], // int autofaiss_job_wait(AutofaissJob* job, int64_t timeout_ms, int* finished); ABI 9
    returns: "i32",
    optional: true,
  },
  autofaiss_job_join: { args: ["handle"], returns: "i32", optional: true }, // int autofaiss_job_join(AutofaissJob* job)
} as const satisfies Record<string, SymbolSpec>;

export type SymbolName = keyof typeof SYMBOLS;

/** FaissMetricType (Index_c.h). */
export const METRIC_INNER_PRODUCT = 0;
export const METRIC_L2 = 1;

/** index_io_c.h flags. Our library maps FAISS_IO_FLAG_MMAP (1) to C++'s IO_FLAG_MMAP; upstream
 *  libfaiss_c.so passes flags through unchanged, so callers also set the C++ bits (bit 0 is unused
 *  there) and mmap works with either library. */
export const FAISS_IO_FLAG_MMAP = 1;
export const FAISS_IO_FLAG_READ_ONLY = 2;
export const CXX_IO_FLAG_MMAP = 0x646f0008; // faiss/index_io.h: IO_FLAG_SKIP_IVF_DATA | 0x646f0000

/**
 * The CPU probe, native/build/libautofaiss_cpu.so (native/cpu_features.c): a library of its own,
 * opened by ffi/library.ts before it chooses which FAISS variant to open.
 */
export const CPU_SYMBOLS = {
  autofaiss_cpu_features: { args: [], returns: "i32" }, // int autofaiss_cpu_features(void): bit 0 avx2, 1 fma, 2 f16c, 3 popcnt
} as const satisfies Record<string, SymbolSpec>;
