/**
 * A TensorFlow.js Layers model (`tf.sequential()`, `tf.model()`, a saved `model.json`) as a
 * workload: its trainable weights become the flat parameters (so DP, DDP, the optimizers,
 * buckets, checkpoints and the equivalence check work unchanged), its non-trainable weights
 * (BatchNorm's moving statistics) buffers, broadcast from rank 0 / the main replica every
 * step as PyTorch's `broadcast_buffers=True`. The forward runs the model itself, in training
 * mode, inside the trainer's gradient tape:
 *
 * ```
 * forward(params, x, context)
 *   buffers  → each non-trainable weight's variable   (assign: the replica's own state)
 *   params   → each trainable weight, read lazily     (LayerVariable.val → the trainer's tensor,
 *                                                      so the tape reaches the trainer's variables)
 *   y = model.apply(x, { training })                 (tfjs-layers' own layers and ops)
 *   restore every weight; training: buffers ← the variables BatchNorm updated
 * ```
 *
 * The loss comes from the model's compile configuration (or `--loss`), read as probabilities
 * where the last layer applies softmax or sigmoid, as logits where it applies nothing. FLOPs
 * are counted from the layers (`layers_flops.ts`). Random layers (Dropout and its kin, an
 * RNN's dropout) run as identity: a mask drawn per replica would make DP and DDP differ from
 * single by design, so they are off, and the report says so.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { quote, UsageError } from "../core/errors.ts";
import { createRng } from "../core/rng.ts";
import {
  describeLoss,
  LOSS_NAMES,
  lossByName,
  lossClasses,
  type LossName,
  type ModelLoss,
  type OutputKind,
} from "../core/losses.ts";
import type {
  BufferDef,
  ForwardContext,
  Hyperparameters,
  ModelDef,
  OptimizerSpec,
  ParamDef,
  Workload,
} from "../core/workload.ts";
import { dataForModel, type ModelShape } from "./_layers_data.ts";

export { DATA_SOURCES } from "./_layers_data.ts";
import { forgetBiasInit, type InitializerLike, seededInitializer } from "./_layers_init.ts";
import { type CountedLayer, countLayersFlops } from "./layers_flops.ts";

/** Global batch of a Layers model by default (Keras's `fit` default is 32; twice that here). */
export const LAYERS_BATCH = 64;
/** Timed steps of a Layers model by default (past the 20 the equivalence check needs). */
export const LAYERS_STEPS = 30;
/** The optimizer where the model names none paratrain runs (tfjs's `adam` default rate). */
export const LAYERS_OPTIMIZER: OptimizerSpec = { kind: "adam", learningRate: 1e-3 };

/** Layer classes that draw random numbers in training; they run as identity here. */
const RANDOM_LAYERS = [
  "Dropout",
  "SpatialDropout1D",
  "GaussianNoise",
  "GaussianDropout",
  "AlphaDropout",
];

/** A tfjs LayerVariable, as it is read and swapped here. */
interface WeightVariable {
  name: string;
  originalName: string;
  shape: number[];
  trainable: boolean;
  constraint: unknown;
  val: tf.Variable;
}

/** A tfjs layer, structurally. */
interface LayerLike extends CountedLayer {
  trainableWeights: WeightVariable[];
  nonTrainableWeights: WeightVariable[];
  call(inputs: unknown, kwargs: Record<string, unknown>): unknown;
  layers?: LayerLike[];
  outputLayers?: LayerLike[];
  cell?: Record<string, unknown>;
  [key: string]: unknown;
}

/** A tfjs LayersModel, structurally (so that a model of another tfjs copy is taken too). */
export interface LayersModelLike extends LayerLike {
  inputs: { shape: (number | null)[] }[];
  outputs: { shape: (number | null)[] }[];
  layers: LayerLike[];
  apply(x: tf.Tensor, kwargs: { training: boolean }): unknown;
  loss?: unknown;
  optimizer?: { getClassName(): string; getConfig(): Record<string, unknown> };
}

/**
 * Whether `value` looks like a `tf.LayersModel`.
 *
 * @param value anything
 * @returns true for a Layers model (Sequential or functional)
 * @example
 * ```ts
 * isLayersModel({}); // false
 * ```
 */
export function isLayersModel(value: unknown): value is LayersModelLike {
  const m = value as Partial<LayersModelLike> | null;
  return !!m && typeof m.apply === "function" && typeof m.getClassName === "function" &&
    Array.isArray(m.layers) && Array.isArray(m.inputs) && Array.isArray(m.outputs);
}

/** Options for {@linkcode layersWorkload}. */
export interface LayersWorkloadOptions {
  /** The reference its runs record (`model:/…/model.json`, `file:///…/mod.ts#build`). */
  name: string;
  /** Where it came from, in words. */
  source: string;
  /**
   * Its initial parameters: the saved weights, by each weight's saved name; absent: drawn
   * from the run's seed by each weight's initializer (`_layers_init.ts`).
   */
  savedWeights?: Map<string, Float32Array>;
  /** `--data`: `synthetic` (default), `mnist`, `iris` or `module-url#export`. */
  data?: string;
  /** `--loss`: overrides the compile configuration's. */
  loss?: string;
}

/** One weight of the model, as a parameter or a buffer. */
interface Weight {
  name: string;
  variable: WeightVariable;
  layer: LayerLike;
  init: ParamDef["init"];
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** The model's leaf layers with their positions (`2`, `3.0` inside a nested model). */
function leafLayers(model: LayerLike, prefix = ""): { path: string; layer: LayerLike }[] {
  return (model.layers ?? []).flatMap((layer, i) =>
    layer.layers ? leafLayers(layer, `${prefix}${i}.`) : [{ path: `${prefix}${i}`, layer }]
  );
}

/** The layer a weight kind's initializer sits on: the layer, or its RNN cell. */
function initializerOf(layer: LayerLike, kind: string): InitializerLike | undefined {
  // kernel → kernelInitializer, recurrent_kernel → recurrentInitializer,
  // moving_mean → movingMeanInitializer, depthwise_kernel → depthwiseInitializer.
  const key = `${
    kind.replace(/(.)_kernel$/, "$1").replace(/_(\w)/g, (_, c: string) => c.toUpperCase())
  }Initializer`;
  const found = (layer[key] ?? layer.cell?.[key]) as InitializerLike | undefined;
  return found && typeof found.getClassName === "function" ? found : undefined;
}

/** A string hash (FNV-1a), to seed a buffer's initialiser by its name. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Every weight, named by its layer's position and class (stable in every process). */
function collectWeights(model: LayersModelLike, options: LayersWorkloadOptions) {
  const params: Weight[] = [];
  const buffers: Weight[] = [];
  for (const { path, layer } of leafLayers(model)) {
    const seen = new Map<string, number>();
    const all = [...layer.trainableWeights, ...layer.nonTrainableWeights];
    for (const variable of all) {
      const kind = variable.originalName.slice(variable.originalName.lastIndexOf("/") + 1);
      const n = seen.get(kind) ?? 0;
      seen.set(kind, n + 1);
      const name = `${path}.${layer.getClassName()}/${kind}${n ? `:${n}` : ""}`;
      const init = initialValues(layer, variable, kind, options);
      (variable.trainable ? params : buffers).push({ name, variable, layer, init });
    }
  }
  const covered = new Set([...params, ...buffers].map((w) => w.variable));
  const missing = [...model.trainableWeights, ...model.nonTrainableWeights].find((v) =>
    !covered.has(v)
  );
  if (missing) {
    throw new UsageError(
      `Cannot train ${options.name}: weight ${missing.originalName} belongs to no layer paratrain can reach; flatten the model's wrappers into plain layers`,
    );
  }
  return { params, buffers };
}

/** A weight's initial values: saved, or drawn by its initializer from the run's seed. */
function initialValues(
  layer: LayerLike,
  variable: WeightVariable,
  kind: string,
  options: LayersWorkloadOptions,
): ParamDef["init"] {
  if (options.savedWeights) {
    const saved = options.savedWeights.get(variable.originalName);
    if (!saved) {
      throw new UsageError(
        `Cannot train ${options.name}: model.json's weightsManifest has no weight ${variable.originalName}; save the model again with model.save`,
      );
    }
    return () => saved.slice();
  }
  const initializer = initializerOf(layer, kind);
  const what = `${variable.originalName} (${layer.getClassName()})`;
  if (!initializer) {
    throw new UsageError(
      `Cannot initialise ${what} from the run's seed: no initializer found for it; save the model and run it as model:PATH/model.json (its saved weights are the start)`,
    );
  }
  const init = seededInitializer(initializer, what);
  if (kind === "bias" && layer.cell?.unitForgetBias) {
    return forgetBiasInit(init, layer.cell.units as number);
  }
  return init;
}

/** The activation the model's output passes through last. */
function lastActivation(model: LayerLike): string {
  let layer: LayerLike = model;
  while (layer.layers) layer = layer.outputLayers?.[0] ?? layer.layers[layer.layers.length - 1];
  if (layer.getClassName() === "Softmax") return "softmax";
  const activation = layer.getConfig().activation;
  return typeof activation === "string" ? activation : "linear";
}

/** The compile configuration's loss (one output), or undefined. */
function compiledLoss(model: LayersModelLike): string | undefined {
  const loss = Array.isArray(model.loss) && model.loss.length === 1 ? model.loss[0] : model.loss;
  if (loss === undefined || loss === null) return undefined;
  if (typeof loss === "string") return loss;
  return typeof loss === "function" && loss.name ? loss.name : "a custom loss function";
}

/** The loss the trainer computes, from `--loss` or the compile configuration. */
function modelLoss(model: LayersModelLike, options: LayersWorkloadOptions, units: number) {
  const given = options.loss ?? compiledLoss(model);
  const choices = `--loss ${LOSS_NAMES.join("|")}`;
  if (given === undefined) {
    throw new UsageError(
      `Cannot train ${options.name}: the model has no loss (it was not compiled, or saved without includeOptimizer); give ${choices}`,
    );
  }
  const name: LossName | undefined = lossByName(given);
  if (!name) {
    throw new UsageError(
      `Cannot train ${options.name}: paratrain does not compute the loss ${
        quote(given)
      }; give ${choices}`,
    );
  }
  const activation = lastActivation(model);
  const refuse = (needs: string) =>
    new UsageError(
      `Cannot train ${options.name} with ${name}: its last layer applies ${activation}, and ${needs}; give another --loss or change the last activation`,
    );
  let output: OutputKind = "values";
  if (name === "binary-crossentropy") {
    if (activation !== "sigmoid" && activation !== "linear") {
      throw refuse("it needs sigmoid probabilities or logits (no activation)");
    }
    output = activation === "sigmoid" ? "probabilities" : "logits";
  } else if (name !== "mean-squared-error") {
    if (units < 2) throw refuse(`a categorical cross-entropy needs 2 outputs or more, not 1`);
    if (activation !== "softmax" && activation !== "linear") {
      throw refuse("it needs softmax probabilities or logits (no activation)");
    }
    output = activation === "softmax" ? "probabilities" : "logits";
  }
  return { name, output, units } satisfies ModelLoss;
}

/** The optimizer the model was compiled with, where paratrain runs it; else the default. */
function modelOptimizer(model: LayersModelLike): { spec: OptimizerSpec; note?: string } {
  const optimizer = model.optimizer;
  if (!optimizer) return { spec: LAYERS_OPTIMIZER };
  const name = optimizer.getClassName();
  const learningRate = optimizer.getConfig().learningRate as number | undefined;
  const kinds: Record<string, OptimizerSpec["kind"]> = {
    Adam: "adam",
    SGD: "sgd",
    Momentum: "momentum",
  };
  const kind = kinds[name];
  if (kind && typeof learningRate === "number") return { spec: { kind, learningRate } };
  return {
    spec: LAYERS_OPTIMIZER,
    note:
      `the model was compiled with ${name}, which paratrain's flat optimizers do not run: adam at ${LAYERS_OPTIMIZER.learningRate} instead`,
  };
}

/** What data must look like for this model. */
function modelShape(model: LayersModelLike, loss: ModelLoss, name: string): ModelShape {
  const [input, output] = [model.inputs[0].shape.slice(1), model.outputs[0].shape.slice(1)];
  for (const [what, shape] of [["input", input], ["output", output]] as const) {
    if (shape.some((d) => d === null)) {
      throw new UsageError(
        `Cannot train ${name}: its ${what} shape [${
          shape.map((d) => d ?? "null").join(", ")
        }] has an undefined dimension; give the first layer a full inputShape`,
      );
    }
  }
  const first = model.layers.find((l) => l.getClassName() !== "InputLayer");
  const vocabulary = first?.getClassName() === "Embedding"
    ? first.getConfig().inputDim as number
    : undefined;
  return {
    input: input as number[],
    positions: size(output.slice(0, -1) as number[]),
    classes: lossClasses(loss),
    ...(vocabulary ? { vocabulary } : {}),
  };
}

/** Random layers (and RNN dropout) run as identity: their `call` always sees training false. */
function switchOffRandomness(model: LayersModelLike): string[] {
  const off = new Map<string, number>();
  for (const { layer } of leafLayers(model)) {
    const config = layer.getConfig();
    const random = RANDOM_LAYERS.includes(layer.getClassName()) ||
      (config.dropout as number) > 0 || (config.recurrentDropout as number) > 0;
    if (!random) continue;
    const call = layer.call.bind(layer);
    layer.call = (inputs, kwargs) => call(inputs, { ...kwargs, training: false });
    off.set(layer.getClassName(), (off.get(layer.getClassName()) ?? 0) + 1);
  }
  if (off.size === 0) return [];
  const list = [...off].map(([c, n]) => `${c} ×${n}`).join(", ");
  return [
    `randomness off: ${list} ran as identity (a mask drawn per replica would make DP and DDP differ from single by design)`,
  ];
}

/**
 * Every leaf layer's errors name it: a kernel the backend lacks fails inside some layer's
 * `call`, and the message should say which.
 */
function nameLayerErrors(model: LayersModelLike): void {
  for (const { layer } of leafLayers(model)) {
    const call = layer.call.bind(layer);
    layer.call = (inputs, kwargs) => {
      try {
        return call(inputs, kwargs);
      } catch (error) {
        const message = (error as Error).message?.split("\n")[0] ?? String(error);
        throw new Error(`layer ${layer.name} (${layer.getClassName()}): ${message}`);
      }
    };
  }
}

/** What the model's own `fit` would do that this training does not. */
function unsupportedNotes(model: LayersModelLike): string[] {
  const notes: string[] = [];
  const layers = leafLayers(model).map((l) => l.layer);
  const constrained = layers.filter((l) =>
    [...l.trainableWeights].some((w) => w.constraint != null)
  );
  if (constrained.length) {
    notes.push(
      `weight constraints not applied (${constrained.map((l) => l.getClassName()).join(", ")})`,
    );
  }
  const regularized = layers.filter((l) =>
    Object.entries(l.getConfig()).some(([k, v]) => k.endsWith("Regularizer") && v != null)
  );
  if (regularized.length) {
    notes.push(
      `regularization losses not added (${regularized.map((l) => l.getClassName()).join(", ")})`,
    );
  }
  return notes;
}

/** The forward: the model applied with the trainer's parameters and the replica's buffers. */
function layersForward(model: LayersModelLike, params: Weight[], buffers: Weight[]) {
  return (p: Record<string, tf.Tensor>, x: tf.Tensor, context: ForwardContext): tf.Tensor => {
    if (context.crossReplica && buffers.length > 0) {
      throw new Error(
        "tfjs-layers' BatchNormalization computes each replica's own statistics: SyncBatchNorm is not available for Layers models",
      );
    }
    for (const b of buffers) {
      b.variable.val.assign(tf.tensor(context.buffers[b.name].slice(), b.variable.shape));
    }
    const saved = params.map((w) => Object.getOwnPropertyDescriptor(w.variable, "val")!);
    try {
      // Read lazily: the trainer's tensor for a parameter is made when its layer first reads
      // it, so DDP's gradient hooks sit on the tape right before that layer.
      params.forEach((w) =>
        Object.defineProperty(w.variable, "val", { get: () => p[w.name], configurable: true })
      );
      const y = model.apply(x, { training: context.training }) as tf.Tensor;
      if (context.training) {
        for (const b of buffers) context.buffers[b.name].set(b.variable.val.dataSync());
      }
      return y;
    } finally {
      params.forEach((w, i) => Object.defineProperty(w.variable, "val", saved[i]));
    }
  };
}

/**
 * A Layers model as a workload.
 *
 * @param model the model (`tf.LayersModel`, built: every layer knows its input shape)
 * @param options its name, source, initial weights, `--data` and `--loss`
 * @returns the workload; every run builds its ModelDef from the same model (one forward at a
 *   time: JavaScript runs one)
 * @throws UsageError naming the problem and the fix: several inputs or outputs, an undefined
 *   dimension, no loss or an unknown one, a weight that cannot be initialised from the seed
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * const model = tf.sequential({
 *   layers: [tf.layers.dense({ inputShape: [4], units: 3, activation: "softmax" })],
 * });
 * model.compile({ loss: "categoricalCrossentropy", optimizer: "adam" });
 * const workload = layersWorkload(model as never, { name: "mine", source: "a test" });
 * ```
 */
export function layersWorkload(
  model: LayersModelLike,
  options: LayersWorkloadOptions,
): Workload {
  const { name } = options;
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new UsageError(
      `Cannot train ${name}: it has ${model.inputs.length} inputs and ${model.outputs.length} outputs; paratrain trains models of one input and one output`,
    );
  }
  const outputShape = model.outputs[0].shape;
  const units = outputShape[outputShape.length - 1] ?? 0;
  const loss = modelLoss(model, options, units);
  const shape = modelShape(model, loss, name);
  const { params, buffers } = collectWeights(model, options);
  const optimizer = modelOptimizer(model);
  const flops = countLayersFlops(model);
  const randomness = switchOffRandomness(model);
  nameLayerErrors(model);
  const notes = [
    ...randomness,
    ...unsupportedNotes(model),
    ...(optimizer.note ? [optimizer.note] : []),
    ...(buffers.length
      ? [
        `non-trainable weights (${buffers.length}: BatchNorm's moving statistics, frozen layers) are buffers: each replica normalises with its own batch statistics and updates them as tfjs-layers does; DP's main replica and DDP's rank 0 broadcast theirs before every step (PyTorch's broadcast_buffers=True)`,
      ]
      : []),
  ];
  const defaults: Hyperparameters = {
    batchSize: LAYERS_BATCH,
    steps: LAYERS_STEPS,
    optimizer: optimizer.spec,
  };
  const paramCount = params.reduce((s, w) => s + size(w.variable.shape), 0);
  return {
    name,
    description: `TensorFlow.js Layers model (${options.source}), ${paramCount} parameters, ${
      describeLoss(loss)
    }`,
    defaults,
    loadData: (seed) => dataForModel(options.data ?? "synthetic", shape, seed, name),
    createModel: (): ModelDef => ({
      params: params.map((w) => ({ name: w.name, shape: [...w.variable.shape], init: w.init })),
      buffers: buffers.map((w): BufferDef => ({
        name: w.name,
        shape: [...w.variable.shape],
        // A buffer's initialiser takes no generator: frozen random weights draw from their name.
        init: (s) => w.init(createRng(hash(w.name)), s),
      })),
      forward: layersForward(model, params, buffers),
      trainFlopsPerSample: flops.trainPerSample,
      loss,
      report: {
        source: options.source,
        loss: describeLoss(loss),
        flopsNotCounted: flops.notCounted,
        notes,
      },
    }),
  };
}
