/**
 * TensorFlow.js Layers models as workloads, piece by piece: the trainer's loss and gradient
 * against tfjs-layers' own, BatchNorm's moving statistics through the buffers, seeded and
 * saved initial weights, the FLOP count, the losses, the data shaped to the model, and the
 * refusals. On native where OpenBLAS loads, else wasm.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backends/backend.ts";
import { loadOpenBlas } from "../backends/kernels/_openblas.ts";
import { UsageError } from "../core/errors.ts";
import { unflatten } from "../core/flat_layout.ts";
import {
  describeLoss,
  lossByName,
  lossValue,
  type ModelLoss,
  predictedClasses,
} from "../core/losses.ts";
import { createRng } from "../core/rng.ts";
import { type Batch, initialParams, Trainer } from "../core/trainer.ts";
import type { Dataset, ModelDef } from "../core/workload.ts";
import { trialStep } from "../strategies/trial_step.ts";
import { dataForModel } from "../workloads/_layers_data.ts";
import { forgetBiasInit, seededInitializer } from "../workloads/_layers_init.ts";
import { countLayersFlops, TRAIN_PER_FORWARD } from "../workloads/layers_flops.ts";
import { type LayersModelLike, layersWorkload } from "../workloads/layers_workload.ts";
import { canonicalReference, resolveWorkload } from "../workloads/resolve_workload.ts";
import { buildBatchNormCnn, buildCnn, buildMlp } from "../examples/layers_models.ts";

const BACKEND = loadOpenBlas().ok ? "native" : "wasm";
const FIXTURES = new URL("./_layers_fixtures.ts", import.meta.url).href;
const MODELS = new URL("../examples/models/", import.meta.url);
const modelRef = (name: string) => `model:${new URL(`${name}/model.json`, MODELS).pathname}`;

const asModel = (m: tf.LayersModel) => m as unknown as LayersModelLike;

/** The first `n` training samples of `data` as a batch. */
function firstBatch(data: Dataset, n: number): Batch {
  const width = data.train.x.length / data.train.size;
  return { x: data.train.x.slice(0, n * width), y: data.train.y.slice(0, n), size: n };
}

/**
 * The tfjs model's weights set to the trainer's parameters and buffers, matched by the names
 * the workload gives them (`position.Class/kind`).
 */
function loadInto(model: tf.LayersModel, def: ModelDef, trainer: Trainer): void {
  const values = {
    ...unflatten(trainer.layout, trainer.getParams()),
    ...unflatten(trainer.bufferLayout, trainer.getBuffers()),
  };
  let written = 0;
  model.layers.forEach((layer, i) =>
    layer.weights.forEach((w) => {
      const kind = w.originalName.slice(w.originalName.lastIndexOf("/") + 1);
      w.write(tf.tensor(values[`${i}.${layer.getClassName()}/${kind}`], w.shape as number[]));
      written++;
    })
  );
  assert.equal(written, def.params.length + (def.buffers?.length ?? 0));
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

Deno.test("a Layers MLP: the trainer's loss and gradient are tfjs-layers' own", async () => {
  await initBackend(BACKEND);
  const model = buildMlp();
  const workload = layersWorkload(asModel(model), { name: "mlp", source: "a test" });
  const data = await workload.loadData(0);
  const def = workload.createModel();
  const trainer = new Trainer(def, data, workload.defaults.optimizer, { seed: 3 });
  const batch = firstBatch(data, 16);
  const { loss, grads } = trainer.computeGradients(batch);
  loadInto(model, def, trainer);
  const x = tf.tensor(batch.x, [16, 784]);
  const target = tf.oneHot(tf.tensor1d(batch.y, "int32"), 10);
  const own = tf.variableGrads(
    () =>
      tf.mean(
        tf.metrics.categoricalCrossentropy(target, model.apply(x, { training: true }) as tf.Tensor),
      ) as tf.Scalar,
    model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val),
  );
  assert.ok(Math.abs(loss - own.value.dataSync()[0]) < 1e-6, `${loss} vs tfjs's own`);
  const theirs = model.trainableWeights.map((w) =>
    own.grads[(w as unknown as { val: tf.Variable }).val.name].dataSync()
  );
  const ours = unflatten(trainer.layout, grads);
  def.params.forEach((p, i) => {
    assert.ok(maxDiff(ours[p.name], theirs[i]) < 1e-6, `${p.name}'s gradient`);
  });
  trainer.dispose();
});

Deno.test("BatchNormalization: its moving statistics are buffers, updated as tfjs-layers does", async () => {
  await initBackend(BACKEND);
  const model = buildBatchNormCnn();
  const workload = layersWorkload(asModel(model), { name: "bn", source: "a test" });
  const def = workload.createModel();
  assert.deepEqual(def.buffers?.map((b) => b.name), [
    "1.BatchNormalization/moving_mean",
    "1.BatchNormalization/moving_variance",
    "5.BatchNormalization/moving_mean",
    "5.BatchNormalization/moving_variance",
  ]);
  const data = await workload.loadData(0);
  const trainer = new Trainer(def, data, workload.defaults.optimizer, { seed: 1 });
  // tfjs-layers' own training forward, from the trainer's parameters and buffers…
  loadInto(model, def, trainer);
  const batch = firstBatch(data, 8);
  tf.tidy(() => {
    model.apply(tf.tensor(batch.x, [8, 28, 28, 1]), { training: true });
  });
  const expected = model.layers.flatMap((layer, i) =>
    layer.nonTrainableWeights.map((w) => {
      const kind = w.originalName.slice(w.originalName.lastIndexOf("/") + 1);
      return [`${i}.BatchNormalization/${kind}`, w.read().dataSync()] as const;
    })
  );
  // …and the trainer's: it loads its own buffers into the layers first, whatever they hold.
  trainer.computeGradients(batch);
  const buffers = unflatten(trainer.bufferLayout, trainer.getBuffers());
  for (const [name, values] of expected) {
    assert.ok(maxDiff(buffers[name], values) < 1e-6, `${name}: ${buffers[name]} vs ${values}`);
  }
  // Moved from their start (zeros, ones) by one step's momentum.
  assert.ok(buffers["1.BatchNormalization/moving_mean"].some((v) => v !== 0));
  trainer.dispose();
});

Deno.test("initial weights: a module's drawn from the run's seed, a saved model's its own", async () => {
  const a = layersWorkload(asModel(buildCnn()), { name: "a", source: "a test" }).createModel();
  const b = layersWorkload(asModel(buildCnn()), { name: "b", source: "a test" }).createModel();
  assert.deepEqual(initialParams(a, 5), initialParams(b, 5), "two builds, one start");
  assert.notDeepEqual(initialParams(a, 5), initialParams(a, 6), "another seed, another start");
  // Conv2D's default is Glorot normal, truncated at 2σ: σ² = 1 / ((9·1 + 9·8) / 2).
  const kernel = initialParams(a, 5).subarray(0, 72);
  const bound = 2 / Math.sqrt((9 + 72) / 2);
  assert.ok(kernel.every((v) => Math.abs(v) <= bound), "within 2σ");
  assert.ok(kernel.some((v) => Math.abs(v) > bound / 4), "not all near zero");

  const saved = (await resolveWorkload(modelRef("mlp"))).createModel();
  const bytes = await Deno.readFile(new URL("mlp/weights.bin", MODELS));
  const file = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const start = initialParams(saved, 123);
  assert.deepEqual(start, file.slice(0, start.length), "the saved weights, whatever the seed");
});

Deno.test("initializers: tfjs-layers' distributions, drawn from paratrain's generator", () => {
  const orthogonal = seededInitializer({
    getClassName: () => "Orthogonal",
    getConfig: () => ({ gain: 1 }),
  }, "w");
  for (const shape of [[6, 4], [4, 6]]) {
    const q = orthogonal(createRng(0), shape);
    const [rows, cols] = shape;
    const [n, dot] = rows >= cols
      ? [cols, (i: number, j: number) => sumOver(rows, (r) => q[r * cols + i] * q[r * cols + j])]
      : [rows, (i: number, j: number) => sumOver(cols, (c) => q[i * cols + c] * q[j * cols + c])];
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) assert.ok(Math.abs(dot(i, j) - (i === j ? 1 : 0)) < 1e-5);
    }
  }
  const uniform = seededInitializer({
    getClassName: () => "VarianceScaling",
    getConfig: () => ({ scale: 2, mode: "fanIn", distribution: "uniform" }),
  }, "w")(createRng(1), [50, 20]);
  const limit = Math.sqrt(3 * 2 / 50);
  assert.ok(uniform.every((v) => Math.abs(v) <= limit) && uniform.some((v) => v > limit * 0.9));
  const bias = forgetBiasInit((_r, s) => new Float32Array(s[0]).fill(0.5), 2)(createRng(0), [8]);
  assert.deepEqual([...bias], [0.5, 0.5, 1, 1, 0.5, 0.5, 0.5, 0.5]);
  assert.throws(
    () => seededInitializer({ getClassName: () => "Mystery", getConfig: () => ({}) }, "w"),
    (e) =>
      e instanceof UsageError &&
      /initializer Mystery is not one paratrain can seed/.test(e.message),
  );
});

function sumOver(n: number, f: (i: number) => number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += f(i);
  return s;
}

Deno.test("FLOPs: counted per layer class from the configurations, forward × 3 to train", () => {
  const cnn = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [8, 8, 2], filters: 4, kernelSize: 3, activation: "relu" }),
      tf.layers.batchNormalization(),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 5, activation: "softmax" }),
    ],
  });
  // conv 2·(6·6)·9·2·4 + bias 144 + relu 144; BatchNorm 8·144; max-pool 36 outputs × 4;
  // dense 2·36·5 + bias 5 + softmax 5·5.
  const forward = 5184 + 144 + 144 + 8 * 144 + 36 * 4 + 360 + 5 + 25;
  const counted = countLayersFlops(asModel(cnn));
  assert.equal(counted.forwardPerSample, forward);
  assert.equal(counted.trainPerSample, TRAIN_PER_FORWARD * forward);
  assert.deepEqual(counted.notCounted, []);

  const rnn = tf.sequential({
    layers: [tf.layers.lstm({ inputShape: [5, 3], units: 4 }), tf.layers.dense({ units: 2 })],
  });
  // Per step: products 2·4·4·(3 + 4) = 224, bias 16, elementwise 4u + 3u·3 (hard sigmoid)
  // + u·1 (tanh) + 3u + u + u·1 = 76; five steps; then dense 2·4·2 + 2.
  assert.equal(countLayersFlops(asModel(rnn)).forwardPerSample, 5 * (224 + 16 + 76) + 18);

  const volume = tf.sequential({
    layers: [
      tf.layers.conv3d({ inputShape: [4, 4, 4, 1], filters: 2, kernelSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 3 }),
    ],
  });
  const partial = countLayersFlops(asModel(volume));
  assert.deepEqual(partial.notCounted, [
    { layer: "Conv3D", count: 1, reason: "no FLOP rule for this layer class" },
  ]);
  assert.equal(partial.forwardPerSample, 2 * 54 * 3 + 3, "the rest still counted");
});

Deno.test("losses: the values tfjs-layers' losses give, on probabilities and on logits", () => {
  const t = tf.tensor2d([[0, 1, 0], [1, 0, 0]]);
  const p = tf.tensor2d([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]]);
  const logits = tf.tensor2d([[0.3, 2, -1], [1, 0, 0.5]]);
  const near = (a: tf.Tensor, b: tf.Tensor) =>
    assert.ok(Math.abs(a.dataSync()[0] - b.dataSync()[0]) < 1e-6);
  const loss = (name: ModelLoss["name"], output: ModelLoss["output"], units = 3): ModelLoss => ({
    name,
    output,
    units,
  });
  near(
    lossValue(loss("categorical-crossentropy", "probabilities"), p, t),
    tf.mean(tf.metrics.categoricalCrossentropy(t, p)),
  );
  near(
    lossValue(loss("sparse-categorical-crossentropy", "logits"), logits, t),
    tf.losses.softmaxCrossEntropy(t, logits),
  );
  near(lossValue(loss("mean-squared-error", "values"), p, t), tf.mean(tf.metrics.MSE(t, p)));
  const tb = tf.tensor2d([[1], [0], [1]]);
  const pb = tf.tensor2d([[0.9], [0.3], [0.4]]);
  near(
    lossValue(loss("binary-crossentropy", "probabilities", 1), pb, tb),
    tf.mean(tf.metrics.binaryCrossentropy(tb, pb)),
  );
  near(
    lossValue(loss("binary-crossentropy", "logits", 1), tf.tensor2d([[2], [-1], [0.5]]), tb),
    tf.losses.sigmoidCrossEntropy(tb, tf.tensor2d([[2], [-1], [0.5]])),
  );
  assert.deepEqual(
    [
      ...predictedClasses(loss("binary-crossentropy", "logits", 1), tf.tensor2d([[-1], [2]]))
        .dataSync(),
    ],
    [0, 1],
  );
  assert.deepEqual(
    [
      ...predictedClasses(loss("mean-squared-error", "values", 1), tf.tensor2d([[0.4], [0.6]]))
        .dataSync(),
    ],
    [0, 1],
  );
  assert.equal(lossByName("categorical_crossentropy"), "categorical-crossentropy");
  assert.equal(lossByName("sparseCategoricalCrossentropy"), "sparse-categorical-crossentropy");
  assert.equal(lossByName("mse"), "mean-squared-error");
  assert.equal(lossByName("hinge"), undefined);
  assert.match(describeLoss(loss("categorical-crossentropy", "logits")), /on logits/);
});

Deno.test("data: synthetic of the model's shape from the seed, a built-in or a module's where it fits", async () => {
  const shape = { input: [28, 28, 1], positions: 1, classes: 10 };
  const a = await dataForModel("synthetic", shape, 7, "m");
  const b = await dataForModel("synthetic", shape, 7, "m");
  assert.deepEqual(a.featureShape, [28, 28, 1]);
  assert.equal(a.train.size + a.test.size, 2048);
  assert.deepEqual(a.train.x.subarray(0, 100), b.train.x.subarray(0, 100), "the seed decides");
  const counts = new Array(10).fill(0);
  a.train.y.forEach((y) => counts[y]++);
  assert.ok(counts.every((c) => c > 0), `every class labelled: ${counts}`);
  assert.match(
    a.source!,
    /^synthetic: 2048 samples of inputs \[28, 28, 1\]: a Gaussian cluster per class .*seed 7/,
  );

  const ids = await dataForModel("synthetic", { ...shape, input: [6], vocabulary: 50 }, 0, "m");
  assert.ok(ids.train.x.every((v) => Number.isInteger(v) && v >= 0 && v < 50), "token ids");

  const mnist = await dataForModel("mnist", shape, 0, "m");
  assert.deepEqual(mnist.featureShape, [28, 28, 1]);
  await assert.rejects(
    dataForModel("iris", shape, 0, "cnn"),
    (e) =>
      e instanceof UsageError &&
      e.message ===
        "Cannot train cnn on --data iris: its samples are [4] (4 values), the model's input is [28, 28, 1] (784); use --data synthetic (the default), which is shaped to the model",
  );
  await assert.rejects(
    dataForModel("mnist", { ...shape, classes: 3 }, 0, "m"),
    /it has 10 classes, the model's output gives 3/,
  );
  const own = await dataForModel(
    `${FIXTURES}#sixFeatures`,
    {
      input: [6],
      positions: 1,
      classes: 3,
    },
    0,
    "m",
  );
  assert.equal(own.source, `${FIXTURES}#sixFeatures`);
});

Deno.test("Dropout runs as identity, and the report says so; --loss where the model has none", async () => {
  await initBackend(BACKEND);
  const ref = `${FIXTURES}#uncompiledDropout`;
  await assert.rejects(
    resolveWorkload(ref),
    (e) => e instanceof UsageError && /the model has no loss .*; give --loss/.test(e.message),
  );
  const workload = await resolveWorkload(ref, {
    loss: "sparse-categorical-crossentropy",
    data: `${FIXTURES}#sixFeatures`,
  });
  const def = workload.createModel();
  assert.deepEqual(def.loss, {
    name: "sparse-categorical-crossentropy",
    output: "logits",
    units: 3,
  });
  assert.match(def.report!.notes[0], /randomness off: Dropout ×1 ran as identity/);
  const data = await workload.loadData(0);
  const trainer = new Trainer(def, data, workload.defaults.optimizer, { seed: 0 });
  const batch = firstBatch(data, 32);
  const first = trainer.computeGradients(batch);
  const second = trainer.computeGradients(batch);
  assert.equal(first.loss, second.loss, "no random mask");
  assert.deepEqual(first.grads, second.grads);
  trainer.dispose();
});

Deno.test("refusals: in one line, naming the problem and the fix", async () => {
  const cases: [string, RegExp][] = [
    [
      "twoInputs",
      /it has 2 inputs and 1 outputs; paratrain trains models of one input and one output/,
    ],
    [
      "openLength",
      /its input shape \[null, 3\] has an undefined dimension; give the first layer a full inputShape/,
    ],
    ["hingeModel", /paratrain does not compute the loss "hinge"; give --loss/],
    [
      "notAModel",
      /has no export "notAModel" that is a Workload or a function returning a tf.LayersModel/,
    ],
  ];
  for (const [name, message] of cases) {
    await assert.rejects(resolveWorkload(`${FIXTURES}#${name}`), (e) => {
      assert.ok(e instanceof UsageError, `${name}: ${e}`);
      assert.match(e.message, message);
      assert.ok(!e.message.includes("\n"), "one line");
      return true;
    });
  }
  await assert.rejects(
    resolveWorkload(modelRef("mlp"), { loss: "binary-crossentropy" }),
    /its last layer applies softmax, and it needs sigmoid probabilities or logits/,
  );
});

Deno.test("a trial step names the layer the backend cannot run, before any run", async () => {
  await assert.rejects(
    trialStep({
      workload: `${FIXTURES}#noKernelModel`,
      backend: BACKEND,
      fastKernels: true,
      seed: 0,
    }),
    (e) =>
      e instanceof UsageError &&
      new RegExp(
        `^Cannot train .*#noKernelModel on ${BACKEND}: layer mystery \\(NoKernel\\): .*ParatrainNoSuchKernel.*; try --backend cpu`,
      ).test(e.message),
  );
  // A model that trains passes; a built-in is not tried.
  await trialStep({ workload: modelRef("cnn"), backend: BACKEND, fastKernels: true, seed: 0 });
  await trialStep({ workload: "mnist-mlp", backend: BACKEND, fastKernels: true, seed: 0 });
});

Deno.test("references: made absolute so that every process resolves the same one", () => {
  const cwd = Deno.cwd();
  assert.equal(canonicalReference("model:m/model.json"), `model:${cwd}/m/model.json`);
  assert.equal(canonicalReference("./x.ts#build"), `file://${cwd}/x.ts#build`);
  assert.equal(canonicalReference("file:///a/x.ts#build"), "file:///a/x.ts#build");
  assert.equal(canonicalReference("mnist-mlp"), "mnist-mlp");
});
