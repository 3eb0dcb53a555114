/**
 * `Sum` over leading axes on the `native` backend: a bias gradient sums a `[batch, n]`
 * gradient over the batch, which the wasm kernel does by transposing it first. Summing rows
 * in place is one pass over the data; other reductions go to the stock kernel.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

/**
 * `Sum` of a float32 tensor over a leading block of axes (`[0]`, `[0, 1]`, …) as row sums
 * (accumulated in float64, like a pairwise sum's accuracy or better); anything else goes
 * to `stock`.
 *
 * @param stock the kernel to use where this one does not apply
 * @returns the kernel function
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * const stock = tf.getKernel("Sum", "wasm")!.kernelFunc;
 * const kernelFunc = makeNativeSum(stock);
 * ```
 */
export function makeNativeSum(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
    if (x.dtype !== "float32" || !leading) return stock(args);
    const wasm = args.backend as BackendWasm;
    const rows = x.shape.slice(0, axes.length).reduce((a, b) => a * b, 1);
    const width = x.shape.slice(axes.length).reduce((a, b) => a * b, 1);
    const shape = keepDims
      ? x.shape.map((d, i) => (i < axes.length ? 1 : d))
      : x.shape.slice(axes.length);
    const out = wasm.makeOutput(shape, "float32");
    // Views are taken after the allocation above: a heap growth detaches older views.
    const xs = wasm.typedArrayFromHeap(x) as Float32Array;
    const total = new Float64Array(width);
    for (let r = 0; r < rows; r++) {
      const base = r * width;
      for (let j = 0; j < width; j++) total[j] += xs[base + j];
    }
    (wasm.typedArrayFromHeap(out) as Float32Array).set(total);
    return out;
  };
}
