/**
 * A Web Worker for the concurrency test: loads OpenBLAS in its own thread and answers each
 * request with `rounds` sgemm products of its own matrices, each checked against a plain
 * JavaScript product; replies with the largest error seen.
 */
import { loadOpenBlas } from "../backends/kernels/_openblas.ts";
import { createRng } from "../core/rng.ts";

interface Request {
  seed: number;
  rounds: number;
  size: number;
}

function naive(a: Float32Array, b: Float32Array, n: number): Float32Array {
  const c = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < n; p++) {
      const aip = a[i * n + p];
      for (let j = 0; j < n; j++) c[i * n + j] += aip * b[p * n + j];
    }
  }
  return c;
}

/** The part of the worker global scope used here (the file is checked with the window lib). */
interface WorkerScope {
  postMessage(message: { maxError?: number; error?: string }): void;
  onmessage: ((event: MessageEvent<Request>) => void) | null;
}
const scope = self as unknown as WorkerScope;

scope.onmessage = (event: MessageEvent<Request>) => {
  const { seed, rounds, size } = event.data;
  const load = loadOpenBlas();
  if (!load.ok) {
    scope.postMessage({ error: load.reason });
    return;
  }
  const rng = createRng(seed);
  let maxError = 0;
  for (let r = 0; r < rounds; r++) {
    const a = Float32Array.from({ length: size * size }, () => rng() - 0.5);
    const b = Float32Array.from({ length: size * size }, () => rng() - 0.5);
    const c = new Float32Array(size * size);
    load.blas.sgemm(false, false, size, size, size, a, b, c);
    const expected = naive(a, b, size);
    for (let i = 0; i < c.length; i++) maxError = Math.max(maxError, Math.abs(c[i] - expected[i]));
  }
  scope.postMessage({ maxError });
};
