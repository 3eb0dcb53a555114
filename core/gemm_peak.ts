/**
 * The backend's plain GEMM throughput, measured in each run's own process just before its
 * steps (this machine's speed drifts), so the report can say what fraction of it each
 * training step achieves.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { median } from "./stats.ts";

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
  const { m, k, n } = GEMM_SHAPE;
  const a = tf.randomUniform([m, k]);
  const b = tf.randomUniform([k, n]);
  const times: number[] = [];
  for (let i = 0; i < GEMM_WARMUP + GEMM_ITERATIONS; i++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    const elapsed = performance.now() - t0;
    c.dispose();
    if (i >= GEMM_WARMUP) times.push(elapsed);
  }
  a.dispose();
  b.dispose();
  return (2 * m * k * n) / (median(times) / 1000) / 1e9;
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
  if (tf.getBackend() !== "webgpu") return measureGemmPeak();
  const { m, k, n } = GEMM_SHAPE;
  const a = tf.randomUniform([m, k]);
  const b = tf.randomUniform([k, n]);
  const times: number[] = [];
  for (let i = 0; i < GEMM_WARMUP + GEMM_ITERATIONS; i++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    await c.data();
    const elapsed = performance.now() - t0;
    c.dispose();
    if (i >= GEMM_WARMUP) times.push(elapsed);
  }
  a.dispose();
  b.dispose();
  return (2 * m * k * n) / (median(times) / 1000) / 1e9;
}
