/**
 * The workload interface: plain data plus factories. A workload names a model, a dataset
 * and default hyperparameters; bring your own by implementing {@linkcode Workload}.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { ModelLoss } from "./losses.ts";
import type { Rng } from "./rng.ts";

/**
 * A classification dataset held in flat typed arrays (row-major samples): one class label per
 * sample, or one per position where a sample is a sequence (a language model's next tokens).
 */
export interface Dataset {
  /** Shape of one sample, e.g. `[784]` or `[28, 28, 1]`. */
  featureShape: number[];
  numClasses: number;
  /**
   * Labels per sample (default 1): a language model labels each of its `T` positions with the
   * next token, so its model's logits are `[batch, T, numClasses]`.
   */
  labelsPerSample?: number;
  train: Split;
  test: Split;
  /**
   * Where the samples came from, in one line, where the report should say it (data made up
   * for a model brought from outside: `synthetic: …, seed 0`); absent for the built-ins.
   */
  source?: string;
}

/** One split of a {@linkcode Dataset}. */
export interface Split {
  /** `size × prod(featureShape)` floats. */
  x: Float32Array;
  /** `size × labelsPerSample` class labels in `[0, numClasses)`, sample after sample. */
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

/**
 * A non-trainable tensor of a model's state (BatchNorm's running statistics): no gradient, no
 * optimizer; the forward updates it in training, and the parallel strategies broadcast the
 * main replica's (DP) or rank 0's (DDP) to every other one before each step, as PyTorch's
 * `broadcast_buffers=True` does.
 */
export interface BufferDef {
  name: string;
  shape: number[];
  /** Fill a new array of `prod(shape)` initial values. */
  init: (shape: number[]) => Float32Array;
}

/**
 * A sum over every replica of a data-parallel run, for statistics a forward needs over the
 * whole global batch (SyncBatchNorm's mean and variance, their gradients in the backward).
 * Blocking: it returns once every replica has contributed. Every replica calls it the same
 * number of times, in the same order, with the same lengths.
 */
export interface CrossReplicaSum {
  /** Replace `values` by their element-wise sum over the replicas (identical on every one). */
  sum(values: Float32Array): void;
}

/** What a forward pass knows besides the parameters and the inputs. */
export interface ForwardContext {
  /** True in a training step (batch statistics, buffers updated), false when evaluating. */
  training: boolean;
  /** The model's buffers by name, updated in place by a training forward. */
  buffers: Record<string, Float32Array>;
  /** Where batch statistics are summed across replicas (SyncBatchNorm); absent: each its own. */
  crossReplica?: CrossReplicaSum;
}

/** A model as parameters plus a pure forward function built from tfjs-core ops. */
export interface ModelDef {
  params: ParamDef[];
  /** Non-trainable state the forward reads and (in training) updates; none by default. */
  buffers?: BufferDef[];
  /**
   * Logits `[batch, numClasses]` for inputs `[batch, ...featureShape]` (`[batch, T,
   * numClasses]` where the dataset labels `T` positions per sample).
   */
  forward: (params: Record<string, tf.Tensor>, x: tf.Tensor, context: ForwardContext) => tf.Tensor;
  /** FLOPs of one training step (forward + backward) per sample, from the layer shapes. */
  trainFlopsPerSample: number;
  /**
   * Compute the softmax cross-entropy with one fused kernel where the backend has one
   * (`native`): fewer passes and tape entries (0.2 ms of mnist-mlp's 3.5–4 ms step here), and
   * its gradient rounds differently from the composite ops'. Absent or false: TensorFlow.js's
   * log-softmax, one-hot product and mean. Every built-in workload sets it.
   */
  fusedLoss?: boolean;
  /**
   * The loss, where it is not the softmax cross-entropy on logits every built-in workload
   * trains with (a Layers model's compile configuration, or `--loss`): see `losses.ts`.
   */
  loss?: ModelLoss;
  /** What a report must say about a model brought from outside; absent for the built-ins. */
  report?: ModelReport;
}

/**
 * Layers whose FLOPs could not be counted, by class, as fvcore names the operators it skipped
 * ("encountered N times"): the FLOPs of a step are then unknown, never guessed.
 */
export interface UncountedLayers {
  /** The layer class, e.g. `Conv3D`. */
  layer: string;
  /** How many calls of such layers the model makes. */
  count: number;
  /** Why it was not counted. */
  reason: string;
}

/** What a report says about a model brought from outside (a TensorFlow.js Layers model). */
export interface ModelReport {
  /** Where it came from: a `model.json`, or a module's export. */
  source: string;
  /** The loss, in words (`losses.ts`'s `describeLoss`). */
  loss: string;
  /**
   * Layers the FLOP count could not cover; when any, `trainFlopsPerSample` counts only the
   * others, and runs give no FLOPs per step and no GFLOP/s.
   */
  flopsNotCounted: UncountedLayers[];
  /** How training differs from the model's own `fit` (dropout off, constraints not applied…). */
  notes: string[];
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
  /**
   * Steps after which a parallel run's parameters are compared with single's (default: the
   * bench's 20). Fewer for a model that amplifies float rounding faster than any strategy
   * could differ (BatchNorm), with the reason stated where it is set.
   */
  equivalenceSteps?: number;
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

/**
 * One model at several sizes, each a complete {@linkcode Workload} named `family:size` (as
 * `transformer-lm:small`); the family's bare name means its default size.
 */
export interface WorkloadFamily {
  name: string;
  /** One line for `--list`. */
  description: string;
  /** The sizes, smallest first, by size name; each workload is named `${name}:${size}`. */
  sizes: Record<string, Workload>;
  /** The size the bare family name stands for. */
  defaultSize: string;
}
