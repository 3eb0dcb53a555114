import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { initBackend } from "../backends/backend.ts";
import { type Batch, Trainer } from "../core/trainer.ts";
import {
  adapterRecord,
  describeAdapter,
  pickAdapter,
  WEBGPU_EQUIVALENCE_BOUND,
  WEBGPU_EQUIVALENCE_STEPS,
  WEBGPU_MISSING_KERNELS,
  webgpuAvailability,
} from "../backends/webgpu.ts";
import { UsageError } from "../core/errors.ts";
import { WORKLOADS } from "../workloads/registry.ts";

const noWebGpu = webgpuAvailability() != null;

Deno.test("a DDP rank takes adapter LOCAL_RANK mod n; with one adapter all share it, noted", () => {
  assert.deepEqual(pickAdapter(0, 1), { index: 0, note: null });
  assert.deepEqual(pickAdapter(1, 1), {
    index: 0,
    note: "local rank 1 shares the one WebGPU adapter",
  });
  assert.deepEqual(pickAdapter(1, 2), { index: 1, note: null });
  assert.deepEqual(pickAdapter(3, 2), {
    index: 1,
    note: "local rank 3 shares adapter 1 (2 adapters)",
  });
  assert.throws(() => pickAdapter(0, 0), UsageError);
});

Deno.test("the adapter record says whether it is a software fallback", () => {
  const info = { vendor: "65541", architecture: "", description: "llvmpipe (LLVM 15)" };
  assert.equal(adapterRecord({ ...info, isFallbackAdapter: true }).fallback, true);
  assert.equal(adapterRecord(info, true).fallback, true);
  assert.equal(adapterRecord(info).fallback, false);
  assert.match(describeAdapter(adapterRecord(info, true)), /llvmpipe .*software fallback/);
});

Deno.test({
  name: "webgpu lacks exactly the listed cpu kernels, and no workload trains or evaluates with one",
  ignore: noWebGpu,
  async fn() {
    const info = await initBackend("webgpu");
    assert.ok(info.adapter != null);
    await initBackend("cpu");
    const missing = tf.getKernelsForBackend("cpu").map((k) => k.kernelName)
      .filter((k) => tf.getKernel(k, "webgpu") == null).sort();
    assert.deepEqual(missing, Object.keys(WEBGPU_MISSING_KERNELS).sort());
    for (const workload of WORKLOADS) {
      const data = await workload.loadData(0);
      const trainer = new Trainer(workload.createModel(), data, workload.defaults.optimizer);
      const batch = batchAt(data.train, 0, 8);
      const { kernelNames } = await tf.profile(() => {
        trainer.accumulateGradients([batch]);
        trainer.evaluate(batch);
      });
      trainer.dispose();
      // Names ending in __op are ops that profile records along with their kernels.
      const kernels = kernelNames.filter((k) => !k.endsWith("__op"));
      assert.ok(kernels.includes("MaxPoolGrad") || workload.name !== "mnist-cnn");
      for (const k of kernels) {
        assert.ok(tf.getKernel(k, "webgpu") != null, `${workload.name} uses ${k}, not on webgpu`);
      }
    }
  },
});

Deno.test({
  name: "webgpu's filter gradient matches cpu's at a batch whose loop is past the chunk size",
  ignore: noWebGpu,
  async fn() {
    // mnist-cnn's first convolution at batch 128: 100,352 terms per output, wrong unchunked.
    const x = tf.randomNormal([128, 28, 28, 1], 0, 1, "float32", 1);
    const dy = tf.randomNormal([128, 28, 28, 16], 0, 1, "float32", 2);
    const attrs = { strides: [1, 1], pad: "same", dataFormat: "NHWC", dilations: [1, 1] };
    const run = async (backend: "cpu" | "webgpu") => {
      await initBackend(backend);
      const [xb, dyb] = [tf.tensor(await x.data(), x.shape), tf.tensor(await dy.data(), dy.shape)];
      const out = tf.engine().runKernel("Conv2DBackpropFilter", { x: xb, dy: dyb }, {
        ...attrs,
        filterShape: [3, 3, 1, 16],
      }) as tf.Tensor;
      const values = await out.data() as Float32Array;
      tf.dispose([xb, dyb, out]);
      return values;
    };
    const [cpu, gpu] = [await run("cpu"), await run("webgpu")];
    let diff = 0;
    let norm = 0;
    for (let i = 0; i < cpu.length; i++) {
      diff += (gpu[i] - cpu[i]) ** 2;
      norm += cpu[i] ** 2;
    }
    // float32 sums of 100,352 terms in two orders: about 1e-6 relative (measured 5e-7).
    assert.ok(Math.sqrt(diff / norm) < 1e-5, `relative error ${Math.sqrt(diff / norm)}`);
    await initBackend("cpu");
    tf.dispose([x, dy]);
  },
});

function batchAt(split: Batch, start: number, size: number): Batch {
  const width = split.x.length / split.size;
  return {
    x: split.x.subarray(start * width, (start + size) * width),
    y: split.y.subarray(start, start + size),
    size,
  };
}

/** Train `steps` steps of `workload` on `backend` from seed 1; the final parameters. */
async function train(
  backend: "cpu" | "webgpu",
  workload: typeof WORKLOADS[number],
  steps: number,
  batchSize: number,
): Promise<{ start: Float32Array; end: Float32Array; msPerStep: number }> {
  await initBackend(backend);
  const data = await workload.loadData(0);
  const trainer = new Trainer(workload.createModel(), data, workload.defaults.optimizer, {
    seed: 1,
  });
  const start = trainer.getParams();
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    const batch = batchAt(data.train, (s * batchSize) % (data.train.size - batchSize), batchSize);
    const { grads } = await trainer.accumulateGradientsAsync([batch]);
    trainer.applyGradients(grads);
  }
  const msPerStep = (performance.now() - t0) / steps;
  const end = trainer.getParams();
  trainer.dispose();
  return { start, end, msPerStep };
}

for (const workload of WORKLOADS) {
  const { steps, batchSize } = WEBGPU_EQUIVALENCE_STEPS[workload.name] ??
    { steps: 20, batchSize: workload.defaults.batchSize };
  Deno.test({
    name: `${workload.name}: webgpu's parameters after ${steps} steps match cpu's within the bound`,
    ignore: noWebGpu,
    async fn() {
      const cpu = await train("cpu", workload, steps, batchSize);
      const gpu = await train("webgpu", workload, steps, batchSize);
      let diff = 0;
      let moved = 0;
      let maxAbs = 0;
      for (let i = 0; i < cpu.end.length; i++) {
        const d = gpu.end[i] - cpu.end[i];
        diff += d * d;
        moved += (cpu.end[i] - cpu.start[i]) ** 2;
        maxAbs = Math.max(maxAbs, Math.abs(d));
      }
      const relative = Math.sqrt(diff / moved);
      console.log(
        `${workload.name}: ${steps} steps of ${batchSize}: ‖Δ‖/‖moved‖ ${
          relative.toExponential(2)
        }, ` +
          `max |Δparam| ${maxAbs.toExponential(2)}; ms/step cpu ${cpu.msPerStep.toFixed(0)}, ` +
          `webgpu ${gpu.msPerStep.toFixed(0)}`,
      );
      assert.ok(moved > 0, "training moved the parameters");
      assert.ok(
        relative <= WEBGPU_EQUIVALENCE_BOUND,
        `${relative} > ${WEBGPU_EQUIVALENCE_BOUND}`,
      );
      await initBackend("cpu");
    },
  });
}
