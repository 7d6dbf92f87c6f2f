/** A failed FAISS call: which C function, its status code, and FAISS's own message. */
export class FaissError extends Error {
  override readonly name = "FaissError";
  constructor(
    readonly call: string,
    readonly code: number,
    readonly faissMessage: string,
  ) {
    super(`${call} failed (code ${code}): ${faissMessage}`);
  }
}

/** Codes FAISS never returns, used for errors detected on the JS side of the boundary. */
export const CODE_USE_AFTER_FREE = -100;
export const CODE_BAD_ARGUMENT = -101;
export const CODE_UNSUPPORTED = -102;
