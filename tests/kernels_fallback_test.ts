import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import fc from "fast-check";
import { initBackend } from "../backends/backend.ts";
import {
  registerWasmKernels,
  WASM_FALLBACK_SKIPPED,
} from "../backends/kernels/register_wasm_kernels.ts";
import {
  compareWasmWithCpu,
  convCases,
  convInfo,
  filterGradientCall,
  randomTensor,
  type TensorSpec,
} from "./_kernels_helpers.ts";

/** Random cases per property: enough to hit every stride/padding mix, fast enough for CI. */
const NUM_RUNS = 20;

/** Run a kernel on the cpu backend and on wasm stock (so through the fallback); compare. */
function compareFallbackWithCpu(
  kernelName: string,
  inputs: Record<string, TensorSpec>,
  attrs: tf.NamedAttrMap,
  label: string,
): Promise<void> {
  return compareWasmWithCpu(kernelName, inputs, attrs, label, false);
}

Deno.test("every cpu kernel is on wasm unless skipped for a stated reason", async () => {
  await initBackend("wasm", { fastKernels: false });
  const { fallbacks } = registerWasmKernels({ fast: false });
  for (const { kernelName } of tf.getKernelsForBackend("cpu")) {
    const onWasm = tf.getKernel(kernelName, "wasm") != null;
    assert.ok(onWasm !== kernelName in WASM_FALLBACK_SKIPPED, `${kernelName} on wasm: ${onWasm}`);
  }
  for (const name of ["Conv2DBackpropFilter", "UnsortedSegmentSum", "Einsum"]) {
    assert.ok(fallbacks.includes(name), `${name} is not a fallback`);
  }
  assert.ok(!registerWasmKernels({ fast: true }).fallbacks.includes("Conv2DBackpropFilter"));
  await initBackend("wasm");
});

Deno.test("Conv2DBackpropFilter fallback matches cpu", async () => {
  await fc.assert(
    fc.asyncProperty(convCases(), async (c) => {
      const { inputs, attrs } = filterGradientCall(c);
      await compareFallbackWithCpu("Conv2DBackpropFilter", inputs, attrs, JSON.stringify(c));
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("depthwise conv backprop fallbacks match cpu", async () => {
  await fc.assert(
    fc.asyncProperty(convCases(), fc.constantFrom(1, 2), async (c, multiplier) => {
      const { outHeight, outWidth } = convInfo(c);
      // Depthwise kernels take 'same', 'valid' or a number, not explicit padding.
      const pad = typeof c.pad === "string" ? c.pad : "valid";
      if (pad === "valid" && (c.height < c.filterHeight || c.width < c.filterWidth)) return;
      const info = tf.backend_util.computeConv2DInfo(
        [c.batch, c.height, c.width, c.inChannels],
        [c.filterHeight, c.filterWidth, c.inChannels, multiplier],
        c.strides,
        1,
        pad,
        undefined,
        true,
      );
      const filterShape = [c.filterHeight, c.filterWidth, c.inChannels, multiplier];
      const dy = randomTensor([c.batch, info.outHeight, info.outWidth, info.outChannels], c.seed);
      const common = { strides: c.strides, pad, dilations: 1 };
      const label = `${JSON.stringify(c)} multiplier ${multiplier} (${outHeight}x${outWidth})`;
      await compareFallbackWithCpu(
        "DepthwiseConv2dNativeBackpropFilter",
        {
          x: randomTensor([c.batch, c.height, c.width, c.inChannels], c.seed + 1),
          dy,
        },
        { ...common, filterShape },
        label,
      );
      await compareFallbackWithCpu(
        "DepthwiseConv2dNativeBackpropInput",
        {
          dy,
          filter: randomTensor(filterShape, c.seed + 2),
        },
        { ...common, inputShape: [c.batch, c.height, c.width, c.inChannels] },
        label,
      );
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("UnsortedSegmentSum fallback matches cpu", async () => {
  const cases = fc.record({
    rows: fc.integer({ min: 1, max: 40 }),
    width: fc.integer({ min: 1, max: 7 }),
    numSegments: fc.integer({ min: 1, max: 9 }),
    seed: fc.integer(),
  });
  await fc.assert(
    fc.asyncProperty(cases, async (c) => {
      const ids = randomTensor([c.rows], c.seed + 1).values.map((u) =>
        Math.floor((u + 1) / 2 * c.numSegments)
      );
      await compareFallbackWithCpu(
        "UnsortedSegmentSum",
        {
          x: randomTensor([c.rows, c.width], c.seed),
          segmentIds: { shape: [c.rows], values: Int32Array.from(ids) },
        },
        { numSegments: c.numSegments },
        JSON.stringify(c),
      );
    }),
    { numRuns: NUM_RUNS },
  );
});

Deno.test("fallback handles list inputs, several outputs and strings", async () => {
  await initBackend("wasm", { fastKernels: false });
  tf.tidy(() => {
    // Einsum's inputs are a list.
    const a = tf.tensor2d([[1, 2], [3, 4]]);
    const b = tf.tensor2d([[5, 6], [7, 8]]);
    assert.deepEqual(tf.einsum("ij,jk->ik", a, b).arraySync(), [[19, 22], [43, 50]]);
    // RaggedRange has two int32 outputs.
    const ragged = tf.raggedRange(
      tf.tensor1d([0, 5], "int32"),
      tf.tensor1d([3, 7], "int32"),
      tf.tensor1d([1, 1], "int32"),
    );
    assert.deepEqual(ragged.rtNestedSplits.arraySync(), [0, 3, 5]);
    assert.deepEqual(ragged.rtDenseValues.arraySync(), [0, 1, 2, 5, 6]);
    // RaggedTensorToTensor takes a list as one of its named inputs.
    const dense = tf.raggedTensorToTensor(
      tf.tensor1d([3, 3], "int32"),
      tf.tensor1d([1, 2, 3, 4, 5]),
      tf.scalar(0),
      [tf.tensor1d([0, 3, 3, 5], "int32")],
      ["ROW_SPLITS"],
    );
    assert.deepEqual(dense.arraySync(), [[1, 2, 3], [0, 0, 0], [4, 5, 0]]);
    // StaticRegexReplace works on strings.
    const replaced = tf.string.staticRegexReplace(tf.tensor1d(["paratrain"], "string"), "a", "o");
    assert.deepEqual(replaced.arraySync(), ["porotroin"]);
  });
  await initBackend("wasm");
});

Deno.test("fallback frees its cpu copies, also when the cpu kernel throws", async () => {
  await initBackend("wasm", { fastKernels: false });
  const cpu = tf.findBackend("cpu")!;
  const before = cpu.numDataIds();
  const a = tf.tensor2d([[1, 2], [3, 4]]);
  tf.einsum("ij,jk->ik", a, a).dispose();
  assert.equal(cpu.numDataIds(), before);
  assert.throws(() => tf.engine().runKernel("Einsum", [a, a] as never, { equation: "ij->->" }));
  assert.equal(cpu.numDataIds(), before);
  a.dispose();
  await initBackend("wasm");
});
