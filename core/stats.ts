/**
 * Summary statistics of step times.
 *
 * @module
 */

/** p50, p95 and mean of a sample, in the sample's unit. */
export interface Percentiles {
  p50: number;
  p95: number;
  mean: number;
}

/**
 * Linear-interpolated quantile of an unsorted sample.
 *
 * @param values the sample (not modified)
 * @param q quantile in [0, 1]
 * @returns the quantile, NaN for an empty sample
 * @example
 * ```ts
 * quantile([1, 2, 3, 4], 0.5); // 2.5
 * ```
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * p50, p95 and mean.
 *
 * @param values the sample
 * @returns the summary
 * @example
 * ```ts
 * summarize([10, 11, 30]).p50; // 11
 * ```
 */
export function summarize(values: readonly number[]): Percentiles {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return { p50: quantile(values, 0.5), p95: quantile(values, 0.95), mean };
}

/**
 * Median of a sample.
 *
 * @param values the sample
 * @returns the median
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}
