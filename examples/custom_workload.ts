/**
 * Bring your own workload: a two-moons dataset and a small MLP, trained on one device
 * through paratrain's public API. Run it with:
 *
 *     deno run --allow-all examples/custom_workload.ts
 *
 * @module
 */
import {
  createRng,
  dense,
  denseFlops,
  denseParams,
  normal,
  registerWorkload,
  runSingle,
  splitDataset,
  type Workload,
} from "../mod.ts";

/** Points per moon. */
const POINTS = 512;

/** Two interleaved half-circles with Gaussian noise: not linearly separable. */
export const twoMoons: Workload = {
  name: "two-moons",
  description: "two interleaved half-circles, MLP 2-32-2",
  defaults: { batchSize: 64, steps: 150, optimizer: { kind: "adam", learningRate: 0.02 } },
  loadData: (seed) => {
    const rng = createRng(seed);
    const x = new Float32Array(2 * POINTS * 2);
    const y = new Int32Array(2 * POINTS);
    for (let i = 0; i < 2 * POINTS; i++) {
      const moon = i % 2;
      const t = Math.PI * rng();
      x[2 * i] = (moon ? 1 - Math.cos(t) : Math.cos(t)) + 0.1 * normal(rng);
      x[2 * i + 1] = (moon ? 0.5 - Math.sin(t) : Math.sin(t)) + 0.1 * normal(rng);
      y[i] = moon;
    }
    return Promise.resolve(splitDataset(x, y, { featureShape: [2], numClasses: 2 }, seed));
  },
  createModel: () => ({
    params: [...denseParams("hidden", 2, 32), ...denseParams("out", 32, 2)],
    forward: (p, x) => dense(p, "out", dense(p, "hidden", x, "relu")),
    trainFlopsPerSample: denseFlops(2, 32) + denseFlops(32, 2),
  }),
};

/**
 * Train {@linkcode twoMoons} on one device and return what was measured.
 *
 * @param steps training steps
 * @returns the run's measurement
 */
export function trainTwoMoons(steps = twoMoons.defaults.steps) {
  registerWorkload(twoMoons);
  return runSingle({
    workload: twoMoons.name,
    strategy: "single",
    worldSize: 1,
    backend: "wasm",
    fastKernels: true,
    seed: 0,
    steps,
    warmup: 0,
    globalBatch: twoMoons.defaults.batchSize,
    snapshotStep: steps,
  });
}

if (import.meta.main) {
  const m = await trainTwoMoons();
  console.log(
    `two-moons: ${m.samplesPerSec.toFixed(0)} samples/s, final loss ${m.finalLoss.toFixed(3)}, ` +
      `holdout accuracy ${m.accuracy.toFixed(3)}`,
  );
}
