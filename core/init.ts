/**
 * Seeded parameter initialisers, computed in JavaScript so that every backend, process and
 * worker starts from bit-identical parameters.
 *
 * @module
 */
import { normal, type Rng } from "./rng.ts";

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Fan-in and fan-out of a dense `[in, out]` or conv `[kh, kw, in, out]` kernel. */
function fans(shape: number[]): [number, number] {
  const receptive = shape.length > 2 ? size(shape.slice(0, -2)) : 1;
  const fanIn = shape.length >= 2 ? shape[shape.length - 2] * receptive : shape[0];
  const fanOut = shape[shape.length - 1] * receptive;
  return [fanIn, fanOut];
}

/**
 * Glorot (Xavier) uniform: U(−l, l), l = sqrt(6 / (fanIn + fanOut)).
 *
 * @param rng the generator to draw from
 * @param shape the parameter's shape
 * @returns the initial values
 * @example
 * ```ts
 * import { createRng } from "./rng.ts";
 * glorotUniform(createRng(0), [784, 256]);
 * ```
 */
export function glorotUniform(rng: Rng, shape: number[]): Float32Array {
  const [fanIn, fanOut] = fans(shape);
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  const out = new Float32Array(size(shape));
  for (let i = 0; i < out.length; i++) out[i] = (2 * rng() - 1) * limit;
  return out;
}

/**
 * He normal: N(0, 2 / fanIn), suited to ReLU layers.
 *
 * @param rng the generator to draw from
 * @param shape the parameter's shape
 * @returns the initial values
 * @example
 * ```ts
 * import { createRng } from "./rng.ts";
 * heNormal(createRng(0), [3, 3, 1, 8]);
 * ```
 */
export function heNormal(rng: Rng, shape: number[]): Float32Array {
  const [fanIn] = fans(shape);
  const std = Math.sqrt(2 / fanIn);
  const out = new Float32Array(size(shape));
  for (let i = 0; i < out.length; i++) out[i] = normal(rng) * std;
  return out;
}

/**
 * All zeros (biases).
 *
 * @param _rng unused
 * @param shape the parameter's shape
 * @returns zeros
 * @example
 * ```ts
 * import { createRng } from "./rng.ts";
 * zeros(createRng(0), [10]);
 * ```
 */
export function zeros(_rng: Rng, shape: number[]): Float32Array {
  return new Float32Array(size(shape));
}
