import assert from "node:assert/strict";
import fc from "fast-check";
import type { RunMeasurement, RunSpec } from "../core/run_types.ts";
import type { FaultMode } from "../strategies/_dp_messages.ts";
import { weightedMean } from "../strategies/_dp_gather.ts";
import { scatter } from "../strategies/_dp_scatter.ts";
import { evenSplit } from "../core/even_split.ts";

const sliceSizes = (total: number, parts: number) => evenSplit(total, parts).map((r) => r.length);
import { WorkerReplica } from "../strategies/_dp_worker_replica.ts";
import { measureDpCeiling, ReplicaError, runDp } from "../strategies/dp.ts";
import { runSingle } from "../strategies/single.ts";

/** Steps after which DP's parameters are compared with single's (as bench does). */
const EQUIVALENCE_STEPS = 20;
/**
 * DP sees the same batches and applies the same optimizer as single; only the float summation
 * order differs (per-slice means recombined on the main thread instead of one mean over the
 * batch). Measured: ≤ 2e-7 after 20 Adam steps. 1e-5 leaves a wide margin for that and still
 * fails on a real mistake: an unweighted mean of uneven slices was measured at 7e-3, workers
 * computing on stale parameters at 3e-2.
 */
const TOLERANCE = 1e-5;
/** A failing replica must fail the run within this (set-up included). */
const FAILURE_REPORT_LIMIT_MS = 15_000;
/** Step timeout for the `hang` fault, so that the test does not wait the default 60 s. */
const TEST_STEP_TIMEOUT_MS = 2_000;

function spec(overrides: Partial<RunSpec> = {}): RunSpec {
  return {
    workload: "synthetic-mlp",
    strategy: "dp",
    worldSize: 2,
    backend: "wasm",
    fastKernels: true,
    seed: 0,
    steps: EQUIVALENCE_STEPS,
    warmup: 0,
    globalBatch: 64,
    snapshotStep: EQUIVALENCE_STEPS,
    ...overrides,
  };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Single's reference run per global batch, computed once. */
const singles = new Map<number, Promise<RunMeasurement>>();
function single(globalBatch: number): Promise<RunMeasurement> {
  if (!singles.has(globalBatch)) singles.set(globalBatch, runSingle(spec({ globalBatch })));
  return singles.get(globalBatch)!;
}

// 64 over 3 and 65 over 2 do not divide: slices of 22/21/21 and 33/32.
for (const [worldSize, globalBatch] of [[2, 64], [3, 64], [2, 65]]) {
  Deno.test(`dp with ${worldSize} replicas matches single (global batch ${globalBatch})`, async () => {
    const reference = await single(globalBatch);
    const dp = await runDp(spec({ worldSize, globalBatch }));
    const diff = maxAbsDiff(dp.snapshot, reference.snapshot);
    assert.ok(diff < TOLERANCE, `max |param − single's| = ${diff}`);
    assert.ok(Math.abs(dp.finalLoss - reference.finalLoss) < TOLERANCE);
    assert.equal(WorkerReplica.live, 0, "every worker terminated");
  });
}

Deno.test("dp reports one main and one replica memory row per worker, and what it moved", async () => {
  const globalBatch = 64;
  const m = await runDp(spec({ worldSize: 3, steps: 2, snapshotStep: 2, globalBatch }));
  assert.deepEqual(m.workers.map((w) => [w.role, w.index]), [
    ["main", 0],
    ["replica", 1],
    ["replica", 2],
  ]);
  for (const w of m.workers) assert.ok(w.peakBytes > 0, `${w.role} ${w.index}: peakBytes`);
  assert.ok(m.workers[0].peakRssBytes! > 0);
  assert.equal(m.workers[1].peakRssBytes, null);
  assert.equal(m.workers[2].peakRssBytes, null);
  // Params out to 2 workers, their gradients back, and their 21 + 21 input samples.
  const paramBytes = m.snapshot.byteLength;
  const [, ...workerSlices] = sliceSizes(globalBatch, 3);
  const sampleBytes = 64 * 4 + 4; // 64 float features and one int32 label
  const inputBytes = workerSlices.reduce((a, b) => a + b, 0) * sampleBytes;
  assert.equal(m.comm.bytesPerStep, 2 * 2 * paramBytes + inputBytes);
  for (const phase of ["replicate", "scatter", "compute", "gather", "update"] as const) {
    assert.ok(m.phaseMs[phase] > 0, `phase ${phase}`);
  }
  assert.ok(m.comm.waitMsPerStep >= 0 && m.comm.waitMsPerStep <= m.comm.msPerStep);
  assert.ok(
    Math.abs(m.comm.waitMsPerStep + m.comm.transferMsPerStep - m.comm.msPerStep) < 1e-9,
  );
});

// `crash` also makes Deno print the worker's uncaught error on stderr: expected noise.
for (const mode of ["throw", "crash", "hang"] as FaultMode[]) {
  Deno.test(`a replica that fails (${mode}) at step 3 fails the run, naming it, with no worker left`, async () => {
    const started = performance.now();
    const error = await runDp(spec({ worldSize: 3 }), undefined, {
      failReplicaAtStep: { replica: 2, step: 3, mode },
      stepTimeoutMs: TEST_STEP_TIMEOUT_MS,
    }).then(() => null, (e) => e);
    const elapsedMs = performance.now() - started;
    assert.ok(error instanceof ReplicaError, `expected a ReplicaError, got ${error}`);
    assert.match(error.message, /^Replica 2 failed at step 3: /);
    if (mode === "hang") assert.match(error.message, /no answer after 2 s/);
    else assert.match(error.message, /injected fault at step 3/);
    assert.equal(error.replica, 2);
    assert.equal(error.step, 3);
    assert.ok(elapsedMs < FAILURE_REPORT_LIMIT_MS, `reported after ${elapsedMs} ms`);
    assert.equal(WorkerReplica.live, 0, "every worker terminated");
  });
}

Deno.test("dp rejects a batch smaller than its replicas and a fault on the main replica", async () => {
  await assert.rejects(runDp(spec({ worldSize: 3, globalBatch: 2 })), /Global batch 2 is smaller/);
  await assert.rejects(
    runDp(spec(), undefined, { failReplicaAtStep: { replica: 0, step: 1 } }),
    /Cannot inject a fault into replica 0/,
  );
  assert.equal(WorkerReplica.live, 0);
});

Deno.test("the dp ceiling runs N workers at once and gives aggregate samples/s", async () => {
  const { samplesPerSec } = await measureDpCeiling(spec({ steps: 3, warmup: 1 }));
  assert.ok(Number.isFinite(samplesPerSec) && samplesPerSec > 0, `${samplesPerSec}`);
  assert.equal(WorkerReplica.live, 0);
});

Deno.test("scatter splits a batch into contiguous slices whose sizes differ by at most 1", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 1, max: 8 }), (size, n) => {
      fc.pre(n <= size);
      const width = 3;
      const batch = {
        x: Float32Array.from({ length: size * width }, (_, i) => i),
        y: Int32Array.from({ length: size }, (_, i) => i),
        size,
      };
      const slices = scatter(batch, n);
      const sizes = slices.map((s) => s.size);
      assert.deepEqual(sizes, sliceSizes(size, n));
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
      assert.deepEqual(Array.from(slices.flatMap((s) => [...s.y])), [...batch.y]);
      assert.deepEqual(Array.from(slices.flatMap((s) => [...s.x])), [...batch.x]);
      slices.forEach((s) => assert.equal(s.x.length, s.size * width));
    }),
  );
});

Deno.test("weightedMean of per-slice means is the mean over the whole batch", () => {
  const sample = fc.float({ min: -10, max: 10, noNaN: true });
  fc.assert(
    fc.property(
      fc.array(fc.array(sample, { minLength: 1, maxLength: 6 }), {
        minLength: 1,
        maxLength: 4,
      }),
      (slices) => {
        // Each "gradient" is one float: the mean of its slice's per-sample values.
        const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
        const parts = slices.map((xs) => ({
          size: xs.length,
          loss: mean(xs),
          grads: Float32Array.of(mean(xs)),
        }));
        const all = mean(slices.flat());
        const reduced = weightedMean(parts);
        assert.ok(Math.abs(reduced.grads[0] - all) < 1e-5, `${reduced.grads[0]} vs ${all}`);
        assert.ok(Math.abs(reduced.loss - all) < 1e-5);
      },
    ),
  );
});

Deno.test("the DP main replica writes a checkpoint that single resumes from", async () => {
  const { readCheckpoint } = await import("../core/checkpoint.ts");
  const { createLayout } = await import("../core/flat_layout.ts");
  const { getWorkload } = await import("../workloads/registry.ts");
  const dir = await Deno.makeTempDir();
  const path = `${dir}/dp.ckpt.json`;
  const dp = await runDp(spec({ worldSize: 2, steps: 5, snapshotStep: 5, checkpointPath: path }));
  const layout = createLayout(getWorkload(dp.spec.workload).createModel().params);
  const ckpt = await readCheckpoint(path, { workload: dp.spec.workload, layout });
  assert.deepEqual(ckpt.params, dp.snapshot);
  const resumed = await runSingle(
    spec({ strategy: "single", worldSize: 1, steps: 1, snapshotStep: 0, resumePath: path }),
  );
  const fresh = await runSingle(spec({ strategy: "single", worldSize: 1, steps: 1 }));
  assert.ok(resumed.finalLoss < fresh.finalLoss);
  await Deno.remove(dir, { recursive: true });
});
