/**
 * `--threads N` on `native`: N − 1 compute threads share the wasm backend's heap (a shared
 * memory) and take ranges of each convolution's and pool's examples and blocks of each large
 * product. Results must match the cpu backend's, a thread's failure must name it, and the heap
 * must stay shared without taking the global `Worker` that DP's replicas use.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import fc from "fast-check";
import { type BackendName, initBackend } from "../backends/backend.ts";
import { loadOpenBlas } from "../backends/kernels/_openblas.ts";
import type { GemmBlock } from "../backends/kernels/_openblas.ts";
import { computePool, computePoolRuns } from "../backends/kernels/_compute_pool.ts";
import { GEMM_SPLIT_MIN_FLOPS, gemmBlocks } from "../backends/kernels/_split_blas.ts";
import { wasmHeap } from "../backends/shared_heap.ts";
import { convBlock, denseLayer } from "../core/nn_ops.ts";
import { Trainer } from "../core/trainer.ts";
import { getWorkload } from "../workloads/registry.ts";
import {
  assertClose,
  type KernelResult,
  randomTensor,
  type TensorSpec,
} from "./_kernels_helpers.ts";

const load = loadOpenBlas();
const skip = !load.ok && Deno.env.get("PARATRAIN_REQUIRE_OPENBLAS") !== "1";
if (skip && !load.ok) console.error(`skipped the compute thread tests: ${load.reason}`);
const test = (name: string, fn: () => Promise<void> | void) =>
  Deno.test({ name, ignore: skip, fn });

/** `f`'s result and its gradients for every input, on `backend` with `threads`. */
async function resultAndGradients(
  backend: BackendName,
  threads: number,
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: TensorSpec[],
  seed: number,
  gradients = true,
): Promise<KernelResult[]> {
  await initBackend(backend, { threads });
  const xs = inputs.map((s) => tf.tensor(s.values, s.shape));
  const y = tf.tidy(() => f(...xs));
  if (!gradients) {
    const values = { shape: y.shape, values: y.dataSync() as Float32Array };
    tf.dispose([...xs, y]);
    return [values];
  }
  const dySpec = randomTensor(y.shape, seed);
  const dy = tf.tensor(dySpec.values, dySpec.shape);
  const grads = tf.grads((...a: tf.Tensor[]) => f(...a))(xs, dy);
  const read = (t: tf.Tensor) => ({ shape: t.shape, values: t.dataSync() as Float32Array });
  const results = [y, ...grads].map(read);
  tf.dispose([...xs, y, dy, ...grads]);
  return results;
}

/** `f` with 2 threads against cpu; returns how many splits ran meanwhile. */
async function compareWithCpu(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: TensorSpec[],
  seed: number,
  label: string,
  gradients = true,
): Promise<number> {
  const cpu = await resultAndGradients("cpu", 1, f, inputs, seed, gradients);
  const before = computePoolRuns();
  const native = await resultAndGradients("native", 2, f, inputs, seed, gradients);
  const splits = computePoolRuns() - before;
  native.forEach((r, i) => assertClose(r, cpu[i], `${label}: output ${i}`));
  return splits;
}

test("native's heap is shared, and setting it up leaves the global Worker (DP's replicas) alone", async () => {
  const webWorker = globalThis.Worker;
  await initBackend("native", { threads: 2 });
  assert.equal(globalThis.Worker, webWorker);
  assert.ok(wasmHeap(tf.findBackend("wasm")!).buffer instanceof SharedArrayBuffer);
  assert.equal(computePool()?.helpers, 1);
  await initBackend("native");
  assert.equal(computePool(), null, "--threads 1 left a compute thread running");
});

test("with --threads 2 the convolution blocks split their examples and match cpu", async () => {
  // One case that surely splits, then random ones: odd sizes, both strides and paddings,
  // fewer and more than 8 input channels (the input gradient as a convolution or by col2im).
  const first = await compareWithCpu(
    (x, w, b) => convBlock(x, w, b, { strides: 1, pad: "same", activation: "relu" }),
    [randomTensor([6, 20, 20, 8], 5), randomTensor([3, 3, 8, 16], 6), randomTensor([16], 7)],
    8,
    "split",
  );
  assert.ok(first > 0, "no convolution ran on a compute thread");
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        batch: fc.integer({ min: 2, max: 7 }),
        size: fc.tuple(fc.integer({ min: 9, max: 21 }), fc.integer({ min: 9, max: 21 })),
        inChannels: fc.integer({ min: 3, max: 12 }),
        outChannels: fc.integer({ min: 8, max: 20 }),
        filter: fc.tuple(fc.integer({ min: 2, max: 3 }), fc.integer({ min: 2, max: 3 })),
        strides: fc.constantFrom(1, 2),
        pad: fc.constantFrom<"same" | "valid">("same", "valid"),
        relu: fc.boolean(),
        seed: fc.integer({ min: 0, max: 1e6 }),
      }),
      async (c) => {
        const attrs = {
          strides: c.strides,
          pad: c.pad,
          activation: c.relu ? "relu" as const : "linear" as const,
        };
        await compareWithCpu(
          (x, w, b) => convBlock(x, w, b, attrs),
          [
            randomTensor([c.batch, ...c.size, c.inChannels], c.seed),
            randomTensor([...c.filter, c.inChannels, c.outChannels], c.seed + 1),
            randomTensor([c.outChannels], c.seed + 2),
          ],
          c.seed + 3,
          JSON.stringify(c),
        );
      },
    ),
    { numRuns: 12 },
  );
});

test("the 2×2 max-pool and its gradient (SIMD) match cpu, on one thread and split", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        batch: fc.integer({ min: 1, max: 40 }),
        height: fc.integer({ min: 2, max: 17 }),
        width: fc.integer({ min: 2, max: 17 }),
        channels: fc.integer({ min: 1, max: 19 }),
        threads: fc.constantFrom(1, 2),
        seed: fc.integer({ min: 0, max: 1e6 }),
      }),
      async (c) => {
        // Few levels: ties in a window, where the first maximum must win on both backends.
        const x = randomTensor([c.batch, c.height, c.width, c.channels], c.seed, 5);
        const pool = (t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, 2, 2, "valid");
        const cpu = await resultAndGradients("cpu", 1, pool, [x], c.seed + 1);
        const native = await resultAndGradients("native", c.threads, pool, [x], c.seed + 1);
        native.forEach((r, i) => assertClose(r, cpu[i], `${JSON.stringify(c)}: output ${i}`));
      },
    ),
    { numRuns: 25 },
  );
  // A batch large enough to split.
  const splits = await compareWithCpu(
    (t) => tf.maxPool(t as tf.Tensor4D, 2, 2, "valid"),
    [randomTensor([64, 28, 28, 16], 3)],
    4,
    "pool split",
  );
  assert.ok(splits > 0, "no pool ran on a compute thread");
});

test("with --threads 2 large products split into blocks of rows or columns and match cpu", async () => {
  const cases: [number, number, number, boolean, boolean][] = [
    [256, 200, 300, false, false],
    [40, 600, 300, false, true],
    [300, 256, 129, true, false],
    [33, 257, 999, true, true],
  ];
  for (const [m, k, n, transposeA, transposeB] of cases) {
    assert.ok(2 * m * n * k >= GEMM_SPLIT_MIN_FLOPS);
    const a = randomTensor(transposeA ? [k, m] : [m, k], m);
    const b = randomTensor(transposeB ? [n, k] : [k, n], n);
    const splits = await compareWithCpu(
      (x, y) => tf.matMul(x, y, transposeA, transposeB),
      [a, b],
      k,
      `matMul ${m}×${k}×${n} ${transposeA} ${transposeB}`,
    );
    assert.ok(splits > 0, "no product ran on a compute thread");
  }
  // Batched products (BatchMatMul, attention's): split by products; with one operand
  // broadcast, the forward only (TensorFlow.js's own gradient does not reduce a broadcast).
  const batched: [number[], number[], boolean, boolean][] = [
    [[8, 96, 96], [8, 96, 96], false, false],
    [[2, 5, 96, 64], [2, 5, 96, 64], false, true],
    [[9, 128, 64], [1, 128, 96], true, false],
  ];
  for (const [aShape, bShape, transposeA, transposeB] of batched) {
    const broadcast = aShape[0] !== bShape[0];
    const splits = await compareWithCpu(
      (x, y) => tf.matMul(x, y, transposeA, transposeB),
      [randomTensor(aShape, aShape[0]), randomTensor(bShape, bShape[0] + 1)],
      aShape[1],
      `batched matMul ${aShape} ${bShape} ${transposeA} ${transposeB}`,
      !broadcast,
    );
    assert.ok(splits > 0, "no batched product ran on a compute thread");
  }
  // The fused dense layer: forward, dW = xᵀ·dz (few rows of C, many columns) and dx.
  await compareWithCpu(
    (x, w, b) => denseLayer(x, w, b, "relu"),
    [randomTensor([128, 1568], 1), randomTensor([1568, 128], 2), randomTensor([128], 3)],
    4,
    "dense",
  );
});

test("gemmBlocks tiles a product exactly: each block's sgemm computes its rows or columns of C", () => {
  // A reference sgemm on byte addresses in one Float32Array, as OpenBLAS reads the heap.
  function sgemm(memory: Float32Array, g: GemmBlock): void {
    const at = (address: number) => address / 4;
    for (let i = 0; i < g.m; i++) {
      for (let j = 0; j < g.n; j++) {
        let sum = 0;
        for (let p = 0; p < g.k; p++) {
          const a = memory[at(g.a) + (g.transA ? p * g.lda + i : i * g.lda + p)];
          const b = memory[at(g.b) + (g.transB ? j * g.ldb + p : p * g.ldb + j)];
          sum += a * b;
        }
        const c = at(g.c) + i * g.ldc + j;
        memory[c] = sum + g.beta * memory[c];
      }
    }
  }
  fc.assert(
    fc.property(
      fc.record({
        m: fc.integer({ min: 1, max: 9 }),
        n: fc.integer({ min: 1, max: 9 }),
        k: fc.integer({ min: 1, max: 5 }),
        transA: fc.boolean(),
        transB: fc.boolean(),
        beta: fc.constantFrom(0, 1),
        parts: fc.integer({ min: 1, max: 4 }),
      }),
      (c) => {
        const [aSize, bSize, cSize] = [c.m * c.k, c.k * c.n, c.m * c.n];
        const whole: GemmBlock = {
          transA: c.transA,
          transB: c.transB,
          m: c.m,
          n: c.n,
          k: c.k,
          a: 0,
          lda: c.transA ? c.m : c.k,
          b: aSize * 4,
          ldb: c.transB ? c.k : c.n,
          c: (aSize + bSize) * 4,
          ldc: c.n,
          beta: c.beta,
        };
        const start = Float32Array.from(
          { length: aSize + bSize + cSize },
          (_, i) => (i * 7) % 5 - 2,
        );
        const expected = start.slice();
        sgemm(expected, whole);
        const split = start.slice();
        const blocks = gemmBlocks(whole, c.parts);
        assert.equal(blocks.length, Math.min(c.parts, Math.max(c.m, c.n)));
        for (const block of blocks) sgemm(split, block);
        assert.deepEqual(split, expected);
      },
    ),
    { numRuns: 300 },
  );
});

test("a compute thread that fails names itself and why; the threads keep working after", async () => {
  await initBackend("native", { threads: 2 });
  const pool = computePool()!;
  const heapBytes = wasmHeap(tf.findBackend("wasm")!).buffer.byteLength;
  assert.throws(
    () =>
      pool.run([{
        kind: "pool2",
        // Far past the heap's end: the SIMD kernel traps on the compute thread.
        job: {
          from: 0,
          to: 1,
          height: 2,
          width: 2,
          channels: 4,
          x: heapBytes + 4096,
          y: 0,
          dx: -1,
        },
      }], () => {}),
    /Compute thread 1 failed: .*out of bounds/,
  );
  assert.equal(pool.busy, false);
  const splits = await compareWithCpu(
    (t) => tf.maxPool(t as tf.Tensor4D, 2, 2, "valid"),
    [randomTensor([64, 28, 28, 16], 9)],
    10,
    "after a failure",
  );
  assert.ok(splits > 0);
});

test("mnist-cnn trains to the same parameters with --threads 2 as with one thread", async () => {
  const workload = getWorkload("mnist-cnn");
  const data = await workload.loadData(0);
  const batchSize = workload.defaults.batchSize;
  const width = data.train.x.length / data.train.size;
  const batch = {
    x: data.train.x.slice(0, batchSize * width),
    y: data.train.y.slice(0, batchSize),
    size: batchSize,
  };
  const paramsAfter = async (threads: number) => {
    await initBackend("native", { threads });
    const trainer = new Trainer(workload.createModel(), data, workload.defaults.optimizer, {
      seed: 1,
    });
    for (let i = 0; i < 3; i++) trainer.applyGradients(trainer.computeGradients(batch).grads);
    const params = trainer.getParams();
    return params;
  };
  const one = await paramsAfter(1);
  const before = computePoolRuns();
  const two = await paramsAfter(2);
  assert.ok(computePoolRuns() > before, "no split ran");
  let worst = 0;
  for (let i = 0; i < one.length; i++) worst = Math.max(worst, Math.abs(one[i] - two[i]));
  assert.ok(worst < 1e-5, `max |Δparam| ${worst}`);
  await initBackend("native");
});
