/**
 * Several `results.json` at once, for `report --in A --in B …` and `report --history DIR`:
 * files named one by one, or folders holding them (`DIR/*.json` and `DIR/*\/results.json`).
 * Everything is read and validated before anything is rendered, so bad input writes nothing.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { UsageError } from "../core/errors.ts";
import { type Results, RESULTS_SCHEMA } from "./results.ts";
import { validateResults } from "./validate_results.ts";

/** One results file and where it came from. */
export interface SourcedResults {
  /** The path it was read from, as given (a folder's files joined onto the folder). */
  source: string;
  results: Results;
}

/** What every paratrain file's `schema` starts with; the results' own is `RESULTS_SCHEMA`. */
const PARATRAIN_PREFIX = "paratrain/";
/** The results family, of any version. */
const RESULTS_FAMILY = "paratrain/results@";

async function statOf(path: string): Promise<Deno.FileInfo> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    throw new UsageError(`Cannot read ${path}: ${(error as Error).message.split("\n")[0]}`);
  }
}

async function parseJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(`Cannot read ${path}: ${(error as Error).message.split("\n")[0]}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`Cannot parse ${path}: not valid JSON (truncated?)`);
  }
}

/** The candidate files of a folder: its `*.json`, then each sub-folder's `results.json`. */
async function candidates(dir: string): Promise<string[]> {
  const files: string[] = [];
  const nested: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(".json")) files.push(join(dir, entry.name));
    if (entry.isDirectory) {
      const inner = join(dir, entry.name, "results.json");
      if ((await Deno.stat(inner).catch(() => null))?.isFile) nested.push(inner);
    }
  }
  return [...files.sort(), ...nested.sort()];
}

/**
 * One file's results; null for another paratrain file (`allreduce.json`, `prediction.json`)
 * when `skipOthers`. Any other JSON, or results of another schema version, is an error.
 */
async function readOne(path: string, skipOthers: boolean): Promise<SourcedResults | null> {
  const data = await parseJson(path);
  const schema = (data as { schema?: unknown } | null)?.schema;
  if (typeof schema !== "string" || !schema.startsWith(PARATRAIN_PREFIX)) {
    throw new UsageError(
      `Cannot read ${path}: not a paratrain results file (no "schema": "${RESULTS_SCHEMA}")`,
    );
  }
  if (!schema.startsWith(RESULTS_FAMILY)) {
    if (skipOthers) return null;
    throw new UsageError(`Cannot read ${path}: it holds ${schema}, not ${RESULTS_SCHEMA}`);
  }
  if (schema !== RESULTS_SCHEMA) {
    throw new UsageError(
      `Cannot mix results schemas: ${path} is ${schema}; this version reads ${RESULTS_SCHEMA}`,
    );
  }
  return { source: path, results: validateResults(data, path) };
}

/** The results of a folder; other paratrain files beside them are skipped. */
async function readFolder(dir: string): Promise<SourcedResults[]> {
  const found: SourcedResults[] = [];
  for (const path of await candidates(dir)) {
    const one = await readOne(path, true);
    if (one) found.push(one);
  }
  if (found.length === 0) {
    throw new UsageError(
      `No results in ${dir}: no *.json or */results.json of schema ${RESULTS_SCHEMA}`,
    );
  }
  return found;
}

/**
 * Read every results file `paths` name: a file is one, a folder gives each it holds.
 *
 * @param paths files and folders, in the order given
 * @returns the results in that order (a folder's sorted by path)
 * @throws UsageError for a missing path, unreadable or invalid JSON, a folder without
 *   results, results of another schema version, or the same file twice
 * @example
 * ```ts
 * const set = await readResultsSet(["results/box-a/results.json", "results/box-b"]);
 * console.log(set.map((s) => s.source));
 * ```
 */
export async function readResultsSet(paths: string[]): Promise<SourcedResults[]> {
  const set: SourcedResults[] = [];
  for (const path of paths) {
    if ((await statOf(path)).isDirectory) set.push(...await readFolder(path));
    else set.push((await readOne(path, false))!);
  }
  const seen = new Map<string, string>();
  for (const { source } of set) {
    const key = resolve(source);
    if (seen.has(key)) throw new UsageError(`${source} is given twice (as ${seen.get(key)})`);
    seen.set(key, source);
  }
  return set;
}
