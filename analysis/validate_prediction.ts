/**
 * `prediction.json` validation against the JSON Schema kept beside this file, on write and on
 * read, as `results.json`'s.
 *
 * @module
 */
import { join } from "node:path";
import { Ajv } from "ajv";
import { UsageError } from "../core/errors.ts";
import type { PredictionFile } from "./predict.ts";
import schema from "./prediction.schema.json" with { type: "json" };

const validate = new Ajv({ allErrors: false }).compile(schema);

/**
 * Check `data` against the prediction schema.
 *
 * @param data parsed JSON
 * @param source where it came from, for the error message
 * @returns the data, typed
 * @throws UsageError naming the first problem
 * @example
 * ```ts
 * validatePrediction(JSON.parse(await Deno.readTextFile("prediction.json")), "prediction.json");
 * ```
 */
export function validatePrediction(data: unknown, source: string): PredictionFile {
  if (!validate(data)) {
    const e = validate.errors?.[0];
    const where = e?.instancePath ? e.instancePath : "the top level";
    throw new UsageError(
      `Invalid predictions in ${source}: ${where} ${e?.message ?? "is malformed"}`,
    );
  }
  return data as unknown as PredictionFile;
}

/**
 * Read `prediction.json` from `dir` if there is one (beside the reports).
 *
 * @param dir the report folder
 * @returns the predictions, or null when the folder has none
 * @throws UsageError when the file exists but is not valid
 * @example
 * ```ts
 * const prediction = await readPrediction("results/latest");
 * ```
 */
export async function readPrediction(dir: string): Promise<PredictionFile | null> {
  const path = join(dir, "prediction.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw new UsageError(`Cannot read ${path}: ${(error as Error).message.split("\n")[0]}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new UsageError(`Cannot parse ${path}: not valid JSON (truncated?)`);
  }
  return validatePrediction(data, path);
}
