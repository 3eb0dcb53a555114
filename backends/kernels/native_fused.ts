/**
 * The fused layers of `core/nn_ops.ts` on the `native` backend: a dense layer and a
 * convolution block each as one kernel forward and one backward, on OpenBLAS and the SIMD
 * module, straight on the wasm heap.
 *
 * - dense: `y = act(x · W + b)`: sgemm into `y`, then the bias and the activation in one pass
 *   in place; backward: `dz = y > 0 ? dy : 0` (ReLU) in one pass, `dW = xᵀ · dz` and
 *   `db = 1ᵀ · dz` by sgemm. The input's gradient, `dz · Wᵀ`, is a plain product, made only
 *   where the tape asks for it.
 * - convolution block: the convolution as `Conv2D` does it (patches of a cache-sized chunk of
 *   examples, then sgemm), the bias and activation applied to each chunk's rows while they are
 *   in cache; backward, per chunk: the ReLU's mask, `dW += colsᵀ · dz` and `db += 1ᵀ · dz`.
 *   The input's gradient is `Conv2DBackpropInput` of `dz`, made only where asked for.
 *
 * With a linear activation `dz` is `dy` itself (its memory shared, not copied).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import type { ConvBlockAttrs, FusedActivation } from "../../core/nn_ops.ts";
import { convolve, filterGradient, isEmpty, plan, view } from "./_conv_plan.ts";
import type { OpenBlas } from "./_openblas.ts";
import type { SimdKernels } from "./_simd.ts";
import { sumRows } from "./native_sum.ts";

/** `dy` itself as the gradient before a linear activation: the same memory, one more reference. */
function shared(wasm: BackendWasm, dy: tf.TensorInfo): tf.TensorInfo {
  wasm.incRef(dy.dataId);
  return { dataId: dy.dataId, shape: dy.shape, dtype: dy.dtype };
}

/**
 * The fused dense layer's forward kernel.
 *
 * @param blas the loaded library
 * @param simd the SIMD module
 * @returns the kernel function
 * @example
 * ```ts
 * import { loadOpenBlas } from "./_openblas.ts";
 * import { loadSimdKernels } from "./_simd.ts";
 * const load = loadOpenBlas();
 * const simd = await loadSimdKernels(new WebAssembly.Memory({ initial: 1 }));
 * if (load.ok) makeNativeDense(load.blas, simd);
 * ```
 */
export function makeNativeDense(blas: OpenBlas, simd: SimdKernels): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x, kernel, bias } = inputs as Record<string, tf.TensorInfo>;
    const { activation } = attrs as unknown as { activation: FusedActivation };
    const wasm = backend as BackendWasm;
    const [n, k] = x.shape;
    const m = kernel.shape[1];
    const y = wasm.makeOutput([n, m], "float32");
    if (n * m === 0) return y;
    // Views are taken after the allocation above: a heap growth detaches older views.
    const yv = view(wasm, y);
    if (k === 0) yv.fill(0);
    else blas.sgemm(false, false, n, m, k, view(wasm, x), view(wasm, kernel), yv);
    simd.biasAct(yv.byteOffset, view(wasm, bias).byteOffset, n, m, activation === "relu");
    return y;
  };
}

/**
 * The fused dense layer's backward kernel: `[dW, db, dz]`.
 *
 * @param blas the loaded library
 * @param simd the SIMD module
 * @returns the kernel function
 * @example
 * ```ts
 * import { loadOpenBlas } from "./_openblas.ts";
 * import { loadSimdKernels } from "./_simd.ts";
 * const load = loadOpenBlas();
 * const simd = await loadSimdKernels(new WebAssembly.Memory({ initial: 1 }));
 * if (load.ok) makeNativeDenseGrad(load.blas, simd);
 * ```
 */
export function makeNativeDenseGrad(blas: OpenBlas, simd: SimdKernels): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { dy, x, y } = inputs as Record<string, tf.TensorInfo>;
    const { activation } = attrs as unknown as { activation: FusedActivation };
    const wasm = backend as BackendWasm;
    const [n, k] = x.shape;
    const m = dy.shape[1];
    const dz = activation === "relu" ? wasm.makeOutput([n, m], "float32") : shared(wasm, dy);
    const dW = wasm.makeOutput([k, m], "float32");
    const db = wasm.makeOutput([m], "float32");
    if (activation === "relu") {
      simd.reluMask(
        view(wasm, dy).byteOffset,
        view(wasm, y).byteOffset,
        view(wasm, dz).byteOffset,
        n * m,
      );
    }
    if (n === 0) {
      view(wasm, dW).fill(0);
      view(wasm, db).fill(0);
    } else if (k * m > 0) {
      blas.sgemm(true, false, k, m, n, view(wasm, x), view(wasm, dz), view(wasm, dW));
      sumRows(blas, n, m, view(wasm, dz), view(wasm, db));
    } else if (m > 0) {
      sumRows(blas, n, m, view(wasm, dz), view(wasm, db));
    }
    return [dW, db, dz];
  };
}

/**
 * The convolution block's forward kernel.
 *
 * @param blas the loaded library
 * @param simd the SIMD module
 * @returns the kernel function
 * @example
 * ```ts
 * import { loadOpenBlas } from "./_openblas.ts";
 * import { loadSimdKernels } from "./_simd.ts";
 * const load = loadOpenBlas();
 * const simd = await loadSimdKernels(new WebAssembly.Memory({ initial: 1 }));
 * if (load.ok) makeNativeConvBlock(load.blas, simd);
 * ```
 */
export function makeNativeConvBlock(blas: OpenBlas, simd: SimdKernels): tf.KernelFunc {
  return (args) => {
    const { x, filter, bias } = args.inputs as Record<string, tf.TensorInfo>;
    const { activation } = args.attrs as unknown as ConvBlockAttrs;
    const conv = plan(args, x.shape, filter.shape)!;
    const { wasm, info, rowsPerExample, patchSize } = conv;
    const y = wasm.makeOutput(info.outShape, "float32");
    if (isEmpty(info.outShape)) return y;
    const relu = activation === "relu";
    if (patchSize === 0) {
      const yv = view(wasm, y).fill(0);
      const rows = info.batchSize * rowsPerExample;
      simd.biasAct(yv.byteOffset, view(wasm, bias).byteOffset, rows, info.outChannels, relu);
      return y;
    }
    convolve(blas, simd, conv, { x, filter, y, bias }, relu);
    return y;
  };
}

/**
 * The convolution block's backward kernel: `[dW, db, dz]`.
 *
 * @param blas the loaded library
 * @param simd the SIMD module
 * @returns the kernel function
 * @example
 * ```ts
 * import { loadOpenBlas } from "./_openblas.ts";
 * import { loadSimdKernels } from "./_simd.ts";
 * const load = loadOpenBlas();
 * const simd = await loadSimdKernels(new WebAssembly.Memory({ initial: 1 }));
 * if (load.ok) makeNativeConvBlockGrad(load.blas, simd);
 * ```
 */
export function makeNativeConvBlockGrad(blas: OpenBlas, simd: SimdKernels): tf.KernelFunc {
  return (args) => {
    const { dy, x, filter, y } = args.inputs as Record<string, tf.TensorInfo>;
    const { activation } = args.attrs as unknown as ConvBlockAttrs;
    const wasm = args.backend as BackendWasm;
    const relu = activation === "relu";
    const dz = relu ? wasm.makeOutput(dy.shape, "float32") : shared(wasm, dy);
    const o = dy.shape[3];
    const filterShape = filter.shape;
    const conv = plan(args, x.shape, filterShape)!;
    const { info } = conv;
    const dW = wasm.makeOutput(filterShape, "float32");
    const db = wasm.makeOutput([o], "float32");
    view(wasm, dW).fill(0);
    view(wasm, db).fill(0);
    if (isEmpty(info.outShape)) return [dW, db, dz];
    // Per chunk, while its rows are in cache: the ReLU's mask, then the bias and filter sums.
    filterGradient(blas, simd, conv, { x, dy, dw: dW, y: relu ? y : undefined, dz, db });
    return [dW, db, dz];
  };
}
