import { resolve } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { pathToFileURL } from "node:url";
import { quote, UsageError } from "../core/errors.ts";
import type { Workload } from "../core/workload.ts";
import { getWorkload } from "./registry.ts";
import { isLayersModel, layersWorkload } from "./layers_workload.ts";
import { loadLayersModelFile } from "./load_layers_model.ts";

/** The prefix of a saved Layers model's reference: `model:PATH/model.json`. */
export const MODEL_PREFIX = "model:";

/** Options for {@linkcode resolveWorkload}: what a Layers model trains on and with. */
export interface ResolveOptions {
  /** `--data`: `synthetic` (default), `mnist`, `iris` or `module-url#export`. */
  data?: string;
  /** `--loss`: instead of the model's compile configuration. */
  loss?: string;
}

/**
 * Whether a reference names a TensorFlow.js Layers model, or may (a module export, which is a
 * Layers model when it is a function; a Workload otherwise).
 *
 * @param ref a workload reference
 * @returns true for `model:…` and `…#export`
 * @example
 * ```ts
 * isModuleOrModel("model:/tmp/model.json"); // true
 * isModuleOrModel("mnist-mlp"); // false
 * ```
 */
export function isModuleOrModel(ref: string): boolean {
  return ref.startsWith(MODEL_PREFIX) || ref.includes("#");
}

/**
 * A reference as every process and thread can resolve it, whatever its working folder:
 * `model:` with an absolute path, a module export with an absolute URL (a plain path made a
 * `file://` URL); a built-in name unchanged.
 *
 * @param ref `model:./m/model.json`, `./my_model.ts#build`, `file:///…#build`, `mnist-mlp`
 * @returns the canonical reference
 * @example
 * ```ts
 * canonicalReference("model:m/model.json"); // "model:/current/folder/m/model.json"
 * ```
 */
export function canonicalReference(ref: string): string {
  if (ref.startsWith(MODEL_PREFIX)) {
    return `${MODEL_PREFIX}${resolve(ref.slice(MODEL_PREFIX.length))}`;
  }
  const hash = ref.lastIndexOf("#");
  if (hash < 0) return ref;
  const url = ref.slice(0, hash);
  // A URL keeps its scheme (file:, https:, npm:); anything else is a path.
  const absolute = /^[a-z][a-z0-9+.-]*:/i.test(url) && !/^[a-z]:[\\/]/i.test(url)
    ? url
    : pathToFileURL(resolve(url)).href;
  return `${absolute}${ref.slice(hash)}`;
}

/** Resolved references of this process: a model file is read, a module function run, once. */
const resolved = new Map<string, Promise<Workload>>();

/**
 * A workload from a built-in name, a saved Layers model (`model:PATH/model.json`), or
 * `module-url#exportName` for a user's own — a {@linkcode Workload}, or a function returning a
 * `tf.LayersModel` — so that DDP ranks and DP workers, which run in other processes and
 * threads, can load it too. Each reference is resolved once per process.
 *
 * @param ref `mnist-mlp`, `model:/home/me/m/model.json`, or e.g.
 *   `file:///home/me/my_workload.ts#myWorkload`
 * @param options `--data` and `--loss`, for Layers models
 * @returns the workload
 * @throws UsageError in one line naming the problem and the fix
 * @example
 * ```ts
 * await resolveWorkload("iris-logreg");
 * ```
 */
export function resolveWorkload(ref: string, options: ResolveOptions = {}): Promise<Workload> {
  if (!isModuleOrModel(ref)) return Promise.resolve(getWorkload(ref));
  const key = JSON.stringify([ref, options.data ?? null, options.loss ?? null]);
  let found = resolved.get(key);
  if (!found) {
    found = resolveModuleOrModel(ref, options);
    found.catch(() => resolved.delete(key));
    resolved.set(key, found);
  }
  return found;
}

/**
 * Building a Layers model makes tensors: where no backend is set yet (a command checking its
 * arguments before any run), the model is built on `cpu`; a run sets its own backend first.
 */
async function ensureBackend(): Promise<void> {
  if (tf.engine().backendName) return;
  // As backends/backend.ts: no banner suggesting tfjs-node.
  tf.env().set("IS_NODE", false);
  await tf.setBackend("cpu");
}

async function resolveModuleOrModel(ref: string, options: ResolveOptions): Promise<Workload> {
  await ensureBackend();
  if (ref.startsWith(MODEL_PREFIX)) {
    const file = ref.slice(MODEL_PREFIX.length);
    const { model, weights } = await loadLayersModelFile(file);
    return layersWorkload(model, {
      ...options,
      name: ref,
      source: `saved model ${file}`,
      savedWeights: weights,
    });
  }
  const hash = ref.lastIndexOf("#");
  const url = ref.slice(0, hash);
  const name = ref.slice(hash + 1);
  let module: Record<string, unknown>;
  try {
    module = await import(url);
  } catch (error) {
    throw new UsageError(
      `Cannot load workload module ${quote(url)}: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  const found = module[name];
  if (found && typeof (found as Workload).createModel === "function") return found as Workload;
  const neither = () =>
    new UsageError(
      `Workload module ${quote(url)} has no export ${
        quote(name)
      } that is a Workload or a function returning a tf.LayersModel`,
    );
  if (typeof found !== "function") throw neither();
  let model: unknown;
  try {
    model = await (found as () => unknown)();
  } catch (error) {
    throw new UsageError(
      `${url}#${name} failed building its model: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  if (!isLayersModel(model)) throw neither();
  return layersWorkload(model, { ...options, name: ref, source: `${name}() of ${url}` });
}
