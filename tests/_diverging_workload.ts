/**
 * A workload whose training blows up on purpose (an update no float32 can hold), for the
 * tests that check a run fails naming the step where its parameters stopped being numbers.
 *
 * @module
 */
import { dense, denseFlops, denseParams } from "../core/layers.ts";
import type { Dataset, Workload } from "../core/workload.ts";

const SAMPLES = 64;
const FEATURES = 4;

function dataset(): Dataset {
  // Features near 1e30 (finite in float32): gradients of that size, times the learning rate,
  // are far past float32's range after the first update.
  const x = Float32Array.from(
    { length: SAMPLES * FEATURES },
    (_, i) => (((i * 37) % 11) - 5) * 1e30,
  );
  const y = Int32Array.from({ length: SAMPLES }, (_, i) => i % 2);
  const split = { x, y, size: SAMPLES };
  return { featureShape: [FEATURES], numClasses: 2, train: split, test: split };
}

/** Plain SGD at 1e10 on features of 1e30: the first update overflows float32. */
export const diverging: Workload = {
  name: "diverging",
  description: "a linear model on features of 1e30, trained at a learning rate of 1e10",
  defaults: { batchSize: 16, steps: 5, optimizer: { kind: "sgd", learningRate: 1e10 } },
  loadData: () => Promise.resolve(dataset()),
  createModel: () => ({
    params: denseParams("out", FEATURES, 2),
    forward: (p, x) => dense(p, "out", x),
    trainFlopsPerSample: denseFlops(FEATURES, 2),
  }),
};
