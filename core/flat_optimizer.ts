/**
 * Optimizers that step a flat parameter buffer with a flat gradient, in place: the same
 * update rules as TensorFlow.js's `sgd`, `momentum` and `adam`, without building a dozen
 * small tensors per parameter per step (measured: most of a step's update time).
 *
 * @module
 */
import type { OptimizerSpec } from "./workload.ts";
import type { AdamKernel, AdamRule } from "./backend_seam.ts";

/** Momentum of the `momentum` optimizer (tfjs has no default; 0.9 is the usual). */
const MOMENTUM = 0.9;
/** Adam's decay of the first moment (tfjs default). */
const ADAM_BETA1 = 0.9;
/** Adam's decay of the second moment (tfjs default). */
const ADAM_BETA2 = 0.999;
/** Adam's epsilon: tfjs uses the float32 backend epsilon. */
const ADAM_EPSILON = 1e-7;

/** Steps flat parameters in place. */
export interface FlatOptimizer {
  /** One update of `params` with `grads` (same length). */
  step(params: Float32Array, grads: Float32Array): void;
  /**
   * Where the update reads and writes parameters, where it has a place of its own (the SIMD
   * Adam's memory): parameters kept there are updated without being copied in and out.
   */
  params?: Float32Array;
}

/**
 * A flat optimizer for `spec`, with state for `size` parameters.
 *
 * @param spec optimizer kind and learning rate
 * @param size number of parameters
 * @param options `adam`: the backend's own Adam update (native's runs in WebAssembly SIMD, in
 *   float32), used where it returns one; otherwise Adam runs here in JavaScript, in float64
 * @returns the optimizer
 * @example
 * ```ts
 * const params = new Float32Array(10);
 * const grads = new Float32Array(10).fill(0.1);
 * const opt = createFlatOptimizer({ kind: "adam", learningRate: 1e-3 }, params.length);
 * opt.step(params, grads);
 * ```
 */
export function createFlatOptimizer(
  spec: OptimizerSpec,
  size: number,
  options: { adam?: (size: number, rule: AdamRule) => AdamKernel | null } = {},
): FlatOptimizer {
  const lr = spec.learningRate;
  switch (spec.kind) {
    case "sgd":
      return {
        step(p, g) {
          for (let i = 0; i < p.length; i++) p[i] -= lr * g[i];
        },
      };
    case "momentum": {
      const velocity = new Float32Array(size);
      return {
        step(p, g) {
          for (let i = 0; i < p.length; i++) {
            velocity[i] = MOMENTUM * velocity[i] + g[i];
            p[i] -= lr * velocity[i];
          }
        },
      };
    }
    case "adam": {
      // Step t's bias corrections: the step size for the first moment, the scale of the second.
      const corrections = (t: number) =>
        [lr / (1 - ADAM_BETA1 ** t), 1 / (1 - ADAM_BETA2 ** t)] as const;
      const own = options.adam?.(size, {
        beta1: ADAM_BETA1,
        beta2: ADAM_BETA2,
        epsilon: ADAM_EPSILON,
      });
      if (own) {
        let steps = 0;
        return { step: (p, g) => own.step(p, g, ...corrections(++steps)), params: own.params };
      }
      const m = new Float32Array(size);
      const v = new Float32Array(size);
      let t = 0;
      return {
        step(p, g) {
          const [stepSize, secondScale] = corrections(++t);
          for (let i = 0; i < p.length; i++) {
            const gi = g[i];
            const mi = ADAM_BETA1 * m[i] + (1 - ADAM_BETA1) * gi;
            const vi = ADAM_BETA2 * v[i] + (1 - ADAM_BETA2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] -= (stepSize * mi) / (Math.sqrt(vi * secondScale) + ADAM_EPSILON);
          }
        },
      };
    }
  }
}
