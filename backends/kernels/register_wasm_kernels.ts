/**
 * Kernel registration for the wasm backend.
 *
 * Two layers, both idempotent and reversible:
 * - **Fallbacks** (always): every kernel the cpu backend has and wasm lacks runs the cpu
 *   implementation on copies of its inputs (see `cpu_fallback.ts`), so every workload can
 *   train on wasm (conv2d needs Conv2DBackpropFilter, embeddings need UnsortedSegmentSum).
 * - **Fast overrides** (with `fast`): replacements for kernels that are slow on wasm, listed
 *   in {@linkcode WASM_KERNEL_OVERRIDES}. Without `fast` the stock wasm kernel (or the
 *   fallback) is registered again, so the two settings can be compared in one process.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { makeCpuFallback } from "./cpu_fallback.ts";
import { makeConv2dBackpropFilter } from "./conv2d_backprop_filter.ts";
import { makeConv2dBackpropInput } from "./conv2d_backprop_input.ts";
import { makeMaxPoolGrad } from "./max_pool_grad.ts";
import { makeTransposedMatMul } from "./transposed_mat_mul.ts";

/** Options for {@linkcode registerWasmKernels}. */
export interface RegisterWasmKernelsOptions {
  /** Also register the fast overrides (default true). */
  fast?: boolean;
}

/** What {@linkcode registerWasmKernels} registered. */
export interface RegisteredWasmKernels {
  /** Kernels running the cpu implementation (the fast ones excepted). */
  fallbacks: string[];
  /** Kernels replaced by a fast override (empty unless `fast`). */
  overrides: string[];
}

/** A fast wasm kernel: which kernel it replaces and how it is built. */
interface FastKernel {
  /** The kernel it replaces. */
  name: string;
  /** One line for `--list` and the README. */
  description: string;
  /** Build it from the kernel it replaces (stock wasm, or the cpu fallback). */
  make: (base: tf.KernelFunc) => tf.KernelFunc;
}

const FAST_KERNELS: readonly FastKernel[] = [
  {
    name: "BatchMatMul",
    description: "transpose flags done as an explicit transpose, then XNNPACK's plain product",
    make: makeTransposedMatMul,
  },
  {
    name: "_FusedMatMul",
    description: "transpose flags done as an explicit transpose, then the plain fused product",
    make: makeTransposedMatMul,
  },
  {
    name: "Conv2DBackpropFilter",
    description: "im2col in JavaScript, then one XNNPACK matrix product (NHWC)",
    make: makeConv2dBackpropFilter,
  },
  {
    name: "Conv2DBackpropInput",
    description: "one XNNPACK matrix product, then col2im in JavaScript (NHWC)",
    make: makeConv2dBackpropInput,
  },
  {
    name: "MaxPoolGrad",
    description: "one pass over the pooling windows, gradient to each window's maximum",
    make: () => makeMaxPoolGrad(),
  },
];

/** The fast overrides {@linkcode registerWasmKernels} installs: kernel name and what it does. */
export const WASM_KERNEL_OVERRIDES: readonly { name: string; description: string }[] = FAST_KERNELS
  .map(({ name, description }) => ({ name, description }));

/** Kernels the cpu backend has, wasm lacks, and no fallback is registered for, with why. */
export const WASM_FALLBACK_SKIPPED: Readonly<Record<string, string>> = {
  Complex: "complex64 tensors cannot be stored in wasm memory",
  ComplexAbs: "takes a complex64 tensor, which wasm cannot hold",
  FFT: "takes a complex64 tensor, which wasm cannot hold",
  IFFT: "takes a complex64 tensor, which wasm cannot hold",
  Real: "takes a complex64 tensor, which wasm cannot hold",
  Imag: "takes a complex64 tensor, which wasm cannot hold",
  Draw: "draws on a canvas, which Deno does not have",
};

/** The wasm kernels as the wasm package registered them, before any of ours. */
const stockKernels = new Map<string, tf.KernelConfig>();
/** Every kernel config this module made, by name; reused so registration is idempotent. */
const fallbackConfigs = new Map<string, tf.KernelConfig>();
const fastConfigs = new Map<string, tf.KernelConfig>();
const ours = new WeakSet<tf.KernelConfig>();

/**
 * Register paratrain's kernels on the wasm backend: the cpu fallbacks always, and the fast
 * overrides when `fast` is true. Safe to call again with another `fast` value.
 *
 * @param options see {@linkcode RegisterWasmKernelsOptions}
 * @returns the names of the kernels now served by a fallback and by a fast override
 * @example
 * ```ts
 * registerWasmKernels({ fast: false }); // stock wasm kernels plus cpu fallbacks
 * registerWasmKernels(); // and the fast overrides
 * ```
 */
export function registerWasmKernels(
  options: RegisterWasmKernelsOptions = {},
): RegisteredWasmKernels {
  const { fast = true } = options;
  for (const config of tf.getKernelsForBackend("wasm")) {
    if (!ours.has(config) && !stockKernels.has(config.kernelName)) {
      stockKernels.set(config.kernelName, config);
    }
  }
  const fallbacks: string[] = [];
  for (const { kernelName } of tf.getKernelsForBackend("cpu")) {
    if (stockKernels.has(kernelName) || kernelName in WASM_FALLBACK_SKIPPED) continue;
    install(baseConfig(kernelName)!);
    fallbacks.push(kernelName);
  }
  const overrides: string[] = [];
  for (const fastKernel of FAST_KERNELS) {
    const base = baseConfig(fastKernel.name);
    if (base == null) continue;
    install(fast ? fastConfig(fastKernel, base) : base);
    if (fast) overrides.push(fastKernel.name);
  }
  return { fallbacks: fallbacks.filter((name) => !overrides.includes(name)), overrides };
}

/** The kernel registered without `fast`: the stock wasm one, else the cpu fallback. */
function baseConfig(kernelName: string): tf.KernelConfig | undefined {
  const stock = stockKernels.get(kernelName);
  if (stock != null) return stock;
  if (tf.getKernel(kernelName, "cpu") == null) return undefined;
  return cached(fallbackConfigs, kernelName, () => ({
    kernelName,
    backendName: "wasm",
    kernelFunc: makeCpuFallback(kernelName),
  }));
}

/** The fast config for `fastKernel`, built once on top of `base`. */
function fastConfig(fastKernel: FastKernel, base: tf.KernelConfig): tf.KernelConfig {
  return cached(fastConfigs, fastKernel.name, () => ({
    kernelName: fastKernel.name,
    backendName: "wasm",
    kernelFunc: fastKernel.make(base.kernelFunc),
    // The stock kernel's wasm bindings are made in its setup: keep it for a fresh backend.
    setupFunc: base.setupFunc,
    disposeFunc: base.disposeFunc,
  }));
}

function cached(
  configs: Map<string, tf.KernelConfig>,
  kernelName: string,
  make: () => tf.KernelConfig,
): tf.KernelConfig {
  let config = configs.get(kernelName);
  if (config == null) {
    config = make();
    ours.add(config);
    configs.set(kernelName, config);
  }
  return config;
}

/** Make `config` the registered wasm kernel for its name, replacing whatever was there. */
function install(config: tf.KernelConfig): void {
  const current = tf.getKernel(config.kernelName, "wasm");
  if (current === config) return;
  if (current != null) tf.unregisterKernel(config.kernelName, "wasm");
  tf.registerKernel(config);
}
