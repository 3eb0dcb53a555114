/**
 * Conv2DBackpropFilter for the wasm backend as im2col plus one fast matrix product:
 * `dW[k, o] = sum_m colT[k, m] * dy[m, o]`, where `colT` holds the input patches
 * (see `_im2col.ts`) and `dy` is the output gradient viewed as `[rows, outChannels]`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { backpropPlan, im2colTransposed } from "./_im2col.ts";
import { copyRows, disposeInfo, runWasmKernel } from "./_wasm_ops.ts";

/**
 * Make the im2col Conv2DBackpropFilter kernel for wasm (NHWC, any strides and padding).
 * Batches whose patches exceed `IM2COL_CHUNK_ELEMENTS` are done in chunks of examples
 * whose partial filter gradients are summed.
 *
 * @param fallback used for what the fast path does not cover (NCHW data)
 * @returns a kernel function for the wasm backend
 * @example
 * ```ts
 * import { makeCpuFallback } from "./cpu_fallback.ts";
 * const kernelFunc = makeConv2dBackpropFilter(makeCpuFallback("Conv2DBackpropFilter"));
 * ```
 */
export function makeConv2dBackpropFilter(fallback: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    if (attrs.dataFormat === "NCHW") return fallback(args);
    const wasm = args.backend as BackendWasm;
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const { info, rowsPerExample, patchSize, chunk, dy2d } = backpropPlan(
      x.shape,
      attrs.filterShape,
      attrs,
      dy,
    );
    const { batchSize, outChannels } = info;
    if (chunk >= batchSize) {
      const dw = filterGradientOfChunk(x, dy2d, info, 0, batchSize, wasm);
      return { ...dw, shape: attrs.filterShape };
    }
    const total = new Float32Array(patchSize * outChannels);
    for (let first = 0; first < batchSize; first += chunk) {
      const examples = Math.min(chunk, batchSize - first);
      const dyPart = copyRows(dy2d, first * rowsPerExample, examples * rowsPerExample, wasm);
      const dw = filterGradientOfChunk(x, dyPart, info, first, examples, wasm);
      const partial = wasm.typedArrayFromHeap(dw) as Float32Array;
      for (let i = 0; i < total.length; i++) total[i] += partial[i];
      disposeInfo(dw, wasm);
      disposeInfo(dyPart, wasm);
    }
    return wasm.makeOutput(attrs.filterShape, "float32", undefined, total);
  };
}

/** `colT · dy` for one chunk of examples; `dy` holds just that chunk's rows. */
function filterGradientOfChunk(
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
  first: number,
  examples: number,
  wasm: BackendWasm,
): tf.TensorInfo {
  const rows = examples * info.outHeight * info.outWidth;
  const patchSize = info.filterHeight * info.filterWidth * info.inChannels;
  const colT = wasm.makeOutput([patchSize, rows], "float32");
  // Views are taken after the allocation above: a heap growth detaches older views.
  const xValues = wasm.typedArrayFromHeap(x) as Float32Array;
  im2colTransposed(xValues, info, first, examples, wasm.typedArrayFromHeap(colT) as Float32Array);
  try {
    return runWasmKernel(
      "BatchMatMul",
      { a: colT, b: dy },
      { transposeA: false, transposeB: false },
      wasm,
    );
  } finally {
    disposeInfo(colT, wasm);
  }
}
