/**
 * What the native convolution kernels share: the call's geometry (`plan`), views of tensors
 * on the wasm heap, and the loop over cache-sized chunks of examples with one patch buffer.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { examplesPerChunk } from "./_im2col.ts";
import type { OpenBlas } from "./_openblas.ts";
import type { SimdKernels } from "./_simd.ts";
import { disposeInfo } from "./_wasm_ops.ts";

/**
 * Largest patch matrix a native kernel builds at once, in floats (128 KiB): one chunk's
 * patches, its sgemm's operands and its output stay in the core's L2 cache between the
 * gather and the product. Measured on mnist-cnn's second layer (rows × 144 · 144 × 32, one
 * thread): sgemm ran at 110 GFLOP/s one example (113 KiB of patches) at a time, 88 GFLOP/s
 * at four, 61 GFLOP/s on the whole batch of 128 at once (14 MiB).
 */
export const NATIVE_CHUNK_ELEMENTS = 32 * 1024;

/** What a convolution kernel needs of its call: the geometry and how it is chunked. */
export interface Conv {
  wasm: BackendWasm;
  info: tf.backend_util.Conv2DInfo;
  /** Output positions per example. */
  rowsPerExample: number;
  /** Floats per patch: filterHeight · filterWidth · inChannels. */
  patchSize: number;
  /** Examples per chunk of patches. */
  chunk: number;
  /** Whether a patch element's run over output columns is contiguous in the input. */
  contiguousRuns: boolean;
}

/** The geometry of a convolution call, or null where the native kernels do not apply (NCHW, dilations). */
export function plan(
  args: Parameters<tf.KernelFunc>[0],
  inShape: number[],
  filterShape: number[],
): Conv | null {
  const attrs = args.attrs as unknown as tf.Conv2DAttrs;
  const dilations = typeof attrs.dilations === "number"
    ? [attrs.dilations, attrs.dilations]
    : attrs.dilations ?? [1, 1];
  if (attrs.dataFormat === "NCHW" || dilations[0] !== 1 || dilations[1] !== 1) return null;
  const info = tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  return {
    wasm: args.backend as BackendWasm,
    info,
    rowsPerExample: info.outHeight * info.outWidth,
    patchSize: info.filterHeight * info.filterWidth * info.inChannels,
    chunk: examplesPerChunk(info, NATIVE_CHUNK_ELEMENTS),
    contiguousRuns: info.strideWidth * info.inChannels === 1,
  };
}

/** A float32 view of a tensor on the heap; its `byteOffset` is the tensor's address. */
export function view(wasm: BackendWasm, t: tf.TensorInfo): Float32Array {
  return wasm.typedArrayFromHeap(t) as Float32Array;
}

/** The rows of an output-shaped tensor (`y` or `dy`) that belong to a chunk of examples. */
export function outputRows(
  conv: Conv,
  t: tf.TensorInfo,
  first: number,
  examples: number,
): Float32Array {
  const perExample = conv.rowsPerExample * conv.info.outChannels;
  return view(conv.wasm, t).subarray(first * perExample, (first + examples) * perExample);
}

/** Gathers a chunk's patches in the layout `conv` multiplies: transposed or not. */
export function gather(
  simd: SimdKernels,
  conv: Conv,
  x: tf.TensorInfo,
  cols: tf.TensorInfo,
  first: number,
  examples: number,
): void {
  const im2col = conv.contiguousRuns ? simd.im2colT : simd.im2col;
  im2col(
    view(conv.wasm, x).byteOffset,
    view(conv.wasm, cols).byteOffset,
    first,
    examples,
    conv.info,
  );
}

/** Runs `body` for each chunk of examples with a patch buffer big enough for one chunk. */
export function forChunks(
  conv: Conv,
  body: (first: number, examples: number, cols: tf.TensorInfo) => void,
): void {
  const { wasm, info, chunk, rowsPerExample, patchSize } = conv;
  const cols = wasm.makeOutput(
    [Math.min(chunk, info.batchSize) * rowsPerExample, patchSize],
    "float32",
  );
  try {
    for (let first = 0; first < info.batchSize; first += chunk) {
      body(first, Math.min(chunk, info.batchSize - first), cols);
    }
  } finally {
    disposeInfo(cols, wasm);
  }
}

/** Whether a shape holds no element. */
export function isEmpty(shape: number[]): boolean {
  return shape.some((d) => d === 0);
}

/**
 * The convolution `y = x ∗ W` chunk by chunk: each chunk's patches gathered, then one sgemm
 * into its rows of `y`; `each` (the fused kernels' bias and activation) sees those rows while
 * they are in cache.
 */
export function convolve(
  blas: OpenBlas,
  simd: SimdKernels,
  conv: Conv,
  tensors: { x: tf.TensorInfo; filter: tf.TensorInfo; y: tf.TensorInfo },
  each?: (yRows: Float32Array, rows: number, first: number, examples: number) => void,
): void {
  const { wasm, info, rowsPerExample, patchSize } = conv;
  forChunks(conv, (first, examples, cols) => {
    const rows = examples * rowsPerExample;
    // Views are taken after every allocation: a heap growth detaches older views.
    gather(simd, conv, tensors.x, cols, first, examples);
    const yRows = outputRows(conv, tensors.y, first, examples);
    blas.sgemm(
      conv.contiguousRuns,
      false,
      rows,
      info.outChannels,
      patchSize,
      view(wasm, cols),
      view(wasm, tensors.filter),
      yRows,
    );
    each?.(yRows, rows, first, examples);
  });
}

/**
 * The filter gradient `dW += patchesᵀ · dy` chunk by chunk into a zeroed `dW` (sgemm adds
 * each chunk's product to the chunks' before it); `before` (the fused kernels' ReLU mask and
 * bias sum) runs on each chunk first, while its `dy` rows are about to be used.
 */
export function filterGradient(
  blas: OpenBlas,
  simd: SimdKernels,
  conv: Conv,
  tensors: { x: tf.TensorInfo; dy: tf.TensorInfo; dw: tf.TensorInfo },
  before?: (first: number, examples: number, rows: number) => void,
): void {
  const { wasm, info, rowsPerExample, patchSize } = conv;
  forChunks(conv, (first, examples, cols) => {
    const rows = examples * rowsPerExample;
    before?.(first, examples, rows);
    if (patchSize === 0) return;
    gather(simd, conv, tensors.x, cols, first, examples);
    blas.sgemm(
      !conv.contiguousRuns,
      false,
      patchSize,
      info.outChannels,
      rows,
      view(wasm, cols),
      outputRows(conv, tensors.dy, first, examples),
      view(wasm, tensors.dw),
      1,
    );
  });
}
