/**
 * The fused operations: whole layers — a dense layer and a convolution block (product or
 * convolution, bias, activation) — and what the transformer and the residual CNN need beyond
 * them — softmax cross-entropy, LayerNorm, GELU, an embedding lookup, the causal softmax of
 * attention, BatchNorm's statistics and normalisation — each as one op with a hand-written
 * gradient that runs one fused kernel each way where the active backend registers it
 * (`native`: `backends/kernels/native_fused.ts`, `backends/kernels/native_nn_kernels.ts`), and
 * TensorFlow.js's composite ops everywhere else: a few tape entries instead of a dozen, one pass
 * over the activations instead of several. The composite is the reference the kernels are
 * tested against; the core names the kernels ({@linkcode NN_KERNELS}: their inputs, attributes
 * and outputs are the contract) and registers their gradients; a backend only implements them.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Kernel names of the fused ops and of their gradients (what a backend registers). */
export const NN_KERNELS = {
  /** inputs `{ x [n, k], kernel [k, m], bias [m] }`, attrs `{ activation }` → `y [n, m]`. */
  dense: "ParatrainDense",
  /** inputs `{ dy, x, y }`, attrs `{ activation }` → `[dKernel, dBias, dz]` (`dz`: before the activation). */
  denseGrad: "ParatrainDenseGrad",
  /**
   * inputs `{ x [n, h, w, c], filter [fh, fw, c, o], bias [o] }`, attrs `{ strides, pad,
   * activation }` → `y [n, h', w', o]`.
   */
  convBlock: "ParatrainConvBlock",
  /** inputs `{ dy, x, filter, y }`, the forward's attrs → `[dFilter, dBias, dz]` (`dz`: before the activation). */
  convBlockGrad: "ParatrainConvBlockGrad",
  softmaxCrossEntropy: "ParatrainSoftmaxCrossEntropy",
  softmaxCrossEntropyGrad: "ParatrainSoftmaxCrossEntropyGrad",
  layerNorm: "ParatrainLayerNorm",
  layerNormGrad: "ParatrainLayerNormGrad",
  gelu: "ParatrainGelu",
  geluGrad: "ParatrainGeluGrad",
  embedding: "ParatrainEmbedding",
  embeddingGrad: "ParatrainEmbeddingGrad",
  causalSoftmax: "ParatrainCausalSoftmax",
  causalSoftmaxGrad: "ParatrainCausalSoftmaxGrad",
  channelMoments: "ParatrainChannelMoments",
  batchNormApply: "ParatrainBatchNormApply",
  batchNormGradSums: "ParatrainBatchNormGradSums",
  batchNormGradInput: "ParatrainBatchNormGradInput",
} as const;

/** √(2/π), of GELU's tanh form. */
const GELU_C = Math.sqrt(2 / Math.PI);
/** The cubic coefficient of GELU's tanh form (Hendrycks & Gimpel 2016, as GPT-2 uses it). */
const GELU_A = 0.044715;
/** What a masked attention score becomes before the softmax in the composite path. */
const MASKED = -1e9;

/** Whether the active backend runs `kernel` itself. */
function hasKernel(kernel: string): boolean {
  return tf.getKernel(kernel, tf.getBackend()) != null;
}

function run(kernel: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}): tf.Tensor {
  return tf.engine().runKernel(kernel, inputs, attrs) as tf.Tensor;
}

function runMany(
  kernel: string,
  inputs: tf.NamedTensorMap,
  attrs: tf.NamedAttrMap = {},
): tf.Tensor[] {
  return tf.engine().runKernel(kernel, inputs, attrs) as unknown as tf.Tensor[];
}

/** An activation a fused layer applies. */
export type FusedActivation = "linear" | "relu";

/** A convolution block's settings, the fused kernel's attributes. */
export interface ConvBlockAttrs {
  strides: number;
  pad: "same" | "valid";
  activation: FusedActivation;
}

function activate(y: tf.Tensor, activation: FusedActivation): tf.Tensor {
  return activation === "relu" ? tf.relu(y) : y;
}

/**
 * `activation(x · kernel + bias)`.
 *
 * @param x inputs `[batch, k]`
 * @param kernel `[k, m]`
 * @param bias `[m]`
 * @param activation `relu` or `linear`
 * @returns `[batch, m]`
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * const y = denseLayer(tf.ones([2, 3]), tf.ones([3, 4]), tf.zeros([4]), "relu");
 * ```
 */
export function denseLayer(
  x: tf.Tensor,
  kernel: tf.Tensor,
  bias: tf.Tensor,
  activation: FusedActivation,
): tf.Tensor {
  if (hasKernel(NN_KERNELS.dense)) {
    return run(NN_KERNELS.dense, { x, kernel, bias }, { activation });
  }
  return activate(tf.add(tf.matMul(x as tf.Tensor2D, kernel as tf.Tensor2D), bias), activation);
}

/**
 * `activation(conv2d(x, filter) + bias)`, NHWC, dilation 1.
 *
 * @param x inputs `[batch, h, w, c]`
 * @param filter `[fh, fw, c, o]`
 * @param bias `[o]`
 * @param attrs strides, padding and activation
 * @returns `[batch, h', w', o]`
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * const y = convBlock(tf.ones([1, 4, 4, 1]), tf.ones([3, 3, 1, 2]), tf.zeros([2]), {
 *   strides: 1, pad: "same", activation: "relu",
 * });
 * ```
 */
export function convBlock(
  x: tf.Tensor,
  filter: tf.Tensor,
  bias: tf.Tensor,
  attrs: ConvBlockAttrs,
): tf.Tensor {
  if (hasKernel(NN_KERNELS.convBlock)) {
    return run(NN_KERNELS.convBlock, { x, filter, bias }, attrs as unknown as tf.NamedAttrMap);
  }
  const z = tf.add(
    tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, attrs.strides, attrs.pad),
    bias,
  );
  return activate(z, attrs.activation);
}

tf.registerGradient({
  kernelName: NN_KERNELS.dense,
  inputsToSave: ["x", "kernel"],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [x, kernel, y] = saved;
    // One kernel for what every parameter needs; the input's gradient only where asked for.
    const [dKernel, dBias, dz] = runMany(
      NN_KERNELS.denseGrad,
      { dy: dy as tf.Tensor, x, y },
      attrs,
    );
    return {
      x: () => tf.matMul(dz as tf.Tensor2D, kernel as tf.Tensor2D, false, true),
      kernel: () => dKernel,
      bias: () => dBias,
    };
  },
});

tf.registerGradient({
  kernelName: NN_KERNELS.convBlock,
  inputsToSave: ["x", "filter"],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const block = attrs as unknown as ConvBlockAttrs;
    const [x, filter, y] = saved;
    const inputs = { dy: dy as tf.Tensor, x, filter, y };
    const [dFilter, dBias, dz] = runMany(NN_KERNELS.convBlockGrad, inputs, attrs);
    return {
      x: () =>
        tf.conv2dTranspose(
          dz as tf.Tensor4D,
          filter as tf.Tensor4D,
          x.shape as [number, number, number, number],
          block.strides,
          block.pad,
        ),
      filter: () => dFilter,
      bias: () => dBias,
    };
  },
});

/**
 * Mean softmax cross-entropy of `logits` `[rows, classes]` against class indices `labels`
 * `[rows]`: −mean(log softmax(logits)[label]).
 *
 * @param logits unnormalised scores, one row per labelled position
 * @param labels int32 class indices
 * @returns the scalar mean loss
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * softmaxCrossEntropy(tf.tensor2d([[2, 0], [0, 1]]), tf.tensor1d([0, 1], "int32"));
 * ```
 */
export function softmaxCrossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  if (hasKernel(NN_KERNELS.softmaxCrossEntropy)) {
    return run(NN_KERNELS.softmaxCrossEntropy, { logits, labels }) as tf.Scalar;
  }
  const oneHot = tf.oneHot(labels as tf.Tensor1D, logits.shape[1]!);
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1)));
}

/**
 * Layer normalisation over the last axis: `(x − mean) / √(var + ε) · gamma + beta`.
 *
 * @param x `[rows, channels]`
 * @param gamma `[channels]` scale
 * @param beta `[channels]` shift
 * @param epsilon added to the variance
 * @returns normalised `x`, same shape
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * layerNorm(tf.tensor2d([[1, 2, 3]]), tf.ones([3]), tf.zeros([3]), 1e-5);
 * ```
 */
export function layerNorm(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
): tf.Tensor {
  if (hasKernel(NN_KERNELS.layerNorm)) {
    return run(NN_KERNELS.layerNorm, { x, gamma, beta }, { epsilon });
  }
  const { mean, variance } = tf.moments(x, -1, true);
  const normalised = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon)));
  return tf.add(tf.mul(normalised, gamma), beta);
}

/**
 * GELU in its tanh form, `x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`, as GPT-2 uses it.
 *
 * @param x any shape
 * @returns GELU(x)
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * gelu(tf.tensor1d([-1, 0, 1]));
 * ```
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (hasKernel(NN_KERNELS.gelu)) return run(NN_KERNELS.gelu, { x });
  const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), GELU_A)), GELU_C);
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/**
 * Rows of `table` `[vocab, channels]` at `ids` (int32, any shape): `[...ids.shape, channels]`.
 * Its gradient adds each position's row gradient into the row it read (a scatter-add).
 *
 * @param table the embedding table
 * @param ids int32 indices in `[0, vocab)`
 * @returns the rows
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * embedding(tf.eye(3), tf.tensor2d([[0, 2]], [1, 2], "int32"));
 * ```
 */
export function embedding(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  if (hasKernel(NN_KERNELS.embedding)) return run(NN_KERNELS.embedding, { table, ids });
  return tf.gather(table, ids);
}

/**
 * Attention's causal softmax over the last axis of `scores` `[..., T, T]`: each query row `i`
 * sees keys `0..i` only, scores scaled by `scale` first.
 *
 * @param scores query · keyᵀ, `[..., T, T]`
 * @param scale multiplies the scores (1/√head size)
 * @returns attention weights, zero above the diagonal
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * causalSoftmax(tf.zeros([1, 3, 3]), 1);
 * ```
 */
export function causalSoftmax(scores: tf.Tensor, scale: number): tf.Tensor {
  if (hasKernel(NN_KERNELS.causalSoftmax)) {
    return run(NN_KERNELS.causalSoftmax, { scores }, { scale });
  }
  const t = scores.shape[scores.rank - 1];
  const visible = tf.linalg.bandPart(tf.ones([t, t]), -1, 0);
  const bias = tf.mul(tf.sub(1, visible), MASKED);
  return tf.softmax(tf.add(tf.mul(scores, scale), bias));
}

/**
 * Per channel (the last axis of `x`), the sum of `x − shift` and of its square over every
 * other axis: `[2, channels]`. BatchNorm's statistics, in two passes (shift 0 for the mean,
 * then shift = mean for the variance) so that no large sum of squares cancels.
 *
 * @param x `[..., channels]`
 * @param shift `[channels]`
 * @returns `[[Σ(x − shift)], [Σ(x − shift)²]]`
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * channelMoments(tf.tensor2d([[1, 2], [3, 4]]), tf.zeros([2])); // [[4, 6], [10, 20]]
 * ```
 */
export function channelMoments(x: tf.Tensor, shift: tf.Tensor): tf.Tensor {
  if (hasKernel(NN_KERNELS.channelMoments)) {
    return run(NN_KERNELS.channelMoments, { x, shift });
  }
  const rows = tf.reshape(tf.sub(x, shift), [-1, x.shape[x.rank - 1]]);
  return tf.stack([tf.sum(rows, 0), tf.sum(tf.square(rows), 0)]);
}

/**
 * BatchNorm's normalisation, `(x − mean) · invStd · gamma + beta` per channel (the last axis).
 *
 * @param x `[..., channels]`
 * @param mean `[channels]`
 * @param invStd `[channels]`: 1/√(var + ε)
 * @param gamma `[channels]`
 * @param beta `[channels]`
 * @returns normalised `x`
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * const c = tf.ones([2]);
 * batchNormApply(tf.tensor2d([[1, 2]]), c, c, c, c);
 * ```
 */
export function batchNormApply(
  x: tf.Tensor,
  mean: tf.Tensor,
  invStd: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
): tf.Tensor {
  if (hasKernel(NN_KERNELS.batchNormApply)) {
    return run(NN_KERNELS.batchNormApply, { x, mean, invStd, gamma, beta });
  }
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), invStd), gamma), beta);
}

/**
 * BatchNorm's backward sums per channel: `Σ dy` and `Σ dy · x̂` with `x̂ = (x − mean) · invStd`.
 *
 * @param dy the output's gradient, `[..., channels]`
 * @param x the input
 * @param mean `[channels]`
 * @param invStd `[channels]`
 * @returns `[2, channels]`
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * const c = tf.ones([2]);
 * batchNormGradSums(tf.ones([3, 2]), tf.ones([3, 2]), c, c);
 * ```
 */
export function batchNormGradSums(
  dy: tf.Tensor,
  x: tf.Tensor,
  mean: tf.Tensor,
  invStd: tf.Tensor,
): tf.Tensor {
  if (hasKernel(NN_KERNELS.batchNormGradSums)) {
    return run(NN_KERNELS.batchNormGradSums, { dy, x, mean, invStd });
  }
  const channels = x.shape[x.rank - 1];
  const xHat = tf.reshape(tf.mul(tf.sub(x, mean), invStd), [-1, channels]);
  const g = tf.reshape(dy, [-1, channels]);
  return tf.stack([tf.sum(g, 0), tf.sum(tf.mul(g, xHat), 0)]);
}

/**
 * BatchNorm's input gradient, `gamma · invStd · (dy − c₀ − x̂ · c₁)` per channel, where
 * `c = [Σ dy, Σ dy·x̂] / n` over the (possibly global) batch the statistics came from.
 *
 * @param dy the output's gradient, `[..., channels]`
 * @param x the input
 * @param mean `[channels]`
 * @param invStd `[channels]`
 * @param gamma `[channels]`
 * @param coefficients `[2, channels]`: `c₀`, `c₁`
 * @returns the input's gradient
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * const c = tf.ones([2]);
 * batchNormGradInput(tf.ones([3, 2]), tf.ones([3, 2]), c, c, c, tf.zeros([2, 2]));
 * ```
 */
export function batchNormGradInput(
  dy: tf.Tensor,
  x: tf.Tensor,
  mean: tf.Tensor,
  invStd: tf.Tensor,
  gamma: tf.Tensor,
  coefficients: tf.Tensor,
): tf.Tensor {
  if (hasKernel(NN_KERNELS.batchNormGradInput)) {
    return run(NN_KERNELS.batchNormGradInput, { dy, x, mean, invStd, gamma, coefficients });
  }
  const [c0, c1] = tf.unstack(coefficients);
  const xHat = tf.mul(tf.sub(x, mean), invStd);
  return tf.mul(tf.mul(tf.sub(tf.sub(dy, c0), tf.mul(xHat, c1)), invStd), gamma);
}

// The fused kernels' gradients: each backward is one kernel too.
tf.registerGradient({
  kernelName: NN_KERNELS.softmaxCrossEntropy,
  inputsToSave: ["logits", "labels"],
  gradFunc: (dy, saved) => {
    const [logits, labels] = saved;
    return {
      logits: () =>
        run(NN_KERNELS.softmaxCrossEntropyGrad, { logits, labels, dy: dy as tf.Tensor }),
      labels: () => tf.zerosLike(labels),
    };
  },
});

tf.registerGradient({
  kernelName: NN_KERNELS.layerNorm,
  inputsToSave: ["x", "gamma"],
  gradFunc: (dy, saved, attrs) => {
    const [x, gamma] = saved;
    // One kernel gives all three. Run here, not in the closures: the tape runs each closure in
    // a scope of its own, which would dispose the other two outputs.
    const [dx, dgamma, dbeta] = runMany(
      NN_KERNELS.layerNormGrad,
      { dy: dy as tf.Tensor, x, gamma },
      attrs as tf.NamedAttrMap,
    );
    return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
  },
});

tf.registerGradient({
  kernelName: NN_KERNELS.gelu,
  inputsToSave: ["x"],
  gradFunc: (dy, saved) => ({
    x: () => run(NN_KERNELS.geluGrad, { dy: dy as tf.Tensor, x: saved[0] }),
  }),
});

tf.registerGradient({
  kernelName: NN_KERNELS.embedding,
  inputsToSave: ["table", "ids"],
  gradFunc: (dy, saved) => {
    const [table, ids] = saved;
    return {
      table: () =>
        run(NN_KERNELS.embeddingGrad, { dy: dy as tf.Tensor, ids }, { vocab: table.shape[0] }),
      ids: () => tf.zerosLike(ids),
    };
  },
});

tf.registerGradient({
  kernelName: NN_KERNELS.causalSoftmax,
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => ({
    scores: () =>
      run(
        NN_KERNELS.causalSoftmaxGrad,
        { dy: dy as tf.Tensor, y: saved[0] },
        attrs as tf.NamedAttrMap,
      ),
  }),
});
