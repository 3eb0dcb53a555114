/**
 * Backend set-up: the one place that chooses and initialises a TensorFlow.js backend.
 *
 * Importing `@tensorflow/tfjs-backend-wasm` registers it (and may make it the active
 * backend), so every entry point calls {@linkcode initBackend} before any tensor is made.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
// The union package registers every gradient; tfjs-core's own register_all_gradients.js
// cannot be imported in Deno (its ESM imports omit file extensions).
import "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-cpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { registerWasmKernels } from "./kernels/register_wasm_kernels.ts";
import { quote, UsageError } from "../core/errors.ts";
import { type BackendName, registerBackendSeam } from "../core/backend_seam.ts";
import {
  betterCore,
  type BlasInfo,
  blasInfo,
  cpuFlags,
  loadOpenBlas,
  type OpenBlas,
} from "./kernels/_openblas.ts";
import { createSimdAdam, loadSimdKernels } from "./kernels/_simd.ts";
import { loadNnSimd } from "./kernels/_nn_simd.ts";
import {
  NATIVE_BACKEND,
  nativeWritesInPlace,
  registerNativeKernels,
} from "./kernels/register_native_kernels.ts";
import { activateOnSharedHeap, wasmHeap } from "./shared_heap.ts";
import { startComputePool } from "./kernels/_compute_pool.ts";
import { splittingBlas } from "./kernels/_split_blas.ts";
import { loadTensorflowBackend, tensorflowAvailability } from "./tensorflow.ts";
import { type AdapterRecord, initWebGpu, webgpuAvailability } from "./webgpu.ts";

/** Every backend name paratrain knows, with a one-line description. */
export const BACKENDS: Record<BackendName, string> = {
  native:
    "OpenBLAS sgemm through Deno FFI for matrix products and convolutions, on wasm's tensors; default where OpenBLAS loads",
  wasm: "TensorFlow.js WebAssembly (XNNPACK, SIMD, one thread); needs nothing installed",
  cpu: "TensorFlow.js pure-JavaScript kernels; slow but complete",
  webgpu:
    "TensorFlow.js WebGPU on Deno's WebGPU (reads asynchronous); a DDP rank takes its LOCAL_RANK's adapter",
  tensorflow:
    "libtensorflow via @tensorflow/tfjs-node-gpu (CUDA), else @tensorflow/tfjs-node (CPU); needs libtensorflow installed",
};

export type { BackendName };

/** Backends that paratrain can run today (where {@linkcode backendAvailability} allows). */
export const SUPPORTED_BACKENDS: readonly BackendName[] = [
  "native",
  "wasm",
  "cpu",
  "webgpu",
  "tensorflow",
];

/** Options for {@linkcode initBackend}. */
export interface BackendOptions {
  /** Register paratrain's fast kernel overrides on wasm (and native) (default true). */
  fastKernels?: boolean;
  /** Compute threads of this worker (default 1); more than one needs `native`. */
  threads?: number;
}

/** What {@linkcode initBackend} set up. */
export interface BackendInfo {
  backend: BackendName;
  tfjs: string;
  fastKernels: boolean;
  simd: boolean | null;
  /** Compute threads of this worker. */
  threads: number;
  /** The OpenBLAS behind `native` (null on other backends). */
  blas: BlasInfo | null;
  /** The WebGPU adapter behind `webgpu` (null on other backends). */
  adapter: AdapterRecord | null;
}

/**
 * The backend a run uses when none is named: `native` where OpenBLAS loads, else `wasm`.
 *
 * @returns the backend, and one line saying which and why
 * @example
 * ```ts
 * const { backend, why } = defaultBackend();
 * console.error(why);
 * ```
 */
export function defaultBackend(): { backend: BackendName; why: string } {
  const load = loadOpenBlas();
  return load.ok
    ? { backend: "native", why: `backend native (default): ${describeBlas(load.blas)}` }
    : { backend: "wasm", why: `backend wasm (default here): ${load.reason}` };
}

/** The most compute threads a worker starts (OpenBLAS's pthread build's own cap, too). */
const MAX_COMPUTE_THREADS = 64;

/**
 * The most compute threads one worker may ask for: this machine's logical CPUs, and never more
 * than {@linkcode MAX_COMPUTE_THREADS} (beyond the CPUs, the run would be labelled with threads it
 * does not have).
 *
 * @returns the bound
 * @example
 * ```ts
 * maxThreads(); // 2 on a 2-vCPU machine
 * ```
 */
export function maxThreads(): number {
  return Math.max(1, Math.min(navigator.hardwareConcurrency, MAX_COMPUTE_THREADS));
}

/**
 * Checks that `threads` compute threads per worker are possible on `backend`.
 *
 * @param backend the backend
 * @param threads threads per worker
 * @throws UsageError when more than {@linkcode maxThreads} are asked, or more than one of a
 *   backend that computes on one
 * @example
 * ```ts
 * checkThreads("native", 2);
 * ```
 */
export function checkThreads(backend: BackendName, threads: number): void {
  if (threads > maxThreads()) {
    throw new UsageError(
      `Invalid --threads ${threads}: at most ${maxThreads()} (this machine's ${navigator.hardwareConcurrency} logical CPUs, and never more than ${MAX_COMPUTE_THREADS})`,
    );
  }
  if (threads > 1 && backend !== "native") {
    throw new UsageError(
      `Invalid --threads ${threads} on the ${backend} backend: it computes on one thread; use --backend native (OpenBLAS and compute threads) for more`,
    );
  }
}

/**
 * The backend a command runs on: the one named, checked (`native` must load), or the
 * default of {@linkcode defaultBackend}; with one line saying which and why.
 *
 * @param named `--backend`, or undefined when none was given
 * @param threads `--threads`
 * @returns the backend and the line to print
 * @throws UsageError when `native` is named and OpenBLAS does not load, when `webgpu` or
 * `tensorflow` cannot train here (one line: what is missing, how to install it), or threads
 * do not fit
 * @example
 * ```ts
 * const { backend, why } = chooseBackend(undefined, 1);
 * ```
 */
export function chooseBackend(
  named: BackendName | undefined,
  threads: number,
): { backend: BackendName; why: string } {
  let chosen: { backend: BackendName; why: string };
  if (named === undefined) {
    chosen = defaultBackend();
  } else if (named === "native") {
    chosen = {
      backend: "native",
      why: `backend native (as asked): ${describeBlas(requireOpenBlas())}`,
    };
  } else {
    if (named === "webgpu" || named === "tensorflow") {
      const why = backendAvailability(named);
      if (why != null) throw new UsageError(`Cannot use --backend ${named}: ${why}`);
    }
    chosen = { backend: named, why: `backend ${named} (as asked)` };
  }
  checkThreads(chosen.backend, threads);
  return chosen;
}

function describeBlas(blas: BlasInfo) {
  const described = `${
    blas.config || "OpenBLAS"
  } (${blas.parallel}, ${blas.coreName}) from ${blas.path}`;
  // Never silent: where OpenBLAS runs AVX2 kernels on an AVX-512 CPU, say which to try.
  const better = Deno.env.get("OPENBLAS_CORETYPE") ? null : betterCore(blas.coreName, cpuFlags());
  return better
    ? `${described}; this CPU has AVX-512 but OpenBLAS picked its ${blas.coreName} (AVX2) kernels: OPENBLAS_CORETYPE=${better} may be faster`
    : described;
}

/** OpenBLAS for `native`, or the usage error naming how to get it. */
function requireOpenBlas(): OpenBlas {
  const load = loadOpenBlas();
  if (!load.ok) throw new UsageError(`Cannot use --backend native: ${load.reason}`);
  return load.blas;
}

/**
 * Whether `name` can run here.
 *
 * @param name a backend
 * @returns null where it can, else why not (one clause)
 * @example
 * ```ts
 * backendAvailability("native"); // null where OpenBLAS loads
 * ```
 */
export function backendAvailability(name: BackendName): string | null {
  if (!SUPPORTED_BACKENDS.includes(name)) return "not yet supported by paratrain";
  if (name === "webgpu") return webgpuAvailability();
  if (name === "tensorflow") return tensorflowAvailability();
  if (name !== "native") return null;
  const load = loadOpenBlas();
  return load.ok ? null : load.reason;
}

/** Absolute folder (with trailing slash) holding the wasm binaries. */
function wasmDir(): string {
  const url = new URL(import.meta.resolve("@tensorflow/tfjs-backend-wasm"));
  // The package's main entry lives in dist/; the .wasm files sit beside it.
  const path = decodeURIComponent(url.pathname);
  return path.slice(0, path.lastIndexOf("/") + 1);
}

let wasmPathsSet = false;

/**
 * Check a backend name: throws a one-line error naming the valid choices.
 *
 * @param name the name given by the user
 * @returns the name, typed
 * @example
 * ```ts
 * parseBackend("wasm"); // "wasm"
 * ```
 */
export function parseBackend(name: string): BackendName {
  if (!(name in BACKENDS)) {
    throw new UsageError(
      `Unknown backend ${quote(name)}: choose one of ${Object.keys(BACKENDS).join(", ")}`,
    );
  }
  if (!SUPPORTED_BACKENDS.includes(name as BackendName)) {
    throw new UsageError(
      `Backend "${name}" is not yet supported: choose one of ${SUPPORTED_BACKENDS.join(", ")}`,
    );
  }
  return name as BackendName;
}

/**
 * Make `name` the active TensorFlow.js backend, ready for training.
 *
 * @param name a backend; `webgpu` opens this process's adapter (by `LOCAL_RANK`), `tensorflow`
 * loads tfjs-node-gpu or tfjs-node
 * @param options see {@linkcode BackendOptions}
 * @returns what was set up
 * @throws UsageError when `native` is asked for and OpenBLAS does not load, when WebGPU has no
 * adapter, or when `tensorflow`'s libtensorflow, binding or CUDA is missing
 * @example
 * ```ts
 * await initBackend("wasm");
 * ```
 */
export async function initBackend(
  name: BackendName,
  options: BackendOptions = {},
): Promise<BackendInfo> {
  const { fastKernels = true, threads = 1 } = options;
  parseBackend(name);
  checkThreads(name, threads);
  // tfjs-core prints a banner suggesting tfjs-node on first use; it is noise for our users.
  tf.env().set("IS_NODE", false);
  let blas: BackendInfo["blas"] = null;
  if (name === "wasm" || name === "native") {
    if (!wasmPathsSet) {
      setWasmPaths(wasmDir());
      wasmPathsSet = true;
    }
    // On a shared heap, which `native`'s compute threads work on (one wasm thread either way).
    await activateOnSharedHeap(() => activate("wasm"));
    registerWasmKernels({ fast: fastKernels });
    registerBackendSeam("wasm", heapSeam(tf.findBackend("wasm")!));
  }
  if (name === "native") {
    const openBlas = requireOpenBlas();
    // The same wasm backend instance (its heap, its tensors, its XNNPACK kernels) under its
    // own name, with the matrix products on OpenBLAS.
    const wasm = tf.findBackend("wasm")!;
    if (tf.findBackendFactory(NATIVE_BACKEND) == null) {
      tf.registerBackend(NATIVE_BACKEND, () => wasm, 0);
    }
    const heap = wasmHeap(wasm);
    // With compute threads, products split over them, and OpenBLAS keeps to one thread.
    registerNativeKernels(splittingBlas(openBlas), await loadSimdKernels(heap));
    await loadNnSimd(heap);
    registerBackendSeam(NATIVE_BACKEND, {
      ...heapSeam(wasm),
      // In place while no XNNPACK kernel that keeps packed weights has run in this process.
      writeInPlace: (t, values) => {
        if (!nativeWritesInPlace()) return false;
        (wasm as unknown as HeapBackend).typedArrayFromHeap(t).set(values);
        return true;
      },
      createAdam: createSimdAdam,
    });
    await activate(NATIVE_BACKEND);
    // The products, convolutions and pools split over `threads` threads of paratrain's own.
    await startComputePool(threads - 1, heap);
    openBlas.setThreads(1);
    blas = blasInfo(openBlas);
  }
  if (name === "cpu") await activate("cpu");
  let adapter: AdapterRecord | null = null;
  if (name === "webgpu") {
    adapter = (await initWebGpu()).adapter;
    // Deno has no synchronous GPU read-back (it needs an OffscreenCanvas 2d context).
    registerBackendSeam("webgpu", { readsSync: false });
  }
  if (name === "tensorflow") await loadTensorflowBackend();
  const onWasm = name === "wasm" || name === "native";
  return {
    backend: name,
    tfjs: tf.version_core,
    fastKernels: onWasm && fastKernels,
    simd: onWasm ? tf.env().getBool("WASM_HAS_SIMD_SUPPORT") : null,
    threads,
    blas,
    adapter,
  };
}

/** The wasm backend's tensors live in its one heap, read as views without copying. */
interface HeapBackend {
  typedArrayFromHeap(info: tf.TensorInfo): tf.TypedArray;
}

/** Readback and memory of a backend whose tensors live in the wasm heap (wasm, native). */
function heapSeam(backend: tf.KernelBackend) {
  const heap = backend as unknown as HeapBackend;
  return {
    read: (t: tf.Tensor) => heap.typedArrayFromHeap(t) as Float32Array,
    // The memory itself: its buffer has the heap's current size, also after a growth.
    heapBytes: () => wasmHeap(backend).buffer.byteLength,
  };
}

async function activate(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`Cannot initialise the ${name} backend`);
  await tf.ready();
}
