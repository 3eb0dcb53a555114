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
import { quote, UsageError } from "./errors.ts";

/** Every backend name paratrain knows, with a one-line description. */
export const BACKENDS = {
  wasm: "TensorFlow.js WebAssembly (XNNPACK, SIMD); default; missing kernels filled in",
  cpu: "TensorFlow.js pure-JavaScript kernels; slow but complete",
  webgpu: "TensorFlow.js WebGPU (not yet supported by paratrain)",
  tensorflow: "libtensorflow via @tensorflow/tfjs-node-gpu (not yet supported by paratrain)",
} as const;

/** A backend name. */
export type BackendName = keyof typeof BACKENDS;

/** Backends that paratrain can run today. */
export const SUPPORTED_BACKENDS: readonly BackendName[] = ["wasm", "cpu"];

/** Options for {@linkcode initBackend}. */
export interface BackendOptions {
  /** Register paratrain's fast kernel overrides on wasm (default true). */
  fastKernels?: boolean;
}

/** What {@linkcode initBackend} set up. */
export interface BackendInfo {
  backend: BackendName;
  tfjs: string;
  fastKernels: boolean;
  simd: boolean | null;
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
 * @param name `wasm` or `cpu`
 * @param options see {@linkcode BackendOptions}
 * @returns what was set up
 * @example
 * ```ts
 * await initBackend("wasm");
 * ```
 */
export async function initBackend(
  name: BackendName,
  options: BackendOptions = {},
): Promise<BackendInfo> {
  const { fastKernels = true } = options;
  parseBackend(name);
  // tfjs-core prints a banner suggesting tfjs-node on first use; it is noise for our users.
  tf.env().set("IS_NODE", false);
  // The threaded wasm build spawns node worker_threads by relative path, which Deno
  // refuses; paratrain's parallelism is its own (workers, processes), so use one thread.
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
  if (name === "wasm" && !wasmPathsSet) {
    setWasmPaths(wasmDir());
    wasmPathsSet = true;
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`Cannot initialise the ${name} backend`);
  await tf.ready();
  if (name === "wasm") registerWasmKernels({ fast: fastKernels });
  return {
    backend: name,
    tfjs: tf.version_core,
    fastKernels: name === "wasm" && fastKernels,
    simd: name === "wasm" ? tf.env().getBool("WASM_HAS_SIMD_SUPPORT") : null,
  };
}
