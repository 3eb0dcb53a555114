import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import fc from "fast-check";
import { initBackend } from "../backends/backend.ts";
import {
  registerWasmKernels,
  WASM_KERNEL_OVERRIDES,
} from "../backends/kernels/register_wasm_kernels.ts";
import {
  assertClose,
  batchMatMulCases,
  compareWasmWithCpu,
  convCases,
  ensureConv2dGradient,
  filterGradientCall,
  inputGradientCall,
  type KernelResult,
  maxPoolGradCases,
  randomTensor,
  runKernelOn,
  type TensorSpec,
} from "./_kernels_helpers.ts";

/** Random cases per property: enough to hit every stride/padding mix, fast enough for CI. */
const NUM_RUNS = 25;

/** Run a kernel on the cpu backend and on wasm with the fast overrides; compare. */
function compareWithCpu(
  kernelName: string,
  inputs: Record<string, TensorSpec>,
  attrs: tf.NamedAttrMap,
  label: string,
): Promise<void> {
  return compareWasmWithCpu(kernelName, inputs, attrs, label, true);
}

Deno.test("fast BatchMatMul with transposes matches cpu", async () => {
  await fc.assert(
    fc.asyncProperty(batchMatMulCases(9), async (c) => {
      await compareWithCpu("BatchMatMul", c.inputs, c.attrs, c.label);
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("fast _FusedMatMul with transposes, bias and relu matches cpu", async () => {
  for (const [transposeA, transposeB] of [[true, false], [false, true], [true, true]]) {
    // Batch 1, as tf.fused.matMul of 2-D inputs gives: the stock wasm kernel itself
    // differs from cpu when a bias meets a batch above 1.
    const [batch, m, k, n] = [1, 5, 7, 3];
    await compareWithCpu(
      "_FusedMatMul",
      {
        a: randomTensor(transposeA ? [batch, k, m] : [batch, m, k], 1),
        b: randomTensor(transposeB ? [batch, n, k] : [batch, k, n], 2),
        bias: randomTensor([n], 3),
      },
      { transposeA, transposeB, activation: "relu" },
      `transposeA ${transposeA}, transposeB ${transposeB}`,
    );
  }
});

Deno.test("fast Conv2DBackpropFilter matches cpu", async () => {
  await fc.assert(
    fc.asyncProperty(convCases(), async (c) => {
      const { inputs, attrs } = filterGradientCall(c);
      await compareWithCpu("Conv2DBackpropFilter", inputs, attrs, JSON.stringify(c));
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("fast Conv2DBackpropInput matches cpu", async () => {
  await fc.assert(
    fc.asyncProperty(convCases(), async (c) => {
      const { inputs, attrs } = inputGradientCall(c);
      await compareWithCpu("Conv2DBackpropInput", inputs, attrs, JSON.stringify(c));
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("fast MaxPoolGrad matches cpu, ties included", async () => {
  await fc.assert(
    fc.asyncProperty(maxPoolGradCases(3), async (c) => {
      await compareWithCpu("MaxPoolGrad", c.inputs, c.attrs, c.label);
    }),
    { numRuns: NUM_RUNS },
  );
});

/** A batch big enough that one example's patch matrix fills a whole im2col chunk. */
const CHUNKED = { batch: 3, size: 64, inChannels: 64, outChannels: 2, filter: 3 };

Deno.test("fast conv gradients split into chunks equal the per-example results", async () => {
  const { batch, size, inChannels, outChannels, filter } = CHUNKED;
  const filterShape = [filter, filter, inChannels, outChannels];
  const attrs = { strides: 1, pad: "same", dataFormat: "NHWC" } as const;
  const x = randomTensor([batch, size, size, inChannels], 1);
  const dy = randomTensor([batch, size, size, outChannels], 2);
  const w = randomTensor(filterShape, 3);
  const example = (spec: TensorSpec, n: number): TensorSpec => {
    const length = spec.values.length / batch;
    return {
      shape: [1, ...spec.shape.slice(1)],
      values: spec.values.slice(n * length, (n + 1) * length),
    };
  };

  const dwWhole = await runKernelOn("wasm", "Conv2DBackpropFilter", { x, dy }, {
    ...attrs,
    filterShape,
  });
  const dwSum: KernelResult = {
    shape: filterShape,
    values: new Float32Array(dwWhole.values.length),
  };
  const dxParts: Float32Array[] = [];
  for (let n = 0; n < batch; n++) {
    const dw = await runKernelOn("wasm", "Conv2DBackpropFilter", {
      x: example(x, n),
      dy: example(dy, n),
    }, { ...attrs, filterShape });
    dw.values.forEach((value, i) => dwSum.values[i] += value);
    const dx = await runKernelOn("wasm", "Conv2DBackpropInput", {
      dy: example(dy, n),
      filter: w,
    }, { ...attrs, inputShape: [1, size, size, inChannels] });
    dxParts.push(dx.values);
  }
  assertClose(dwWhole, dwSum, "Conv2DBackpropFilter in chunks");

  const dxWhole = await runKernelOn("wasm", "Conv2DBackpropInput", { dy, filter: w }, {
    ...attrs,
    inputShape: x.shape,
  });
  const dxJoined = new Float32Array(dxWhole.values.length);
  dxParts.forEach((part, n) => dxJoined.set(part, n * part.length));
  assertClose(dxWhole, { shape: x.shape, values: dxJoined }, "Conv2DBackpropInput in chunks");
});

/** Gradients of conv2d with respect to input and filter, on one backend. */
async function conv2dGradients(
  backend: "wasm" | "cpu",
  fastKernels: boolean,
  strides: number,
  pad: "same" | "valid",
): Promise<KernelResult[]> {
  await initBackend(backend, { fastKernels });
  ensureConv2dGradient();
  const x = randomTensor([2, 9, 8, 3], 11);
  const w = randomTensor([3, 3, 3, 4], 12);
  return tf.tidy(() => {
    const xT = tf.tensor4d(x.values, x.shape as [number, number, number, number]);
    const wT = tf.tensor4d(w.values, w.shape as [number, number, number, number]);
    const f = (a: tf.Tensor, b: tf.Tensor) =>
      tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad);
    const y = f(xT, wT);
    const dy = randomTensor(y.shape, 13);
    const grads = tf.grads(f)([xT, wT], tf.tensor(dy.values, y.shape));
    return grads.map((g) => ({ shape: g.shape, values: Float32Array.from(g.dataSync()) }));
  });
}

Deno.test("tf.grads of conv2d on wasm equals cpu, with and without fast kernels", async () => {
  for (const [strides, pad] of [[1, "same"], [2, "same"], [2, "valid"]] as const) {
    const expected = await conv2dGradients("cpu", false, strides, pad);
    for (const fast of [true, false]) {
      const actual = await conv2dGradients("wasm", fast, strides, pad);
      const label = `stride ${strides}, ${pad}, fast ${fast}`;
      assertClose(actual[0], expected[0], `dx ${label}`);
      assertClose(actual[1], expected[1], `dw ${label}`);
    }
  }
});

Deno.test("registerWasmKernels switches between stock and fast kernels cleanly", async () => {
  await initBackend("wasm", { fastKernels: false });
  const stock = tf.getKernel("BatchMatMul", "wasm");
  const warnings: unknown[][] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args);
  try {
    const fast = registerWasmKernels({ fast: true });
    assert.deepEqual(fast.overrides, WASM_KERNEL_OVERRIDES.map((o) => o.name));
    const fastConfig = tf.getKernel("BatchMatMul", "wasm");
    assert.notEqual(fastConfig, stock);
    assert.equal(registerWasmKernels({ fast: true }).overrides.length, fast.overrides.length);
    assert.equal(tf.getKernel("BatchMatMul", "wasm"), fastConfig);
    assert.deepEqual(registerWasmKernels({ fast: false }).overrides, []);
    assert.equal(tf.getKernel("BatchMatMul", "wasm"), stock);
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(warnings, []);
  await initBackend("wasm");
});
