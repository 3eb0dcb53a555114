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

/** An interval for a median, with the probability that it holds the true median. */
export interface Interval {
  low: number;
  high: number;
  /** P(low ≤ true median ≤ high), from the binomial distribution of the sample (0 for n = 1). */
  level: number;
}

/** The level {@linkcode medianInterval} aims for. */
export const INTERVAL_TARGET_LEVEL = 0.9;

/** How {@linkcode medianInterval} works, as reports and the schema state it. */
export const INTERVAL_METHOD =
  "distribution-free interval for the median from the order statistics of the repeats' within-repeat ratios: the narrowest pair (k-th smallest, k-th largest) holding the true median with probability ≥ 90%, or the full range (min–max) where the repeats are too few for 90% — with n repeats it holds the median with probability 1 − 2^(1−n): 75% for 3, 94% for 5";

/**
 * A distribution-free interval for the median of the population `values` were drawn from:
 * the order statistics `(x_(k+1), x_(n−k))` hold it with probability `1 − 2·P(B ≤ k)`,
 * `B ~ Binomial(n, ½)`. The narrowest such pair reaching {@linkcode INTERVAL_TARGET_LEVEL} is
 * returned, or `(min, max)` with its own, lower level when no pair reaches it.
 *
 * @param values the sample (one value per repeat)
 * @returns the interval and its level
 * @example
 * ```ts
 * medianInterval([1.1, 1.3, 1.2]); // { low: 1.1, high: 1.3, level: 0.75 }
 * ```
 */
export function medianInterval(values: readonly number[]): Interval {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) throw new Error("Cannot take an interval of no values");
  const level = (k: number) => {
    // 1 − 2·P(B ≤ k), B ~ Binomial(n, 1/2)
    let cdf = 0;
    let choose = 1;
    for (let i = 0; i <= k; i++) {
      cdf += choose / 2 ** n;
      choose = (choose * (n - i)) / (i + 1);
    }
    return Math.max(0, 1 - 2 * cdf);
  };
  // Narrow from (min, max) inwards while the next pair still holds the level and stays ordered.
  let k = 0;
  while (2 * (k + 1) < n && level(k + 1) >= INTERVAL_TARGET_LEVEL) k++;
  return { low: sorted[k], high: sorted[n - 1 - k], level: level(k) };
}
