import assert from "node:assert/strict";
import { buildRunRecords, MAX_STEP_SAMPLES } from "../analysis/results.ts";
import { validateResults } from "../analysis/validate_results.ts";
import { FULL_SHAPES, makeResults } from "./_results_fixture.ts";
import { medianInterval } from "../core/stats.ts";
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
    comm: {
      bytesPerStep: 0,
      msPerStep: 0,
      waitMsPerStep: 0,
      transferMsPerStep: 0,
      exposedMsPerStep: 0,
      messagesPerStep: 0,
      share: 0,
    },
    loadMs: 1,
    flopsPerStep: 8e6,
    params: 2,
    gradientBytes: 8,
    batchNorm: null,
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

Deno.test("intervals come from the repeats' within-repeat ratios; the best single process is the faster single", () => {
  const single = [100, 50, 80].map((s) => measurement("single", 1, s));
  const threaded = [160, 70, 120].map((s) => {
    const m = measurement("single", 1, s);
    return { ...m, spec: { ...m.spec, threads: 2 } };
  });
  const ddp = [150, 75, 60].map((s) => measurement("ddp", 2, s));
  const runs = buildRunRecords([0, 1, 2].flatMap((r) => [single[r], threaded[r], ddp[r]]));
  const [one, two, parallel] = runs;
  assert.deepEqual([one.threads, two.threads], [1, 2]);
  assert.equal(two.speedupInterval, null, "single runs carry no interval");
  // Scaling stays against the one-worker single: ratios 1.5, 1.5, 0.75.
  assert.equal(parallel.speedup, 1.5);
  assert.deepEqual(parallel.speedupInterval, { low: 0.75, high: 1.5, level: 0.75 });
  // Against the best single process (two threads): ratios 0.9375, 1.0714…, 0.5.
  assert.equal(parallel.bestSingleThreads, 2);
  assert.equal(parallel.speedupVsBestSingle, 150 / 160);
  assert.deepEqual(parallel.speedupVsBestSingleInterval, { low: 0.5, high: 75 / 70, level: 0.75 });
  // The threaded single is compared with the one-worker single for equivalence, not itself.
  assert.equal(two.paramMaxAbsDiffVsSingle, 0);
});

Deno.test("medianInterval: min–max for few repeats, the narrowest order statistics at ≥ 90% for more", () => {
  assert.deepEqual(medianInterval([1.2, 1.1, 1.3]), { low: 1.1, high: 1.3, level: 0.75 });
  assert.deepEqual(medianInterval([5]), { low: 5, high: 5, level: 0 });
  const twenty = medianInterval(Array.from({ length: 20 }, (_, i) => i));
  // 1 − 2·P(Binomial(20, ½) ≤ 5) = 0.9586…; k = 6 would give 0.8847 < 0.9.
  assert.deepEqual([twenty.low, twenty.high], [5, 14]);
  assert.ok(Math.abs(twenty.level - 0.95861) < 1e-4, String(twenty.level));
});

Deno.test("--step-samples keeps at most 10000 per repeat: the ends whole, an even sample between", () => {
  const long = measurement("single", 1, 100);
  long.stepSamples = Array.from({ length: 25_000 }, (_, i) => i + 1);
  const [record] = buildRunRecords([long], [], { stepSamples: true });
  const kept = record.stepSamplesMs![0];
  assert.equal(kept.length, MAX_STEP_SAMPLES);
  assert.deepEqual(kept.slice(0, 10), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(kept.slice(-2), [24_999, 25_000]);
  // Evenly spread: the middle sample sits near the middle of the run.
  assert.ok(Math.abs(kept[MAX_STEP_SAMPLES / 2] - 12_500) < 10, String(kept[5000]));
  // The percentiles still pool every step.
  assert.equal(record.stepMs.p50, 12_500.5);
  const short = measurement("single", 1, 100);
  assert.deepEqual(buildRunRecords([short], [], { stepSamples: true })[0].stepSamplesMs, [[
    1,
    1,
    1,
  ]]);
});

Deno.test("the schema refuses more step samples per repeat than a bench keeps", () => {
  const results = makeResults(FULL_SHAPES);
  results.runs[0].stepSamplesMs = [Array.from({ length: MAX_STEP_SAMPLES }, () => 1)];
  validateResults(JSON.parse(JSON.stringify(results)), "ok");
  results.runs[0].stepSamplesMs = [Array.from({ length: MAX_STEP_SAMPLES + 1 }, () => 1)];
  assert.throws(
    () => validateResults(JSON.parse(JSON.stringify(results)), "big.json"),
    /Invalid results in big\.json: \/runs\/0\/stepSamplesMs\/0 must NOT have more than 10000 items/,
  );
});
