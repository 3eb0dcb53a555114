/**
 * `results.json` validation against the JSON Schema kept beside this file, on write and on
 * read.
 *
 * @module
 */
import { Ajv } from "ajv";
import type { Results } from "./results.ts";
import { UsageError } from "../core/errors.ts";
import { readInputText } from "../core/read_input.ts";
import schema from "./results.schema.json" with { type: "json" };

const validate = new Ajv({ allErrors: false }).compile(schema);

/**
 * Check `data` against the results schema.
 *
 * @param data parsed JSON
 * @param source where it came from, for the error message
 * @returns the data, typed
 * @throws UsageError naming the first problem
 * @example
 * ```ts
 * const text = await Deno.readTextFile("results/latest/results.json");
 * validateResults(JSON.parse(text), "results.json");
 * ```
 */
export function validateResults(data: unknown, source: string): Results {
  if (!validate(data)) {
    const e = validate.errors?.[0];
    const where = e?.instancePath ? e.instancePath : "the top level";
    throw new UsageError(`Invalid results in ${source}: ${where} ${e?.message ?? "is malformed"}`);
  }
  return data as unknown as Results;
}

/**
 * The largest `results.json` read (256 MiB): a bench's is tens of KiB, and even with every run's
 * step samples (at most 10,000 per repeat) a few MiB.
 */
export const MAX_RESULTS_BYTES = 256 << 20;

/**
 * Read and validate a `results.json`: a regular file of at most {@linkcode MAX_RESULTS_BYTES}.
 *
 * @param path the file
 * @returns the results
 * @throws UsageError when the file is missing, not JSON, or not valid
 * @example
 * ```ts
 * const results = await readResults("results/latest/results.json");
 * ```
 */
export async function readResults(path: string): Promise<Results> {
  const text = await readInputText(path, {
    limitBytes: MAX_RESULTS_BYTES,
    limitName: "a results file",
  });
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new UsageError(`Cannot parse ${path}: not valid JSON (truncated?)`);
  }
  return validateResults(data, path);
}
