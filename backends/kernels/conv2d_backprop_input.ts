/**
 * Conv2DBackpropInput for the wasm backend as one fast matrix product plus col2im:
 * `dcols[m, k] = sum_o dy[m, o] * W[k, o]`, then each patch row is added back onto the
 * input positions it was gathered from (see `_im2col.ts`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { backpropPlan, col2im } from "./_im2col.ts";
import { copyRows, disposeInfo, runWasmKernel } from "./_wasm_ops.ts";

/**
 * Make the matmul + col2im Conv2DBackpropInput kernel for wasm (NHWC, any strides and
 * padding). Batches whose patches exceed `IM2COL_CHUNK_ELEMENTS` are done in chunks.
 *
 * @param fallback used for what the fast path does not cover (NCHW data)
 * @returns a kernel function for the wasm backend
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * const stock = tf.getKernel("Conv2DBackpropInput", "wasm").kernelFunc;
 * const kernelFunc = makeConv2dBackpropInput(stock);
 * ```
 */
export function makeConv2dBackpropInput(fallback: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const attrs = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    if (attrs.dataFormat === "NCHW") return fallback(args);
    const wasm = args.backend as BackendWasm;
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const { info, rowsPerExample, patchSize, chunk, dy2d } = backpropPlan(
      attrs.inputShape,
      filter.shape,
      attrs,
      dy,
    );
    const { batchSize, outChannels } = info;
    const filter2d = { ...filter, shape: [patchSize, outChannels] };
    const filterT = runWasmKernel("Transpose", { x: filter2d }, { perm: [1, 0] }, wasm);
    const dx = wasm.makeOutput(attrs.inputShape, "float32");
    wasm.typedArrayFromHeap(dx).fill(0);
    for (let first = 0; first < batchSize; first += chunk) {
      const examples = Math.min(chunk, batchSize - first);
      const whole = examples === batchSize;
      const dyPart = whole
        ? dy2d
        : copyRows(dy2d, first * rowsPerExample, examples * rowsPerExample, wasm);
      const dcols = runWasmKernel(
        "BatchMatMul",
        { a: dyPart, b: filterT },
        { transposeA: false, transposeB: false },
        wasm,
      );
      // Views are taken after the allocations above: a heap growth detaches older views.
      const dcolValues = wasm.typedArrayFromHeap(dcols) as Float32Array;
      col2im(dcolValues, info, first, examples, wasm.typedArrayFromHeap(dx) as Float32Array);
      disposeInfo(dcols, wasm);
      if (!whole) disposeInfo(dyPart, wasm);
    }
    disposeInfo(filterT, wasm);
    return dx;
  };
}
