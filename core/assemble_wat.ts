/**
 * WebAssembly text assembled at start-up with the npm package `wabt` (SIMD, bulk memory and
 * threads enabled), shared by the layers that write kernels in WebAssembly: the `native` backend's
 * memory-bound kernels and the wire codecs of compressed gradients.
 *
 * @module
 */

interface Wabt {
  parseWat(name: string, text: string, features: Record<string, boolean>): {
    toBinary(options: Record<string, never>): { buffer: Uint8Array };
    destroy(): void;
  };
}

let wabt: Promise<Wabt> | undefined;

/**
 * Assembles a module written in the WebAssembly text format. The assembler is loaded on the
 * first call (about 0.1 s), so only the processes that need a kernel pay for it.
 *
 * @param name the module's name, for the assembler's error messages
 * @param text the module, in the text format
 * @returns the compiled module
 * @example
 * ```ts
 * const module = await assembleWat("answer.wat", `(module (func (export "answer") (result i32) (i32.const 42)))`);
 * ```
 */
export async function assembleWat(name: string, text: string): Promise<WebAssembly.Module> {
  wabt ??= import("wabt").then(({ default: init }) => init() as Promise<Wabt>);
  const parsed = (await wabt).parseWat(name, text, {
    simd: true,
    bulk_memory: true,
    threads: true,
  });
  try {
    return new WebAssembly.Module(parsed.toBinary({}).buffer as Uint8Array<ArrayBuffer>);
  } finally {
    parsed.destroy();
  }
}

/** The import every kernel module declares for the heap it works on. */
const HEAP_IMPORT = `(import "env" "memory" (memory 1))`;
/** The same import of a shared heap, as a shared import must say (with a 32-bit memory's largest size). */
const SHARED_HEAP_IMPORT = `(import "env" "memory" (memory 1 65536 shared))`;

/** Modules assembled for a heap, by name and whether the heap is shared. */
const forHeaps = new Map<string, Promise<WebAssembly.Module>>();

/**
 * Assembles a kernel module for `memory`'s kind of heap once per process or worker and kind:
 * where the heap is a shared memory (the wasm backend's threaded build), the module's import of
 * it is declared shared.
 *
 * @param name the module's name (also its cache key)
 * @param text the module, importing its heap as `(import "env" "memory" (memory 1))`
 * @param memory the heap it will be instantiated with
 * @returns the compiled module
 * @throws Error when the text does not import its heap that way
 * @example
 * ```ts
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const module = await assembleForHeap("empty.wat", `(module (import "env" "memory" (memory 1)))`, memory);
 * new WebAssembly.Instance(module, { env: { memory } });
 * ```
 */
export function assembleForHeap(
  name: string,
  text: string,
  memory: WebAssembly.Memory,
): Promise<WebAssembly.Module> {
  if (!text.includes(HEAP_IMPORT)) {
    throw new Error(`${name} does not import its heap as ${HEAP_IMPORT}`);
  }
  const shared = memory.buffer instanceof SharedArrayBuffer;
  const key = `${name}${shared ? " (shared)" : ""}`;
  let module = forHeaps.get(key);
  if (!module) {
    module = assembleWat(name, shared ? text.replace(HEAP_IMPORT, SHARED_HEAP_IMPORT) : text);
    forHeaps.set(key, module);
  }
  return module;
}
