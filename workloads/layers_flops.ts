/**
 * FLOPs of a TensorFlow.js Layers model, counted from its layers' configurations and the
 * shapes of each call, as fvcore's `FlopCountAnalysis` counts a PyTorch model: a table of
 * handlers keyed by layer class, and every layer it has no handler for named with how many
 * times it is called — never guessed.
 *
 * The rules, per sample, forward:
 * - a multiply-accumulate is 2 FLOPs (Dense, convolutions, the recurrent cells' products);
 * - a bias add is 1 FLOP per output element, an activation {@linkcode ACTIVATION_FLOPS} per
 *   element (a transcendental — exp, log, tanh — counts as 1);
 * - BatchNormalization and LayerNormalization {@linkcode NORMALIZATION_FLOPS} per element;
 * - pooling: one comparison or addition per window element of each output (global: per input);
 * - Embedding, reshaping, padding, concatenation and dropout (which runs as identity here) 0;
 * - merges (Add, Multiply, Maximum, Minimum) one per input after the first, per output
 *   element; Average one per input.
 *
 * A training step is {@linkcode TRAIN_PER_FORWARD} × the forward: the backward of a product is
 * two products of its size (the input's gradient and the weights'), as `core/layers.ts`
 * counts 6 FLOPs per multiply-accumulate; the same factor is applied to every layer.
 *
 * @module
 */
import type { UncountedLayers } from "../core/workload.ts";

/** A training step's FLOPs per forward FLOP (forward + a backward of twice the forward). */
export const TRAIN_PER_FORWARD = 3;

/**
 * FLOPs per element of each activation, forward, from its operations: relu max · relu6 max,
 * min · elu compare, exp, subtract · selu elu + 2 products · sigmoid exp, add, divide ·
 * hardSigmoid multiply, add, clip · tanh 1 · softplus exp, add, log · softsign abs, add,
 * divide · swish sigmoid + product · mish softplus, tanh, product · gelu (tanh form) cube,
 * 2 products, add, tanh, add, 2 products · softmax max, subtract, exp, sum, divide.
 */
export const ACTIVATION_FLOPS: Record<string, number> = {
  linear: 0,
  relu: 1,
  relu6: 2,
  elu: 3,
  selu: 5,
  sigmoid: 3,
  hardSigmoid: 3,
  tanh: 1,
  softplus: 3,
  softsign: 3,
  swish: 4,
  mish: 5,
  gelu: 8,
  gelu_new: 8,
  softmax: 5,
};

/**
 * FLOPs per element of a batch or layer normalisation in training: the mean (1), the
 * variance about it (subtract, square, add: 3), normalising (subtract, multiply: 2), scale and
 * shift (2).
 */
export const NORMALIZATION_FLOPS = 8;

/** A layer as the counter reads it (tfjs-layers' `Layer`, structurally). */
export interface CountedLayer {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  inboundNodes: { inputShapes: unknown; outputShapes: unknown }[];
  /** Present on a nested model. */
  layers?: CountedLayer[];
}

/** What {@linkcode countLayersFlops} found. */
export interface LayersFlops {
  /** FLOPs of one sample's forward pass through the layers it counted. */
  forwardPerSample: number;
  /** FLOPs of one sample's training step: forward × {@linkcode TRAIN_PER_FORWARD}. */
  trainPerSample: number;
  /** Per layer class it counted: calls and forward FLOPs per sample. */
  counted: { layer: string; count: number; forwardPerSample: number }[];
  /** Layer classes it could not count, with how many calls and why (empty: all counted). */
  notCounted: UncountedLayers[];
}

/** One call of a layer: per-sample shapes (the batch axis dropped) of its inputs and outputs. */
interface Call {
  inputs: number[][];
  output: number[];
  config: Record<string, unknown>;
}

/** A layer class's forward FLOPs per sample for one call; throws {@linkcode Uncountable}. */
type Handler = (call: Call) => number;

/** Why a call could not be counted (its message is the reason). */
class Uncountable extends Error {}

const prod = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function activation(name: unknown, elements: number): number {
  const key = typeof name === "string" ? name : "linear";
  const flops = ACTIVATION_FLOPS[key];
  if (flops === undefined) throw new Uncountable(`activation ${key} has no FLOP rule`);
  return flops * elements;
}

function channelsLast(config: Record<string, unknown>): void {
  if (config.dataFormat === "channelsFirst") {
    throw new Uncountable("channelsFirst data is not counted");
  }
}

/** Elements of the output, and its bias and activation. */
function biasAndActivation(call: Call): number {
  const out = prod(call.output);
  return (call.config.useBias === false ? 0 : out) + activation(call.config.activation, out);
}

const list = (v: unknown): number[] => (Array.isArray(v) ? v : [v]) as number[];

/** A convolution's multiply-accumulates: every output position × the kernel × its channels. */
function convolution(call: Call): number {
  channelsLast(call.config);
  const input = call.inputs[0];
  const kernel = prod(list(call.config.kernelSize));
  const filters = call.config.filters as number;
  return 2 * prod(call.output.slice(0, -1)) * kernel * input[input.length - 1] * filters +
    biasAndActivation(call);
}

/** Per-step FLOPs of a recurrent cell of `gates` products, with its elementwise work. */
function recurrent(gates: number, elementwise: (u: number, a: number, r: number) => number) {
  return (call: Call) => {
    const [steps, features] = call.inputs[0];
    const units = call.config.units as number;
    const a = activation(call.config.activation, 1);
    const r = call.config.recurrentActivation === undefined
      ? 0
      : activation(call.config.recurrentActivation, 1);
    const bias = call.config.useBias === false ? 0 : gates * units;
    const products = 2 * gates * units * (features + units);
    return steps * (products + bias + elementwise(units, a, r));
  };
}

const zero: Handler = () => 0;
const elementwise = (flops: number): Handler => (call) => flops * prod(call.output);

/**
 * The handlers: a layer class → its forward FLOPs per sample. A class absent here is not
 * counted, and named.
 */
const HANDLERS: Record<string, Handler> = {
  Dense: (call) => {
    const input = call.inputs[0];
    return 2 * prod(input) * (call.config.units as number) + biasAndActivation(call);
  },
  Conv1D: convolution,
  Conv2D: convolution,
  Conv2DTranspose: (call) => {
    channelsLast(call.config);
    const input = call.inputs[0];
    const kernel = prod(list(call.config.kernelSize));
    return 2 * prod(input) * kernel * (call.config.filters as number) + biasAndActivation(call);
  },
  DepthwiseConv2D: (call) => {
    channelsLast(call.config);
    const kernel = prod(list(call.config.kernelSize));
    // Each output element: one input channel's kernel window.
    return 2 * prod(call.output) * kernel + biasAndActivation(call);
  },
  SeparableConv2D: (call) => {
    channelsLast(call.config);
    const input = call.inputs[0];
    const positions = prod(call.output.slice(0, -1));
    const depth = input[input.length - 1] * ((call.config.depthMultiplier as number) ?? 1);
    const kernel = prod(list(call.config.kernelSize));
    const depthwise = 2 * positions * depth * kernel;
    const pointwise = 2 * positions * depth * (call.config.filters as number);
    return depthwise + pointwise + biasAndActivation(call);
  },
  MaxPooling1D: (call) => prod(call.output) * prod(list(call.config.poolSize)),
  AveragePooling1D: (call) => prod(call.output) * prod(list(call.config.poolSize)),
  MaxPooling2D: (call) => {
    channelsLast(call.config);
    return prod(call.output) * prod(list(call.config.poolSize));
  },
  AveragePooling2D: (call) => {
    channelsLast(call.config);
    return prod(call.output) * prod(list(call.config.poolSize));
  },
  GlobalMaxPooling1D: (call) => prod(call.inputs[0]),
  GlobalAveragePooling1D: (call) => prod(call.inputs[0]),
  GlobalMaxPooling2D: (call) => prod(call.inputs[0]),
  GlobalAveragePooling2D: (call) => prod(call.inputs[0]),
  BatchNormalization: elementwise(NORMALIZATION_FLOPS),
  LayerNormalization: elementwise(NORMALIZATION_FLOPS),
  Embedding: zero,
  Activation: (call) => activation(call.config.activation, prod(call.output)),
  ReLU: (call) => (call.config.maxValue == null ? 1 : 2) * prod(call.output),
  LeakyReLU: elementwise(2),
  PReLU: elementwise(2),
  ELU: elementwise(ACTIVATION_FLOPS.elu),
  ThresholdedReLU: elementwise(2),
  Softmax: elementwise(ACTIVATION_FLOPS.softmax),
  Rescaling: elementwise(2),
  // h = a(x·W + b + h·U): the bias, the sum of the two products, the activation.
  SimpleRNN: recurrent(1, (u, a) => u + u * a),
  // Gates i, f, o by the recurrent activation, the candidate by the activation; the products'
  // sum (4u); c = f·c + i·g (3u); h = o·a(c) (u + u·a).
  LSTM: recurrent(4, (u, a, r) => 4 * u + 3 * u * r + u * a + 3 * u + u + u * a),
  // z, r by the recurrent activation; the sums (3u); r·h (u); the candidate's activation;
  // h = z·h + (1 − z)·ĥ (4u).
  GRU: recurrent(3, (u, a, r) => 3 * u + 2 * u * r + u + u * a + 4 * u),
  Add: (call) => (call.inputs.length - 1) * prod(call.output),
  Multiply: (call) => (call.inputs.length - 1) * prod(call.output),
  Maximum: (call) => (call.inputs.length - 1) * prod(call.output),
  Minimum: (call) => (call.inputs.length - 1) * prod(call.output),
  Average: (call) => call.inputs.length * prod(call.output),
  UpSampling2D: (call) => {
    if (call.config.interpolation === "bilinear") {
      throw new Uncountable("bilinear interpolation is not counted");
    }
    return 0;
  },
  InputLayer: zero,
  Flatten: zero,
  Reshape: zero,
  Permute: zero,
  RepeatVector: zero,
  ZeroPadding2D: zero,
  Cropping2D: zero,
  Concatenate: zero,
  Dropout: zero,
  SpatialDropout1D: zero,
  GaussianNoise: zero,
  GaussianDropout: zero,
  AlphaDropout: zero,
};

/** tfjs keeps one shape, or a list of them; either way a list, the batch axis dropped. */
function shapes(value: unknown): (number | null)[][] {
  const all = (Array.isArray(value) && Array.isArray(value[0]) ? value : [value]) as (
    | number
    | null
  )[][];
  return all.map((s) => s.slice(1));
}

function definite(shape: (number | null)[]): number[] {
  if (shape.some((d) => d === null)) throw new Uncountable("a dimension is undefined (None)");
  return shape as number[];
}

/** Every leaf layer of `model`, nested models opened in place. */
function leaves(model: CountedLayer): CountedLayer[] {
  return (model.layers ?? []).flatMap((l) => (l.layers ? leaves(l) : [l]));
}

/**
 * Count a Layers model's FLOPs from its layers: every call (inbound node) of every layer, by
 * the handler of its class.
 *
 * @param model the model (`tf.LayersModel`)
 * @returns forward and training FLOPs per sample, what was counted and what was not
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 2 })] });
 * countLayersFlops(model as never).forwardPerSample; // 2·4·2 + 2 (bias) = 18
 * ```
 */
export function countLayersFlops(model: CountedLayer): LayersFlops {
  const counted = new Map<string, { count: number; forwardPerSample: number }>();
  const skipped = new Map<string, { count: number; reasons: Set<string> }>();
  for (const layer of leaves(model)) {
    const name = layer.getClassName();
    const config = layer.getConfig();
    for (const node of layer.inboundNodes) {
      try {
        const handler = HANDLERS[name];
        if (!handler) throw new Uncountable("no FLOP rule for this layer class");
        const call = {
          inputs: shapes(node.inputShapes).map(definite),
          output: definite(shapes(node.outputShapes)[0]),
          config,
        };
        const entry = counted.get(name) ?? { count: 0, forwardPerSample: 0 };
        entry.count++;
        entry.forwardPerSample += handler(call);
        counted.set(name, entry);
      } catch (error) {
        if (!(error instanceof Uncountable)) throw error;
        const entry = skipped.get(name) ?? { count: 0, reasons: new Set() };
        entry.count++;
        entry.reasons.add(error.message);
        skipped.set(name, entry);
      }
    }
  }
  const forwardPerSample = [...counted.values()].reduce((s, e) => s + e.forwardPerSample, 0);
  return {
    forwardPerSample,
    trainPerSample: TRAIN_PER_FORWARD * forwardPerSample,
    counted: [...counted].map(([layer, e]) => ({ layer, ...e })),
    notCounted: [...skipped].map(([layer, e]) => ({
      layer,
      count: e.count,
      reason: [...e.reasons].join("; "),
    })),
  };
}
