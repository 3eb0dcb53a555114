import * as tf from "@tensorflow/tfjs-core";
import { conv, convFlops, convParams, dense, denseFlops, denseParams } from "../core/layers.ts";
import type { Workload } from "../core/workload.ts";
import { loadMnist } from "./_mnist_data.ts";

/** Filters of the first and second conv blocks. */
const FILTERS = [16, 32] as const;
/** Width of the dense head's hidden layer. */
const HIDDEN = 64;
/** Flattened size after two 2×2 pools: 7 × 7 × FILTERS[1]. */
const FLAT = 7 * 7 * FILTERS[1];

/** A small CNN (two conv3×3 + ReLU + max-pool blocks, dense head) on real MNIST digits. */
export const mnistCnn: Workload = {
  name: "mnist-cnn",
  description: `10,000 real MNIST digits, CNN conv3x3(${FILTERS[0]})-pool-conv3x3(${
    FILTERS[1]
  })-pool-dense(${HIDDEN})-10`,
  defaults: { batchSize: 128, steps: 30, optimizer: { kind: "adam", learningRate: 1e-3 } },
  loadData: (seed) => loadMnist(seed, true),
  createModel: () => ({
    params: [
      ...convParams("conv1", 3, 1, FILTERS[0]),
      ...convParams("conv2", 3, FILTERS[0], FILTERS[1]),
      ...denseParams("fc1", FLAT, HIDDEN),
      ...denseParams("out", HIDDEN, 10),
    ],
    forward: (p, x) => {
      const c1 = tf.maxPool(conv(p, "conv1", x, "relu") as tf.Tensor4D, 2, 2, "valid");
      const c2 = tf.maxPool(conv(p, "conv2", c1, "relu") as tf.Tensor4D, 2, 2, "valid");
      const h = dense(p, "fc1", tf.reshape(c2, [-1, FLAT]), "relu");
      return dense(p, "out", h);
    },
    trainFlopsPerSample: convFlops(28, 28, 3, 1, FILTERS[0]) +
      convFlops(14, 14, 3, FILTERS[0], FILTERS[1]) + denseFlops(FLAT, HIDDEN) +
      denseFlops(HIDDEN, 10),
    fusedLoss: true,
  }),
};
