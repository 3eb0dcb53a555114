/**
 * MaxPoolGrad for the wasm backend as one pass over the pooling windows: each window's
 * output gradient goes to the first position holding the window's maximum (the cpu
 * backend's choice), instead of searching every window for every input position.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

/**
 * Adds each window's output gradient to `dx` where the window's first maximum is in `x`
 * (views of the input, the output gradient and the zeroed input gradient).
 */
export type ScatterMaxGradients = (
  x: Float32Array,
  dy: Float32Array,
  info: tf.backend_util.Conv2DInfo,
  dx: Float32Array,
) => void;

/**
 * Make the window-scatter MaxPoolGrad kernel for wasm (NHWC, any strides and padding).
 *
 * @param scatter the pass over the windows (default: this file's, in JavaScript; `native`
 *   passes one in WebAssembly SIMD)
 * @returns a kernel function for the wasm backend
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * tf.registerKernel({ kernelName: "MaxPoolGrad", backendName: "wasm", kernelFunc: makeMaxPoolGrad() });
 * ```
 */
export function makeMaxPoolGrad(
  scatter: ScatterMaxGradients = scatterMaxGradients,
): tf.KernelFunc {
  return (args) => {
    const wasm = args.backend as BackendWasm;
    const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
    const info = poolInfo(args);
    const dx = wasm.makeOutput(input.shape, "float32");
    // Views are taken after the allocation above: a heap growth detaches older views.
    const dxValues = wasm.typedArrayFromHeap(dx) as Float32Array;
    dxValues.fill(0);
    if (dxValues.length === 0 || dy.shape.some((d) => d === 0)) return dx;
    scatter(
      wasm.typedArrayFromHeap(input) as Float32Array,
      wasm.typedArrayFromHeap(dy) as Float32Array,
      info,
      dxValues,
    );
    return dx;
  };
}

/** For every pooling window, add its gradient to the input position of its maximum. */
function scatterMaxGradients(
  x: Float32Array,
  dy: Float32Array,
  info: tf.backend_util.Conv2DInfo,
  dx: Float32Array,
): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  let dyIndex = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let yR = 0; yR < outHeight; yR++) {
      const rCorner = yR * strideHeight - top;
      const rMin = Math.max(0, rCorner);
      const rMax = Math.min(inHeight, rCorner + filterHeight);
      for (let yC = 0; yC < outWidth; yC++) {
        const cCorner = yC * strideWidth - left;
        const cMin = Math.max(0, cCorner);
        const cMax = Math.min(inWidth, cCorner + filterWidth);
        for (let d = 0; d < inChannels; d++, dyIndex++) {
          // Row-major window order with a strict `>`: ties go to the first maximum.
          let maxValue = Number.NEGATIVE_INFINITY;
          let maxIndex = -1;
          for (let r = rMin; r < rMax; r++) {
            let index = ((b * inHeight + r) * inWidth + cMin) * inChannels + d;
            for (let c = cMin; c < cMax; c++, index += inChannels) {
              if (x[index] > maxValue) {
                maxValue = x[index];
                maxIndex = index;
              }
            }
          }
          if (maxIndex >= 0) dx[maxIndex] += dy[dyIndex];
        }
      }
    }
  }
}

/**
 * The pooling geometry of a `MaxPoolGrad` call.
 *
 * @param args the kernel's call
 * @returns tfjs's pooling info for its input and attributes
 * @example
 * ```ts
 * import type * as tf from "@tensorflow/tfjs-core";
 * declare const args: Parameters<tf.KernelFunc>[0];
 * const { outHeight, outWidth } = poolInfo(args);
 * ```
 */
export function poolInfo(args: Parameters<tf.KernelFunc>[0]): tf.backend_util.Conv2DInfo {
  const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
  const { input } = args.inputs as { input: tf.TensorInfo };
  return tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
}
