/**
 * The run the strategy tests share: synthetic-mlp on wasm, 20 steps of a global batch of 48
 * (divisible by 2 and 3 ranks), seed 4; and the parameter comparison they make.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { RunSpec } from "../core/run_types.ts";

/** Divisible by 2 and 3 ranks. */
export const GLOBAL_BATCH = 48;

/**
 * DDP averages per-rank mean gradients where single takes one mean over the global batch:
 * the same sum in another order. Over 20 Adam steps that moves parameters by ~5e-7
 * (measured); 1e-5 is far below the ~1e-3 a single step moves them.
 */
export const EQUIVALENCE_TOLERANCE = 1e-5;

/**
 * A DDP run of 2 ranks with the shared defaults.
 *
 * @param overrides fields to change
 * @returns the run
 */
export function testSpec(overrides: Partial<RunSpec> = {}): RunSpec {
  return {
    workload: "synthetic-mlp",
    strategy: "ddp",
    worldSize: 2,
    backend: "wasm",
    fastKernels: true,
    seed: 4,
    steps: 20,
    warmup: 0,
    globalBatch: GLOBAL_BATCH,
    snapshotStep: 20,
    ...overrides,
  };
}

/**
 * The largest element-wise difference of two parameter vectors of the same length.
 *
 * @param a one vector
 * @param b the other
 * @returns max |a − b|
 */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}
