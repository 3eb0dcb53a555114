/**
 * The fused kernels of `core/nn_ops.ts` on the `native` backend: each one or two passes of
 * JavaScript straight over the wasm heap (the tensors stay where the wasm backend keeps them),
 * where TensorFlow.js's composite ops make a pass and a tensor per elementary operation.
 * Statistics are accumulated in float64; outputs are float32. The exponentials (GELU, the
 * softmaxes) run in WebAssembly SIMD (`_nn_simd.ts`) once the native backend has loaded it.
 *
 * | kernel | does |
 * | --- | --- |
 * | softmax cross-entropy | per row: max, log Σ exp, the label's term; the gradient `(softmax − onehot)/rows` |
 * | LayerNorm | per row: mean, variance, normalise and scale; the backward's three gradients in one pass per row |
 * | GELU | the tanh form and its derivative, elementwise |
 * | embedding | rows copied by index; the gradient scatter-added into a zeroed table |
 * | causal softmax | per query row: scaled, masked above the diagonal, normalised; its gradient |
 * | BatchNorm | channel sums about a shift; `x·a + b` per channel; the backward's two sums; the input gradient |
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { NN_KERNELS } from "../../core/nn_ops.ts";
import { nnSimd } from "./_nn_simd.ts";

/** √(2/π) and the cubic coefficient of GELU's tanh form. */
const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

type Inputs = Record<string, tf.TensorInfo>;

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** The last axis of `x` and how many rows of it there are. */
function rowsOf(x: tf.TensorInfo): { rows: number; width: number } {
  const width = x.shape[x.shape.length - 1] ?? 1;
  return { rows: width === 0 ? 0 : size(x.shape) / width, width };
}

/** Views of tensors on the heap; take them after every allocation (growth detaches views). */
function f32(wasm: BackendWasm, t: tf.TensorInfo): Float32Array {
  return wasm.typedArrayFromHeap(t) as Float32Array;
}

function i32(wasm: BackendWasm, t: tf.TensorInfo): Int32Array {
  return wasm.typedArrayFromHeap(t) as Int32Array;
}

/** A kernel function from a body that takes the wasm backend, the inputs and the attributes. */
function kernel(
  body: (wasm: BackendWasm, inputs: Inputs, attrs: Record<string, unknown>) =>
    | tf.TensorInfo
    | tf.TensorInfo[],
): tf.KernelFunc {
  return ({ inputs, backend, attrs }) =>
    body(backend as BackendWasm, inputs as Inputs, attrs as Record<string, unknown>);
}

function checkLabel(label: number, classes: number): void {
  if (!(label >= 0 && label < classes)) {
    throw new RangeError(
      `Label ${label} is outside [0, ${classes}): cannot take its log-probability`,
    );
  }
}

/** `y[base + j] = exp(scale · x[base + j] − shift)` for `j < n`, in JavaScript; returns Σ. */
function expRow(
  x: Float32Array,
  y: Float32Array,
  base: number,
  n: number,
  scale: number,
  shift: number,
): number {
  let sum = 0;
  for (let j = 0; j < n; j++) {
    const e = Math.exp(scale * x[base + j] - shift);
    y[base + j] = e;
    sum += e;
  }
  return sum;
}

const softmaxCrossEntropy = kernel((wasm, { logits, labels }) => {
  const { rows, width } = rowsOf(logits);
  const out = wasm.makeOutput([], "float32");
  const x = f32(wasm, logits);
  const y = i32(wasm, labels);
  const simd = nnSimd();
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    let max = -Infinity;
    for (let j = 0; j < width; j++) if (x[base + j] > max) max = x[base + j];
    let sum = 0;
    if (simd) sum = simd.expSum(x.byteOffset + 4 * base, width, 1, max);
    else for (let j = 0; j < width; j++) sum += Math.exp(x[base + j] - max);
    checkLabel(y[r], width);
    total += Math.log(sum) + max - x[base + y[r]];
  }
  f32(wasm, out)[0] = rows === 0 ? NaN : total / rows;
  return out;
});

const softmaxCrossEntropyGrad = kernel((wasm, { logits, labels, dy }) => {
  const { rows, width } = rowsOf(logits);
  const out = wasm.makeOutput(logits.shape, "float32");
  const x = f32(wasm, logits);
  const y = i32(wasm, labels);
  const g = f32(wasm, out);
  const scale = f32(wasm, dy)[0] / rows;
  const simd = nnSimd();
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    let max = -Infinity;
    for (let j = 0; j < width; j++) if (x[base + j] > max) max = x[base + j];
    const sum = simd
      ? simd.expShift(x.byteOffset + 4 * base, g.byteOffset + 4 * base, width, 1, max)
      : expRow(x, g, base, width, 1, max);
    const k = scale / sum;
    for (let j = 0; j < width; j++) g[base + j] *= k;
    g[base + y[r]] -= scale;
  }
  return out;
});

/** Mean and 1/√(var + ε) of row `base … base + width` of `x`. */
function rowStats(x: Float32Array, base: number, width: number, epsilon: number): [number, number] {
  let sum = 0;
  for (let j = 0; j < width; j++) sum += x[base + j];
  const mean = sum / width;
  let squares = 0;
  for (let j = 0; j < width; j++) {
    const d = x[base + j] - mean;
    squares += d * d;
  }
  return [mean, 1 / Math.sqrt(squares / width + epsilon)];
}

const layerNorm = kernel((wasm, { x, gamma, beta }, attrs) => {
  const { rows, width } = rowsOf(x);
  const epsilon = attrs.epsilon as number;
  const out = wasm.makeOutput(x.shape, "float32");
  const xs = f32(wasm, x);
  const g = f32(wasm, gamma);
  const b = f32(wasm, beta);
  const y = f32(wasm, out);
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    const [mean, rstd] = rowStats(xs, base, width, epsilon);
    for (let j = 0; j < width; j++) y[base + j] = (xs[base + j] - mean) * rstd * g[j] + b[j];
  }
  return out;
});

const layerNormGrad = kernel((wasm, { dy, x, gamma }, attrs) => {
  const { rows, width } = rowsOf(x);
  const epsilon = attrs.epsilon as number;
  const dxOut = wasm.makeOutput(x.shape, "float32");
  const dgOut = wasm.makeOutput(gamma.shape, "float32");
  const dbOut = wasm.makeOutput(gamma.shape, "float32");
  const xs = f32(wasm, x);
  const gs = f32(wasm, dy);
  const g = f32(wasm, gamma);
  const dx = f32(wasm, dxOut);
  const dgamma = new Float64Array(width);
  const dbeta = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    const [mean, rstd] = rowStats(xs, base, width, epsilon);
    // With x̂ = (x − mean)·rstd and d = dy·gamma: dx = rstd·(d − mean(d) − x̂·mean(d·x̂)).
    let sumD = 0;
    let sumDX = 0;
    for (let j = 0; j < width; j++) {
      const xHat = (xs[base + j] - mean) * rstd;
      const grad = gs[base + j];
      const d = grad * g[j];
      sumD += d;
      sumDX += d * xHat;
      dgamma[j] += grad * xHat;
      dbeta[j] += grad;
    }
    const meanD = sumD / width;
    const meanDX = sumDX / width;
    for (let j = 0; j < width; j++) {
      const xHat = (xs[base + j] - mean) * rstd;
      dx[base + j] = rstd * (gs[base + j] * g[j] - meanD - xHat * meanDX);
    }
  }
  f32(wasm, dgOut).set(dgamma);
  f32(wasm, dbOut).set(dbeta);
  return [dxOut, dgOut, dbOut];
});

const gelu = kernel((wasm, { x }) => {
  const out = wasm.makeOutput(x.shape, "float32");
  const xs = f32(wasm, x);
  const y = f32(wasm, out);
  const simd = nnSimd();
  if (simd) {
    simd.gelu(xs.byteOffset, y.byteOffset, xs.length);
    return out;
  }
  for (let i = 0; i < xs.length; i++) {
    const v = xs[i];
    y[i] = 0.5 * v * (1 + Math.tanh(GELU_C * (v + GELU_A * v * v * v)));
  }
  return out;
});

const geluGrad = kernel((wasm, { dy, x }) => {
  const out = wasm.makeOutput(x.shape, "float32");
  const xs = f32(wasm, x);
  const gs = f32(wasm, dy);
  const dx = f32(wasm, out);
  const simd = nnSimd();
  if (simd) {
    simd.geluGrad(gs.byteOffset, xs.byteOffset, dx.byteOffset, xs.length);
    return out;
  }
  for (let i = 0; i < xs.length; i++) {
    const v = xs[i];
    const t = Math.tanh(GELU_C * (v + GELU_A * v * v * v));
    const du = GELU_C * (1 + 3 * GELU_A * v * v);
    dx[i] = gs[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du);
  }
  return out;
});

function checkId(id: number, vocab: number): void {
  if (!(id >= 0 && id < vocab)) {
    throw new RangeError(`Embedding index ${id} is outside [0, ${vocab})`);
  }
}

const embedding = kernel((wasm, { table, ids }) => {
  const [vocab, width] = table.shape;
  const out = wasm.makeOutput([...ids.shape, width], "float32");
  const t = f32(wasm, table);
  const index = i32(wasm, ids);
  const y = f32(wasm, out);
  for (let i = 0; i < index.length; i++) {
    const id = index[i];
    checkId(id, vocab);
    y.set(t.subarray(id * width, (id + 1) * width), i * width);
  }
  return out;
});

const embeddingGrad = kernel((wasm, { dy, ids }, attrs) => {
  const vocab = attrs.vocab as number;
  const width = dy.shape[dy.shape.length - 1];
  const out = wasm.makeOutput([vocab, width], "float32");
  const gs = f32(wasm, dy);
  const index = i32(wasm, ids);
  const dt = f32(wasm, out);
  dt.fill(0);
  for (let i = 0; i < index.length; i++) {
    const id = index[i];
    checkId(id, vocab);
    const row = id * width;
    const src = i * width;
    for (let j = 0; j < width; j++) dt[row + j] += gs[src + j];
  }
  return out;
});

const causalSoftmax = kernel((wasm, { scores }, attrs) => {
  const scale = attrs.scale as number;
  const { rows, width } = rowsOf(scores);
  const out = wasm.makeOutput(scores.shape, "float32");
  const x = f32(wasm, scores);
  const y = f32(wasm, out);
  const simd = nnSimd();
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    const visible = (r % width) + 1; // query i sees keys 0..i
    let max = -Infinity;
    for (let j = 0; j < visible; j++) if (scale * x[base + j] > max) max = scale * x[base + j];
    const sum = simd
      ? simd.expShift(x.byteOffset + 4 * base, y.byteOffset + 4 * base, visible, scale, max)
      : expRow(x, y, base, visible, scale, max);
    const k = 1 / sum;
    for (let j = 0; j < visible; j++) y[base + j] *= k;
    for (let j = visible; j < width; j++) y[base + j] = 0;
  }
  return out;
});

const causalSoftmaxGrad = kernel((wasm, { dy, y }, attrs) => {
  const scale = attrs.scale as number;
  const { rows, width } = rowsOf(y);
  const out = wasm.makeOutput(y.shape, "float32");
  const ys = f32(wasm, y);
  const gs = f32(wasm, dy);
  const dx = f32(wasm, out);
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    const visible = (r % width) + 1;
    let dot = 0;
    for (let j = 0; j < visible; j++) dot += gs[base + j] * ys[base + j];
    for (let j = 0; j < visible; j++) dx[base + j] = scale * ys[base + j] * (gs[base + j] - dot);
    for (let j = visible; j < width; j++) dx[base + j] = 0;
  }
  return out;
});

const channelMoments = kernel((wasm, { x, shift }) => {
  const { rows, width } = rowsOf(x);
  const out = wasm.makeOutput([2, width], "float32");
  const xs = f32(wasm, x);
  const s = f32(wasm, shift);
  const sum = new Float64Array(width);
  const squares = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    for (let c = 0; c < width; c++) {
      const d = xs[base + c] - s[c];
      sum[c] += d;
      squares[c] += d * d;
    }
  }
  const y = f32(wasm, out);
  y.set(sum);
  y.set(squares, width);
  return out;
});

const batchNormApply = kernel((wasm, { x, mean, invStd, gamma, beta }) => {
  const { rows, width } = rowsOf(x);
  const out = wasm.makeOutput(x.shape, "float32");
  const [m, s, g, b] = [mean, invStd, gamma, beta].map((t) => f32(wasm, t));
  const scale = new Float32Array(width);
  const offset = new Float32Array(width);
  for (let c = 0; c < width; c++) {
    scale[c] = s[c] * g[c];
    offset[c] = b[c] - m[c] * scale[c];
  }
  const xs = f32(wasm, x);
  const y = f32(wasm, out);
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    for (let c = 0; c < width; c++) y[base + c] = xs[base + c] * scale[c] + offset[c];
  }
  return out;
});

const batchNormGradSums = kernel((wasm, { dy, x, mean, invStd }) => {
  const { rows, width } = rowsOf(x);
  const out = wasm.makeOutput([2, width], "float32");
  const [gs, xs, m, s] = [dy, x, mean, invStd].map((t) => f32(wasm, t));
  const sumDy = new Float64Array(width);
  const sumDyX = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    for (let c = 0; c < width; c++) {
      const grad = gs[base + c];
      sumDy[c] += grad;
      sumDyX[c] += grad * (xs[base + c] - m[c]) * s[c];
    }
  }
  const y = f32(wasm, out);
  y.set(sumDy);
  y.set(sumDyX, width);
  return out;
});

const batchNormGradInput = kernel((wasm, { dy, x, mean, invStd, gamma, coefficients }) => {
  const { rows, width } = rowsOf(x);
  const out = wasm.makeOutput(x.shape, "float32");
  const [gs, xs, m, s, g, k] = [dy, x, mean, invStd, gamma, coefficients].map((t) => f32(wasm, t));
  const dx = f32(wasm, out);
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    for (let c = 0; c < width; c++) {
      const xHat = (xs[base + c] - m[c]) * s[c];
      dx[base + c] = g[c] * s[c] * (gs[base + c] - k[c] - xHat * k[width + c]);
    }
  }
  return out;
});

/** The fused kernels `native` adds, by kernel name, with what each does. */
export const NATIVE_NN_KERNELS: readonly {
  name: string;
  description: string;
  fn: tf.KernelFunc;
}[] = [
  {
    name: NN_KERNELS.softmaxCrossEntropy,
    description: "softmax cross-entropy in one pass per row (max, log Σ exp, the label's term)",
    fn: softmaxCrossEntropy,
  },
  {
    name: NN_KERNELS.softmaxCrossEntropyGrad,
    description: "its gradient, (softmax − one-hot) / rows, in one pass per row",
    fn: softmaxCrossEntropyGrad,
  },
  {
    name: NN_KERNELS.layerNorm,
    description: "LayerNorm: mean, variance and the scaled output per row",
    fn: layerNorm,
  },
  {
    name: NN_KERNELS.layerNormGrad,
    description: "LayerNorm's input, scale and shift gradients in one pass per row",
    fn: layerNormGrad,
  },
  { name: NN_KERNELS.gelu, description: "GELU (tanh form), elementwise", fn: gelu },
  { name: NN_KERNELS.geluGrad, description: "GELU's derivative, elementwise", fn: geluGrad },
  { name: NN_KERNELS.embedding, description: "embedding rows copied by index", fn: embedding },
  {
    name: NN_KERNELS.embeddingGrad,
    description: "the embedding gradient scatter-added into a zeroed table",
    fn: embeddingGrad,
  },
  {
    name: NN_KERNELS.causalSoftmax,
    description: "attention's scaled, causally masked softmax per query row",
    fn: causalSoftmax,
  },
  {
    name: NN_KERNELS.causalSoftmaxGrad,
    description: "its gradient per query row",
    fn: causalSoftmaxGrad,
  },
  {
    name: NN_KERNELS.channelMoments,
    description: "BatchNorm: per-channel sums of x − shift and its square (float64)",
    fn: channelMoments,
  },
  {
    name: NN_KERNELS.batchNormApply,
    description: "BatchNorm: x · a + b per channel",
    fn: batchNormApply,
  },
  {
    name: NN_KERNELS.batchNormGradSums,
    description: "BatchNorm's backward sums Σ dy and Σ dy · x̂ per channel",
    fn: batchNormGradSums,
  },
  {
    name: NN_KERNELS.batchNormGradInput,
    description: "BatchNorm's input gradient",
    fn: batchNormGradInput,
  },
];

/**
 * Register {@linkcode NATIVE_NN_KERNELS} for `backendName` (again, where already registered).
 *
 * @param backendName the backend they run on (`native`)
 * @returns their names
 * @example
 * ```ts
 * registerNativeNnKernels("native");
 * ```
 */
export function registerNativeNnKernels(backendName: string): string[] {
  for (const { name, fn } of NATIVE_NN_KERNELS) {
    if (tf.getKernel(name, backendName) != null) tf.unregisterKernel(name, backendName);
    tf.registerKernel({ kernelName: name, backendName, kernelFunc: fn });
  }
  return NATIVE_NN_KERNELS.map((k) => k.name);
}
