import { createRng, permutation } from "../core/rng.ts";
import type { Dataset, Split } from "../core/workload.ts";

/** Fraction of samples held out for the accuracy check. */
export const HOLDOUT_FRACTION = 0.2;

/**
 * Shuffle samples with `seed` and hold out {@linkcode HOLDOUT_FRACTION} of them (or
 * `testSize`).
 *
 * @param x all samples, flat
 * @param y all labels (`labelsPerSample` per sample, sample after sample)
 * @param meta shape, class count and labels per sample (default 1)
 * @param seed shuffle seed
 * @param options `testSize`: samples held out, instead of the fraction
 * @returns the dataset with `train` and `test` splits
 */
export function splitDataset(
  x: Float32Array,
  y: Int32Array,
  meta: { featureShape: number[]; numClasses: number; labelsPerSample?: number },
  seed: number,
  options: { testSize?: number } = {},
): Dataset {
  const labels = meta.labelsPerSample ?? 1;
  const n = y.length / labels;
  const width = x.length / n;
  const order = permutation(n, createRng(seed ^ 0x5eed));
  const testSize = options.testSize ?? Math.max(1, Math.round(n * HOLDOUT_FRACTION));
  const take = (from: number, to: number): Split => {
    const size = to - from;
    const xs = new Float32Array(size * width);
    const ys = new Int32Array(size * labels);
    for (let i = 0; i < size; i++) {
      const src = order[from + i];
      xs.set(x.subarray(src * width, (src + 1) * width), i * width);
      if (labels === 1) ys[i] = y[src];
      else ys.set(y.subarray(src * labels, (src + 1) * labels), i * labels);
    }
    return { x: xs, y: ys, size };
  };
  return { ...meta, test: take(0, testSize), train: take(testSize, n) };
}
