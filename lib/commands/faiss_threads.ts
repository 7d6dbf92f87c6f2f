/**
 * A command's OpenMP thread count, set for the command and put back afterwards: a library call
 * (buildIndex, scoreIndex) leaves the process's FAISS thread setting as it found it.
 */
import { numThreads, setNumThreads } from "../../ffi/faiss.ts";

/**
 * Runs `fn` with FAISS on `n` OpenMP threads (n ≤ 0: all cores), then restores the previous count.
 * A library without thread control (upstream builds) runs `fn` unchanged.
 */
export async function withFaissThreads<T>(n: number, fn: () => Promise<T>): Promise<T> {
  const previous = numThreads();
  setNumThreads(n);
  try {
    return await fn();
  } finally {
    if (previous !== null) setNumThreads(previous);
  }
}
