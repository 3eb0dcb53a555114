/**
 * Matrix products with a transposed operand, done as an explicit transpose followed by the
 * plain product. The wasm backend's XNNPACK path is about ten times faster without the
 * transpose flags, and every dense layer's backward pass sets one of them.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { disposeInfo, transposeLastTwo } from "./_wasm_ops.ts";

/**
 * Wrap a wasm matrix-product kernel (`BatchMatMul` or `_FusedMatMul`) so that
 * `transposeA`/`transposeB` are materialised with the Transpose kernel first.
 *
 * @param plainKernel the stock kernel, called with both transpose flags false
 * @returns a kernel function with the same inputs and attributes
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * const stock = tf.getKernel("BatchMatMul", "wasm").kernelFunc;
 * const fast = makeTransposedMatMul(stock);
 * ```
 */
export function makeTransposedMatMul(plainKernel: tf.KernelFunc): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const transposeA = attrs?.transposeA === true;
    const transposeB = attrs?.transposeB === true;
    if (!transposeA && !transposeB) return plainKernel({ inputs, backend, attrs });
    const wasm = backend as BackendWasm;
    const a = transposeA ? transposeLastTwo(inputs.a!, wasm) : inputs.a!;
    const b = transposeB ? transposeLastTwo(inputs.b!, wasm) : inputs.b!;
    try {
      return plainKernel({
        inputs: { ...inputs, a, b },
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      });
    } finally {
      if (transposeA) disposeInfo(a, wasm);
      if (transposeB) disposeInfo(b, wasm);
    }
  };
}
