/**
 * Reading the `allreduce.json` the `allreduce` task leaves beside the reports, so `report.md`
 * and `report.html` can include it.
 *
 * @module
 */
import { join } from "node:path";
import { ALLREDUCE_SCHEMA, type AllreduceResult } from "../bench/allreduce.ts";
import { UsageError } from "../core/errors.ts";

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

/**
 * Read `allreduce.json` from `dir` if there is one.
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
  const path = join(dir, "allreduce.json");
  try {
    await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
  }
  return await readAllreduceFile(path);
}

/**
 * Read and check an `allreduce.json`.
 *
 * @param path the file
 * @returns the all-reduce results
 * @throws UsageError when the file is missing, unreadable or not valid `paratrain/allreduce@1`
 * @example
 * ```ts
 * const allreduce = await readAllreduceFile("results/latest/allreduce.json");
 * ```
 */
export async function readAllreduceFile(path: string): Promise<AllreduceResult> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(`Cannot read ${path}: ${(error as Error).message.split("\n")[0]}`);
  }
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
