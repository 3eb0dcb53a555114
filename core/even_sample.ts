/**
 * Bounding a long series for a file: the first and last few items whole, an even sample of
 * those between. Traces keep their steps this way, and results their step samples.
 *
 * @module
 */

/**
 * At most `max` of `items`: the first and last `edge` of them, and an evenly spaced sample of
 * the rest; `items` itself when it has no more than `max`.
 *
 * @param items the series, in order
 * @param max the most to keep (more than `2 · edge`)
 * @param edge items kept whole at each end
 * @returns the kept items, in order
 * @example
 * ```ts
 * evenSample(Array.from({ length: 1000 }, (_, i) => i), 100, 10).length; // 100
 * ```
 */
export function evenSample<T>(items: readonly T[], max: number, edge: number): T[] {
  if (items.length <= max) return [...items];
  const middle = items.slice(edge, items.length - edge);
  const room = max - 2 * edge;
  const stride = middle.length / room;
  return [
    ...items.slice(0, edge),
    ...Array.from({ length: room }, (_, i) => middle[Math.floor(i * stride)]),
    ...items.slice(items.length - edge),
  ];
}
