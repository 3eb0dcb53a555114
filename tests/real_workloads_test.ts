/**
 * The real workloads: their sizes and FLOP counts, that their loss falls within the default
 * budget, DP and DDP against single (SyncBatchNorm within the bound, local BatchNorm measurably
 * not), and wide-mlp's gradient over several DDP buckets with communication hidden behind its
 * backward. On native where OpenBLAS loads, else wasm.
 */
import assert from "node:assert/strict";
import { loadOpenBlas } from "../backends/kernels/_openblas.ts";
import { readCheckpoint } from "../core/checkpoint.ts";
import { UsageError } from "../core/errors.ts";
import { createLayout } from "../core/flat_layout.ts";
import { initialParams } from "../core/trainer.ts";
import type { RunMeasurement, RunSpec } from "../core/run_types.ts";
import { runDdp } from "../strategies/ddp.ts";
import { DEFAULT_BUCKET_BYTES, gradientBuckets } from "../strategies/ddp.ts";
import { runDp } from "../strategies/dp.ts";
import { runSingle } from "../strategies/single.ts";
import { getWorkload, WORKLOAD_FAMILIES } from "../workloads/registry.ts";

const BACKEND = loadOpenBlas().ok ? "native" : "wasm";
/**
 * The loss must end below this fraction of its value at the start (a uniform prediction's):
 * the transformer's clearly; the ResNet (SGD with momentum, 20 steps) less steeply.
 */
const LOSS_FALLS_TO: Record<string, number> = {
  "transformer-lm:tiny": 0.8,
  "resnet-cnn:tiny": 0.92,
};
/** Sync BatchNorm and plain DP/DDP: max |Δparam| against single. */
const BOUND = 1e-5;

const count = (name: string) => createLayout(getWorkload(name).createModel().params).totalSize;

function spec(workload: string, overrides: Partial<RunSpec> = {}): RunSpec {
  const w = getWorkload(workload);
  return {
    workload,
    strategy: "single",
    worldSize: 1,
    backend: BACKEND,
    fastKernels: true,
    seed: 0,
    steps: w.defaults.steps,
    warmup: 0,
    globalBatch: w.defaults.batchSize,
    snapshotStep: w.defaults.steps,
    ...overrides,
  };
}

function maxDiff(a: RunMeasurement, b: RunMeasurement): number {
  let max = 0;
  for (let i = 0; i < a.snapshot.length; i++) {
    max = Math.max(max, Math.abs(a.snapshot[i] - b.snapshot[i]));
  }
  return max;
}

Deno.test("sizes: a bare family name is its default size, an unknown size names the choices", () => {
  assert.equal(getWorkload("transformer-lm").name, "transformer-lm:tiny");
  assert.equal(getWorkload("wide-mlp").name, "wide-mlp:medium");
  assert.throws(
    () => getWorkload("resnet-cnn:huge"),
    (e) =>
      e instanceof UsageError &&
      e.message === 'Unknown size "huge" of resnet-cnn: choose from tiny, small, medium',
  );
  for (const family of WORKLOAD_FAMILIES) {
    const sizes = Object.values(family.sizes).map((w) => count(w.name));
    assert.deepEqual(sizes, [...sizes].sort((a, b) => a - b), `${family.name}: smallest first`);
  }
});

Deno.test("transformer-lm: about 0.2 M, 2 M and 10–20 M parameters; nanoGPT's FLOPs per token", () => {
  const [tiny, small, medium] = ["tiny", "small", "medium"].map((s) =>
    count(`transformer-lm:${s}`)
  );
  assert.ok(tiny > 150e3 && tiny < 300e3, `tiny ${tiny}`);
  assert.ok(small > 1.5e6 && small < 3e6, `small ${small}`);
  assert.ok(medium > 10e6 && medium < 20e6, `medium ${medium}`);
  // tiny: 4 layers, width 64, context 64, 89 characters; N leaves out the two tables.
  const model = getWorkload("transformer-lm:tiny").createModel();
  const n = tiny - 89 * 64 - 64 * 64;
  assert.equal(model.trainFlopsPerSample, 64 * (6 * n + 12 * 4 * 64 * 64));
});

Deno.test("wide-mlp: at least 60 MB of float32 gradient, at least three 25 MiB buckets", () => {
  const layout = createLayout(getWorkload("wide-mlp").createModel().params);
  assert.ok(layout.totalSize * 4 >= 60e6, `${layout.totalSize * 4} bytes`);
  assert.ok(gradientBuckets(layout, DEFAULT_BUCKET_BYTES).length >= 3);
});

for (const [name, fraction] of Object.entries(LOSS_FALLS_TO)) {
  Deno.test(`${name}: the loss falls clearly within its default budget`, async () => {
    const data = await getWorkload(name).loadData(0);
    const m = await runSingle(spec(name));
    const start = Math.log(data.numClasses); // a uniform prediction's loss
    assert.ok(m.finalLoss < fraction * start, `loss ${m.finalLoss} from ~${start}`);
    assert.ok(m.accuracy > 1.5 / data.numClasses, `accuracy ${m.accuracy}`);
  });
}

Deno.test("transformer-lm:tiny: DP-2 and DDP-2 end within 1e-5 of single after 20 steps", async () => {
  const short = { steps: 20, snapshotStep: 20, globalBatch: 16 };
  const single = await runSingle(spec("transformer-lm:tiny", short));
  const dp = await runDp(spec("transformer-lm:tiny", { ...short, strategy: "dp", worldSize: 2 }));
  const ddp = await runDdp(
    spec("transformer-lm:tiny", { ...short, strategy: "ddp", worldSize: 2 }),
  );
  assert.ok(maxDiff(dp, single) < BOUND, `dp ${maxDiff(dp, single)}`);
  assert.ok(maxDiff(ddp, single) < BOUND, `ddp ${maxDiff(ddp, single)}`);
  assert.equal(dp.params, count("transformer-lm:tiny"));
  assert.equal(ddp.gradientBytes, 4 * count("transformer-lm:tiny"));
});

Deno.test("resnet-cnn: SyncBatchNorm matches single under DP (uneven slices) and DDP; local does not", async () => {
  const name = "resnet-cnn:tiny";
  // One step: the check the workload asks for (its equivalenceSteps), the gradient itself.
  const steps = getWorkload(name).defaults.equivalenceSteps!;
  const at = (batch: number, extra: Partial<RunSpec> = {}) =>
    spec(name, { steps, snapshotStep: steps, globalBatch: batch, ...extra });
  const single15 = await runSingle(at(15));
  const dpSync = await runDp(at(15, { strategy: "dp", worldSize: 2, batchNorm: "sync" }));
  const dpLocal = await runDp(at(15, { strategy: "dp", worldSize: 2, batchNorm: "local" }));
  const single16 = await runSingle(at(16));
  const ddpSync = await runDdp(at(16, { strategy: "ddp", worldSize: 2, batchNorm: "sync" }));
  const ddpLocal = await runDdp(at(16, { strategy: "ddp", worldSize: 2 }));
  assert.ok(maxDiff(dpSync, single15) < BOUND, `dp sync ${maxDiff(dpSync, single15)}`);
  assert.ok(maxDiff(ddpSync, single16) < BOUND, `ddp sync ${maxDiff(ddpSync, single16)}`);
  assert.ok(maxDiff(dpLocal, single15) > 10 * BOUND, `dp local ${maxDiff(dpLocal, single15)}`);
  assert.ok(maxDiff(ddpLocal, single16) > 10 * BOUND, `ddp local ${maxDiff(ddpLocal, single16)}`);
  assert.deepEqual(
    [single16.batchNorm, dpSync.batchNorm, ddpLocal.batchNorm],
    [null, "sync", "local"],
  );
  // SyncBatchNorm's all-reduces count as communication: DDP's three per BatchNorm layer a step.
  assert.ok(ddpSync.comm.messagesPerStep > ddpLocal.comm.messagesPerStep);
  const start = initialParams(getWorkload(name).createModel(), 0);
  assert.ok(single16.snapshot.some((v, i) => v !== start[i]), "the step moved the parameters");
});

Deno.test("wide-mlp: DDP-2 all-reduces at least 3 buckets a step, part of it hidden behind the backward", async () => {
  const m = await runDdp(spec("wide-mlp", {
    strategy: "ddp",
    worldSize: 2,
    steps: 3,
    warmup: 1,
    snapshotStep: 4,
  }));
  assert.ok(m.comm.messagesPerStep >= 3, `${m.comm.messagesPerStep} calls`);
  assert.ok(m.comm.exposedMsPerStep < m.comm.msPerStep, JSON.stringify(m.comm));
  assert.ok(m.comm.bytesPerStep >= 60e6, `${m.comm.bytesPerStep} bytes`);
});

Deno.test("resnet-cnn: a checkpoint keeps BatchNorm's running statistics, and a resume loads them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/resnet.ckpt.json`;
    const name = "resnet-cnn:tiny";
    const short = { steps: 2, snapshotStep: 2, globalBatch: 8 };
    await runSingle(spec(name, { ...short, checkpointPath: path }));
    const layout = createLayout(getWorkload(name).createModel().params);
    const ckpt = await readCheckpoint(path, { workload: name, layout });
    const fresh = createLayout(getWorkload(name).createModel().buffers!);
    assert.equal(ckpt.buffers?.length, fresh.totalSize);
    // Two training steps moved the running variances off their initial ones.
    assert.ok(ckpt.buffers!.some((v, i) => i >= 8 && i < 16 && v !== 1));
    const resumed = await runSingle(spec(name, { ...short, resumePath: path }));
    assert.ok(Number.isFinite(resumed.finalLoss));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
