import assert from "node:assert/strict";
import type { RunSpec } from "../core/run_types.ts";
import { runSingle } from "../strategies/single.ts";

/**
 * The fast kernels change summation order (im2col + GEMM, explicit transposes), nothing
 * else; over 20 Adam steps that moves parameters by ~1e-6 (measured), while one step moves
 * them by ~1e-3. 1e-4 separates the two with room.
 */
const CURVE_TOLERANCE = 1e-4;

for (const workload of ["mnist-mlp", "mnist-cnn"]) {
  Deno.test(`${workload}: 20 training steps agree with and without the fast kernels`, async () => {
    const spec: RunSpec = {
      workload,
      strategy: "single",
      worldSize: 1,
      backend: "wasm",
      fastKernels: true,
      seed: 2,
      steps: 20,
      warmup: 0,
      // Small enough that the stock conv filter gradient (cpu fallback) stays quick.
      globalBatch: 8,
      snapshotStep: 20,
    };
    const fast = await runSingle(spec);
    const stock = await runSingle({ ...spec, fastKernels: false });
    let diff = 0;
    for (let i = 0; i < fast.snapshot.length; i++) {
      diff = Math.max(diff, Math.abs(fast.snapshot[i] - stock.snapshot[i]));
    }
    assert.ok(diff < CURVE_TOLERANCE, `max |Δparam| ${diff}`);
    assert.ok(Math.abs(fast.finalLoss - stock.finalLoss) < 1e-3);
  });
}
