/**
 * The `native` backend as a user meets it: chosen by default where OpenBLAS loads and
 * refused with the install hint where it does not; correct under concurrent callers (DP's
 * Web Workers share one library); training on it agrees with wasm, and DP and DDP on it
 * still match single. Tests that need OpenBLAS are skipped with one line where it is
 * missing; CI sets PARATRAIN_REQUIRE_OPENBLAS=1 to make that a failure.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backends/backend.ts";
import { backendSeam } from "../core/backend_seam.ts";
import { nativeWritesInPlace } from "../backends/kernels/register_native_kernels.ts";
import { createSimdAdam } from "../backends/kernels/_simd.ts";
import { createFlatOptimizer } from "../core/flat_optimizer.ts";
import { buildResults } from "../analysis/build_results.ts";
import type { VerdictRecord } from "../analysis/matrix.ts";
import { validateResults } from "../analysis/validate_results.ts";
import { runBench } from "../bench/run_bench.ts";
import { runLabel } from "../core/run_types.ts";
import { convParams, dense, denseParams } from "../core/layers.ts";
import { Trainer } from "../core/trainer.ts";
import type { ModelDef } from "../core/workload.ts";
import type { RunMeasurement, RunSpec } from "../core/run_types.ts";
import { betterCore, loadOpenBlas, OPENBLAS_ENV } from "../backends/kernels/_openblas.ts";
import { runDdp } from "../strategies/ddp.ts";
import { runDp } from "../strategies/dp.ts";
import { runSingle } from "../strategies/single.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
const load = loadOpenBlas();
const skip = !load.ok && Deno.env.get("PARATRAIN_REQUIRE_OPENBLAS") !== "1";
if (skip && !load.ok) console.error(`skipped the native backend tests: ${load.reason}`);
const withBlas = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: skip, fn });

/**
 * native and wasm differ only in the summation order inside the matrix products (OpenBLAS's
 * blocking against XNNPACK's) and in bias/row sums; over 20 Adam steps that moves parameters
 * by ~1e-6 (measured), where one step moves them by ~1e-3. 1e-4 separates the two.
 */
const CURVE_TOLERANCE = 1e-4;
/** DP and DDP against single on the same backend: the bound of tests/dp_test.ts and ddp_test.ts. */
const EQUIVALENCE_TOLERANCE = 1e-5;

async function cli(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

function spec(overrides: Partial<RunSpec> = {}): RunSpec {
  return {
    workload: "synthetic-mlp",
    strategy: "single",
    worldSize: 1,
    backend: "native",
    fastKernels: true,
    seed: 3,
    steps: 20,
    warmup: 0,
    globalBatch: 48,
    snapshotStep: 20,
    ...overrides,
  };
}

Deno.test("--backend native without OpenBLAS exits 2 with one line naming the package", async () => {
  const r = await cli(
    ["train", "--workload", "iris-logreg", "--backend", "native", "--steps", "1"],
    { [OPENBLAS_ENV]: "/nonexistent/libopenblas.so" },
  );
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(
    r.stderr,
    /Cannot use --backend native: OpenBLAS could not be loaded from PARATRAIN_OPENBLAS=\/nonexistent\/libopenblas.so .*apt-get install libopenblas0-pthread/,
  );
});

Deno.test("without OpenBLAS the default backend is wasm, and a line says why", async () => {
  const r = await cli(
    ["train", "--workload", "iris-logreg", "--steps", "2"],
    { [OPENBLAS_ENV]: "/nonexistent/libopenblas.so" },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr.split("\n")[0],
    /^backend wasm \(default here\): OpenBLAS could not be loaded/,
  );
  assert.match(r.stdout, /iris-logreg single on wasm/);
});

withBlas("with OpenBLAS the default backend is native, and a line names the library", async () => {
  const r = await cli(["train", "--workload", "iris-logreg", "--steps", "2", "--threads", "2"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr.split("\n")[0],
    /^backend native \(default\): OpenBLAS .*\(pthread, \w+\) from \//,
  );
  assert.match(r.stdout, /iris-logreg single-2t on native/);
});

Deno.test("AVX2 OpenBLAS kernels on an AVX-512 CPU are named, with the AVX-512 family to try", () => {
  const avx512 = new Set(["avx2", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]);
  assert.equal(betterCore("Haswell", avx512), "SkylakeX");
  assert.equal(betterCore("Zen", new Set([...avx512, "avx512_bf16"])), "Cooperlake");
  assert.equal(betterCore("SkylakeX", avx512), null, "already AVX-512");
  assert.equal(betterCore("Cooperlake", avx512), null);
  assert.equal(betterCore("Haswell", new Set(["avx2", "avx512f"])), null, "not all of AVX-512");
});

withBlas("sgemm is correct with Web Workers calling it at once (DP's case)", async () => {
  const workers = [0, 1, 2].map(() =>
    new Worker(new URL("./_sgemm_worker.ts", import.meta.url), { type: "module" })
  );
  try {
    const answers = await Promise.all(
      workers.map((w, i) =>
        new Promise<{ maxError?: number; error?: string }>((resolve, reject) => {
          w.onmessage = (e) => resolve(e.data);
          w.onerror = (e) => reject(new Error(e.message));
          w.postMessage({ seed: i + 1, rounds: 40, size: 96 });
        })
      ),
    );
    for (const [i, answer] of answers.entries()) {
      assert.equal(answer.error, undefined, `worker ${i}: ${answer.error}`);
      // Sums of 96 products of values in ±0.5, float32: a wrong or mixed-up result is ~1.
      assert.ok(answer.maxError! < 1e-4, `worker ${i}: max error ${answer.maxError}`);
    }
  } finally {
    workers.forEach((w) => w.terminate());
  }
});

withBlas("OpenBLAS is the pthread or serial build, and takes the threads it is given", () => {
  if (!load.ok) throw new Error(load.reason);
  assert.ok(["pthread", "sequential"].includes(load.blas.parallel), load.blas.parallel);
  const before = load.blas.threads();
  try {
    load.blas.setThreads(1);
    assert.equal(load.blas.threads(), 1);
  } finally {
    load.blas.setThreads(before);
  }
  return Promise.resolve();
});

for (const workload of ["mnist-mlp", "mnist-cnn"]) {
  withBlas(`${workload}: 20 training steps on native agree with wasm`, async () => {
    const s = spec({ workload, globalBatch: 16, seed: 2 });
    const native = await runSingle(s);
    const wasm = await runSingle({ ...s, backend: "wasm" });
    const diff = maxAbsDiff(native.snapshot, wasm.snapshot);
    assert.ok(diff < CURVE_TOLERANCE, `max |Δparam| ${diff}`);
    // Training moved the parameters far more than the two backends differ.
    const start = await runSingle({ ...s, steps: 1, snapshotStep: 1 });
    assert.ok(maxAbsDiff(native.snapshot, start.snapshot) > 100 * CURVE_TOLERANCE);
    assert.ok(Math.abs(native.finalLoss - wasm.finalLoss) < 1e-3);
  });
}

let singleOnNative: Promise<RunMeasurement> | undefined;
for (const strategy of ["dp", "ddp"] as const) {
  withBlas(`${strategy}-2 on native matches single on native after 20 steps`, async () => {
    singleOnNative ??= runSingle(spec());
    const run = strategy === "dp" ? runDp : runDdp;
    const parallel = await run(spec({ strategy, worldSize: 2 }));
    const diff = maxAbsDiff(parallel.snapshot, (await singleOnNative).snapshot);
    assert.ok(diff < EQUIVALENCE_TOLERANCE, `max |Δparam| ${diff}`);
    assert.equal(parallel.spec.backend, "native");
    for (const w of parallel.workers) assert.ok(w.peakBytes > 0, "memory measured per worker");
  });
}

withBlas(
  "parameters written in place stay seen after a stock XNNPACK kernel packs weights",
  async () => {
    // A depthwise convolution is not native's own: it runs the stock XNNPACK kernel, which
    // keeps the filter it packed. The trainer must then stop writing parameters in place.
    const model: ModelDef = {
      params: [...convParams("c", 3, 1, 2), ...denseParams("out", 6 * 6 * 2, 3)],
      forward: (p, x) => {
        const c = tf.depthwiseConv2d(x as tf.Tensor4D, p["c/kernel"] as tf.Tensor4D, 1, "same");
        return dense(p, "out", tf.reshape(tf.relu(tf.add(c, p["c/bias"])), [-1, 72]));
      },
      trainFlopsPerSample: 1,
    };
    const data = { featureShape: [6, 6, 1], numClasses: 3 };
    const batch = {
      x: Float32Array.from({ length: 4 * 36 }, (_, i) => Math.sin(i)),
      y: Int32Array.from([0, 1, 2, 1]),
      size: 4,
    };
    const train = async (backend: "native" | "wasm") => {
      await initBackend(backend);
      const t = new Trainer(model, data, { kind: "sgd", learningRate: 0.5 }, { seed: 1 });
      const losses = [];
      for (let i = 0; i < 4; i++) {
        const g = t.computeGradients(batch);
        losses.push(g.loss);
        t.applyGradients(g.grads);
      }
      t.dispose();
      return losses;
    };
    const native = await train("native");
    assert.equal(nativeWritesInPlace(), false, "the stock kernel was noticed");
    const wasm = await train("wasm");
    assert.ok(maxAbsDiff(native, wasm) < 1e-5, `losses ${native} against ${wasm}`);
    assert.ok(native[3] < native[0] - 1e-3, `the loss fell: ${native}`);
  },
);

withBlas("Adam in SIMD (float32) follows the float64 JavaScript Adam, tail included", async () => {
  await initBackend("native");
  const size = 1027; // not a multiple of 4: the last 3 go through the scalar tail
  const spec = { kind: "adam", learningRate: 0.01 } as const;
  assert.ok(createSimdAdam(size, { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 }), "module ready");
  // The native backend's seam offers its SIMD Adam to the trainer.
  assert.equal(backendSeam().createAdam, createSimdAdam);
  const simd = createFlatOptimizer(spec, size, { adam: createSimdAdam });
  const js = createFlatOptimizer(spec, size);
  const a = Float32Array.from({ length: size }, (_, i) => Math.sin(i));
  const b = a.slice();
  for (let step = 0; step < 10; step++) {
    const g = Float32Array.from({ length: size }, (_, i) => Math.cos(i * (step + 1)));
    simd.step(a, g);
    js.step(b, g);
  }
  // Ten steps of 0.01 move each parameter by up to 0.1; float32 rounding differs by ~1e-7.
  assert.ok(maxAbsDiff(a, b) < 1e-5, `max diff ${maxAbsDiff(a, b)}`);
  assert.ok(maxAbsDiff(a, Float32Array.from({ length: size }, (_, i) => Math.sin(i))) > 0.05);
});

withBlas(
  "a bench on native runs the best single process (every core's threads) and judges by it",
  async () => {
    const results = buildResults(
      await runBench({
        workloads: ["iris-logreg"],
        strategies: ["single", "ddp"],
        worldSizes: [2],
        quick: true,
        backend: "native",
      }),
    );
    validateResults(JSON.parse(JSON.stringify(results)), "the native bench");
    const cpus = navigator.hardwareConcurrency;
    const labels = results.runs.map((r) => runLabel(r));
    if (cpus < 2) {
      assert.deepEqual(labels, ["single", "ddp-2"]);
      return;
    }
    assert.deepEqual(labels, ["single", `single-${cpus}t`, "ddp-2"]);
    assert.equal(results.config.bestSingleThreads, cpus);
    const [one, many, ddp] = results.runs;
    const best = many.samplesPerSec > one.samplesPerSec ? many : one;
    assert.equal(ddp.bestSingleThreads, best.threads);
    assert.ok(ddp.speedupVsBestSingle! > 0 && ddp.speedupVsBestSingleInterval !== undefined);
    const [verdict] = results.verdicts as VerdictRecord[];
    assert.equal(verdict.workload, "iris-logreg");
    assert.ok(["choose", "keep-single", "inconclusive"].includes(verdict.verdict));
  },
);
