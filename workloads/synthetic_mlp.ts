import { dense, denseFlops, denseParams } from "../core/layers.ts";
import { createRng, normal } from "../core/rng.ts";
import type { Dataset, Workload } from "../core/workload.ts";
import { splitDataset } from "./split_dataset.ts";

/** Samples drawn from the Gaussian clusters. */
const SAMPLES = 8192;
/** Input features. */
const FEATURES = 64;
/** Clusters, one per class. */
const CLASSES = 8;
/** Hidden layer width. */
const HIDDEN = 256;
/** Standard deviation of each cluster around its centre (centres are N(0, 1)). */
const CLUSTER_STD = 1.5;

function gaussianClusters(seed: number): Dataset {
  const rng = createRng(seed);
  const centres = Array.from(
    { length: CLASSES },
    () => Array.from({ length: FEATURES }, () => normal(rng)),
  );
  const x = new Float32Array(SAMPLES * FEATURES);
  const y = new Int32Array(SAMPLES);
  for (let i = 0; i < SAMPLES; i++) {
    const c = i % CLASSES;
    y[i] = c;
    for (let f = 0; f < FEATURES; f++) {
      x[i * FEATURES + f] = centres[c][f] + CLUSTER_STD * normal(rng);
    }
  }
  return splitDataset(x, y, { featureShape: [FEATURES], numClasses: CLASSES }, seed);
}

/** Seeded Gaussian clusters and an MLP: no data dependency, cheap, fully deterministic. */
export const syntheticMlp: Workload = {
  name: "synthetic-mlp",
  description:
    `${CLASSES} seeded Gaussian clusters in ${FEATURES}-d, MLP ${FEATURES}-${HIDDEN}-${HIDDEN}-${CLASSES}`,
  defaults: { batchSize: 256, steps: 40, optimizer: { kind: "adam", learningRate: 1e-3 } },
  loadData: (seed) => Promise.resolve(gaussianClusters(seed)),
  createModel: () => ({
    params: [
      ...denseParams("fc1", FEATURES, HIDDEN),
      ...denseParams("fc2", HIDDEN, HIDDEN),
      ...denseParams("out", HIDDEN, CLASSES),
    ],
    forward: (p, x) => {
      const h1 = dense(p, "fc1", x, "relu");
      const h2 = dense(p, "fc2", h1, "relu");
      return dense(p, "out", h2);
    },
    trainFlopsPerSample: denseFlops(FEATURES, HIDDEN) + denseFlops(HIDDEN, HIDDEN) +
      denseFlops(HIDDEN, CLASSES),
    fusedLoss: true,
  }),
};
