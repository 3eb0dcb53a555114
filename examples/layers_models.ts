/**
 * Bring your own TensorFlow.js model: Keras-style `tf.sequential()` builders paratrain runs
 * as workloads under single, DP and DDP. Each export is a function returning a compiled
 * `tf.LayersModel`; paratrain re-draws its initial weights from the run's seed (every process
 * must start from the same ones), feeds it synthetic data of its input shape unless `--data`
 * says otherwise, and takes the loss from `compile`. Run one with:
 *
 *     deno task bench --workloads ./examples/layers_models.ts#buildMlp --quick
 *     deno task train --workload ./examples/layers_models.ts#buildCnn --data mnist --strategy ddp
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** An MLP for 28×28 digits: 784-64-32-10, ReLU, softmax. */
export function buildMlp(): tf.LayersModel {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [784], units: 64, activation: "relu" }),
      tf.layers.dense({ units: 32, activation: "relu" }),
      tf.layers.dense({ units: 10, activation: "softmax" }),
    ],
  });
  model.compile({ loss: "categoricalCrossentropy", optimizer: tf.train.adam(1e-3) });
  return model;
}

/** A small CNN for 28×28×1 digits: two conv3×3 + max-pool blocks, a dense softmax head. */
export function buildCnn(): tf.LayersModel {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 16, kernelSize: 3, activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, activation: "softmax" }),
    ],
  });
  model.compile({ loss: "sparseCategoricalCrossentropy", optimizer: tf.train.adam(1e-3) });
  return model;
}

/**
 * The CNN with BatchNormalization after each convolution: its moving statistics are buffers,
 * and under DP and DDP each replica normalises with its own batch's statistics.
 */
export function buildBatchNormCnn(): tf.LayersModel {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, useBias: false }),
      tf.layers.batchNormalization(),
      tf.layers.activation({ activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 16, kernelSize: 3, useBias: false }),
      tf.layers.batchNormalization(),
      tf.layers.activation({ activation: "relu" }),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 10, activation: "softmax" }),
    ],
  });
  model.compile({ loss: "categoricalCrossentropy", optimizer: tf.train.adam(1e-3) });
  return model;
}
