/**
 * Kernel registration for the wasm backend (work in progress: filled in by the kernels work).
 *
 * @module
 */

/** Options for {@linkcode registerWasmKernels}. */
export interface RegisterWasmKernelsOptions {
  /** Also register the fast overrides (default true). */
  fast?: boolean;
}

/**
 * Register paratrain's kernels on the wasm backend.
 *
 * @param _options see {@linkcode RegisterWasmKernelsOptions}
 */
export function registerWasmKernels(_options: RegisterWasmKernelsOptions = {}): void {
}
