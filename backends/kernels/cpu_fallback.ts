/**
 * A wasm kernel that borrows the cpu backend's implementation: inputs are copied to the
 * cpu backend, its kernel runs there, and the outputs are copied back into wasm memory.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

/**
 * Make a wasm kernel function that runs the cpu backend's `kernelName` kernel.
 *
 * Works for float32, int32, bool and string tensors; complex64 cannot live in wasm memory.
 * Lists of inputs stay lists; missing optional inputs stay missing. All cpu copies are
 * freed before returning, also when the cpu kernel throws.
 *
 * @param kernelName a kernel registered on the cpu backend
 * @returns a kernel function for the wasm backend
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * tf.registerKernel({
 *   kernelName: "UnsortedSegmentSum",
 *   backendName: "wasm",
 *   kernelFunc: makeCpuFallback("UnsortedSegmentSum"),
 * });
 * ```
 */
export function makeCpuFallback(kernelName: string): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const cpuKernel = tf.getKernel(kernelName, "cpu");
    const cpu = tf.findBackend("cpu");
    if (cpuKernel == null || cpu == null) {
      throw new Error(`Cannot run ${kernelName} through the cpu backend: it is not available`);
    }
    const wasm = backend as BackendWasm;
    const cpuDataIds = new Set<tf.DataId>();
    // Inputs are tensors, missing optional tensors, or lists of tensors (RaggedTensorToTensor's
    // rowPartitionTensors); Einsum's whole input map is a list.
    const toCpu = (input: unknown): unknown => {
      if (input == null) return input;
      if (Array.isArray(input)) return input.map(toCpu);
      const info = input as tf.TensorInfo;
      const dataId = cpu.write(wasm.readSync(info.dataId), info.shape, info.dtype);
      cpuDataIds.add(dataId);
      return { dataId, shape: info.shape, dtype: info.dtype };
    };
    const cpuInputs = Array.isArray(inputs)
      ? toCpu(inputs)
      : Object.fromEntries(Object.entries(inputs).map(([name, input]) => [name, toCpu(input)]));
    try {
      const result = cpuKernel.kernelFunc({
        inputs: cpuInputs as tf.NamedTensorInfoMap,
        backend: cpu,
        attrs,
      });
      const outputs = Array.isArray(result) ? result : [result];
      for (const output of outputs) cpuDataIds.add(output.dataId);
      const copies = outputs.map((output) =>
        wasm.makeOutput(
          output.shape,
          output.dtype,
          undefined,
          asBackendValues(cpu.readSync(output.dataId), output.dtype),
        )
      );
      return Array.isArray(result) ? copies : copies[0];
    } finally {
      for (const dataId of cpuDataIds) cpu.disposeData(dataId, true);
    }
  };
}

/** The values in the typed array the wasm backend expects for `dtype` (strings pass as is). */
function asBackendValues(
  values: tf.backend_util.BackendValues,
  dtype: tf.DataType,
): tf.backend_util.BackendValues {
  switch (dtype) {
    case "float32":
      return values instanceof Float32Array ? values : Float32Array.from(values as Int32Array);
    case "int32":
      return values instanceof Int32Array ? values : Int32Array.from(values as Float32Array);
    case "bool":
      return values instanceof Uint8Array ? values : Uint8Array.from(values as Int32Array);
    case "string":
      return values;
    default:
      throw new Error(`Cannot copy a ${dtype} tensor into wasm memory`);
  }
}
