/**
 * The `native` backend's kernels: every kernel of the wasm backend (stock, fallbacks and fast
 * overrides), registered again under the name `native`, with the matrix products replaced by
 * OpenBLAS `sgemm` calls on the same wasm heap. The tensors, the elementwise kernels (XNNPACK
 * SIMD) and the memory accounting stay the wasm backend's; the convolution kernels, which are
 * built on the matrix product, run on sgemm through it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { OpenBlas } from "./_openblas.ts";
import { makeNativeBatchMatMul, makeNativeFusedMatMul } from "./native_mat_mul.ts";
import {
  makeNativeConv2d,
  makeNativeConv2dBackpropFilter,
  makeNativeConv2dBackpropInput,
} from "./native_conv2d.ts";
import { makeNativeMaxPool, makeNativeMaxPoolGrad } from "./native_max_pool_grad.ts";
import type { SimdKernels } from "./_simd.ts";
import { makeNativeSum } from "./native_sum.ts";
import { NN_KERNELS } from "../../core/nn_ops.ts";
import {
  makeNativeConvBlock,
  makeNativeConvBlockGrad,
  makeNativeDense,
  makeNativeDenseGrad,
} from "./native_fused.ts";
import { registerNativeNnKernels } from "./native_nn_kernels.ts";

/** The backend name. */
export const NATIVE_BACKEND = "native";

/** The kernels `native` replaces, with what each does instead. */
export const NATIVE_KERNEL_OVERRIDES: readonly { name: string; description: string }[] = [
  {
    name: "BatchMatMul",
    description: "one cblas_sgemm per batch entry, transposes passed to sgemm",
  },
  { name: "_FusedMatMul", description: "cblas_sgemm, then bias and activation in place" },
  {
    name: "Conv2D",
    description: "im2col (WebAssembly SIMD), then one cblas_sgemm per chunk (NHWC)",
  },
  {
    name: "Conv2DBackpropFilter",
    description: "im2col (WebAssembly SIMD), then cblas_sgemm with the patches transposed",
  },
  {
    name: "Conv2DBackpropInput",
    description: "cblas_sgemm with the filter transposed, then col2im (WebAssembly SIMD)",
  },
  {
    name: "MaxPool",
    description:
      "2×2, stride 2: one WebAssembly SIMD pass, four channels at a time (else XNNPACK's)",
  },
  {
    name: "MaxPoolGrad",
    description: "one WebAssembly SIMD pass, four channels at a time, branch-free maxima",
  },
  {
    name: "Sum",
    description: "over leading axes (a bias gradient) as one cblas_sgemm with a ones vector",
  },
  {
    name: NN_KERNELS.dense,
    description: "a dense layer: sgemm, then bias and ReLU in one SIMD pass (core/nn_ops.ts)",
  },
  {
    name: NN_KERNELS.denseGrad,
    description: "its backward: the ReLU's mask in one SIMD pass, dW and db by sgemm",
  },
  {
    name: NN_KERNELS.convBlock,
    description: "a convolution block: Conv2D's chunks, bias and ReLU applied to each in cache",
  },
  {
    name: NN_KERNELS.convBlockGrad,
    description: "its backward per chunk: the ReLU's mask, dW and db by sgemm",
  },
  {
    name: "Identity",
    description: "shares the input's memory (reference-counted) instead of copying",
  },
];

/**
 * Register the `native` kernels: the wasm backend's as they are now (call after
 * `registerWasmKernels`), with the overrides above. Idempotent.
 *
 * @param blas the loaded OpenBLAS
 * @param simd the SIMD kernels, bound to the wasm backend's heap
 * @returns the names of the kernels replaced
 * @example
 * ```ts
 * import { loadOpenBlas } from "./_openblas.ts";
 * import { loadSimdKernels } from "./_simd.ts";
 * const load = loadOpenBlas();
 * const simd = await loadSimdKernels(new WebAssembly.Memory({ initial: 1 }));
 * if (load.ok) registerNativeKernels(load.blas, simd);
 * ```
 */
export function registerNativeKernels(blas: OpenBlas, simd: SimdKernels): string[] {
  const own: Record<string, (wasm: tf.KernelConfig) => tf.KernelFunc> = {
    BatchMatMul: () => makeNativeBatchMatMul(blas),
    _FusedMatMul: (wasm) => makeNativeFusedMatMul(blas, wasm.kernelFunc),
    Conv2D: (wasm) => makeNativeConv2d(blas, simd, wasm.kernelFunc),
    Conv2DBackpropFilter: (wasm) => makeNativeConv2dBackpropFilter(blas, simd, wasm.kernelFunc),
    Conv2DBackpropInput: (wasm) => makeNativeConv2dBackpropInput(blas, simd, wasm.kernelFunc),
    MaxPool: (wasm) => makeNativeMaxPool(blas, simd, wasm.kernelFunc),
    MaxPoolGrad: () => makeNativeMaxPoolGrad(blas, simd),
    Sum: (wasm) => makeNativeSum(blas, wasm.kernelFunc),
    Identity: (wasm) => shareIdentity(wasm.kernelFunc),
  };
  for (const config of tf.getKernelsForBackend("wasm")) {
    if (tf.getKernel(config.kernelName, NATIVE_BACKEND) != null) {
      tf.unregisterKernel(config.kernelName, NATIVE_BACKEND);
    }
    const stock = PACKS_WEIGHTS.has(config.kernelName)
      ? { ...config, kernelFunc: notePackedWeights(config.kernelFunc) }
      : config;
    const replace = own[config.kernelName];
    tf.registerKernel({
      ...config,
      backendName: NATIVE_BACKEND,
      kernelFunc: replace ? replace(stock) : stock.kernelFunc,
    });
  }
  // native's own kernels: the fused layers (core/nn_ops.ts), one kernel a layer each way.
  const fused: Record<string, tf.KernelFunc> = {
    [NN_KERNELS.dense]: makeNativeDense(blas, simd),
    [NN_KERNELS.denseGrad]: makeNativeDenseGrad(blas, simd),
    [NN_KERNELS.convBlock]: makeNativeConvBlock(blas, simd),
    [NN_KERNELS.convBlockGrad]: makeNativeConvBlockGrad(blas, simd),
  };
  for (const [kernelName, kernelFunc] of Object.entries(fused)) {
    if (tf.getKernel(kernelName, NATIVE_BACKEND) != null) {
      tf.unregisterKernel(kernelName, NATIVE_BACKEND);
    }
    tf.registerKernel({ kernelName, backendName: NATIVE_BACKEND, kernelFunc });
  }
  // The fused kernels of the transformer's and the residual CNN's ops (core/nn_ops.ts).
  registerNativeNnKernels(NATIVE_BACKEND);
  return [...Object.keys(own), ...Object.keys(fused)];
}

/**
 * The wasm kernels that keep XNNPACK operators with the weights they packed, keyed by the
 * weights' tensor, until that tensor is disposed: a value written under such a tensor would
 * go unseen. native's own products and convolutions pack nothing.
 */
const PACKS_WEIGHTS = new Set([
  "BatchMatMul",
  "_FusedMatMul",
  "Conv2D",
  "FusedConv2D",
  "DepthwiseConv2dNative",
  "FusedDepthwiseConv2D",
  "Conv2DBackpropInput",
]);

let packedWeights = false;

function notePackedWeights(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    packedWeights = true;
    return stock(args);
  };
}

/**
 * Whether a tensor's memory may be written in place on `native` and every later kernel sees
 * the new values: true until a stock XNNPACK kernel that packs weights has run in this
 * process (a custom model's dilated convolution, say), false from then on.
 *
 * @returns whether writes in place are seen
 * @example
 * ```ts
 * if (nativeWritesInPlace()) console.log("parameters can be written where they lie");
 * ```
 */
export function nativeWritesInPlace(): boolean {
  return !packedWeights;
}

/**
 * `Identity` as the cpu backend does it: the output is the input's memory with one more
 * reference, not a copy (the autodiff tape makes a score of them per step).
 */
function shareIdentity(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === "string") return stock(args);
    (args.backend as tf.KernelBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}
