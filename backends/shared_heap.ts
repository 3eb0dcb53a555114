/**
 * The wasm backend on a shared heap: TensorFlow.js's threaded SIMD build, whose heap is a
 * shared `WebAssembly.Memory`, started with one thread. That heap is what lets the `native`
 * backend's compute threads (`kernels/_compute_pool.ts`) run the same SIMD kernels and OpenBLAS
 * on the tensors where they lie, the way PyTorch's intra-op threads share one address space.
 *
 * The build's Emscripten runtime starts a pool of pthread workers as it loads, by a path Deno's
 * `node:worker_threads` refuses. With one thread XNNPACK never starts a pthread, so those
 * workers are stand-ins that only answer "loaded" (a request to run a thread fails loudly
 * instead of waiting for ever). The runtime also overwrites the global `Worker`; it is put back.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { setThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import workerThreads from "node:worker_threads";
import { EventEmitter } from "node:events";

/** A pthread worker that is never asked to run a thread. */
class InertPthreadWorker extends EventEmitter {
  onmessage: ((event: unknown) => void) | null = null;

  postMessage(message: { cmd?: string }): void {
    if (message?.cmd === "load") {
      queueMicrotask(() => this.emit("message", { cmd: "loaded" }));
    } else if (message?.cmd === "run") {
      throw new Error(
        "The wasm backend asked for a pthread; paratrain runs it with one thread (its compute threads are its own)",
      );
    }
  }
  unref(): void {}
  ref(): void {}
  terminate(): void {}
}

/**
 * Activates the wasm backend (TensorFlow.js's threaded SIMD build, one thread) so its heap is
 * a shared memory. Call before the backend is first initialised; where SIMD is missing the
 * plain build is used and the heap is not shared.
 *
 * @param activate sets the backend and waits for it
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * await activateOnSharedHeap(async () => { await tf.setBackend("wasm"); await tf.ready(); });
 * ```
 */
export async function activateOnSharedHeap(activate: () => Promise<void>): Promise<void> {
  const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", simd === true);
  setThreadsCount(1);
  const module = workerThreads as unknown as { Worker: unknown };
  const nodeWorker = module.Worker;
  const webWorker = globalThis.Worker;
  module.Worker = InertPthreadWorker;
  try {
    await activate();
  } finally {
    module.Worker = nodeWorker;
    globalThis.Worker = webWorker;
  }
}

/**
 * The wasm backend's heap.
 *
 * @param backend the initialised wasm backend
 * @returns its memory (shared where {@linkcode activateOnSharedHeap} started it)
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * const heap = wasmHeap(tf.findBackend("wasm")!);
 * heap.buffer instanceof SharedArrayBuffer;
 * ```
 */
export function wasmHeap(backend: tf.KernelBackend): WebAssembly.Memory {
  const wasm = (backend as unknown as {
    wasm: { wasmMemory?: WebAssembly.Memory; asm: { memory?: WebAssembly.Memory } };
  }).wasm;
  const memory = wasm.wasmMemory ?? wasm.asm.memory;
  if (!memory) throw new Error("The wasm backend's heap was not found");
  return memory;
}
