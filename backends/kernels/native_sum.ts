/**
 * `Sum` over leading axes on the `native` backend: a bias gradient sums a `[batch, n]` (or
 * `[batch, h, w, c]`) gradient over everything but the last axis, which the wasm kernel does
 * by transposing it first. Here it is one product with OpenBLAS, `ones[1, rows] · x[rows,
 * width]`, straight on the heap; other reductions go to the stock kernel.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import type { OpenBlas } from "./_openblas.ts";

/** A vector of ones, grown as needed and shared by every call. */
let ones = new Float32Array(0);

/**
 * `Sum` of a float32 tensor over a leading block of axes (`[0]`, `[0, 1]`, …) as one sgemm;
 * anything else goes to `stock`.
 *
 * @param blas the loaded library
 * @param stock the kernel to use where this one does not apply
 * @returns the kernel function
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { loadOpenBlas } from "./_openblas.ts";
 * const load = loadOpenBlas();
 * const stock = tf.getKernel("Sum", "wasm")!.kernelFunc;
 * if (load.ok) makeNativeSum(load.blas, stock);
 * ```
 */
export function makeNativeSum(blas: OpenBlas, stock: tf.KernelFunc): tf.KernelFunc {
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
    if (rows * width === 0) {
      (wasm.typedArrayFromHeap(out) as Float32Array).fill(0);
      return out;
    }
    // Views are taken after the allocation above: a heap growth detaches older views.
    const xs = wasm.typedArrayFromHeap(x) as Float32Array;
    sumRows(blas, rows, width, xs, wasm.typedArrayFromHeap(out) as Float32Array);
    return out;
  };
}

/**
 * `out[j] = Σᵣ x[r, j]` (plus `out` itself where `beta` is 1): the column sums of a row-major
 * `rows × width` matrix as one product, `ones[1, rows] · x`.
 *
 * @param blas the loaded library
 * @param rows rows of `x`
 * @param width columns of `x` and length of `out`
 * @param x the matrix
 * @param out the sums
 * @param beta 0 to overwrite `out`, 1 to add to it
 * @example
 * ```ts
 * import { loadOpenBlas } from "./_openblas.ts";
 * const load = loadOpenBlas();
 * const out = new Float32Array(2);
 * if (load.ok) sumRows(load.blas, 3, 2, new Float32Array([1, 2, 3, 4, 5, 6]), out); // [9, 12]
 * ```
 */
export function sumRows(
  blas: OpenBlas,
  rows: number,
  width: number,
  x: Float32Array,
  out: Float32Array,
  beta = 0,
): void {
  if (ones.length < rows) ones = new Float32Array(rows).fill(1);
  blas.sgemm(false, false, 1, width, rows, ones, x, out, beta);
}
