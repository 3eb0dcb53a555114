/**
 * Small building blocks for {@linkcode ModelDef}s: parameter definitions and FLOP counts
 * for dense and conv layers, so a workload's model reads like its architecture.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import { convBlock, denseLayer, type FusedActivation } from "./nn_ops.ts";
import { glorotUniform, heNormal, zeros } from "./init.ts";
import type { ParamDef } from "./workload.ts";

/** FLOPs of one training step per multiply-accumulate of the forward pass: 2 forward, 4 backward. */
const TRAIN_FLOPS_PER_MAC = 6;

/**
 * Parameters `${name}/kernel` `[inputs, units]` and `${name}/bias` `[units]`.
 *
 * @param name layer name
 * @param inputs input features
 * @param units output features
 * @returns the two parameter definitions
 * @example
 * ```ts
 * denseParams("fc1", 784, 256);
 * ```
 */
export function denseParams(name: string, inputs: number, units: number): ParamDef[] {
  return [
    { name: `${name}/kernel`, shape: [inputs, units], init: glorotUniform },
    { name: `${name}/bias`, shape: [units], init: zeros },
  ];
}

/**
 * Parameters of a `size×size` NHWC convolution: kernel `[size, size, inC, outC]`, bias.
 *
 * @param name layer name
 * @param size kernel height and width
 * @param inChannels input channels
 * @param outChannels filters
 * @returns the two parameter definitions
 * @example
 * ```ts
 * convParams("conv1", 3, 1, 8);
 * ```
 */
export function convParams(
  name: string,
  size: number,
  inChannels: number,
  outChannels: number,
): ParamDef[] {
  return [
    { name: `${name}/kernel`, shape: [size, size, inChannels, outChannels], init: heNormal },
    { name: `${name}/bias`, shape: [outChannels], init: zeros },
  ];
}

/**
 * `activation(x · kernel + bias)` for the dense layer `name`: one fused operation where the
 * backend has it (`core/nn_ops.ts`).
 *
 * @param p parameters by name
 * @param name layer name
 * @param x inputs `[batch, inputs]`
 * @param activation `linear` (default) or `relu`
 * @returns outputs `[batch, units]`
 * @example
 * ```ts
 * import type * as tf from "@tensorflow/tfjs-core";
 * declare const p: Record<string, tf.Tensor>, x: tf.Tensor;
 * const h = dense(p, "fc1", x, "relu");
 * ```
 */
export function dense(
  p: Record<string, tf.Tensor>,
  name: string,
  x: tf.Tensor,
  activation: FusedActivation = "linear",
): tf.Tensor {
  return denseLayer(x, p[`${name}/kernel`], p[`${name}/bias`], activation);
}

/**
 * `activation(conv(x) + bias)`: a stride-1 'same' convolution, NHWC, one fused operation
 * where the backend has it (`core/nn_ops.ts`).
 *
 * @param p parameters by name
 * @param name layer name
 * @param x inputs `[batch, h, w, c]`
 * @param activation `linear` (default) or `relu`
 * @returns outputs `[batch, h, w, filters]`
 * @example
 * ```ts
 * import type * as tf from "@tensorflow/tfjs-core";
 * declare const p: Record<string, tf.Tensor>, x: tf.Tensor;
 * const h = conv(p, "conv1", x, "relu");
 * ```
 */
export function conv(
  p: Record<string, tf.Tensor>,
  name: string,
  x: tf.Tensor,
  activation: FusedActivation = "linear",
): tf.Tensor {
  return convBlock(x, p[`${name}/kernel`], p[`${name}/bias`], {
    strides: 1,
    pad: "same",
    activation,
  });
}

/**
 * Training FLOPs per sample of a dense layer.
 *
 * @param inputs input features
 * @param units output features
 * @returns FLOPs (forward + backward)
 * @example
 * ```ts
 * denseFlops(784, 256); // 6 · 784 · 256
 * ```
 */
export function denseFlops(inputs: number, units: number): number {
  return TRAIN_FLOPS_PER_MAC * inputs * units;
}

/**
 * Training FLOPs per sample of a stride-1 'same' convolution on an `h×w` map.
 *
 * @param h output height
 * @param w output width
 * @param size kernel size
 * @param inChannels input channels
 * @param outChannels filters
 * @returns FLOPs (forward + backward)
 * @example
 * ```ts
 * convFlops(28, 28, 3, 1, 8);
 * ```
 */
export function convFlops(
  h: number,
  w: number,
  size: number,
  inChannels: number,
  outChannels: number,
): number {
  return TRAIN_FLOPS_PER_MAC * h * w * size * size * inChannels * outChannels;
}
