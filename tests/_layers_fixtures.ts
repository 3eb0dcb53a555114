/**
 * Layers models the tests bring: exports of a user's module, as `MODULE#export` names them.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Dataset } from "../core/workload.ts";
import { splitDataset } from "../workloads/split_dataset.ts";

/** A layer whose forward calls a kernel no backend registers. */
class NoKernel extends tf.layers.Layer {
  static className = "NoKernel";
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.engine().runKernel("ParatrainNoSuchKernel", { x }) as tf.Tensor;
  }
}

/** A model with a layer that cannot run on any backend. */
export function noKernelModel(): tf.LayersModel {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [4], units: 3 }),
      new NoKernel({ name: "mystery" }),
      tf.layers.dense({ units: 2, activation: "softmax" }),
    ],
  });
  model.compile({ loss: "categoricalCrossentropy", optimizer: "adam" });
  return model;
}

/** A model with a Conv3D, which the FLOP count has no rule for. */
export function conv3dModel(): tf.LayersModel {
  const model = tf.sequential({
    layers: [
      tf.layers.conv3d({ inputShape: [4, 4, 4, 1], filters: 2, kernelSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 3, activation: "softmax" }),
    ],
  });
  model.compile({ loss: "categoricalCrossentropy", optimizer: "adam" });
  return model;
}

/** An MLP with dropout and no compile configuration (so it needs --loss). */
export function uncompiledDropout(): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [6], units: 8, activation: "relu" }),
      tf.layers.dropout({ rate: 0.5 }),
      tf.layers.dense({ units: 3 }),
    ],
  });
}

/** A model of two inputs, which paratrain does not train. */
export function twoInputs(): tf.LayersModel {
  const a = tf.input({ shape: [3] });
  const b = tf.input({ shape: [3] });
  const out = tf.layers.dense({ units: 2, activation: "softmax" }).apply(
    tf.layers.concatenate().apply([a, b]),
  ) as tf.SymbolicTensor;
  const model = tf.model({ inputs: [a, b], outputs: out });
  model.compile({ loss: "categoricalCrossentropy", optimizer: "adam" });
  return model;
}

/** A model whose input length is left open. */
export function openLength(): tf.LayersModel {
  const model = tf.sequential({
    layers: [
      tf.layers.simpleRNN({ inputShape: [null, 3], units: 4 }),
      tf.layers.dense({ units: 2 }),
    ],
  });
  model.compile({ loss: "meanSquaredError", optimizer: "sgd" });
  return model;
}

/** A model compiled with a loss paratrain does not compute. */
export function hingeModel(): tf.LayersModel {
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [4], units: 1, activation: "tanh" })],
  });
  model.compile({ loss: "hinge", optimizer: "sgd" });
  return model;
}

/** Not a model at all. */
export function notAModel(): number {
  return 42;
}

/** Six features, three classes: a dataset from the user's module (`--data MODULE#export`). */
export function sixFeatures(seed: number): Dataset {
  const n = 300;
  const x = new Float32Array(n * 6);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 3;
    for (let f = 0; f < 6; f++) x[i * 6 + f] = (f % 3 === y[i] ? 1 : 0) + 0.01 * ((i * 7 + f) % 5);
  }
  return splitDataset(x, y, { featureShape: [6], numClasses: 3 }, seed);
}
