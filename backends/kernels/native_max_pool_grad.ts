/**
 * `MaxPoolGrad` on the `native` backend, in WebAssembly SIMD four channels at a time with the
 * running maximum and its position selected per lane (no branch to mispredict):
 *
 * - a 2×2 window with stride 2 and no padding (the usual pooling): one pass that writes every
 *   pixel of `dx` once, `dy` where the window's first maximum is and zero elsewhere;
 * - any other window, stride and padding: the wasm kernel's pass over the windows, adding
 *   each `dy` to its window's first maximum in a zeroed `dx`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { makeMaxPoolGrad, poolInfo } from "./max_pool_grad.ts";
import type { SimdKernels } from "./_simd.ts";
import type { OpenBlas } from "./_openblas.ts";
import { splitRun } from "./_conv_plan.ts";
import { type RangeKernels, runJob } from "./_range_kernels.ts";
import { wasmHeap } from "../shared_heap.ts";

/** Whether a pool is the 2×2, stride-2, unpadded one the SIMD kernels run (halving h and w). */
function isTwoByTwo(info: tf.backend_util.Conv2DInfo, h: number, w: number): boolean {
  return info.filterHeight === 2 && info.filterWidth === 2 && info.strideHeight === 2 &&
    info.strideWidth === 2 && info.padInfo.top === 0 && info.padInfo.left === 0 &&
    info.outHeight === h >> 1 && info.outWidth === w >> 1;
}

/** A tensor's address: its heap view's byte offset (taken after every allocation). */
function at(wasm: BackendWasm, t: tf.TensorInfo): number {
  return wasm.typedArrayFromHeap(t).byteOffset;
}

/**
 * A 2×2 pool (the forward where `dx` is −1, else its gradient) over an NHWC input's examples,
 * split over the compute threads where they exist.
 */
function splitPool2(
  k: RangeKernels,
  [n, h, w, c]: number[],
  tensors: { x: number; y: number; dx: number },
): void {
  const job = { height: h, width: w, channels: c, ...tensors };
  // About four operations an input element either way.
  splitRun(n, 4 * n * h * w * c, (from, to) => ({
    kind: "pool2",
    job: { ...job, from, to },
  }), (part) => runJob(k, part));
}

/**
 * The SIMD max-pool gradient (NHWC, any window, stride and padding); the 2×2, stride-2 one
 * split by examples over the compute threads.
 *
 * @param blas the loaded library
 * @param simd the kernel's module
 * @returns the kernel function
 * @example
 * ```ts
 * import { loadOpenBlas } from "./_openblas.ts";
 * import { loadSimdKernels } from "./_simd.ts";
 * const load = loadOpenBlas();
 * const simd = await loadSimdKernels(new WebAssembly.Memory({ initial: 1 }));
 * if (load.ok) makeNativeMaxPoolGrad(load.blas, simd);
 * ```
 */
export function makeNativeMaxPoolGrad(blas: OpenBlas, simd: SimdKernels): tf.KernelFunc {
  // The views lie on the heap the module imports: their byte offsets are the addresses.
  const anyWindow = makeMaxPoolGrad((x, dy, info, dx) =>
    simd.maxPoolGrad(x.byteOffset, dy.byteOffset, dx.byteOffset, info.batchSize, info)
  );
  return (args) => {
    const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
    const [n, h, w, c] = input.shape;
    if (!isTwoByTwo(poolInfo(args), h, w) || n * h * w * c === 0) return anyWindow(args);
    const wasm = args.backend as BackendWasm;
    const dx = wasm.makeOutput(input.shape, "float32");
    splitPool2({ blas, simd, memory: wasmHeap(wasm) }, input.shape, {
      x: at(wasm, input),
      y: at(wasm, dy),
      dx: at(wasm, dx),
    });
    return dx;
  };
}

/**
 * The SIMD max-pool of a 2×2 window, stride 2, no padding (NHWC), split by examples over the
 * compute threads; any other pool runs the wasm backend's (XNNPACK) kernel.
 *
 * @param blas the loaded library (its thread count is set while a split runs)
 * @param simd the SIMD module
 * @param stock the wasm backend's kernel
 * @returns the kernel function
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { loadOpenBlas } from "./_openblas.ts";
 * import { loadSimdKernels } from "./_simd.ts";
 * const load = loadOpenBlas();
 * const simd = await loadSimdKernels(new WebAssembly.Memory({ initial: 1 }));
 * const stock = tf.getKernel("MaxPool", "wasm")!.kernelFunc;
 * if (load.ok) makeNativeMaxPool(load.blas, simd, stock);
 * ```
 */
export function makeNativeMaxPool(
  blas: OpenBlas,
  simd: SimdKernels,
  stock: tf.KernelFunc,
): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype !== "float32") return stock(args);
    const [n, h, w, c] = x.shape;
    const attrs = args.attrs as unknown as tf.MaxPoolAttrs;
    const info = tf.backend_util.computePool2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterSize,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    if (!isTwoByTwo(info, h, w) || n * h * w * c === 0) return stock(args);
    const wasm = args.backend as BackendWasm;
    const y = wasm.makeOutput(info.outShape, "float32");
    splitPool2({ blas, simd, memory: wasmHeap(wasm) }, x.shape, {
      x: at(wasm, x),
      y: at(wasm, y),
      dx: -1,
    });
    return y;
  };
}
