/**
 * The backend's plain GEMM throughput, measured in each run's own process just before its
 * steps (this machine's speed drifts), so the report can say what fraction of it each
 * training step achieves.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { backendSeam } from "../core/backend_seam.ts";
import { median } from "../core/stats.ts";

/** GEMM shape `[M, K] · [K, N]`: the first layer of mnist-mlp at batch 256. */
const GEMM_SHAPE = { m: 256, k: 784, n: 256 } as const;
/** Untimed products before timing. */
const GEMM_WARMUP = 3;
/** Timed products; the median is reported. */
const GEMM_ITERATIONS = 15;

/**
 * Median GFLOP/s of a plain (no transpose) matrix product on the active backend.
 *
 * @returns GFLOP/s
 * @example
 * ```ts
 * const peak = measureGemmPeak();
 * ```
 */
export function measureGemmPeak(): number {
  const run = gemmRun();
  for (let i = 0; i < GEMM_WARMUP + GEMM_ITERATIONS; i++) {
    const t0 = performance.now();
    const c = tf.matMul(run.a, run.b);
    c.dataSync();
    run.record(i, performance.now() - t0, c);
  }
  return run.finish();
}

/** The operands of the timed product, the times kept after warm-up, and the GFLOP/s at the end. */
function gemmRun() {
  const { m, k, n } = GEMM_SHAPE;
  const a = tf.randomUniform([m, k]);
  const b = tf.randomUniform([k, n]);
  const times: number[] = [];
  return {
    a,
    b,
    record(i: number, elapsed: number, c: tf.Tensor) {
      c.dispose();
      if (i >= GEMM_WARMUP) times.push(elapsed);
    },
    finish(): number {
      a.dispose();
      b.dispose();
      return (2 * m * k * n) / (median(times) / 1000) / 1e9;
    },
  };
}

/**
 * {@linkcode measureGemmPeak} on any backend: on `webgpu`, which cannot read synchronously
 * under Deno, each product is timed to the end of its asynchronous read.
 *
 * @returns GFLOP/s
 * @example
 * ```ts
 * const peak = await measureGemmPeakAsync();
 * ```
 */
export async function measureGemmPeakAsync(): Promise<number> {
  if (backendSeam().readsSync) return measureGemmPeak();
  const run = gemmRun();
  for (let i = 0; i < GEMM_WARMUP + GEMM_ITERATIONS; i++) {
    const t0 = performance.now();
    const c = tf.matMul(run.a, run.b);
    await c.data();
    run.record(i, performance.now() - t0, c);
  }
  return run.finish();
}
