/**
 * DP's `scatter`: split the global batch into one contiguous slice per replica.
 *
 * @module
 */
import { evenSplit } from "../core/even_split.ts";
import type { Batch } from "../core/trainer.ts";

/** Slice sizes for `total` samples over `parts` replicas (sizes differ by at most 1). */
function sliceSizes(total: number, parts: number): number[] {
  return evenSplit(total, parts).map((r) => r.length);
}

/**
 * Split `batch` into `parts` consecutive slices (sizes from `evenSplit`, differing by at most 1). Slice 0
 * stays on the main thread and views the batch; the others are copies, ready to be
 * transferred to their workers.
 *
 * @param batch the global batch
 * @param parts replicas (at most `batch.size`, so that no slice is empty)
 * @returns one batch per replica, in order
 * @example
 * ```ts
 * const batch = { x: new Float32Array(8), y: new Int32Array(4), size: 4 };
 * const [mine, theirs] = scatter(batch, 2);
 * ```
 */
export function scatter(batch: Batch, parts: number): Batch[] {
  if (parts > batch.size) {
    throw new RangeError(`Cannot scatter a batch of ${batch.size} over ${parts} replicas`);
  }
  const width = batch.x.length / batch.size;
  const labels = batch.y.length / batch.size;
  let start = 0;
  return sliceSizes(batch.size, parts).map((size, k) => {
    const end = start + size;
    const view = (a: Float32Array | Int32Array, w: number) => a.subarray(start * w, end * w);
    const x = view(batch.x, width) as Float32Array;
    const y = view(batch.y, labels) as Int32Array;
    start = end;
    return k === 0 ? { x, y, size } : { x: x.slice(), y: y.slice(), size };
  });
}

/**
 * Slice 0 of {@linkcode scatter}, as a view, without copying the others: what the main
 * replica computes on.
 *
 * @param batch the global batch
 * @param parts replicas
 * @returns the first slice
 * @example
 * ```ts
 * const batch = { x: new Float32Array(10), y: new Int32Array(5), size: 5 };
 * mainSlice(batch, 2).size; // 3
 * ```
 */
export function mainSlice(batch: Batch, parts: number): Batch {
  const size = sliceSizes(batch.size, parts)[0];
  const width = batch.x.length / batch.size;
  const labels = batch.y.length / batch.size;
  return {
    x: batch.x.subarray(0, size * width),
    y: batch.y.subarray(0, size * labels),
    size,
  };
}
