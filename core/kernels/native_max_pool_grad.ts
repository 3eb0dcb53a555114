/**
 * `MaxPoolGrad` on the `native` backend: one pass in WebAssembly SIMD over the input windows,
 * four channels at a time, with the running maximum and its position selected per lane (no
 * branch to mispredict), then `dy` added where each window's first maximum was.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
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
  return (args) => {
    const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
    const wasm = args.backend as BackendWasm;
    const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      attrs.filterSize,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const dx = wasm.makeOutput(input.shape, "float32");
    // Views are taken after the allocation above: a heap growth detaches older views.
    const dxValues = wasm.typedArrayFromHeap(dx) as Float32Array;
    dxValues.fill(0);
    if (dxValues.length === 0 || dy.shape.some((d) => d === 0)) return dx;
    simd.maxPoolGrad(
      (wasm.typedArrayFromHeap(input) as Float32Array).byteOffset,
      (wasm.typedArrayFromHeap(dy) as Float32Array).byteOffset,
      dxValues.byteOffset,
      info.batchSize,
      info,
    );
    return dx;
  };
}
