/**
 * Building blocks for the transformer and the residual CNN, beside `layers.ts`'s dense and
 * conv: LayerNorm, embeddings, bias-free (strided) convolutions and BatchNorm with its running
 * statistics as buffers — each a parameter (and buffer) definition plus the layer itself, over
 * the fused ops of `nn_ops.ts`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { backendSeam } from "./backend_seam.ts";
import { heNormal, zeros } from "./init.ts";
import {
  batchNormApply,
  batchNormGradInput,
  batchNormGradSums,
  channelMoments,
  embedding,
  layerNorm,
} from "./nn_ops.ts";
import { normal, type Rng } from "./rng.ts";
import type { BufferDef, ForwardContext, ParamDef } from "./workload.ts";

/** LayerNorm's ε, as PyTorch's default. */
export const LAYER_NORM_EPSILON = 1e-5;
/** BatchNorm's ε, as PyTorch's default. */
export const BATCH_NORM_EPSILON = 1e-5;
/** How far each training step moves BatchNorm's running statistics (PyTorch's momentum). */
export const BATCH_NORM_MOMENTUM = 0.1;

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * An initialiser drawing from N(0, std²).
 *
 * @param std the standard deviation
 * @returns the initialiser
 * @example
 * ```ts
 * const init = normalInit(0.02); // GPT-2's weights
 * ```
 */
export function normalInit(std: number): ParamDef["init"] {
  return (rng: Rng, shape: number[]) => {
    const out = new Float32Array(size(shape));
    for (let i = 0; i < out.length; i++) out[i] = normal(rng) * std;
    return out;
  };
}

/**
 * An initialiser of ones (a normalisation's scale).
 *
 * @param _rng unused
 * @param shape the shape
 * @returns ones
 * @example
 * ```ts
 * ones(() => 0, [3]); // [1, 1, 1]
 * ```
 */
export function ones(_rng: Rng, shape: number[]): Float32Array {
  return new Float32Array(size(shape)).fill(1);
}

/**
 * Parameters of a normalisation's scale `${name}/gamma` (ones) and shift `${name}/beta` (zeros).
 *
 * @param name layer name
 * @param channels normalised features
 * @returns the two parameter definitions
 * @example
 * ```ts
 * normParams("ln1", 128);
 * ```
 */
export function normParams(name: string, channels: number): ParamDef[] {
  return [
    { name: `${name}/gamma`, shape: [channels], init: ones },
    { name: `${name}/beta`, shape: [channels], init: zeros },
  ];
}

/**
 * LayerNorm `name` over the last axis of `x`.
 *
 * @param p parameters by name
 * @param name layer name
 * @param x `[rows, channels]`
 * @returns normalised `x`
 * @example
 * ```ts
 * import type * as tf from "@tensorflow/tfjs-core";
 * declare const p: Record<string, tf.Tensor>, x: tf.Tensor;
 * const h = layerNormLayer(p, "ln1", x);
 * ```
 */
export function layerNormLayer(p: Record<string, tf.Tensor>, name: string, x: tf.Tensor) {
  return layerNorm(x, p[`${name}/gamma`], p[`${name}/beta`], LAYER_NORM_EPSILON);
}

/**
 * Rows of the embedding table `${name}/table` at `ids`.
 *
 * @param p parameters by name
 * @param name layer name
 * @param ids int32 indices
 * @returns `[...ids.shape, channels]`
 * @example
 * ```ts
 * import type * as tf from "@tensorflow/tfjs-core";
 * declare const p: Record<string, tf.Tensor>, ids: tf.Tensor;
 * const h = embed(p, "wte", ids);
 * ```
 */
export function embed(p: Record<string, tf.Tensor>, name: string, ids: tf.Tensor): tf.Tensor {
  return embedding(p[`${name}/table`], ids);
}

/**
 * The kernel `${name}/kernel` `[size, size, inC, outC]` of a convolution without bias (a
 * BatchNorm follows it), He-initialised.
 *
 * @param name layer name
 * @param size kernel height and width
 * @param inChannels input channels
 * @param outChannels filters
 * @returns the parameter definition, in a list
 * @example
 * ```ts
 * convKernelParams("conv1", 3, 16, 16);
 * ```
 */
export function convKernelParams(
  name: string,
  size: number,
  inChannels: number,
  outChannels: number,
): ParamDef[] {
  return [{ name: `${name}/kernel`, shape: [size, size, inChannels, outChannels], init: heNormal }];
}

/**
 * A 'same' convolution without bias, NHWC, at `stride`.
 *
 * @param p parameters by name
 * @param name layer name
 * @param x `[batch, h, w, c]`
 * @param stride 1 or 2
 * @returns `[batch, h / stride, w / stride, filters]`
 * @example
 * ```ts
 * import type * as tf from "@tensorflow/tfjs-core";
 * declare const p: Record<string, tf.Tensor>, x: tf.Tensor;
 * const h = convNoBias(p, "down", x, 2);
 * ```
 */
export function convNoBias(
  p: Record<string, tf.Tensor>,
  name: string,
  x: tf.Tensor,
  stride: number,
): tf.Tensor {
  return tf.conv2d(x as tf.Tensor4D, p[`${name}/kernel`] as tf.Tensor4D, stride, "same");
}

/**
 * BatchNorm's running statistics as buffers: `${name}/runningMean` (zeros) and
 * `${name}/runningVar` (ones), PyTorch's `running_mean` and `running_var`.
 *
 * @param name layer name
 * @param channels normalised channels
 * @returns the two buffer definitions
 * @example
 * ```ts
 * batchNormBuffers("bn1", 16);
 * ```
 */
export function batchNormBuffers(name: string, channels: number): BufferDef[] {
  return [
    { name: `${name}/runningMean`, shape: [channels], init: (s) => new Float32Array(size(s)) },
    {
      name: `${name}/runningVar`,
      shape: [channels],
      init: (s) => new Float32Array(size(s)).fill(1),
    },
  ];
}

/** A float32 tensor's values, copied (the backend's view is valid only until its next kernel). */
function readCopy(t: tf.Tensor): Float32Array {
  if (!backendSeam().readsSync) {
    throw new Error(
      "BatchNorm reads its batch statistics synchronously: this backend cannot (use native, wasm or cpu)",
    );
  }
  return backendSeam().read(t).slice();
}

/**
 * BatchNorm `name` over the channels (last axis) of `x`. Training: normalised with the batch's
 * statistics — this replica's, or, with `context.crossReplica`, the global batch's
 * (SyncBatchNorm: sums over every replica in the forward, and their gradients' in the
 * backward) — and the running statistics updated (momentum {@linkcode BATCH_NORM_MOMENTUM},
 * unbiased variance, as PyTorch). Evaluation: normalised with the running statistics.
 *
 * @param p parameters by name (`${name}/gamma`, `${name}/beta`)
 * @param name layer name (its buffers are `${name}/runningMean`, `${name}/runningVar`)
 * @param x `[..., channels]`
 * @param context the forward's context
 * @returns normalised `x`
 * @example
 * ```ts
 * import type * as tf from "@tensorflow/tfjs-core";
 * import type { ForwardContext } from "./workload.ts";
 * declare const p: Record<string, tf.Tensor>, x: tf.Tensor, context: ForwardContext;
 * const h = batchNorm(p, "bn1", x, context);
 * ```
 */
export function batchNorm(
  p: Record<string, tf.Tensor>,
  name: string,
  x: tf.Tensor,
  context: ForwardContext,
): tf.Tensor {
  const gamma = p[`${name}/gamma`];
  const beta = p[`${name}/beta`];
  const runningMean = context.buffers[`${name}/runningMean`];
  const runningVar = context.buffers[`${name}/runningVar`];
  if (!runningMean || !runningVar) {
    throw new Error(`BatchNorm ${name} has no running statistics: declare batchNormBuffers`);
  }
  if (!context.training) {
    const invStd = runningVar.map((v) => 1 / Math.sqrt(v + BATCH_NORM_EPSILON));
    return batchNormApply(x, tf.tensor1d(runningMean), tf.tensor1d(invStd), gamma, beta);
  }
  const stats = { mean: new Float32Array(0), variance: new Float32Array(0), count: 0 };
  const y = batchNormTraining(
    x,
    gamma,
    beta,
    context.crossReplica?.sum.bind(context.crossReplica),
    stats,
  );
  // Running statistics, as PyTorch: the unbiased variance of the batch the forward normalised with.
  const m = BATCH_NORM_MOMENTUM;
  const unbias = stats.count > 1 ? stats.count / (stats.count - 1) : 1;
  for (let c = 0; c < runningMean.length; c++) {
    runningMean[c] = (1 - m) * runningMean[c] + m * stats.mean[c];
    runningVar[c] = (1 - m) * runningVar[c] + m * stats.variance[c] * unbias;
  }
  return y;
}

/**
 * The training forward of BatchNorm as one op with its own gradient: statistics in two passes
 * (summed across replicas where `sum` is given), normalisation, and a backward whose two sums
 * are summed across replicas too. Each replica's gradients are of its own mean loss; its share
 * `n_i / n` of the global batch weights what it adds to the backward's sums, so that uneven
 * slices (DP) get the global batch's gradient as single computes it.
 */
function batchNormTraining(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  sum: ((values: Float32Array) => void) | undefined,
  stats: { mean: Float32Array; variance: Float32Array; count: number },
): tf.Tensor {
  const channels = x.shape[x.rank - 1];
  const local = x.size / channels;
  const op = tf.customGrad((xs, g, b, save) => {
    const input = xs as tf.Tensor;
    // Pass 1: the mean.
    const first = readCopy(channelMoments(input, tf.zeros([channels])));
    const totals = new Float32Array(channels + 1);
    totals.set(first.subarray(0, channels));
    totals[channels] = local;
    sum?.(totals);
    const count = totals[channels];
    const mean = totals.subarray(0, channels).map((s) => s / count);
    const meanT = tf.tensor1d(mean);
    // Pass 2: the variance about that mean.
    const squares = readCopy(channelMoments(input, meanT)).slice(channels);
    sum?.(squares);
    const variance = squares.map((s) => s / count);
    const invStdT = tf.tensor1d(variance.map((v) => 1 / Math.sqrt(v + BATCH_NORM_EPSILON)));
    Object.assign(stats, { mean, variance, count });
    (save as tf.GradSaveFunc)([input, g as tf.Tensor, meanT, invStdT]);
    return {
      value: batchNormApply(input, meanT, invStdT, g as tf.Tensor, b as tf.Tensor),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sg, sMean, sInvStd] = saved;
        const sums = readCopy(batchNormGradSums(dy, sx, sMean, sInvStd));
        // Σ over the batch the statistics came from, in this replica's units, over n_i.
        const coefficients = sums.slice();
        if (sum) {
          const share = local / count;
          for (let i = 0; i < coefficients.length; i++) coefficients[i] *= share;
          sum(coefficients);
        }
        for (let i = 0; i < coefficients.length; i++) coefficients[i] /= local;
        const dx = batchNormGradInput(
          dy,
          sx,
          sMean,
          sInvStd,
          sg,
          tf.tensor2d(coefficients, [2, channels]),
        );
        return [dx, tf.tensor1d(sums.slice(channels)), tf.tensor1d(sums.slice(0, channels))];
      },
    };
  });
  return op(x, gamma, beta);
}
