import { createRng, permutation } from "../core/rng.ts";
import type { Dataset, Split } from "../core/workload.ts";

/** Fraction of samples held out for the accuracy check. */
export const HOLDOUT_FRACTION = 0.2;

/**
 * Shuffle samples with `seed` and hold out {@linkcode HOLDOUT_FRACTION} of them.
 *
 * @param x all samples, flat
 * @param y all labels
 * @param meta shape and class count
 * @param seed shuffle seed
 * @returns the dataset with `train` and `test` splits
 */
export function splitDataset(
  x: Float32Array,
  y: Int32Array,
  meta: { featureShape: number[]; numClasses: number },
  seed: number,
): Dataset {
  const n = y.length;
  const width = x.length / n;
  const order = permutation(n, createRng(seed ^ 0x5eed));
  const testSize = Math.max(1, Math.round(n * HOLDOUT_FRACTION));
  const take = (from: number, to: number): Split => {
    const size = to - from;
    const xs = new Float32Array(size * width);
    const ys = new Int32Array(size);
    for (let i = 0; i < size; i++) {
      const src = order[from + i];
      xs.set(x.subarray(src * width, (src + 1) * width), i * width);
      ys[i] = y[src];
    }
    return { x: xs, y: ys, size };
  };
  return { ...meta, test: take(0, testSize), train: take(testSize, n) };
}
