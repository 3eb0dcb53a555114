import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backends/backend.ts";
import { loadOpenBlas } from "../backends/kernels/_openblas.ts";
import { Trainer } from "../core/trainer.ts";
import { backendSeam } from "../core/backend_seam.ts";
import { dense, denseFlops, denseParams } from "../core/layers.ts";
import { createRng } from "../core/rng.ts";
import type { ModelDef, OptimizerSpec } from "../core/workload.ts";

const model: ModelDef = {
  params: [...denseParams("h", 5, 7), ...denseParams("out", 7, 3)],
  forward: (p, x) => dense(p, "out", tf.relu(dense(p, "h", x))),
  trainFlopsPerSample: denseFlops(5, 7) + denseFlops(7, 3),
};
const data = { featureShape: [5], numClasses: 3 };
/**
 * The flat optimizer computes each update in float64 and stores float32; tfjs does every
 * intermediate in float32 tensors. After 3 Adam steps at lr 0.05 they differ by ~1.4e-6
 * (measured), 3e-5 of the step size: 1e-5 bounds that with room, far below one step.
 */
const OPTIMIZER_TOLERANCE = 1e-5;

function randomBatch(seed: number, size: number) {
  const rng = createRng(seed);
  return {
    x: Float32Array.from({ length: size * 5 }, () => rng() * 2 - 1),
    y: Int32Array.from({ length: size }, () => Math.floor(rng() * 3)),
    size,
  };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

// native where OpenBLAS loads: its Adam runs in WebAssembly SIMD, in float32.
const BACKENDS = loadOpenBlas().ok ? ["wasm", "cpu", "native"] as const : ["wasm", "cpu"] as const;
for (const backend of BACKENDS) {
  Deno.test(`${backend}: getParams/setParams round-trip through the flat buffer`, async () => {
    await initBackend(backend);
    const t = new Trainer(model, data, { kind: "sgd", learningRate: 0.1 }, { seed: 3 });
    const p = t.getParams();
    const shifted = p.map((v) => v + 0.5);
    t.setParams(shifted);
    assert.deepEqual(t.getParams(), shifted);
    shifted[0] = 99; // the trainer must hold its own copy
    assert.notEqual(t.getParams()[0], 99);
    t.dispose();
  });

  Deno.test(`${backend}: computeGradients equals tf.grads of the same loss`, async () => {
    await initBackend(backend);
    const t = new Trainer(model, data, { kind: "sgd", learningRate: 0.1 }, { seed: 1 });
    const batch = randomBatch(7, 9);
    const { loss, grads } = t.computeGradients(batch);
    const flat = t.getParams();
    const named = t.layout.entries.map((e) =>
      tf.tensor(flat.slice(e.offset, e.offset + e.size), e.shape)
    );
    const x = tf.tensor(batch.x, [9, 5]);
    const y = tf.oneHot(tf.tensor1d(batch.y, "int32"), 3);
    const f = (...ps: tf.Tensor[]) => {
      const p = Object.fromEntries(t.layout.entries.map((e, i) => [e.name, ps[i]]));
      const context = { training: true, buffers: {} };
      return tf.losses.softmaxCrossEntropy(y, model.forward(p, x, context)) as tf.Scalar;
    };
    const { value, grads: expected } = tf.valueAndGrads(f)(named);
    assert.ok(Math.abs(value.dataSync()[0] - loss) < 1e-5);
    t.layout.entries.forEach((e, i) => {
      const diff = maxAbsDiff(grads.subarray(e.offset, e.offset + e.size), expected[i].dataSync());
      assert.ok(diff < 1e-5, `${e.name}: max diff ${diff}`);
    });
    t.dispose();
  });

  for (const kind of ["sgd", "momentum", "adam"] as const) {
    Deno.test(`${backend}: applying a flat gradient equals optimizer.applyGradients (${kind})`, async () => {
      await initBackend(backend);
      const spec: OptimizerSpec = { kind, learningRate: 0.05 };
      const t = new Trainer(model, data, spec, { seed: 2 });
      const p0 = t.getParams();
      // Reference: the same optimizer kind stepping named variables directly.
      const vars = t.layout.entries.map((e) =>
        tf.variable(tf.tensor(p0.slice(e.offset, e.offset + e.size), e.shape))
      );
      const opt: tf.Optimizer = kind === "sgd"
        ? tf.train.sgd(0.05)
        : kind === "momentum"
        ? tf.train.momentum(0.05, 0.9)
        : tf.train.adam(0.05);
      for (let step = 0; step < 3; step++) {
        const { grads } = t.computeGradients(randomBatch(step, 8));
        t.applyGradients(grads);
        const named: tf.NamedTensorMap = {};
        t.layout.entries.forEach((e, i) => {
          named[vars[i].name] = tf.tensor(grads.slice(e.offset, e.offset + e.size), e.shape);
        });
        opt.applyGradients(named);
      }
      const after = t.getParams();
      t.layout.entries.forEach((e, i) => {
        const diff = maxAbsDiff(after.subarray(e.offset, e.offset + e.size), vars[i].dataSync());
        assert.ok(diff < OPTIMIZER_TOLERANCE, `${e.name}: max diff ${diff}`);
      });
      assert.ok(maxAbsDiff(after, p0) > 1e-3, "parameters moved");
      t.dispose();
      opt.dispose();
      vars.forEach((v) => v.dispose());
    });
  }
}

Deno.test("applyGradients rejects a buffer of the wrong length", async () => {
  await initBackend("cpu");
  const t = new Trainer(model, data, { kind: "sgd", learningRate: 0.1 });
  assert.throws(() => t.applyGradients(new Float32Array(3)), /expected \d+ floats, got 3/);
  t.dispose();
});

Deno.test("the same seed gives bit-identical initial parameters on wasm and cpu", async () => {
  await initBackend("wasm");
  const a = new Trainer(model, data, { kind: "sgd", learningRate: 0.1 }, { seed: 11 });
  const pa = a.getParams();
  a.dispose();
  await initBackend("cpu");
  const b = new Trainer(model, data, { kind: "sgd", learningRate: 0.1 }, { seed: 11 });
  assert.deepEqual(b.getParams(), pa);
  b.dispose();
});

for (const backend of BACKENDS) {
  Deno.test(`${backend}: the core reaches the backend through its seam`, async () => {
    await initBackend(backend);
    const seam = backendSeam();
    const onHeap = backend !== "cpu";
    assert.equal(seam.readsSync, true);
    // Tensors in the wasm heap are read as views of it, not copies; the heap counts as memory.
    const t = tf.tensor([1, 2, 3]);
    const read = seam.read(t);
    assert.deepEqual([...read], [1, 2, 3]);
    assert.equal(seam.heapBytes() > 0, onHeap);
    assert.equal(read.buffer.byteLength === seam.heapBytes(), onHeap, "a view of the whole heap");
    // Only native writes parameters where they lie, and has its own Adam.
    const written = seam.writeInPlace(t, new Float32Array([4, 5, 6]));
    assert.equal(written, backend === "native");
    if (written) assert.deepEqual([...t.dataSync()], [4, 5, 6]);
    assert.equal(
      seam.createAdam(4, { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 }) != null,
      backend === "native",
    );
    t.dispose();
  });
}
