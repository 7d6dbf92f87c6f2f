/**
 * Frees large buffers now rather than at the next garbage collection. build_index's peak memory
 * is index + one batch + the training sample if the sample is still alive when adding starts;
 * with a 614 MB sample that was the difference between meeting and missing the memory target.
 */

type Transferable = ArrayBuffer & { transfer?: (length: number) => ArrayBuffer; detached?: boolean };

/**
 * Detaches the buffers behind `views` (every view of them reads as empty afterwards) so the
 * runtime can return their memory at once: Deno frees a transferred-away buffer immediately;
 * Bun (JavaScriptCore) does so at the next collection, which is forced here (~50 ms per GB).
 *
 * @example
 * ```ts
 * index.train(sample.vectors);
 * releaseNow(sample.vectors); // sample.vectors.length === 0 from here on
 * ```
 */
export function releaseNow(...views: ArrayBufferView[]): void {
  let released = false;
  for (const view of views) {
    const buffer = view.buffer as Transferable;
    if (typeof buffer.transfer !== "function" || buffer.detached) continue; // SharedArrayBuffer, or done
    buffer.transfer(0);
    released = true;
  }
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (released && bun) bun.gc(true);
}
