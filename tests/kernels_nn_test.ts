/**
 * The fused kernels of the transformer and the residual CNN (`core/nn_ops.ts` on `native`,
 * `backends/kernels/native_nn_kernels.ts`) against the cpu backend, which runs the same ops as
 * TensorFlow.js's composite ops: forward and every gradient, on random shapes with batch 1 and
 * odd sizes. Skipped with one line where OpenBLAS is missing (native needs it).
 */
import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import fc from "fast-check";
import { type BackendName, initBackend } from "../backends/backend.ts";
import { loadOpenBlas } from "../backends/kernels/_openblas.ts";
import {
  causalSoftmax,
  embedding,
  gelu,
  layerNorm,
  NN_KERNELS,
  softmaxCrossEntropy,
} from "../core/nn_ops.ts";
import { batchNorm, batchNormBuffers } from "../core/nn_layers.ts";
import {
  assertClose,
  type KernelResult,
  randomTensor,
  type TensorSpec,
} from "./_kernels_helpers.ts";

const NUM_RUNS = 20;
const load = loadOpenBlas();
const skip = !load.ok && Deno.env.get("PARATRAIN_REQUIRE_OPENBLAS") !== "1";
if (skip && !load.ok) console.error(`skipped the native nn kernel tests: ${load.reason}`);
const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: skip, fn });

/** An op under test: float inputs it is differentiated by, int inputs it is not. */
interface OpCase {
  label: string;
  floats: TensorSpec[];
  ints?: TensorSpec[];
  op: (floats: tf.Tensor[], ints: tf.Tensor[]) => tf.Tensor;
}

/** The op's output and its gradient by every float input, for a seeded upstream gradient. */
async function runOp(backend: BackendName, c: OpCase, seed: number): Promise<KernelResult[]> {
  await initBackend(backend);
  const before = tf.memory().numTensors;
  const results = tf.tidy(() => {
    const floats = c.floats.map((s) => tf.tensor(s.values.slice(), s.shape, "float32"));
    const ints = (c.ints ?? []).map((s) => tf.tensor(s.values.slice(), s.shape, "int32"));
    const y = c.op(floats, ints);
    const dy = tf.tensor(randomTensor(y.shape, seed).values, y.shape);
    const grads = tf.grads((...xs: tf.Tensor[]) => c.op(xs, ints))(floats, dy);
    return [y, ...grads].map((t) => ({ shape: t.shape, values: Float32Array.from(t.dataSync()) }));
  });
  assert.equal(tf.memory().numTensors, before, `${c.label} on ${backend} leaked tensors`);
  return results;
}

/** The op on native (its fused kernels) against cpu (the composite ops). */
async function compareOp(c: OpCase, kernel: string): Promise<void> {
  await initBackend("native");
  assert.ok(tf.getKernel(kernel, "native"), `native registers ${kernel}`);
  const seed = c.floats.length * 7 + 3;
  const native = await runOp("native", c, seed);
  const cpu = await runOp("cpu", c, seed);
  native.forEach((r, i) =>
    assertClose(r, cpu[i], `${c.label}, ${i === 0 ? "output" : `gradient ${i}`}`)
  );
}

function ints(shape: number[], below: number, seed: number): TensorSpec {
  const values = new Int32Array(shape.reduce((a, b) => a * b, 1));
  let state = seed;
  for (let i = 0; i < values.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    values[i] = state % below;
  }
  return { shape, values };
}

const dim = (max: number) => fc.integer({ min: 1, max });

test("native softmax cross-entropy matches cpu: one row, odd class counts", async () => {
  // tfjs's one-hot (the composite's) needs two classes at least.
  const classCount = fc.integer({ min: 2, max: 9 });
  await fc.assert(
    fc.asyncProperty(dim(9), classCount, fc.nat(1000), async (rows, classes, seed) => {
      await compareOp({
        label: `rows ${rows}, classes ${classes}`,
        floats: [randomTensor([rows, classes], seed)],
        ints: [ints([rows], classes, seed)],
        op: ([logits], [labels]) => softmaxCrossEntropy(tf.mul(logits, 3), labels),
      }, NN_KERNELS.softmaxCrossEntropy);
    }),
    { numRuns: NUM_RUNS },
  );
});

test("native LayerNorm matches cpu: output, input, scale and shift gradients", async () => {
  await fc.assert(
    fc.asyncProperty(dim(7), dim(9), fc.nat(1000), async (rows, width, seed) => {
      await compareOp({
        label: `rows ${rows}, width ${width}`,
        floats: [
          randomTensor([rows, width], seed),
          randomTensor([width], seed + 1),
          randomTensor([width], seed + 2),
        ],
        op: ([x, gamma, beta]) => layerNorm(x, gamma, beta, 1e-5),
      }, NN_KERNELS.layerNorm);
    }),
    { numRuns: NUM_RUNS },
  );
});

test("native GELU matches cpu: small and large inputs (the exponential's clamped range)", async () => {
  await fc.assert(
    fc.asyncProperty(
      dim(3),
      dim(11),
      fc.nat(1000),
      fc.constantFrom(4, 60),
      async (a, b, seed, scale) => {
        await compareOp({
          label: `shape ${a}×${b}, inputs up to ±${scale}`,
          floats: [randomTensor([a, b], seed)],
          op: ([x]) => gelu(tf.mul(x, scale)),
        }, NN_KERNELS.gelu);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

test("native embedding and its scatter-add gradient match cpu: repeated ids", async () => {
  await fc.assert(
    fc.asyncProperty(
      dim(7),
      dim(5),
      dim(3),
      dim(5),
      fc.nat(1000),
      async (vocab, width, b, t, seed) => {
        await compareOp({
          label: `vocab ${vocab}, width ${width}, ids ${b}×${t}`,
          floats: [randomTensor([vocab, width], seed)],
          ints: [ints([b, t], vocab, seed)],
          op: ([table], [ids]) => embedding(table, ids),
        }, NN_KERNELS.embedding);
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

test("native causal softmax matches cpu: one position, odd lengths, a scale", async () => {
  await fc.assert(
    fc.asyncProperty(dim(2), dim(3), dim(7), fc.nat(1000), async (b, h, t, seed) => {
      await compareOp({
        label: `${b}×${h} heads, T ${t}`,
        floats: [randomTensor([b, h, t, t], seed)],
        op: ([scores]) => causalSoftmax(scores, 1 / Math.sqrt(3)),
      }, NN_KERNELS.causalSoftmax);
    }),
    { numRuns: NUM_RUNS },
  );
});

test("native attention products match cpu: every transpose, 4-D batches of heads", async () => {
  await fc.assert(
    fc.asyncProperty(
      dim(2),
      dim(3),
      dim(6),
      dim(5),
      fc.boolean(),
      fc.boolean(),
      fc.nat(1000),
      async (b, h, t, d, ta, tb, seed) => {
        await compareOp({
          label: `${b}×${h}, T ${t}, d ${d}, transposes ${ta} ${tb}`,
          floats: [
            randomTensor(ta ? [b, h, d, t] : [b, h, t, d], seed),
            randomTensor(tb ? [b, h, t, d] : [b, h, d, t], seed + 1),
          ],
          op: ([q, k]) => tf.matMul(q, k, ta, tb),
        }, "BatchMatMul");
      },
    ),
    { numRuns: NUM_RUNS },
  );
});

test("native BatchNorm (training) matches cpu: output, gradients and running statistics", async () => {
  await fc.assert(
    fc.asyncProperty(dim(3), dim(4), dim(4), dim(5), fc.nat(1000), async (n, h, w, c, seed) => {
      const running: Float32Array[][] = [];
      const op = ([x, gamma, beta]: tf.Tensor[]) => {
        const buffers = Object.fromEntries(
          batchNormBuffers("bn", c).map((b) => [b.name, b.init(b.shape)]),
        );
        const p = { "bn/gamma": gamma, "bn/beta": beta };
        const y = batchNorm(p, "bn", x, { training: true, buffers });
        running.push(Object.values(buffers));
        return y;
      };
      const label = `${n}×${h}×${w}×${c}`;
      const floats = [
        randomTensor([n, h, w, c], seed),
        randomTensor([c], seed + 1),
        randomTensor([c], seed + 2),
      ];
      // Shift the inputs off zero, so that the mean matters.
      floats[0].values = floats[0].values.map((v) => 3 * v + 2);
      await compareOp({ label, floats, op }, NN_KERNELS.batchNormApply);
      // Each backend ran the forward twice (output, then gradients): compare the first's.
      const half = running.length / 2;
      for (const [i, values] of running[0].entries()) {
        assertClose(
          { shape: [c], values },
          { shape: [c], values: running[half][i] },
          `${label}: running statistic ${i}`,
        );
      }
    }),
    { numRuns: NUM_RUNS },
  );
});

test("native BatchNorm in evaluation uses the running statistics, as cpu", async () => {
  const c = 3;
  const buffers = {
    "bn/runningMean": new Float32Array([0.5, -1, 2]),
    "bn/runningVar": new Float32Array([1, 4, 0.25]),
  };
  const evaluate = async (backend: BackendName) => {
    await initBackend(backend);
    return tf.tidy(() => {
      const p = { "bn/gamma": tf.tensor1d([1, 2, 3]), "bn/beta": tf.tensor1d([0, 1, -1]) };
      const x = tf.tensor(randomTensor([2, 2, 2, c], 5).values, [2, 2, 2, c]);
      const y = batchNorm(p, "bn", x, { training: false, buffers });
      return { shape: y.shape, values: Float32Array.from(y.dataSync()) };
    });
  };
  assertClose(await evaluate("native"), await evaluate("cpu"), "evaluation");
});
