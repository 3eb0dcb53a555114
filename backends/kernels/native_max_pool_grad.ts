/**
 * `MaxPoolGrad` on the `native` backend: the wasm kernel's one pass over the windows, done in
 * WebAssembly SIMD four channels at a time, with the running maximum and its position
 * selected per lane (no branch to mispredict).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import { makeMaxPoolGrad } from "./max_pool_grad.ts";
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
  return makeMaxPoolGrad((x, dy, info, dx) =>
    simd.maxPoolGrad(x.byteOffset, dy.byteOffset, dx.byteOffset, info.batchSize, info)
  );
}
