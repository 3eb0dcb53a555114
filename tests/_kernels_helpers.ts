/**
 * Shared helpers for the kernel tests: seeded data, running one kernel on a chosen
 * backend with a leak check, comparing results, and the Conv2D gradient.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import fc from "fast-check";
import { type BackendName, initBackend } from "../backends/backend.ts";

/** Largest allowed difference, relative to the largest expected magnitude (at least 1). */
export const RELATIVE_TOLERANCE = 1e-4;

/** A tensor to create on whichever backend a kernel runs on. */
export interface TensorSpec {
  shape: number[];
  values: Float32Array | Int32Array;
}

/** A kernel's output read back to JavaScript. */
export interface KernelResult {
  shape: number[];
  values: Float32Array;
}

/**
 * Seeded float32 values uniform in [-1, 1), or integers in [-levels, levels] when `levels`
 * is given (to provoke ties).
 *
 * @param shape the tensor shape
 * @param seed any integer
 * @param levels optional number of integer levels on each side of zero
 * @returns a spec for {@linkcode runKernelOn}
 * @example
 * ```ts
 * const x = randomTensor([2, 5, 5, 3], 7);
 * ```
 */
export function randomTensor(shape: number[], seed: number, levels?: number): TensorSpec {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let state = seed >>> 0;
  for (let i = 0; i < values.length; i++) {
    // mulberry32: a tiny, well-mixed 32-bit generator.
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const unit = ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    values[i] = levels == null ? unit * 2 - 1 : Math.round((unit * 2 - 1) * levels);
  }
  return { shape, values };
}

/**
 * Run one kernel on `backend` (initialised through `initBackend`) and read its output,
 * failing if the kernel leaves tensors or backend data behind.
 *
 * @param backend `wasm` or `cpu`
 * @param kernelName the kernel
 * @param inputs its inputs, by name
 * @param attrs its attributes
 * @param fastKernels register the fast wasm overrides (default true)
 * @returns the output's shape and values
 * @example
 * ```ts
 * const dw = await runKernelOn("cpu", "Conv2DBackpropFilter", { x, dy }, attrs);
 * ```
 */
export async function runKernelOn(
  backend: BackendName,
  kernelName: string,
  inputs: Record<string, TensorSpec>,
  attrs: tf.NamedAttrMap,
  fastKernels = true,
): Promise<KernelResult> {
  await initBackend(backend, { fastKernels });
  const tensors = Object.fromEntries(
    Object.entries(inputs).map((
      [name, spec],
    ) => [name, tf.tensor(spec.values.slice(), spec.shape, dtypeOf(spec))]),
  );
  const dataIdsBefore = tf.engine().backend.numDataIds();
  const tensorsBefore = tf.memory().numTensors;
  const output = tf.engine().runKernel(kernelName, tensors, attrs) as tf.Tensor;
  const result = { shape: output.shape, values: Float32Array.from(output.dataSync()) };
  output.dispose();
  assert.equal(tf.memory().numTensors, tensorsBefore, `${kernelName} leaked tensors`);
  assert.equal(tf.engine().backend.numDataIds(), dataIdsBefore, `${kernelName} leaked data`);
  tf.dispose(Object.values(tensors));
  return result;
}

function dtypeOf(spec: TensorSpec): tf.DataType {
  return spec.values instanceof Int32Array ? "int32" : "float32";
}

/**
 * Assert two results have the same shape and values within {@linkcode RELATIVE_TOLERANCE}.
 *
 * @param actual what the kernel under test gave
 * @param expected the reference
 * @param label names the case in the failure message
 * @example
 * ```ts
 * assertClose(wasmResult, cpuResult, "stride 2, same");
 * ```
 */
export function assertClose(actual: KernelResult, expected: KernelResult, label: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${label}: shapes differ`);
  let scale = 1;
  for (const value of expected.values) scale = Math.max(scale, Math.abs(value));
  for (let i = 0; i < expected.values.length; i++) {
    const error = Math.abs(actual.values[i] - expected.values[i]);
    if (!(error <= RELATIVE_TOLERANCE * scale)) {
      assert.fail(
        `${label}: element ${i} is ${actual.values[i]}, expected ${expected.values[i]}`,
      );
    }
  }
}

/**
 * Register the Conv2D gradient if nothing has. tfjs-core's node bundle ships no gradient
 * definitions (the `@tensorflow/tfjs` union package normally registers them), so `tf.grad`
 * through conv2d needs this in a test process.
 *
 * @example
 * ```ts
 * ensureConv2dGradient();
 * const [dx, dw] = tf.grads((x, w) => tf.conv2d(x, w, 1, "same"))([x, w], dy);
 * ```
 */
export function ensureConv2dGradient(): void {
  if (tf.getGradient("Conv2D") != null) return;
  tf.registerGradient({
    kernelName: "Conv2D",
    inputsToSave: ["x", "filter"],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved;
      // The backprop kernels take Conv2D's attributes (they ignore dilations) plus a shape.
      return {
        x: () =>
          tf.engine().runKernel("Conv2DBackpropInput", { dy: dy as tf.Tensor, filter }, {
            ...attrs,
            inputShape: x.shape,
          }) as tf.Tensor,
        filter: () =>
          tf.engine().runKernel("Conv2DBackpropFilter", { x, dy: dy as tf.Tensor }, {
            ...attrs,
            filterShape: filter.shape,
          }) as tf.Tensor,
      };
    },
  });
}

/** One 2-D convolution geometry (NHWC, dilation 1) and a seed for its data. */
export interface ConvCase {
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strides: [number, number];
  pad: "same" | "valid" | tf.backend_util.ExplicitPadding;
  seed: number;
}

/** Largest spatial size in generated convolutions: small enough for the slow cpu kernels. */
const MAX_CONV_SIZE = 9;

/**
 * Random convolution geometries: batch 1 to 3, odd and even sizes, strides 1 and 2,
 * same, valid and explicit padding; only ones with a non-empty output.
 *
 * @returns a fast-check arbitrary of {@linkcode ConvCase}
 * @example
 * ```ts
 * await fc.assert(fc.asyncProperty(convCases({ inChannels: [8, 12] }), async (c) => { ... }));
 * ```
 */
export function convCases(
  options: { inChannels?: [number, number]; strides?: number[] } = {},
): fc.Arbitrary<ConvCase> {
  const { inChannels = [1, 3], strides = [1, 2] } = options;
  const side = fc.integer({ min: 0, max: 2 });
  return fc.record({
    batch: fc.integer({ min: 1, max: 3 }),
    height: fc.integer({ min: 1, max: MAX_CONV_SIZE }),
    width: fc.integer({ min: 1, max: MAX_CONV_SIZE }),
    inChannels: fc.integer({ min: inChannels[0], max: inChannels[1] }),
    outChannels: fc.integer({ min: 1, max: 4 }),
    filterHeight: fc.integer({ min: 1, max: 3 }),
    filterWidth: fc.integer({ min: 1, max: 3 }),
    strides: fc.tuple(fc.constantFrom(...strides), fc.constantFrom(...strides)),
    pad: fc.oneof(
      fc.constantFrom<"same" | "valid">("same", "valid"),
      fc.tuple(side, side, side, side).map(([top, bottom, left, right]) =>
        [[0, 0], [top, bottom], [left, right], [0, 0]] as tf.backend_util.ExplicitPadding
      ),
    ),
    seed: fc.integer(),
  }).filter((c) => {
    const { outHeight, outWidth } = convInfo(c);
    return outHeight > 0 && outWidth > 0;
  });
}

/**
 * The geometry tfjs derives for a {@linkcode ConvCase}.
 *
 * @param c the case
 * @returns tfjs's convolution info (output size, padding)
 * @example
 * ```ts
 * const { outHeight, outWidth } = convInfo(c);
 * ```
 */
export function convInfo(c: ConvCase): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    [c.batch, c.height, c.width, c.inChannels],
    [c.filterHeight, c.filterWidth, c.inChannels, c.outChannels],
    c.strides,
    1,
    c.pad,
  );
}

/**
 * The inputs and attributes of a `Conv2DBackpropFilter` call for one random case, shared by
 * the fallback and the fast kernel's tests.
 *
 * @param c the case
 * @returns kernel inputs (`x`, `dy`) and attributes
 * @example
 * ```ts
 * const { inputs, attrs } = filterGradientCall(c);
 * ```
 */
export function filterGradientCall(
  c: ConvCase,
): { inputs: Record<string, TensorSpec>; attrs: tf.NamedAttrMap } {
  const { outHeight, outWidth } = convInfo(c);
  return {
    inputs: {
      x: randomTensor([c.batch, c.height, c.width, c.inChannels], c.seed),
      dy: randomTensor([c.batch, outHeight, outWidth, c.outChannels], c.seed + 1),
    },
    attrs: {
      strides: c.strides,
      pad: c.pad,
      dataFormat: "NHWC",
      filterShape: [c.filterHeight, c.filterWidth, c.inChannels, c.outChannels],
    },
  };
}

/**
 * Run a kernel on the cpu backend and on wasm — with the fast overrides, or stock wasm (so
 * through the fallback) — and assert the two agree.
 *
 * @param kernelName the kernel
 * @param inputs its inputs, by name
 * @param attrs its attributes
 * @param label names the case in the failure message
 * @param fastKernels register the fast wasm overrides
 * @param backend the backend compared with cpu (default `wasm`; `native` runs on wasm's tensors)
 * @example
 * ```ts
 * await compareWasmWithCpu("Conv2DBackpropFilter", inputs, attrs, "case 1", true);
 * ```
 */
export async function compareWasmWithCpu(
  kernelName: string,
  inputs: Record<string, TensorSpec>,
  attrs: tf.NamedAttrMap,
  label: string,
  fastKernels: boolean,
  backend: BackendName = "wasm",
): Promise<void> {
  const expected = await runKernelOn("cpu", kernelName, inputs, attrs);
  const actual = await runKernelOn(backend, kernelName, inputs, attrs, fastKernels);
  assertClose(actual, expected, `${kernelName} on ${backend} ${label}`);
}

/**
 * Random `MaxPoolGrad` calls: batch 1–3, images up to 9×9, windows up to 3×3, strides 1/2,
 * same/valid padding, values on few integer levels so that equal maxima in one window are
 * common.
 *
 * @param maxChannels the most channels a case has
 * @param options `twoByTwo`: only 2×2 windows of stride 2 (the usual pooling)
 * @returns the calls, each with its inputs, attributes and a label
 * @example
 * ```ts
 * const cases = maxPoolGradCases(3);
 * ```
 */
export function maxPoolGradCases(
  maxChannels: number,
  options: { twoByTwo?: boolean } = {},
): fc.Arbitrary<{ inputs: Record<string, TensorSpec>; attrs: tf.NamedAttrMap; label: string }> {
  // twoByTwo: only the usual pooling, a 2×2 window with stride 2.
  const side = options.twoByTwo ? fc.constant(2) : fc.integer({ min: 1, max: 3 });
  const stride = options.twoByTwo ? fc.constant(2) : fc.constantFrom(1, 2);
  return fc.record({
    batch: fc.integer({ min: 1, max: 3 }),
    height: fc.integer({ min: 1, max: 9 }),
    width: fc.integer({ min: 1, max: 9 }),
    channels: fc.integer({ min: 1, max: maxChannels }),
    filterSize: fc.tuple(side, side),
    strides: fc.tuple(stride, stride),
    pad: fc.constantFrom("same" as const, "valid" as const),
    levels: fc.constantFrom(1, 2, 1000),
    seed: fc.integer(),
  }).filter((c) => c.pad === "same" || (c.height >= c.filterSize[0] && c.width >= c.filterSize[1]))
    .map((c) => {
      const xShape = [c.batch, c.height, c.width, c.channels];
      const info = tf.backend_util.computePool2DInfo(
        xShape as [number, number, number, number],
        c.filterSize,
        c.strides,
        1,
        c.pad,
      );
      return {
        // Every MaxPoolGrad kernel finds the maxima in `input`; the pooled `output` is unused.
        inputs: {
          input: randomTensor(xShape, c.seed, c.levels),
          dy: randomTensor(info.outShape, c.seed + 1),
        },
        attrs: { filterSize: c.filterSize, strides: c.strides, pad: c.pad },
        label: JSON.stringify(c),
      };
    });
}

/**
 * Random `BatchMatMul` calls: every transpose combination, batch dimensions absent, 1
 * (broadcast) or 3 on each side.
 *
 * @param maxSize the largest m, k and n
 * @returns the calls, each with its inputs, attributes and a label
 * @example
 * ```ts
 * const cases = batchMatMulCases(9);
 * ```
 */
export function batchMatMulCases(
  maxSize: number,
): fc.Arbitrary<{ inputs: Record<string, TensorSpec>; attrs: tf.NamedAttrMap; label: string }> {
  return fc.record({
    m: fc.integer({ min: 1, max: maxSize }),
    k: fc.integer({ min: 1, max: maxSize }),
    n: fc.integer({ min: 1, max: maxSize }),
    batchA: fc.constantFrom(0, 1, 3),
    batchB: fc.constantFrom(0, 1, 3),
    transposeA: fc.boolean(),
    transposeB: fc.boolean(),
    seed: fc.integer(),
  }).filter((c) => (c.batchA === 0) === (c.batchB === 0)).map((c) => {
    const batch = (size: number) => (size === 0 ? [] : [size]);
    const aShape = [...batch(c.batchA), ...(c.transposeA ? [c.k, c.m] : [c.m, c.k])];
    const bShape = [...batch(c.batchB), ...(c.transposeB ? [c.n, c.k] : [c.k, c.n])];
    return {
      inputs: { a: randomTensor(aShape, c.seed), b: randomTensor(bShape, c.seed + 1) },
      attrs: { transposeA: c.transposeA, transposeB: c.transposeB },
      label: JSON.stringify(c),
    };
  });
}

/**
 * The `Conv2DBackpropInput` call for a conv case: a random output gradient and filter.
 *
 * @param c the case
 * @returns the kernel's inputs and attributes
 * @example
 * ```ts
 * declare const c: ConvCase;
 * const { inputs, attrs } = inputGradientCall(c);
 * ```
 */
export function inputGradientCall(
  c: ConvCase,
): { inputs: Record<string, TensorSpec>; attrs: tf.NamedAttrMap } {
  const { outHeight, outWidth } = convInfo(c);
  return {
    inputs: {
      dy: randomTensor([c.batch, outHeight, outWidth, c.outChannels], c.seed),
      filter: randomTensor(
        [c.filterHeight, c.filterWidth, c.inChannels, c.outChannels],
        c.seed + 1,
      ),
    },
    attrs: {
      strides: c.strides,
      pad: c.pad,
      dataFormat: "NHWC",
      inputShape: [c.batch, c.height, c.width, c.inChannels],
    },
  };
}
