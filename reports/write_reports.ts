/**
 * Every report file, from one results object: a lookup table of renderers.
 *
 * @module
 */
import { join } from "node:path";
import type { Results } from "../bench/results.ts";
import { renderMarkdown } from "./markdown.ts";
import { validateResults } from "./validate_results.ts";
import { writeAtomic } from "./write_atomic.ts";

/** File name → renderer. */
export const RENDERERS: Record<string, (results: Results) => string> = {
  "results.json": (results) => JSON.stringify(results, null, 2) + "\n",
  "report.md": renderMarkdown,
};

/**
 * Validate `results`, then write every report into `dir` atomically.
 *
 * @param results the results
 * @param dir output folder (created if missing)
 * @returns the paths written
 * @example
 * ```ts
 * await writeReports(results, "results/latest");
 * ```
 */
export async function writeReports(results: Results, dir: string): Promise<string[]> {
  validateResults(JSON.parse(JSON.stringify(results)), "the results being written");
  await Deno.mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, render] of Object.entries(RENDERERS)) {
    const path = join(dir, name);
    await writeAtomic(path, render(results));
    written.push(path);
  }
  return written;
}
