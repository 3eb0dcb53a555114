/**
 * Seeded pseudo-random numbers: the same seed gives the same stream on every backend,
 * process and worker, which is what makes strategies comparable parameter for parameter.
 *
 * @module
 */

/** A seeded generator of floats in [0, 1). */
export type Rng = () => number;

/**
 * mulberry32: a small, fast 32-bit generator; good enough for shuffles and initialisation.
 *
 * @param seed any integer
 * @returns a function returning floats in [0, 1)
 * @example
 * ```ts
 * const rng = createRng(42);
 * rng(); // same value every time for seed 42
 * ```
 */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A standard normal sample (Box–Muller).
 *
 * @param rng the generator to draw from
 * @returns one sample of N(0, 1)
 * @example
 * ```ts
 * const z = normal(createRng(1));
 * ```
 */
export function normal(rng: Rng): number {
  const u = 1 - rng(); // (0, 1]: log stays finite
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/**
 * A seeded permutation of 0..n-1 (Fisher–Yates).
 *
 * @param n length
 * @param rng the generator to draw from
 * @returns the permutation
 * @example
 * ```ts
 * permutation(5, createRng(0)); // e.g. Int32Array [3, 0, 4, 1, 2]
 * ```
 */
export function permutation(n: number, rng: Rng): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const tmp = out[i];
    out[i] = out[j];
    out[j] = tmp;
  }
  return out;
}
