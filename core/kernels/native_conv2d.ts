/**
 * `Conv2D` on the `native` backend: the patches of each chunk of examples gathered with
 * im2col (transposed: one row per patch element), then one `cblas_sgemm` that multiplies
 * them by the filter straight into the NHWC output on the wasm heap.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { examplesPerChunk, im2colTransposed } from "./_im2col.ts";
import type { OpenBlas } from "./_openblas.ts";
import { disposeInfo } from "./_wasm_ops.ts";

/**
 * `Conv2D` on OpenBLAS for NHWC with dilation 1; anything else goes to `stock`.
 *
 * @param blas the loaded library
 * @param stock the kernel to use where this one does not apply
 * @returns the kernel function
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { loadOpenBlas } from "./_openblas.ts";
 * const load = loadOpenBlas();
 * const stock = tf.getKernel("Conv2D", "wasm")!.kernelFunc;
 * if (load.ok) makeNativeConv2d(load.blas, stock);
 * ```
 */
export function makeNativeConv2d(blas: OpenBlas, stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const attrs = args.attrs as unknown as tf.Conv2DAttrs;
    const dilations = typeof attrs.dilations === "number"
      ? [attrs.dilations, attrs.dilations]
      : attrs.dilations ?? [1, 1];
    if (attrs.dataFormat === "NCHW" || dilations[0] !== 1 || dilations[1] !== 1) {
      return stock(args);
    }
    const wasm = args.backend as BackendWasm;
    const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const { batchSize, outHeight, outWidth, outChannels } = info;
    const rowsPerExample = outHeight * outWidth;
    const patchSize = info.filterHeight * info.filterWidth * info.inChannels;
    const chunk = examplesPerChunk(info);
    const out = wasm.makeOutput(info.outShape, "float32");
    if (out.shape.reduce((a, b) => a * b, 1) === 0) return out;
    const colT = wasm.makeOutput(
      [patchSize, Math.min(chunk, batchSize) * rowsPerExample],
      "float32",
    );
    try {
      for (let first = 0; first < batchSize; first += chunk) {
        const examples = Math.min(chunk, batchSize - first);
        const rows = examples * rowsPerExample;
        // Views are taken after the allocations above: a heap growth detaches older views.
        const cols = (wasm.typedArrayFromHeap(colT) as Float32Array).subarray(0, patchSize * rows);
        im2colTransposed(wasm.typedArrayFromHeap(x) as Float32Array, info, first, examples, cols);
        const outRows = (wasm.typedArrayFromHeap(out) as Float32Array).subarray(
          first * rowsPerExample * outChannels,
          (first + examples) * rowsPerExample * outChannels,
        );
        const w = wasm.typedArrayFromHeap(filter) as Float32Array;
        blas.sgemm(true, false, rows, outChannels, patchSize, cols, w, outRows);
      }
    } finally {
      disposeInfo(colT, wasm);
    }
    return out;
  };
}
