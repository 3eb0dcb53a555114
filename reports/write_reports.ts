/**
 * Every report file, from one results object: a lookup table of renderers.
 *
 * @module
 */
import type { AllreduceResult } from "../bench/allreduce.ts";
import type { PredictionFile } from "../analysis/predict.ts";
import { readPrediction } from "../analysis/validate_prediction.ts";
import type { Results } from "../analysis/results.ts";
import type { Lang } from "./_labels.ts";
import { renderHtml } from "./html.ts";
import { renderMarkdown } from "./markdown.ts";
import { readAllreduce } from "../analysis/read_allreduce.ts";
import { validateResults } from "../analysis/validate_results.ts";
import { writeFileSet } from "../core/write_atomic.ts";

/** What every renderer gets besides the results. */
export interface RenderContext {
  /** Language of the matrix headers. */
  lang: Lang;
  /** All-reduce results beside the reports, if any. */
  allreduce: AllreduceResult | null;
  /** Predictions beside the reports (`predict`), if any. */
  prediction?: PredictionFile | null;
}

/** A renderer: results in, one file's text out. */
export type Renderer = (results: Results, context: RenderContext) => string | Promise<string>;

/** File name → renderer. */
export const RENDERERS: Record<string, Renderer> = {
  "results.json": (results) => JSON.stringify(results, null, 2) + "\n",
  "report.md": renderMarkdown,
  "report.html": renderHtml,
};

/** Options for {@linkcode writeReports}. */
export interface WriteReportsOptions {
  /** Language of the matrix headers (default `en`). */
  lang?: Lang;
  /** All-reduce results to include (default: `allreduce.json` in `dir`, if there is one). */
  allreduce?: AllreduceResult | null;
  /** Predictions to include (default: `prediction.json` in `dir`, if there is one). */
  prediction?: PredictionFile | null;
}

/**
 * Validate `results`, render every report, then put them all into `dir` as one set
 * ({@linkcode writeFileSet}).
 *
 * @param results the results
 * @param dir output folder (created if missing)
 * @param options see {@linkcode WriteReportsOptions}
 * @returns the paths written
 * @example
 * ```ts
 * import type { Results } from "../analysis/results.ts";
 * declare const results: Results;
 * await writeReports(results, "results/latest", { lang: "zh" });
 * ```
 */
export async function writeReports(
  results: Results,
  dir: string,
  options: WriteReportsOptions = {},
): Promise<string[]> {
  validateResults(JSON.parse(JSON.stringify(results)), "the results being written");
  await Deno.mkdir(dir, { recursive: true });
  const { lang = "en" } = options;
  const allreduce = options.allreduce !== undefined ? options.allreduce : await readAllreduce(dir);
  const prediction = options.prediction !== undefined
    ? options.prediction
    : await readPrediction(dir);
  // Render everything first (the slow part), then put the set in place at once: the files in
  // a folder are always one run's, even when the write is interrupted.
  const files: [string, string][] = [];
  for (const [name, render] of Object.entries(RENDERERS)) {
    files.push([name, await render(results, { lang, allreduce, prediction })]);
  }
  return await writeFileSet(dir, files);
}

/**
 * Render every file of a report other than a results file's own (machines side by side, a
 * history), then put them into `dir` as one set ({@linkcode writeFileSet}).
 *
 * @param dir output folder (created if missing)
 * @param files file name → its renderer, already given what it renders
 * @returns the paths written
 * @example
 * ```ts
 * await writeRendered("/tmp/out", { "report.md": () => "# hi\n" });
 * ```
 */
export async function writeRendered(
  dir: string,
  files: Record<string, () => string | Promise<string>>,
): Promise<string[]> {
  const rendered: [string, string][] = [];
  for (const [name, render] of Object.entries(files)) rendered.push([name, await render()]);
  await Deno.mkdir(dir, { recursive: true });
  return await writeFileSet(dir, rendered);
}
