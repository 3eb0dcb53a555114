/**
 * Small helpers for kernels that run on the wasm backend: calling another registered
 * wasm kernel, transposing, copying rows, and freeing intermediate tensors.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

/**
 * Run the kernel currently registered on wasm under `kernelName`.
 *
 * @param kernelName e.g. `"Transpose"`
 * @param inputs the kernel's named inputs
 * @param attrs the kernel's attributes
 * @param backend the wasm backend
 * @returns the kernel's (single) output
 * @example
 * ```ts
 * import type * as tf from "@tensorflow/tfjs-core";
 * import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
 * declare const backend: BackendWasm;
 * declare const x: tf.TensorInfo;
 * const t = runWasmKernel("Transpose", { x }, { perm: [1, 0] }, backend);
 * ```
 */
export function runWasmKernel(
  kernelName: string,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap,
  backend: BackendWasm,
): tf.TensorInfo {
  // The kernel of the backend running now: `native` reuses these helpers on its own kernels.
  const config = tf.getKernel(kernelName, tf.getBackend());
  if (config == null) {
    throw new Error(`Cannot run kernel ${kernelName} on ${tf.getBackend()}: it is not registered`);
  }
  return config.kernelFunc({ inputs, attrs, backend }) as tf.TensorInfo;
}

/**
 * Materialise `x` with its last two dimensions swapped, using the wasm Transpose kernel.
 *
 * @param x a tensor of rank 2 or more
 * @param backend the wasm backend
 * @returns a new tensor; free it with {@linkcode disposeInfo}
 * @example
 * ```ts
 * import type * as tf from "@tensorflow/tfjs-core";
 * import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
 * declare const backend: BackendWasm;
 * declare const x: tf.TensorInfo;
 * const xT = transposeLastTwo(x, backend); // [b, m, n] -> [b, n, m]
 * ```
 */
export function transposeLastTwo(x: tf.TensorInfo, backend: BackendWasm): tf.TensorInfo {
  const rank = x.shape.length;
  const perm = [...Array(rank).keys()];
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return runWasmKernel("Transpose", { x }, { perm }, backend);
}

/**
 * Copy rows `[start, start + count)` of a row-major `[rows, width]` float32 tensor.
 *
 * @param x the source tensor on wasm
 * @param start first row to copy
 * @param count number of rows
 * @param backend the wasm backend
 * @returns a new `[count, width]` tensor
 * @example
 * ```ts
 * import type * as tf from "@tensorflow/tfjs-core";
 * import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
 * declare const backend: BackendWasm;
 * declare const dy2d: tf.TensorInfo;
 * const part = copyRows(dy2d, 64, 32, backend);
 * ```
 */
export function copyRows(
  x: tf.TensorInfo,
  start: number,
  count: number,
  backend: BackendWasm,
): tf.TensorInfo {
  const width = x.shape[x.shape.length - 1];
  const out = backend.makeOutput([count, width], "float32");
  // Views are taken after the allocation above: a heap growth detaches older views.
  const source = backend.typedArrayFromHeap(x);
  backend.typedArrayFromHeap(out).set(source.subarray(start * width, (start + count) * width));
  return out;
}

/**
 * Free an intermediate tensor made inside a kernel.
 *
 * @param info the tensor
 * @param backend the backend that holds it
 * @example
 * ```ts
 * import type * as tf from "@tensorflow/tfjs-core";
 * import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
 * declare const backend: BackendWasm;
 * declare const xT: tf.TensorInfo;
 * disposeInfo(xT, backend);
 * ```
 */
export function disposeInfo(info: tf.TensorInfo, backend: tf.KernelBackend): void {
  backend.disposeData(info.dataId);
}
