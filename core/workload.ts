/**
 * The workload interface: plain data plus factories. A workload names a model, a dataset
 * and default hyperparameters; bring your own by implementing {@linkcode Workload}.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "./rng.ts";

/** A classification dataset held in flat typed arrays (row-major samples). */
export interface Dataset {
  /** Shape of one sample, e.g. `[784]` or `[28, 28, 1]`. */
  featureShape: number[];
  numClasses: number;
  train: Split;
  test: Split;
}

/** One split of a {@linkcode Dataset}. */
export interface Split {
  /** `size × prod(featureShape)` floats. */
  x: Float32Array;
  /** `size` class labels in `[0, numClasses)`. */
  y: Int32Array;
  size: number;
}

/** One trainable parameter of a model: its name, shape and seeded initialiser. */
export interface ParamDef {
  name: string;
  shape: number[];
  /** Fill a new array of `prod(shape)` initial values. */
  init: (rng: Rng, shape: number[]) => Float32Array;
}

/** A model as parameters plus a pure forward function built from tfjs-core ops. */
export interface ModelDef {
  params: ParamDef[];
  /** Logits `[batch, numClasses]` for inputs `[batch, ...featureShape]`. */
  forward: (params: Record<string, tf.Tensor>, x: tf.Tensor) => tf.Tensor;
  /** FLOPs of one training step (forward + backward) per sample, from the layer shapes. */
  trainFlopsPerSample: number;
}

/** Optimizer choice; applied identically by every strategy. */
export interface OptimizerSpec {
  kind: "sgd" | "momentum" | "adam";
  learningRate: number;
}

/** Default hyperparameters of a workload. */
export interface Hyperparameters {
  /** Global batch size (split across replicas/ranks by the parallel strategies). */
  batchSize: number;
  /** Timed steps per run in the default `bench`. */
  steps: number;
  optimizer: OptimizerSpec;
}

/** A model, a dataset and its defaults: the unit `bench` runs under every strategy. */
export interface Workload {
  name: string;
  /** One line for `--list`. */
  description: string;
  defaults: Hyperparameters;
  /** Load (or build) the dataset; `seed` drives the shuffle and the holdout split. */
  loadData: (seed: number) => Promise<Dataset>;
  /** The model for this dataset. */
  createModel: () => ModelDef;
}
