/**
 * The fused layers (core/nn_ops.ts): on native, one kernel each way with a hand-written
 * gradient; on cpu, composed from TensorFlow.js ops. Both must give the same outputs and the
 * same gradients for the input, the weights and the bias, on random shapes (batch 1, odd
 * sizes, strides 1 and 2, 'same' and 'valid', both activations), with an upstream gradient
 * that is not all ones.
 */
import * as tf from "@tensorflow/tfjs-core";
import fc from "fast-check";
import { type BackendName, initBackend } from "../backends/backend.ts";
import { loadOpenBlas } from "../backends/kernels/_openblas.ts";
import { convBlock, denseLayer, type FusedActivation, NN_KERNELS } from "../core/nn_ops.ts";
import {
  assertClose,
  type KernelResult,
  randomTensor,
  type TensorSpec,
} from "./_kernels_helpers.ts";

// Where OpenBLAS is missing the tests are skipped with one line; CI requires them.
const load = loadOpenBlas();
const skip = !load.ok && Deno.env.get("PARATRAIN_REQUIRE_OPENBLAS") !== "1";
if (skip && !load.ok) console.error(`skipped the fused layer tests: ${load.reason}`);
const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: skip, fn });
const NUM_RUNS = 20;

type Layer = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/** The layer's output and its gradients for x, w and b under an upstream gradient dy. */
async function outputAndGradients(
  backend: BackendName,
  layer: Layer,
  specs: { x: TensorSpec; w: TensorSpec; b: TensorSpec; dy: (shape: number[]) => TensorSpec },
): Promise<KernelResult[]> {
  await initBackend(backend);
  const before = tf.memory().numTensors;
  const make = (s: TensorSpec) => tf.tensor(s.values, s.shape);
  const [x, w, b] = [make(specs.x), make(specs.w), make(specs.b)];
  const y = tf.tidy(() => layer(x, w, b));
  const dy = make(specs.dy(y.shape));
  const grads = tf.grads((xi, wi, bi) => layer(xi, wi, bi))([x, w, b], dy);
  const read = (t: tf.Tensor) => ({ shape: t.shape, values: t.dataSync() as Float32Array });
  const results = [y, ...grads].map(read);
  tf.dispose([x, w, b, y, dy, ...grads]);
  if (tf.memory().numTensors !== before) throw new Error(`${backend}: the layer leaked tensors`);
  return results;
}

async function compare(
  layer: Layer,
  specs: Parameters<typeof outputAndGradients>[2],
  label: string,
): Promise<void> {
  const cpu = await outputAndGradients("cpu", layer, specs);
  const native = await outputAndGradients("native", layer, specs);
  ["y", "dx", "dw", "db"].forEach((name, i) => assertClose(native[i], cpu[i], `${label}: ${name}`));
}

const activation = fc.constantFrom<FusedActivation>("relu", "linear");

test("native registers every fused kernel; the cpu backend composes the layers", async () => {
  await initBackend("native");
  for (const name of Object.values(NN_KERNELS)) {
    if (tf.getKernel(name, "native") == null) throw new Error(`native lacks ${name}`);
  }
  await initBackend("cpu");
  for (const name of Object.values(NN_KERNELS)) {
    if (tf.getKernel(name, "cpu") != null) throw new Error(`cpu has ${name}`);
  }
});

test("fused dense (native) matches the composed layer (cpu): outputs and gradients", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        batch: fc.integer({ min: 1, max: 9 }),
        inputs: fc.integer({ min: 1, max: 13 }),
        units: fc.integer({ min: 1, max: 11 }),
        activation,
        seed: fc.integer(),
      }),
      async (c) => {
        await compare(
          (x, w, b) => denseLayer(x, w, b, c.activation),
          {
            x: randomTensor([c.batch, c.inputs], c.seed),
            w: randomTensor([c.inputs, c.units], c.seed + 1),
            b: randomTensor([c.units], c.seed + 2),
            dy: (shape) => randomTensor(shape, c.seed + 3),
          },
          JSON.stringify(c),
        );
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

test("fused convolution block (native) matches the composed block (cpu)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        batch: fc.integer({ min: 1, max: 3 }),
        size: fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 })),
        inChannels: fc.integer({ min: 1, max: 9 }),
        outChannels: fc.integer({ min: 1, max: 6 }),
        filter: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
        strides: fc.constantFrom(1, 2),
        pad: fc.constantFrom<"same" | "valid">("same", "valid"),
        activation,
        seed: fc.integer(),
      }).filter((c) => c.pad === "same" || (c.size[0] >= c.filter[0] && c.size[1] >= c.filter[1])),
      async (c) => {
        const attrs = { strides: c.strides, pad: c.pad, activation: c.activation };
        await compare(
          (x, w, b) => convBlock(x, w, b, attrs),
          {
            x: randomTensor([c.batch, ...c.size, c.inChannels], c.seed),
            w: randomTensor([...c.filter, c.inChannels, c.outChannels], c.seed + 1),
            b: randomTensor([c.outChannels], c.seed + 2),
            dy: (shape) => randomTensor(shape, c.seed + 3),
          },
          JSON.stringify(c),
        );
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

test("fused convolution block over several cache-sized chunks matches cpu", async () => {
  // 5 examples of 20×20 patches of 9·8 floats exceed one 32 Ki-float chunk: dW and db are
  // summed over chunks.
  const attrs = { strides: 1, pad: "same", activation: "relu" } as const;
  await compare(
    (x, w, b) => convBlock(x, w, b, attrs),
    {
      x: randomTensor([5, 20, 20, 8], 1),
      w: randomTensor([3, 3, 8, 16], 2),
      b: randomTensor([16], 3),
      dy: (shape) => randomTensor(shape, 4),
    },
    "chunked",
  );
});
