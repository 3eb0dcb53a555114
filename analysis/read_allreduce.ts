/**
 * Reading the `allreduce.json` the `allreduce` task leaves beside the reports, so `report.md`
 * and `report.html` can include it (and `predict` can take its link models).
 *
 * @module
 */
import { join } from "node:path";
import { ALLREDUCE_SCHEMA, type AllreduceResult } from "../bench/allreduce.ts";
import { UsageError } from "../core/errors.ts";
import { readInputText } from "../core/read_input.ts";

function isRow(row: unknown): boolean {
  const r = row as Record<string, unknown>;
  return typeof r === "object" && r !== null &&
    ["worldSize", "bytes", "usPerOp", "algbwGBps", "busbwGBps"].every((k) =>
      typeof r[k] === "number"
    );
}

function isLinkModel(entry: unknown): boolean {
  const e = entry as Record<string, unknown>;
  return typeof e === "object" && e !== null && typeof e.transport === "string" &&
    ["worldSize", "alphaUs", "betaGBps", "residual"].every((k) =>
      typeof e[k] === "number" && (e[k] as number) >= 0
    );
}

/** The largest `allreduce.json` read (64 MiB): a full run's is about 20 KiB. */
export const MAX_ALLREDUCE_BYTES = 64 << 20;

/**
 * Read `allreduce.json` from `dir` if there is one: a regular file of at most
 * {@linkcode MAX_ALLREDUCE_BYTES}.
 *
 * @param dir the report folder
 * @returns the all-reduce results, or null when the folder has none
 * @throws UsageError when the file exists but is not valid `paratrain/allreduce@1`
 * @example
 * ```ts
 * const allreduce = await readAllreduce("results/latest");
 * ```
 */
export async function readAllreduce(dir: string): Promise<AllreduceResult | null> {
  return await readAllreduceAt(join(dir, "allreduce.json"), true);
}

/**
 * Read and check an `allreduce.json`: a regular file of at most
 * {@linkcode MAX_ALLREDUCE_BYTES}.
 *
 * @param path the file
 * @returns the all-reduce results
 * @throws UsageError when the file is missing, unreadable, too big or not valid
 * `paratrain/allreduce@1`
 * @example
 * ```ts
 * const allreduce = await readAllreduceFile("results/latest/allreduce.json");
 * ```
 */
export async function readAllreduceFile(path: string): Promise<AllreduceResult> {
  return (await readAllreduceAt(path, false))!;
}

async function readAllreduceAt(path: string, missingOk: boolean): Promise<AllreduceResult | null> {
  const text = await readInputText(path, {
    limitBytes: MAX_ALLREDUCE_BYTES,
    limitName: "an all-reduce table",
    missingOk,
  });
  if (text === null) return null;
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(text);
  } catch {
    throw new UsageError(`Cannot parse ${path}: not valid JSON (truncated?)`);
  }
  const raw = data?.raw as Record<string, unknown> | undefined;
  if (data?.schema !== ALLREDUCE_SCHEMA) {
    throw new UsageError(
      `Invalid all-reduce results in ${path}: schema is not "${ALLREDUCE_SCHEMA}"`,
    );
  }
  if (typeof raw?.GBps !== "number" || !Array.isArray(data.rows) || !data.rows.every(isRow)) {
    throw new UsageError(`Invalid all-reduce results in ${path}: raw.GBps or rows are malformed`);
  }
  if (
    data.linkModel !== undefined &&
    !(Array.isArray(data.linkModel) && data.linkModel.every(isLinkModel))
  ) {
    throw new UsageError(`Invalid all-reduce results in ${path}: linkModel is malformed`);
  }
  return data as unknown as AllreduceResult;
}
