/**
 * A TensorFlow.js Layers model saved by `model.save()`: `model.json` (its topology, training
 * configuration and weights manifest) and the weight files the manifest names beside it, each
 * read as every input is (`core/read_input.ts`: regular files only, bounded), then built by
 * tfjs-layers from memory.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import * as tfl from "@tensorflow/tfjs";
import { quote, UsageError } from "../core/errors.ts";
import { readInputFile, readInputText } from "../core/read_input.ts";
import type { LayersModelLike } from "./layers_workload.ts";

/** The most bytes a `model.json` may hold (its topology; the weights are in other files). */
export const MODEL_JSON_LIMIT_BYTES = 64 * 1024 * 1024;

/** Bytes per value of the weight dtypes a manifest may name. */
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/** One weight of a manifest (tfjs's `WeightsManifestEntry`). */
interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  group?: string;
  quantization?: { dtype: string };
}

/** A saved model: the model, and each weight's saved values by name. */
export interface SavedLayersModel {
  model: LayersModelLike;
  /** Float32 values of every weight of the model, by the name the manifest gives it. */
  weights: Map<string, Float32Array>;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function specBytes(spec: WeightSpec, file: string): number {
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const bytes = dtype === "float16" || dtype === "uint16"
    ? 2
    : dtype === "uint8"
    ? 1
    : DTYPE_BYTES[dtype];
  if (bytes === undefined) {
    throw new UsageError(
      `Cannot read ${file}: weight ${quote(spec.name)} has dtype ${
        quote(dtype)
      }, which tfjs does not save`,
    );
  }
  return size(spec.shape) * bytes;
}

/** `model.json`'s parsed object, refused in one line when it is not a Layers model. */
function parseModelJson(text: string, file: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `Cannot read Layers model ${file}: not JSON (${
        (error as Error).message.split("\n")[0]
      }); give the model.json that model.save wrote`,
    );
  }
  const obj = json as Record<string, unknown> | null;
  if (!obj || typeof obj !== "object" || Array.isArray(obj)) {
    throw new UsageError(
      `Cannot read Layers model ${file}: not a JSON object; give the model.json that model.save wrote`,
    );
  }
  if (obj.format === "graph-model") {
    throw new UsageError(
      `Cannot train ${file}: it is a graph model (tf.loadGraphModel, inference only); paratrain trains Layers models saved by model.save`,
    );
  }
  const topology = obj.modelTopology as Record<string, unknown> | undefined;
  if (!topology || typeof topology !== "object") {
    throw new UsageError(
      `Cannot train ${file}: it is not a TensorFlow.js Layers model (no modelTopology); save one with model.save`,
    );
  }
  if (!Array.isArray(obj.weightsManifest)) {
    throw new UsageError(
      `Cannot train ${file}: it has no weightsManifest, so no weights; save the model with model.save, which writes them`,
    );
  }
  return obj;
}

/** Every weight file of the manifest, read and checked against the sizes it declares. */
async function readWeights(
  manifest: { paths: string[]; weights: WeightSpec[] }[],
  file: string,
): Promise<{ specs: WeightSpec[]; data: Uint8Array }> {
  const specs: WeightSpec[] = [];
  const parts: Uint8Array[] = [];
  for (const group of manifest) {
    if (!Array.isArray(group?.paths) || !Array.isArray(group?.weights)) {
      throw new UsageError(
        `Cannot train ${file}: its weightsManifest is malformed (each group needs paths and weights); save the model again with model.save`,
      );
    }
    const expected = group.weights.reduce((s, spec) => s + specBytes(spec, file), 0);
    let got = 0;
    for (const path of group.paths) {
      const at = resolve(dirname(file), path);
      const bytes = await readInputFile(at, {
        what: "weights file",
        limitBytes: Math.max(expected, 1),
        limitName: "the weights model.json declares",
        missingOk: true,
      });
      if (bytes === null) {
        throw new UsageError(
          `Cannot train ${file}: its weights file ${path} is missing (looked for ${at}); put the files model.save wrote beside model.json`,
        );
      }
      parts.push(bytes);
      got += bytes.length;
    }
    if (got !== expected) {
      throw new UsageError(
        `Cannot train ${file}: its weights files hold ${got} bytes, its manifest declares ${expected}; save the model again with model.save`,
      );
    }
    specs.push(...group.weights);
  }
  const data = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const part of parts) {
    data.set(part, at);
    at += part.length;
  }
  return { specs, data };
}

/** Each model weight's float32 values, by name (optimizer weights are left out). */
function decodeWeights(specs: WeightSpec[], data: Uint8Array, file: string) {
  const weights = new Map<string, Float32Array>();
  let offset = 0;
  for (const spec of specs) {
    const bytes = specBytes(spec, file);
    if (spec.group !== "optimizer") {
      if (spec.quantization || spec.dtype !== "float32") {
        throw new UsageError(
          `Cannot train ${file}: weight ${quote(spec.name)} is stored as ${
            spec.quantization?.dtype ?? spec.dtype
          }; paratrain trains from float32 weights: save the model without quantization`,
        );
      }
      const copy = data.slice(offset, offset + bytes);
      weights.set(spec.name, new Float32Array(copy.buffer, 0, size(spec.shape)));
    }
    offset += bytes;
  }
  return weights;
}

/**
 * Load a Layers model saved by `model.save()`.
 *
 * @param file its `model.json`
 * @returns the model and its saved weights
 * @throws UsageError in one line for a file that is missing, not JSON, not a Layers model
 *   (a graph model included), with a weights file missing or of another size than declared,
 *   quantized weights, or a topology tfjs-layers cannot build (an unknown layer class)
 * @example
 * ```ts
 * const { model } = await loadLayersModelFile("examples/models/mlp/model.json");
 * ```
 */
export async function loadLayersModelFile(file: string): Promise<SavedLayersModel> {
  const text = await readInputText(file, {
    what: "Layers model",
    limitBytes: MODEL_JSON_LIMIT_BYTES,
    limitName: "a model.json",
  });
  const json = parseModelJson(text, file);
  const { specs, data } = await readWeights(
    json.weightsManifest as { paths: string[]; weights: WeightSpec[] }[],
    file,
  );
  const weights = decodeWeights(specs, data, file);
  let model: unknown;
  try {
    model = await tfl.loadLayersModel(tfl.io.fromMemory({
      modelTopology: json.modelTopology as object,
      weightSpecs: specs as tfl.io.WeightsManifestEntry[],
      weightData: data.buffer as ArrayBuffer,
      ...(json.trainingConfig
        ? { trainingConfig: json.trainingConfig as tfl.io.TrainingConfig }
        : {}),
    }));
  } catch (error) {
    throw new UsageError(
      `Cannot build the Layers model in ${file}: ${
        (error as Error).message.split("\n")[0]
      }; paratrain builds what tfjs-layers 4.22 can load`,
    );
  }
  return { model: model as LayersModelLike, weights };
}
