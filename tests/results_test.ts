import assert from "node:assert/strict";
import { buildRunRecords } from "../analysis/results.ts";
import type { RunMeasurement, RunSpec, StrategyName } from "../core/run_types.ts";

function measurement(
  strategy: StrategyName,
  worldSize: number,
  samplesPerSec: number,
): RunMeasurement {
  const spec: RunSpec = {
    workload: "w",
    strategy,
    worldSize,
    backend: "wasm",
    fastKernels: true,
    seed: 0,
    steps: 3,
    warmup: 0,
    globalBatch: 8,
    snapshotStep: 3,
  };
  return {
    spec,
    stepMs: { p50: 1, p95: 1, mean: 1 },
    stepSamples: [1, 1, 1],
    samplesPerSec,
    phaseMs: { compute: 1, replicate: 0, scatter: 0, gather: 0, allReduce: 0, update: 0 },
    finalLoss: 1,
    accuracy: 0.5,
    workers: [{ role: "main", index: 0, peakBytes: 10, peakRssBytes: 20 }],
    comm: { bytesPerStep: 0, msPerStep: 0, waitMsPerStep: 0, transferMsPerStep: 0, share: 0 },
    loadMs: 1,
    flopsPerStep: 8e6,
    peakGflops: 1,
    snapshot: new Float32Array([1, 2]),
  };
}

Deno.test("speedup and ceiling ratios are taken within each repeat, then the median", () => {
  // The machine slowed down in repeat 2 and the parallel run hit a hiccup in repeat 3.
  const single = [100, 50, 80].map((s) => measurement("single", 1, s));
  const ddp = [150, 75, 60].map((s) => measurement("ddp", 2, s));
  const ceilings = [180, 90, 96].map((s) => ({
    spec: measurement("ddp", 2, 0).spec,
    samplesPerSec: s,
  }));
  const measurements = [0, 1, 2].flatMap((r) => [single[r], ddp[r]]);
  const [, run] = buildRunRecords(measurements, ceilings);
  assert.equal(run.speedup, 1.5); // per-repeat ratios 1.5, 1.5, 0.75; a ratio of medians gives 0.94
  assert.equal(run.efficiency, 0.75);
  assert.equal(run.ceiling?.speedup, 1.8);
  assert.equal(run.efficiencyVsCeiling, 150 / 180);
  assert.equal(run.samplesPerSec, 75);
});

Deno.test("a run without its single reference is an error naming the workload", () => {
  assert.throws(
    () => buildRunRecords([measurement("ddp", 2, 10)]),
    /No single-device reference for w/,
  );
});
