/**
 * Whole layers as one operation each: a dense layer (product, bias, activation) and a
 * convolution block (convolution, bias, activation). Where the
 * active backend registers the fused kernels ({@linkcode FUSED_KERNELS}; `native` does), a
 * layer is one kernel forward and one backward (plus the input's gradient where it is needed)
 * with a hand-written gradient: a few tape entries instead of a dozen, and one pass over the
 * activations instead of several. Elsewhere the same layer is composed from TensorFlow.js ops,
 * with the same result.
 *
 * The kernels' contract (names, inputs, attributes, outputs) is defined here; the backends
 * implement it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** An activation a fused layer applies. */
export type FusedActivation = "linear" | "relu";

/** The fused kernels' names: a backend that registers all four gets the fused path. */
export const FUSED_KERNELS = {
  /** inputs `{ x [n, k], kernel [k, m], bias [m] }`, attrs `{ activation }` → `y [n, m]`. */
  dense: "ParatrainDense",
  /** inputs `{ dy, x, y }`, attrs `{ activation }` → `[dKernel, dBias, dz]` (`dz`: before the activation). */
  denseGrad: "ParatrainDenseGrad",
  /**
   * inputs `{ x [n, h, w, c], filter [fh, fw, c, o], bias [o] }`, attrs `{ strides, pad,
   * activation }` → `y [n, h', w', o]`.
   */
  conv: "ParatrainConvBlock",
  /** inputs `{ dy, x, filter, y }`, the forward's attrs → `[dFilter, dBias, dz]` (`dz`: before the activation). */
  convGrad: "ParatrainConvBlockGrad",
} as const;

/** A convolution block's settings, the fused kernel's attributes. */
export interface ConvBlockAttrs {
  strides: number;
  pad: "same" | "valid";
  activation: FusedActivation;
}

/** Whether the active backend has every fused kernel. */
function fused(): boolean {
  const backend = tf.getBackend();
  return Object.values(FUSED_KERNELS).every((name) => tf.getKernel(name, backend) != null);
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
  if (fused()) {
    const attrs = { activation } as unknown as tf.NamedAttrMap;
    return tf.engine().runKernel(FUSED_KERNELS.dense, { x, kernel, bias }, attrs) as tf.Tensor;
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
  if (fused()) {
    const inputs = { x, filter, bias };
    const named = attrs as unknown as tf.NamedAttrMap;
    return tf.engine().runKernel(FUSED_KERNELS.conv, inputs, named) as tf.Tensor;
  }
  const z = tf.add(
    tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, attrs.strides, attrs.pad),
    bias,
  );
  return activate(z, attrs.activation);
}

tf.registerGradient({
  kernelName: FUSED_KERNELS.dense,
  inputsToSave: ["x", "kernel"],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [x, kernel, y] = saved;
    // One kernel for what every parameter needs; the input's gradient only where asked for.
    const [dKernel, dBias, dz] = tf.engine().runKernel(
      FUSED_KERNELS.denseGrad,
      { dy: dy as tf.Tensor, x, y },
      attrs,
    ) as tf.Tensor[];
    return {
      x: () => tf.matMul(dz as tf.Tensor2D, kernel as tf.Tensor2D, false, true),
      kernel: () => dKernel,
      bias: () => dBias,
    };
  },
});

tf.registerGradient({
  kernelName: FUSED_KERNELS.conv,
  inputsToSave: ["x", "filter"],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const block = attrs as unknown as ConvBlockAttrs;
    const [x, filter, y] = saved;
    const [dFilter, dBias, dz] = tf.engine().runKernel(
      FUSED_KERNELS.convGrad,
      { dy: dy as tf.Tensor, x, filter, y },
      attrs,
    ) as tf.Tensor[];
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
