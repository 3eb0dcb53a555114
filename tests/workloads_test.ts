import assert from "node:assert/strict";
import { runSingle } from "../strategies/single.ts";
import { WORKLOADS } from "../workloads/registry.ts";
import type { RunSpec } from "../core/run_types.ts";

/** Accuracy after the default budget must clear chance by this factor. */
const ABOVE_CHANCE = 2;
/** cpu and wasm must agree on the parameters after a few steps within this tolerance. */
const BACKEND_TOLERANCE = 1e-4;

function spec(workload: string, overrides: Partial<RunSpec> = {}): RunSpec {
  const w = WORKLOADS.find((x) => x.name === workload)!;
  return {
    workload,
    strategy: "single",
    worldSize: 1,
    backend: "wasm",
    fastKernels: true,
    seed: 0,
    steps: w.defaults.steps,
    warmup: 0,
    globalBatch: w.defaults.batchSize,
    snapshotStep: w.defaults.steps,
    ...overrides,
  };
}

for (const w of WORKLOADS) {
  Deno.test(`${w.name} trains on wasm to clearly above chance within its default budget`, async () => {
    const data = await w.loadData(0);
    const m = await runSingle(spec(w.name));
    const chance = 1 / data.numClasses;
    assert.ok(
      m.accuracy > Math.min(0.95, ABOVE_CHANCE * chance),
      `accuracy ${m.accuracy} vs chance ${chance}`,
    );
    assert.ok(Number.isFinite(m.finalLoss));
    assert.ok(m.samplesPerSec > 0);
    assert.ok(m.workers[0].peakBytes > 0);
  });

  Deno.test(`${w.name} trains on cpu to the same parameters as on wasm`, async () => {
    const short = { steps: 2, snapshotStep: 2, globalBatch: 8 };
    const onWasm = await runSingle(spec(w.name, short));
    const onCpu = await runSingle(spec(w.name, { ...short, backend: "cpu" }));
    let diff = 0;
    for (let i = 0; i < onCpu.snapshot.length; i++) {
      diff = Math.max(diff, Math.abs(onCpu.snapshot[i] - onWasm.snapshot[i]));
    }
    assert.ok(diff < BACKEND_TOLERANCE, `max |Δparam| ${diff}`);
    assert.ok(Number.isFinite(onCpu.finalLoss));
  });
}

Deno.test("datasets: seeded split is deterministic and the holdout is disjoint", async () => {
  for (const w of WORKLOADS) {
    const a = await w.loadData(5);
    const b = await w.loadData(5);
    assert.deepEqual(a.train.y, b.train.y);
    assert.deepEqual(a.test.x, b.test.x);
    const c = await w.loadData(6);
    assert.notDeepEqual(c.train.y, a.train.y, `${w.name}: another seed shuffles differently`);
    assert.equal(a.train.x.length, a.train.size * a.featureShape.reduce((x, y) => x * y, 1));
    assert.ok(a.test.size > 0 && a.train.size > a.test.size);
  }
});

Deno.test("mnist is parsed once per process: a second load is fast", async () => {
  const mnist = WORKLOADS.find((w) => w.name === "mnist-mlp")!;
  await mnist.loadData(0);
  const t0 = performance.now();
  await mnist.loadData(1);
  assert.ok(performance.now() - t0 < 200, "second load re-parsed the JSON");
});
