/**
 * Writes the saved Layers models of `examples/models/` — `model.json` and `weights.bin`, as
 * `model.save()` writes them (with the compile configuration: `includeOptimizer`) — from the
 * builders of `layers_models.ts`. TensorFlow.js draws unseeded initial weights from
 * `Math.random`, which this script seeds while it builds, so the files come out the same
 * every time. Run it with:
 *
 *     deno run --allow-all examples/save_layers_models.ts
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { createRng } from "../mod.ts";
import { buildBatchNormCnn, buildCnn, buildMlp } from "./layers_models.ts";

/** The folder the models go to, one subfolder each. */
const OUT = new URL("./models/", import.meta.url);

/** The models written, by folder name. */
export const SAVED_MODELS = { mlp: buildMlp, cnn: buildCnn, "bn-cnn": buildBatchNormCnn };

/** One buffer of the weight data, whether tfjs hands one or several. */
function concat(data: ArrayBuffer | ArrayBuffer[]): Uint8Array {
  const parts = (Array.isArray(data) ? data : [data]).map((b) => new Uint8Array(b));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Save `model` into `dir` as `model.json` and `weights.bin`, in tfjs's file format.
 *
 * @param model the model
 * @param dir the folder (made if missing)
 */
export async function saveModel(model: tf.LayersModel, dir: URL): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const json = {
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        modelTopology: artifacts.modelTopology,
        trainingConfig: artifacts.trainingConfig,
        weightsManifest: [{ paths: ["weights.bin"], weights: artifacts.weightSpecs }],
      };
      await Deno.writeTextFile(new URL("model.json", dir), JSON.stringify(json));
      await Deno.writeFile(new URL("weights.bin", dir), concat(artifacts.weightData!));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
    { includeOptimizer: true },
  );
}

if (import.meta.main) {
  tf.env().set("IS_NODE", false);
  await tf.setBackend("cpu");
  const random = Math.random;
  const rng = createRng(0);
  Math.random = rng;
  try {
    for (const [name, build] of Object.entries(SAVED_MODELS)) {
      await saveModel(build(), new URL(`${name}/`, OUT));
      console.log(`Wrote examples/models/${name}/model.json and weights.bin`);
    }
  } finally {
    Math.random = random;
  }
}
