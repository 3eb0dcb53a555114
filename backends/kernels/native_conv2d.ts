/**
 * Convolutions on the `native` backend, NHWC with dilation 1: the patches gathered with
 * im2col (WebAssembly SIMD), then one `cblas_sgemm` per chunk of examples straight on the
 * wasm heap, each chunk small enough that its patches stay in cache between the gather and
 * the product:
 *
 * - `Conv2D`: `y[rows, o] = cols[rows, k] · W[k, o]`;
 * - `Conv2DBackpropFilter`: `dW[k, o] = colsᵀ · dy[rows, o]`, chunks accumulated by sgemm;
 * - `Conv2DBackpropInput`: at stride 1 with 8 or more input channels, a forward convolution
 *   of `dy` with the filter flipped (no scatter); otherwise the patch gradients
 *   `dcols = dy · Wᵀ` (or `dcolsᵀ = W · dyᵀ`) added back by col2im.
 *
 * The patches are laid out one row per output position (`cols`), or transposed, one row per
 * patch element (`colsᵀ`), whichever is faster to gather and multiply: transposed where a
 * patch element's run over output columns is contiguous in the input (one channel, stride
 * 1: mnist-cnn's first layer). Anything else (NCHW, dilations) goes to the stock kernel.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { examplesPerChunk } from "./_im2col.ts";
import type { OpenBlas } from "./_openblas.ts";
import type { SimdKernels } from "./_simd.ts";
import { disposeInfo } from "./_wasm_ops.ts";
import {
  type Conv,
  convolve,
  filterGradient,
  forChunks,
  isEmpty,
  NATIVE_CHUNK_ELEMENTS,
  outputRows,
  plan,
  view,
} from "./_conv_plan.ts";

/**
 * Fewest input channels for which a stride-1 input gradient runs as a forward convolution
 * (its product's width is the input's channels): with one channel the product is a
 * matrix-vector one, and mnist-cnn's first layer took 3.9 ms that way against 1.2 ms through
 * col2im.
 */
const MIN_CHANNELS_AS_CONV = 8;

/**
 * `Conv2D` on OpenBLAS.
 *
 * @param blas the loaded library
 * @param simd the im2col kernel's module
 * @param stock the kernel to use where this one does not apply
 * @returns the kernel function
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { loadOpenBlas } from "./_openblas.ts";
 * import { loadSimdKernels } from "./_simd.ts";
 * const load = loadOpenBlas();
 * const simd = await loadSimdKernels(new WebAssembly.Memory({ initial: 1 }));
 * const stock = tf.getKernel("Conv2D", "wasm")!.kernelFunc;
 * if (load.ok) makeNativeConv2d(load.blas, simd, stock);
 * ```
 */
export function makeNativeConv2d(
  blas: OpenBlas,
  simd: SimdKernels,
  stock: tf.KernelFunc,
): tf.KernelFunc {
  return (args) => {
    const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const conv = plan(args, x.shape, filter.shape);
    if (!conv) return stock(args);
    const { wasm, info, patchSize } = conv;
    const out = wasm.makeOutput(info.outShape, "float32");
    if (isEmpty(info.outShape)) return out;
    if (patchSize === 0) {
      view(wasm, out).fill(0);
      return out;
    }
    convolve(blas, simd, conv, { x, filter, y: out });
    return out;
  };
}

/**
 * `Conv2DBackpropFilter` on OpenBLAS.
 *
 * @param blas the loaded library
 * @param simd the im2col kernel's module
 * @param stock the kernel to use where this one does not apply
 * @returns the kernel function
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { loadOpenBlas } from "./_openblas.ts";
 * import { loadSimdKernels } from "./_simd.ts";
 * const load = loadOpenBlas();
 * const simd = await loadSimdKernels(new WebAssembly.Memory({ initial: 1 }));
 * const stock = tf.getKernel("Conv2DBackpropFilter", "wasm")!.kernelFunc;
 * if (load.ok) makeNativeConv2dBackpropFilter(load.blas, simd, stock);
 * ```
 */
export function makeNativeConv2dBackpropFilter(
  blas: OpenBlas,
  simd: SimdKernels,
  stock: tf.KernelFunc,
): tf.KernelFunc {
  return (args) => {
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const { filterShape } = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    const conv = plan(args, x.shape, filterShape);
    if (!conv) return stock(args);
    const { wasm, info } = conv;
    const dw = wasm.makeOutput(filterShape, "float32");
    if (isEmpty(filterShape)) return dw;
    view(wasm, dw).fill(0);
    if (isEmpty(info.outShape)) return dw;
    filterGradient(blas, simd, conv, { x, dy, dw });
    return dw;
  };
}

/**
 * `Conv2DBackpropInput` on OpenBLAS.
 *
 * @param blas the loaded library
 * @param simd the col2im kernel's module
 * @param stock the kernel to use where this one does not apply
 * @returns the kernel function
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { loadOpenBlas } from "./_openblas.ts";
 * import { loadSimdKernels } from "./_simd.ts";
 * const load = loadOpenBlas();
 * const simd = await loadSimdKernels(new WebAssembly.Memory({ initial: 1 }));
 * const stock = tf.getKernel("Conv2DBackpropInput", "wasm")!.kernelFunc;
 * if (load.ok) makeNativeConv2dBackpropInput(load.blas, simd, stock);
 * ```
 */
export function makeNativeConv2dBackpropInput(
  blas: OpenBlas,
  simd: SimdKernels,
  stock: tf.KernelFunc,
): tf.KernelFunc {
  return (args) => {
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const { inputShape } = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    const conv = plan(args, inputShape, filter.shape);
    if (!conv) return stock(args);
    const { wasm, info, rowsPerExample, patchSize } = conv;
    const dx = wasm.makeOutput(inputShape, "float32");
    if (isEmpty(inputShape)) return dx;
    if (isEmpty(info.outShape) || patchSize === 0) {
      view(wasm, dx).fill(0);
      return dx;
    }
    if (
      info.strideHeight === 1 && info.strideWidth === 1 && info.inChannels >= MIN_CHANNELS_AS_CONV
    ) {
      return backpropInputAsConv(blas, simd, conv, dy, filter, dx);
    }
    view(wasm, dx).fill(0);
    const transposed = conv.contiguousRuns;
    forChunks(conv, (first, examples, dcols) => {
      const rows = examples * rowsPerExample;
      const dyRows = outputRows(conv, dy, first, examples);
      if (transposed) {
        // dcolsᵀ[k, rows] = W[k, o] · dyᵀ: col2imT adds runs along the input's rows.
        blas.sgemm(
          false,
          true,
          patchSize,
          rows,
          info.outChannels,
          view(wasm, filter),
          dyRows,
          view(wasm, dcols),
        );
        simd.col2imT(
          view(wasm, dcols).byteOffset,
          view(wasm, dx).byteOffset,
          first,
          examples,
          info,
        );
      } else {
        // dcols[rows, k] = dy · Wᵀ: col2im adds each pixel's channels, four floats at a time.
        blas.sgemm(
          false,
          true,
          rows,
          patchSize,
          info.outChannels,
          dyRows,
          view(wasm, filter),
          view(wasm, dcols),
        );
        simd.col2im(view(wasm, dcols).byteOffset, view(wasm, dx).byteOffset, first, examples, info);
      }
    });
    return dx;
  };
}

/**
 * The input gradient of a stride-1 convolution as a forward convolution of `dy` with the
 * filter flipped in space and its channels swapped, `W'[g, o, c] = W[F−1−g, c, o]`, padded by
 * `F−1−pad`: `dx[i] = Σ_g dy[i + g − (F−1−pad)] · W'[g]`. Gathering `dy`'s patches (copies)
 * replaces scattering the patch gradients back (adds), and the product writes `dx` directly.
 * On mnist-cnn's second layer (one thread) it took 2.9 ms where sgemm + col2im took 3.7 ms.
 */
function backpropInputAsConv(
  blas: OpenBlas,
  simd: SimdKernels,
  conv: Conv,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  dx: tf.TensorInfo,
): tf.TensorInfo {
  const { wasm, info } = conv;
  const { filterHeight: fh, filterWidth: fw, inChannels: c, outChannels: o } = info;
  const flipped: tf.backend_util.Conv2DInfo = {
    ...info,
    inHeight: info.outHeight,
    inWidth: info.outWidth,
    inChannels: o,
    outHeight: info.inHeight,
    outWidth: info.inWidth,
    outChannels: c,
    padInfo: { ...info.padInfo, top: fh - 1 - info.padInfo.top, left: fw - 1 - info.padInfo.left },
  };
  const flippedConv: Conv = {
    ...conv,
    info: { ...flipped, batchSize: info.batchSize },
    rowsPerExample: flipped.outHeight * flipped.outWidth,
    patchSize: fh * fw * o,
    chunk: examplesPerChunk(flipped, NATIVE_CHUNK_ELEMENTS),
    contiguousRuns: false,
  };
  const w2 = wasm.makeOutput([fh, fw, o, c], "float32");
  try {
    const w = view(wasm, filter);
    const wFlipped = view(wasm, w2);
    for (let g = 0; g < fh * fw; g++) {
      const from = (fh * fw - 1 - g) * c * o;
      for (let ci = 0; ci < c; ci++) {
        for (let oi = 0; oi < o; oi++) wFlipped[(g * o + oi) * c + ci] = w[from + ci * o + oi];
      }
    }
    convolve(blas, simd, flippedConv, { x: dy, filter: w2, y: dx });
  } finally {
    disposeInfo(w2, wasm);
  }
  return dx;
}
