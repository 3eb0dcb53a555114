/**
 * The acceptance of TensorFlow.js Layers models as workloads: a `tf.sequential` MLP and CNN,
 * each as a module function and as a saved `model.json`, under single, DP-2 and DDP-2 agree
 * within 1e-5 after 20 steps with their FLOPs counted (GFLOP/s given); a model with
 * BatchNormalization runs under all three, its difference from single measured and its buffer
 * semantics named; a model with a layer the count does not know gives no GFLOP/s, and says
 * why. On native where OpenBLAS loads, else wasm.
 */
import assert from "node:assert/strict";
import { loadOpenBlas } from "../backends/kernels/_openblas.ts";
import type { RunSpec } from "../core/run_types.ts";
import { buildRunRecords } from "../analysis/results.ts";
import { modelLines, workloadTable } from "../reports/_tables.ts";
import { runDdp } from "../strategies/ddp.ts";
import { runDp } from "../strategies/dp.ts";
import { runSingle } from "../strategies/single.ts";

const BACKEND = loadOpenBlas().ok ? "native" : "wasm";
/**
 * DP and DDP see the batches single sees and apply the same optimizer; only the summation
 * order of the gradient differs. Measured on these models after 20 Adam steps from seed 0: at
 * most 4e-7 (the MLPs), 3e-8 (the CNNs); over seeds 1–4 at most 7e-6, one weight of the MLP's
 * first layer whose gradient is near zero, which Adam's normalised step amplifies.
 */
const TOLERANCE = 1e-5;
const STEPS = 20;
const EXAMPLES = new URL("../examples/layers_models.ts", import.meta.url).href;
const MODELS = new URL("../examples/models/", import.meta.url);
const modelRef = (name: string) => `model:${new URL(`${name}/model.json`, MODELS).pathname}`;

function spec(workload: string, strategy: RunSpec["strategy"]): RunSpec {
  return {
    workload,
    strategy,
    worldSize: strategy === "single" ? 1 : 2,
    backend: BACKEND,
    fastKernels: true,
    seed: 0,
    steps: STEPS,
    warmup: 0,
    globalBatch: 64,
    snapshotStep: STEPS,
  };
}

/** Single, DP-2 and DDP-2 of one workload, as run records (the equivalence measured). */
async function threeWays(workload: string) {
  const single = await runSingle(spec(workload, "single"));
  const dp = await runDp(spec(workload, "dp"));
  const ddp = await runDdp(spec(workload, "ddp"));
  return buildRunRecords([single, dp, ddp]);
}

const CASES: [string, string][] = [
  ["a tf.sequential MLP, module function", `${EXAMPLES}#buildMlp`],
  ["a tf.sequential MLP, saved model.json", modelRef("mlp")],
  ["a tf.sequential CNN, module function", `${EXAMPLES}#buildCnn`],
  ["a tf.sequential CNN, saved model.json", modelRef("cnn")],
];

for (const [name, workload] of CASES) {
  Deno.test(`${name}: DP-2 and DDP-2 match single within ${TOLERANCE} after ${STEPS} steps on ${BACKEND}, FLOPs counted`, async () => {
    const records = await threeWays(workload);
    assert.deepEqual(records.map((r) => r.strategy), ["single", "dp", "ddp"]);
    for (const r of records) {
      assert.deepEqual(r.model?.flopsNotCounted, [], "every layer counted");
      assert.ok(r.flopsPerStep! > 0);
      assert.ok(r.compute.gflops! > 0 && r.compute.fractionOfPeak! > 0, "GFLOP/s given");
      assert.match(r.model!.data, /^synthetic: /);
      if (r.strategy === "single") continue;
      assert.ok(
        r.paramMaxAbsDiffVsSingle! <= TOLERANCE,
        `${r.strategy}-2: max |Δparam| ${r.paramMaxAbsDiffVsSingle}`,
      );
      assert.equal(r.equivalenceSteps, STEPS);
    }
    assert.ok(Number.isFinite(records[0].finalLoss));
  });
}

Deno.test("a Layers CNN with BatchNormalization runs under single, DP-2 and DDP-2: its difference measured, its buffers named", async () => {
  const records = await threeWays(`${EXAMPLES}#buildBatchNormCnn`);
  for (const r of records.filter((r) => r.strategy !== "single")) {
    assert.equal(r.batchNorm, "local");
    assert.equal(r.equivalenceBoundUsed, null, "local BatchNorm: measured, not bound");
    assert.ok(
      Number.isFinite(r.paramMaxAbsDiffVsSingle) && r.paramMaxAbsDiffVsSingle! > 0,
      `${r.strategy}: each replica normalises its own slice, so it differs (${r.paramMaxAbsDiffVsSingle})`,
    );
  }
  const notes = records[0].model!.notes.join(" ");
  assert.match(notes, /are buffers: each replica normalises with its own batch statistics/);
  assert.match(notes, /broadcast theirs before every step \(PyTorch's broadcast_buffers=True\)/);
});

Deno.test("a layer the FLOP count does not know: no FLOPs per step, no GFLOP/s, and the reason", async () => {
  const fixture = new URL("./_layers_fixtures.ts", import.meta.url).href;
  const m = await runSingle({
    ...spec(`${fixture}#conv3dModel`, "single"),
    steps: 2,
    snapshotStep: 2,
  });
  assert.equal(m.flopsPerStep, null);
  const [record] = buildRunRecords([m]);
  assert.equal(record.compute.gflops, null);
  assert.equal(record.compute.fractionOfPeak, null);
  assert.match(record.compute.reason!, /FLOPs not counted for Conv3D ×1 \(no FLOP rule/);
  assert.ok(record.compute.peakGflops > 0, "the peak is still measured");
  const lines = modelLines([record]);
  assert.match(
    lines.join("\n"),
    /FLOPs: not counted for Conv3D ×1 .* GFLOP\/s and % of GEMM peak are n\/a/,
  );
  const row = workloadTable([record]).rows[1];
  assert.equal(row[7], "n/a");
  assert.equal(row[8], "n/a");
});
