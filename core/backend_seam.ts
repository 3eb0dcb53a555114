/**
 * The one seam between the training core and the backends. The core never asks which backend
 * is active; it asks the active backend's seam for what differs between backends:
 *
 * - **readback**: a tensor's values, synchronously (a view of the heap where tensors live in one,
 *   else a copy), and whether synchronous reads exist at all (not on webgpu under Deno);
 * - **in-place parameter writes**: whether a variable's memory may be written where it lies;
 * - **memory**: the bytes the engine holds beside its tensors (the wasm heap);
 * - **kernels the core runs itself**: the optimizer's update, where the backend has a faster one.
 *
 * `backends/` registers a seam for each backend it sets up ({@linkcode registerBackendSeam});
 * a backend that registers none gets {@linkcode PORTABLE_SEAM}.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Every backend name paratrain knows, in `--list` order. */
export const BACKEND_NAMES = ["native", "wasm", "cpu", "webgpu", "tensorflow"] as const;

/** A backend name. */
export type BackendName = typeof BACKEND_NAMES[number];

/** Adam's constants, for a backend's own update kernel. */
export interface AdamRule {
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** An Adam update run by the backend, with its own moment state. */
export interface AdamKernel {
  /**
   * One step: `params` updated in place from `grads` (both of the size it was made for).
   *
   * @param stepSize the learning rate over `1 − beta1^t`
   * @param secondScale `1 / (1 − beta2^t)`
   */
  step(params: Float32Array, grads: Float32Array, stepSize: number, secondScale: number): void;
  /**
   * Where the kernel reads and writes parameters (its own memory), if it has such a place: a
   * caller that keeps its parameters there spares the two copies a step would make.
   */
  params?: Float32Array;
}

/** What the training core asks of the active backend. */
export interface BackendSeam {
  /** Whether tensors can be read synchronously. */
  readsSync: boolean;
  /**
   * A float32 tensor's values, synchronously: a view valid until the next kernel runs where
   * the backend can give one without copying, else a copy.
   */
  read(t: tf.Tensor): Float32Array;
  /**
   * Write `values` into `t`'s memory where it lies, so every later kernel sees them.
   *
   * @returns false where the backend cannot (the core then gives the variable a new tensor)
   */
  writeInPlace(t: tf.Tensor, values: Float32Array): boolean;
  /** Bytes the engine holds outside its tensors' accounting (the wasm heap), now. */
  heapBytes(): number;
  /** The backend's own Adam update for `size` parameters, or null to run the core's. */
  createAdam(size: number, rule: AdamRule): AdamKernel | null;
}

/** The seam of a backend that registers none: plain TensorFlow.js calls. */
export const PORTABLE_SEAM: BackendSeam = {
  readsSync: true,
  read: (t) => t.dataSync() as Float32Array,
  writeInPlace: () => false,
  heapBytes: () => 0,
  createAdam: () => null,
};

const seams = new Map<string, BackendSeam>();

/**
 * Declare what backend `name` answers where it differs from {@linkcode PORTABLE_SEAM}.
 *
 * @param name the TensorFlow.js backend name
 * @param seam the answers that differ
 * @example
 * ```ts
 * registerBackendSeam("webgpu", { readsSync: false });
 * ```
 */
export function registerBackendSeam(name: string, seam: Partial<BackendSeam>): void {
  seams.set(name, { ...PORTABLE_SEAM, ...seam });
}

/**
 * The active backend's seam.
 *
 * @returns the seam registered for `tf.getBackend()`, else {@linkcode PORTABLE_SEAM}
 * @example
 * ```ts
 * const grads = backendSeam().readsSync ? "read now" : "read later";
 * ```
 */
export function backendSeam(): BackendSeam {
  return seams.get(tf.getBackend()) ?? PORTABLE_SEAM;
}
