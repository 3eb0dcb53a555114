/**
 * What the native convolution kernels share: the call's geometry (`plan`), views of tensors
 * on the wasm heap, the loop over cache-sized chunks of examples with one patch buffer, and the
 * split of a kernel's examples over the compute threads (`splitRun`; the convolution and its
 * filter gradient as ranges, `_range_kernels.ts`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { examplesPerChunk } from "./_im2col.ts";
import type { OpenBlas } from "./_openblas.ts";
import type { SimdKernels } from "./_simd.ts";
import { disposeInfo } from "./_wasm_ops.ts";
import { computePool } from "./_compute_pool.ts";
import { evenSplit } from "../../core/even_split.ts";
import { type ConvShape, type RangeJob, type RangeKernels, runJob } from "./_range_kernels.ts";
import { wasmHeap } from "../shared_heap.ts";

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

/** Below this many FLOPs a kernel runs on the main thread alone: waking a thread costs more. */
const SPLIT_MIN_FLOPS = 2e6;

/**
 * Runs a kernel over `batch` examples split between this thread and the compute threads
 * (`--threads` − 1), or on this thread alone where there are none, the batch is a single
 * example or the work is too small to pay for waking them.
 *
 * @param batch examples
 * @param flops the kernel's FLOPs, to judge whether a split pays
 * @param job the job for a range of examples, and which part it is (0 is this thread's)
 * @param own runs a range on this thread
 * @example
 * ```ts
 * import { type Pool2Job, type RangeKernels, runJob } from "./_range_kernels.ts";
 * declare const k: RangeKernels;
 * declare const job: (from: number, to: number, part: number) => Pool2Job;
 * splitRun(128, 4e6, (from, to, part) => ({ kind: "pool2", job: job(from, to, part) }), (j) => runJob(k, j));
 * ```
 */
export function splitRun(
  batch: number,
  flops: number,
  job: (from: number, to: number, part: number) => RangeJob,
  own: (job: RangeJob) => void,
): void {
  const parts = splitParts(batch, flops);
  const pool = computePool();
  if (!pool || parts < 2) {
    own(job(0, batch, 0));
    return;
  }
  const jobs = evenSplit(batch, parts).map(({ offset, length }, i) =>
    job(offset, offset + length, i)
  );
  pool.run(jobs.slice(1), () => own(jobs[0]));
}

/**
 * How many parts {@linkcode splitRun} cuts `batch` examples into: one per thread, at most one
 * per example, and one where the kernel is too small to pay for waking the threads.
 *
 * @param batch examples
 * @param flops the kernel's FLOPs
 * @returns parts (1 without compute threads, or inside a split already running)
 * @example
 * ```ts
 * splitParts(128, 4e6); // 2 with --threads 2
 * ```
 */
export function splitParts(batch: number, flops: number): number {
  const pool = computePool();
  if (!pool || pool.busy || flops < SPLIT_MIN_FLOPS) return 1;
  return Math.max(1, Math.min(pool.helpers + 1, batch));
}

/** The kernels the main thread runs its part with. */
function rangeKernels(blas: OpenBlas, simd: SimdKernels, conv: Conv): RangeKernels {
  return { blas, simd, memory: wasmHeap(conv.wasm) };
}

/** The geometry and chunking of `conv`, as a job carries them. */
function shapeOf(conv: Conv): ConvShape {
  const { info } = conv;
  return {
    geometry: info,
    outChannels: info.outChannels,
    rowsPerExample: conv.rowsPerExample,
    patchSize: conv.patchSize,
    chunk: conv.chunk,
    contiguousRuns: conv.contiguousRuns,
  };
}

/** A patch buffer for each part of a split: `parts` rooms of one chunk, 16-byte aligned. */
function patchRooms(conv: Conv, parts: number): { cols: tf.TensorInfo; room: number } {
  const examples = Math.min(conv.chunk, Math.ceil(conv.info.batchSize / parts));
  const floats = Math.max(1, examples * conv.rowsPerExample * conv.patchSize);
  const room = Math.ceil(floats / 4) * 4;
  return { cols: conv.wasm.makeOutput([parts * room], "float32"), room };
}

/**
 * The convolution `y = x ∗ W` chunk by chunk: each chunk's patches gathered, then one sgemm
 * into its rows of `y`, then (with `bias`) the bias added and ReLU where `relu`, while those
 * rows are in cache. With compute threads, each takes a range of the examples.
 */
export function convolve(
  blas: OpenBlas,
  simd: SimdKernels,
  conv: Conv,
  tensors: { x: tf.TensorInfo; filter: tf.TensorInfo; y: tf.TensorInfo; bias?: tf.TensorInfo },
  relu = false,
): void {
  const { wasm, info, rowsPerExample, patchSize } = conv;
  const batch = info.batchSize;
  const flops = 2 * batch * rowsPerExample * patchSize * info.outChannels;
  const { cols, room } = patchRooms(conv, splitParts(batch, flops));
  try {
    // Addresses are taken after every allocation (a heap growth moves nothing, but views end).
    const at = (t: tf.TensorInfo) => view(wasm, t).byteOffset;
    const base = {
      ...shapeOf(conv),
      x: at(tensors.x),
      filter: at(tensors.filter),
      y: at(tensors.y),
      bias: tensors.bias ? at(tensors.bias) : -1,
      relu,
    };
    const colsAt = at(cols);
    const k = rangeKernels(blas, simd, conv);
    splitRun(
      batch,
      flops,
      (from, to, part) => ({
        kind: "convolve",
        job: { ...base, from, to, cols: colsAt + part * room * 4 },
      }),
      (job) => runJob(k, job),
    );
  } finally {
    disposeInfo(cols, wasm);
  }
}

/**
 * The filter gradient `dW += patchesᵀ · dz` chunk by chunk into a zeroed `dW` (and, with `db`,
 * the bias gradient into a zeroed `db`); with `y`, `dz` is first `dy` masked by ReLU's output
 * into `dz`, chunk by chunk while its rows are in cache. With compute threads, each takes a
 * range of the examples into a partial sum of its own, added to `dW` and `db` at the end.
 */
export function filterGradient(
  blas: OpenBlas,
  simd: SimdKernels,
  conv: Conv,
  tensors: {
    x: tf.TensorInfo;
    dy: tf.TensorInfo;
    dw: tf.TensorInfo;
    y?: tf.TensorInfo;
    dz?: tf.TensorInfo;
    db?: tf.TensorInfo;
  },
): void {
  const { wasm, info, rowsPerExample, patchSize } = conv;
  const batch = info.batchSize;
  const o = info.outChannels;
  const flops = 2 * batch * rowsPerExample * patchSize * o;
  const parts = splitParts(batch, flops);
  const { cols, room } = patchRooms(conv, parts);
  // Each compute thread's partial dW then db.
  const partial = Math.ceil((patchSize * o + o) / 4) * 4;
  const sums = parts > 1 ? wasm.makeOutput([(parts - 1) * partial], "float32") : null;
  try {
    const at = (t: tf.TensorInfo) => view(wasm, t).byteOffset;
    if (sums) view(wasm, sums).fill(0);
    const base = {
      ...shapeOf(conv),
      x: at(tensors.x),
      dy: at(tensors.dy),
      y: tensors.y ? at(tensors.y) : -1,
      dz: at(tensors.dz ?? tensors.dy),
    };
    const own = { dw: at(tensors.dw), db: tensors.db ? at(tensors.db) : -1 };
    const colsAt = at(cols);
    const sumsAt = sums ? at(sums) : -1;
    const k = rangeKernels(blas, simd, conv);
    splitRun(
      batch,
      flops,
      (from, to, part) => {
        const dw = part === 0 ? own.dw : sumsAt + (part - 1) * partial * 4;
        const db = own.db < 0 ? -1 : part === 0 ? own.db : dw + patchSize * o * 4;
        return {
          kind: "filterGradient",
          job: { ...base, from, to, dw, db, cols: colsAt + part * room * 4 },
        };
      },
      (job) => runJob(k, job),
    );
    if (sums) {
      const all = view(wasm, sums);
      const dw = view(wasm, tensors.dw);
      const db = tensors.db ? view(wasm, tensors.db) : null;
      for (let p = 0; p < parts - 1; p++) {
        const from = p * partial;
        for (let i = 0; i < patchSize * o; i++) dw[i] += all[from + i];
        if (db) { for (let i = 0; i < o; i++) db[i] += all[from + patchSize * o + i]; }
      }
    }
  } finally {
    disposeInfo(cols, wasm);
    if (sums) disposeInfo(sums, wasm);
  }
}
