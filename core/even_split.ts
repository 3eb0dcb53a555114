/**
 * Splitting `total` items into `parts` consecutive pieces as evenly as possible: the first
 * `total mod parts` pieces one larger, so sizes differ by at most 1. DP's scatter cuts the
 * global batch this way, and the ring all-reduce its buffer.
 *
 * @module
 */

/** A contiguous range of items. */
export interface Range {
  offset: number;
  length: number;
}

/**
 * The pieces, as offsets and lengths.
 *
 * @param total items to split
 * @param parts pieces (some are empty when `total < parts`)
 * @returns one range per piece, in order, covering `0..total`
 * @example
 * ```ts
 * evenSplit(10, 3); // [{offset: 0, length: 4}, {offset: 4, length: 3}, {offset: 7, length: 3}]
 * ```
 */
export function evenSplit(total: number, parts: number): Range[] {
  const base = Math.floor(total / parts);
  const extra = total % parts;
  return Array.from({ length: parts }, (_, k) => ({
    offset: k * base + Math.min(k, extra),
    length: base + (k < extra ? 1 : 0),
  }));
}
