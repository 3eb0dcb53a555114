/**
 * Memory figures as `results.json` reports them: `peakBytes` is this engine's tensor memory
 * plus the wasm heap (the device-memory analogue; on webgpu the GPU buffers the backend has
 * allocated, from `tf.memory()`), `peakRssBytes` is the process RSS.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { backendSeam } from "./backend_seam.ts";

/** One reading of this engine's memory. */
export interface MemorySample {
  /** Tensor bytes plus the wasm heap where the backend has one (wasm, native). */
  bytes: number;
  /** Resident set size of the whole process. */
  rssBytes: number;
}

/**
 * Read tensor bytes (+ wasm heap) and process RSS now.
 *
 * @returns the sample
 * @example
 * ```ts
 * const { bytes, rssBytes } = sampleMemory();
 * ```
 */
export function sampleMemory(): MemorySample {
  const heap = backendSeam().heapBytes();
  // webgpu's own accounting: the GPU buffers its buffer manager holds (in use and pooled),
  // which is the device memory the process takes; tensor bytes where it is smaller.
  const memory = tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU?: number };
  const device = Math.max(memory.numBytes, memory.numBytesAllocatedInGPU ?? 0);
  return { bytes: device + heap, rssBytes: Deno.memoryUsage().rss };
}

/** Keeps the peak of repeated {@linkcode sampleMemory} readings. */
export class PeakMemory {
  bytes = 0;
  rssBytes = 0;

  /** Take a reading and keep the maxima. */
  sample(): void {
    const now = sampleMemory();
    this.bytes = Math.max(this.bytes, now.bytes);
    this.rssBytes = Math.max(this.rssBytes, now.rssBytes);
  }
}
