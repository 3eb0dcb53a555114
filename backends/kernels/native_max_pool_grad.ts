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
import type * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { makeMaxPoolGrad, poolInfo } from "./max_pool_grad.ts";
import type { SimdKernels } from "./_simd.ts";

/**
 * The SIMD max-pool gradient (NHWC, any window, stride and padding).
 *
 * @param simd the kernel's module
 * @returns the kernel function
 * @example
 * ```ts
 * import { loadSimdKernels } from "./_simd.ts";
 * const simd = await loadSimdKernels(new WebAssembly.Memory({ initial: 1 }));
 * const kernelFunc = makeNativeMaxPoolGrad(simd);
 * ```
 */
export function makeNativeMaxPoolGrad(simd: SimdKernels): tf.KernelFunc {
  // The views lie on the heap the module imports: their byte offsets are the addresses.
  const anyWindow = makeMaxPoolGrad((x, dy, info, dx) =>
    simd.maxPoolGrad(x.byteOffset, dy.byteOffset, dx.byteOffset, info.batchSize, info)
  );
  return (args) => {
    const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
    const [n, h, w, c] = input.shape;
    const info = poolInfo(args);
    const twoByTwo = info.filterHeight === 2 && info.filterWidth === 2 &&
      info.strideHeight === 2 && info.strideWidth === 2 && info.padInfo.top === 0 &&
      info.padInfo.left === 0 && info.outHeight === h >> 1 && info.outWidth === w >> 1;
    if (!twoByTwo || n * h * w * c === 0) return anyWindow(args);
    const wasm = args.backend as BackendWasm;
    const dx = wasm.makeOutput(input.shape, "float32");
    // Views are taken after the allocation above: a heap growth detaches older views.
    const at = (t: tf.TensorInfo) => wasm.typedArrayFromHeap(t).byteOffset;
    simd.maxPool2Grad(at(input), at(dy), at(dx), n, h, w, c);
    return dx;
  };
}
