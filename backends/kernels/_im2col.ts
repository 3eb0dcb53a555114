/**
 * Patch gathering for 2-D convolutions in NHWC layout (dilation 1), in plain loops over
 * typed arrays.
 *
 * A patch column index `k = (fh * filterWidth + fw) * inChannels + c` matches the row order
 * of a `[filterHeight, filterWidth, inChannels, outChannels]` filter; a row index
 * `m = ((n - firstExample) * outHeight + oh) * outWidth + ow` matches the row order of an
 * NHWC output.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * Largest patch matrix built at once, in float32 elements (16 MiB): bigger batches are
 * done in chunks of whole examples.
 */
export const IM2COL_CHUNK_ELEMENTS = 4 * 1024 * 1024;

/** The part of `backend_util.Conv2DInfo` the patch loops need. */
export type PatchInfo = Pick<
  tf.backend_util.Conv2DInfo,
  | "inHeight"
  | "inWidth"
  | "inChannels"
  | "outHeight"
  | "outWidth"
  | "filterHeight"
  | "filterWidth"
  | "strideHeight"
  | "strideWidth"
  | "padInfo"
>;

/**
 * How many whole examples fit in one patch matrix of at most `maxElements` floats (at least
 * one).
 *
 * @param info the convolution geometry
 * @param maxElements the largest patch matrix to build at once (default
 *   {@linkcode IM2COL_CHUNK_ELEMENTS})
 * @returns examples per chunk
 * @example
 * ```ts
 * declare const convInfo: PatchInfo;
 * const chunk = examplesPerChunk(convInfo);
 * ```
 */
export function examplesPerChunk(info: PatchInfo, maxElements = IM2COL_CHUNK_ELEMENTS): number {
  const patchSize = info.filterHeight * info.filterWidth * info.inChannels;
  const elementsPerExample = info.outHeight * info.outWidth * patchSize;
  return Math.max(1, Math.floor(maxElements / elementsPerExample));
}

/**
 * Gather the input patches of examples `[firstExample, firstExample + examples)` as the
 * transposed im2col matrix `[patchSize, rows]`, zeros where a patch hangs over the padding.
 *
 * @param x the whole NHWC input
 * @param info the convolution geometry
 * @param firstExample first example of the chunk
 * @param examples number of examples in the chunk
 * @param out receives `patchSize * examples * outHeight * outWidth` values
 * @example
 * ```ts
 * declare const convInfo: PatchInfo;
 * declare const x: Float32Array, colT: Float32Array, batch: number;
 * im2colTransposed(x, convInfo, 0, batch, colT);
 * ```
 */
export function im2colTransposed(
  x: Float32Array,
  info: PatchInfo,
  firstExample: number,
  examples: number,
  out: Float32Array,
): void {
  const { inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  const rowsPerExample = outHeight * outWidth;
  const rows = examples * rowsPerExample;
  const rowStride = inWidth * inChannels;
  const colStride = strideWidth * inChannels;
  // One example at a time, so its slice of `x` stays in cache across all patch columns.
  for (let n = firstExample; n < firstExample + examples; n++) {
    const exampleRow = (n - firstExample) * rowsPerExample;
    const exampleBase = n * inHeight * rowStride;
    for (let fh = 0; fh < filterHeight; fh++) {
      for (let fw = 0; fw < filterWidth; fw++) {
        // Output columns whose input column lies inside the image: [owStart, owEnd).
        const owStart = Math.max(0, Math.ceil((left - fw) / strideWidth));
        const owEnd = Math.min(outWidth, Math.ceil((inWidth + left - fw) / strideWidth));
        for (let c = 0; c < inChannels; c++) {
          const k = (fh * filterWidth + fw) * inChannels + c;
          let m = k * rows + exampleRow;
          for (let oh = 0; oh < outHeight; oh++) {
            const ih = oh * strideHeight + fh - top;
            if (ih < 0 || ih >= inHeight || owStart >= owEnd) {
              out.fill(0, m, m + outWidth);
              m += outWidth;
              continue;
            }
            for (let ow = 0; ow < owStart; ow++) out[m++] = 0;
            let src = exampleBase + ih * rowStride + (owStart * strideWidth + fw - left) *
                inChannels +
              c;
            for (let ow = owStart; ow < owEnd; ow++) {
              out[m++] = x[src];
              src += colStride;
            }
            for (let ow = owEnd; ow < outWidth; ow++) out[m++] = 0;
          }
        }
      }
    }
  }
}

/**
 * Scatter-add an im2col matrix `[rows, patchSize]` of examples
 * `[firstExample, firstExample + examples)` back onto the NHWC image it came from.
 *
 * @param cols patch values, one row per output position
 * @param info the convolution geometry
 * @param firstExample first example of the chunk
 * @param examples number of examples in the chunk
 * @param dx the whole NHWC image, accumulated into (zero it first)
 * @example
 * ```ts
 * declare const convInfo: PatchInfo;
 * declare const dcols: Float32Array, dx: Float32Array, batch: number;
 * col2im(dcols, convInfo, 0, batch, dx);
 * ```
 */
export function col2im(
  cols: Float32Array,
  info: PatchInfo,
  firstExample: number,
  examples: number,
  dx: Float32Array,
): void {
  const { inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  const patchSize = filterHeight * filterWidth * inChannels;
  const rowStride = inWidth * inChannels;
  let row = 0;
  for (let n = firstExample; n < firstExample + examples; n++) {
    for (let oh = 0; oh < outHeight; oh++) {
      for (let ow = 0; ow < outWidth; ow++, row++) {
        const rowBase = row * patchSize;
        for (let fh = 0; fh < filterHeight; fh++) {
          const ih = oh * strideHeight + fh - top;
          if (ih < 0 || ih >= inHeight) continue;
          for (let fw = 0; fw < filterWidth; fw++) {
            const iw = ow * strideWidth + fw - left;
            if (iw < 0 || iw >= inWidth) continue;
            const src = rowBase + (fh * filterWidth + fw) * inChannels;
            const dst = (n * inHeight + ih) * rowStride + iw * inChannels;
            for (let c = 0; c < inChannels; c++) dx[dst + c] += cols[src + c];
          }
        }
      }
    }
  }
}

/** What the wasm backprop kernels share of a call: the geometry, and `dy` as a matrix. */
export interface BackpropPlan {
  info: tf.backend_util.Conv2DInfo;
  /** Output positions per example. */
  rowsPerExample: number;
  /** Floats per patch. */
  patchSize: number;
  /** Examples per chunk of patches. */
  chunk: number;
  /** `dy` viewed as `[batch · rowsPerExample, outChannels]` (the same memory). */
  dy2d: tf.TensorInfo;
}

/**
 * The geometry of a convolution's backprop call and its `dy` as a matrix.
 *
 * @param inShape the input's NHWC shape
 * @param filterShape `[fh, fw, in, out]`
 * @param attrs the call's strides, padding and rounding
 * @param dy the output gradient
 * @returns the plan
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * const dy = { dataId: {}, shape: [2, 4, 4, 8], dtype: "float32" as const };
 * backpropPlan([2, 4, 4, 3], [3, 3, 3, 8], { strides: 1, pad: "same" }, dy).patchSize; // 27
 * ```
 */
export function backpropPlan(
  inShape: number[],
  filterShape: number[],
  attrs: Pick<tf.Conv2DBackpropFilterAttrs, "strides" | "pad" | "dimRoundingMode">,
  dy: tf.TensorInfo,
): BackpropPlan {
  const info = tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const rowsPerExample = info.outHeight * info.outWidth;
  return {
    info,
    rowsPerExample,
    patchSize: info.filterHeight * info.filterWidth * info.inChannels,
    chunk: examplesPerChunk(info),
    dy2d: { ...dy, shape: [info.batchSize * rowsPerExample, info.outChannels] },
  };
}
