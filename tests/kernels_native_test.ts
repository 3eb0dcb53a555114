/**
 * The `native` backend's kernels (OpenBLAS sgemm on the wasm heap) against the cpu backend on
 * random shapes: batch 1, odd sizes, every transpose, broadcast batches, strides 1 and 2,
 * same/valid/explicit padding. Where OpenBLAS is missing the tests are skipped with one line;
 * CI sets PARATRAIN_REQUIRE_OPENBLAS=1 to make that a failure.
 */
import * as tf from "@tensorflow/tfjs-core";
import fc from "fast-check";
import { initBackend } from "../backends/backend.ts";
import { loadOpenBlas } from "../backends/kernels/_openblas.ts";
import {
  batchMatMulCases,
  compareWasmWithCpu,
  convCases,
  filterGradientCall,
  inputGradientCall,
  maxPoolGradCases,
  randomTensor,
  type TensorSpec,
} from "./_kernels_helpers.ts";

const NUM_RUNS = 25;
const load = loadOpenBlas();
const skip = !load.ok && Deno.env.get("PARATRAIN_REQUIRE_OPENBLAS") !== "1";
if (skip && !load.ok) console.error(`skipped the native kernel tests: ${load.reason}`);

function compareNative(
  kernelName: string,
  inputs: Record<string, TensorSpec>,
  attrs: tf.NamedAttrMap,
  label: string,
): Promise<void> {
  return compareWasmWithCpu(kernelName, inputs, attrs, label, true, "native");
}

const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: skip, fn });

test("native BatchMatMul matches cpu: every transpose, batch 1, broadcast batches", async () => {
  await fc.assert(
    fc.asyncProperty(batchMatMulCases(17), async (c) => {
      await compareNative("BatchMatMul", c.inputs, c.attrs, c.label);
    }),
    { numRuns: NUM_RUNS },
  );
});

test("native _FusedMatMul matches cpu: transposes, bias, activations", async () => {
  const activations = ["linear", "relu", "relu6", "leakyrelu", "sigmoid", "elu"];
  for (
    const [transposeA, transposeB] of [[false, false], [true, false], [false, true], [true, true]]
  ) {
    for (const activation of activations) {
      const [batch, m, k, n] = [1, 5, 7, 3];
      await compareNative(
        "_FusedMatMul",
        {
          a: randomTensor(transposeA ? [batch, k, m] : [batch, m, k], 1),
          b: randomTensor(transposeB ? [batch, n, k] : [batch, k, n], 2),
          bias: randomTensor([n], 3),
        },
        { transposeA, transposeB, activation, leakyreluAlpha: 0.1 },
        `transposeA ${transposeA}, transposeB ${transposeB}, ${activation}`,
      );
    }
  }
});

test("native Conv2D matches cpu", async () => {
  await fc.assert(
    fc.asyncProperty(convCases(), async (c) => {
      await compareNative(
        "Conv2D",
        {
          x: randomTensor([c.batch, c.height, c.width, c.inChannels], c.seed),
          filter: randomTensor(
            [c.filterHeight, c.filterWidth, c.inChannels, c.outChannels],
            c.seed + 1,
          ),
        },
        { strides: c.strides, pad: c.pad, dataFormat: "NHWC", dilations: 1 },
        JSON.stringify(c),
      );
    }),
    { numRuns: NUM_RUNS },
  );
});

test("native Conv2DBackpropFilter and Conv2DBackpropInput (on sgemm) match cpu", async () => {
  await fc.assert(
    fc.asyncProperty(convCases(), async (c) => {
      const { inputs, attrs } = filterGradientCall(c);
      await compareNative("Conv2DBackpropFilter", inputs, attrs, JSON.stringify(c));
      const input = inputGradientCall(c);
      await compareNative("Conv2DBackpropInput", input.inputs, input.attrs, JSON.stringify(c));
    }),
    { numRuns: NUM_RUNS },
  );
});

test("native stride-1 input gradient of 8+ channels (a forward convolution) matches cpu", async () => {
  await fc.assert(
    fc.asyncProperty(convCases({ inChannels: [8, 12], strides: [1] }), async (c) => {
      const input = inputGradientCall(c);
      await compareNative("Conv2DBackpropInput", input.inputs, input.attrs, JSON.stringify(c));
    }),
    { numRuns: NUM_RUNS },
  );
});

test("native Sum matches cpu: leading axes (its own path), other axes, keepDims", async () => {
  const shapes: [number[], number | number[]][] = [
    [[7, 5], 0],
    [[1, 3], 0],
    [[4, 3, 5, 2], [0, 1, 2]],
    [[4, 3, 5], [1, 0]],
    [[4, 3, 5], 1],
    [[4, 3, 5], -1],
    [[6, 4], [0, 1]],
  ];
  for (const [i, [shape, axis]] of shapes.entries()) {
    for (const keepDims of [false, true]) {
      await compareNative(
        "Sum",
        { x: randomTensor(shape, i) },
        { axis, keepDims },
        `shape ${shape}, axis ${axis}, keepDims ${keepDims}`,
      );
    }
  }
});

test("native's Identity shares memory and frees it once the last reference goes", async () => {
  await initBackend("native");
  const before = tf.memory().numBytes;
  const x = tf.tensor([1, 2, 3]);
  const y = tf.clone(x); // the Identity kernel
  x.dispose();
  if ([...(await y.data())].join() !== "1,2,3") throw new Error("identity lost its values");
  y.dispose();
  if (tf.memory().numBytes !== before) throw new Error("identity leaked memory");
});

test("native MaxPoolGrad (SIMD) matches cpu: channels past a multiple of 4, ties", async () => {
  await fc.assert(
    fc.asyncProperty(maxPoolGradCases(9), async (c) => {
      await compareNative("MaxPoolGrad", c.inputs, c.attrs, c.label);
    }),
    { numRuns: NUM_RUNS },
  );
});

test("native MaxPoolGrad of 2×2 windows, stride 2 (one pass): odd sizes, ties", async () => {
  await fc.assert(
    fc.asyncProperty(maxPoolGradCases(9, { twoByTwo: true }), async (c) => {
      await compareNative("MaxPoolGrad", c.inputs, c.attrs, c.label);
    }),
    { numRuns: NUM_RUNS },
  );
});

test("native conv gradients over several im2col chunks match cpu", async () => {
  // 3 examples of 64×64×64 patches exceed one chunk: the filter gradient is summed over
  // chunks by sgemm, the input gradient written chunk by chunk.
  const [batch, size, inChannels, outChannels] = [3, 64, 64, 2];
  const attrs = { strides: 1, pad: "same", dataFormat: "NHWC" } as const;
  const x = randomTensor([batch, size, size, inChannels], 1);
  const dy = randomTensor([batch, size, size, outChannels], 2);
  const w = randomTensor([3, 3, inChannels, outChannels], 3);
  await compareNative("Conv2DBackpropFilter", { x, dy }, {
    ...attrs,
    filterShape: [3, 3, inChannels, outChannels],
  }, "chunked");
  await compareNative("Conv2DBackpropInput", { dy, filter: w }, {
    ...attrs,
    inputShape: x.shape,
  }, "chunked");
  await compareNative("Conv2D", { x, filter: w }, { ...attrs, dilations: 1 }, "chunked");
});
