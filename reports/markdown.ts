/**
 * `report.md`: environment header, the measured selection matrix and recommendations, one
 * table per workload and where each step's time goes, then the all-reduce table when an
 * `allreduce.json` is beside the report. Fixed precision and stable order, so reports diff
 * cleanly.
 *
 * @module
 */
import type { AllreduceResult } from "../bench/allreduce.ts";
import type { Results } from "../analysis/results.ts";
import { BOUND_RULES } from "../analysis/bound.ts";
import { type Lang, MATRIX_LABELS } from "./_labels.ts";
import {
  allreduceLines,
  allreduceTable,
  ANSWER_NOTE,
  answerTable,
  batchLine,
  bucketSweepTable,
  byWorkload,
  CROSSOVER_NOTE,
  crossoverTables,
  environmentLines,
  modelLines,
  phaseTable,
  provisionalLine,
  stragglerLines,
  toMarkdown as md,
  workloadTable,
} from "./_tables.ts";
import { renderMatrixMarkdown } from "./matrix_markdown.ts";
import { keepCodeSpans, markdownSafe } from "./_markdown.ts";
import type { PredictionFile } from "../analysis/predict.ts";
import { predictionLines, predictionTable, reportGroups } from "./prediction_markdown.ts";

/** Options for {@linkcode renderMarkdown}. */
export interface MarkdownOptions {
  /** Language of the matrix headers (default `en`). */
  lang?: Lang;
  /** All-reduce results to include (default: none). */
  allreduce?: AllreduceResult | null;
  /** Predictions to include (`prediction.json`; default: none). */
  prediction?: PredictionFile | null;
}

/**
 * Render `results` as Markdown.
 *
 * @param results the validated results
 * @param options see {@linkcode MarkdownOptions}
 * @returns the report text
 * @example
 * ```ts
 * import type { Results } from "../analysis/results.ts";
 * declare const results: Results;
 * const text = renderMarkdown(results, { lang: "zh" });
 * ```
 */
export function renderMarkdown(given: Results, options: MarkdownOptions = {}): string {
  const { lang = "en" } = options;
  // Every string from the data (workload names, the machine's names, texts built from them)
  // escaped once, here: headings, cells and bullets below interpolate only safe text.
  const results = markdownSafe(given);
  // Why native did not load is the program's own sentence, with its install command in a code span.
  results.env.nativeUnavailable = keepCodeSpans(given.env.nativeUnavailable);
  const allreduce = markdownSafe(options.allreduce ?? null);
  const prediction = markdownSafe(options.prediction ?? null);
  const out = ["# paratrain report", ""];
  if (answerTable(results).rows.length > 1) {
    const provisional = provisionalLine(results);
    out.push(
      `## ${MATRIX_LABELS[lang].answer}`,
      "",
      ...(provisional ? [`> ${provisional}`, ""] : []),
      md(answerTable(results)),
      "",
      ANSWER_NOTE,
      "",
      ...(results.runs.some((r) => r.bound) ? [BOUND_RULES, ""] : []),
    );
  }
  out.push(...environmentLines(results).map((l) => `- ${l}`), "");
  const matrix = renderMatrixMarkdown(given, lang);
  if (matrix) out.push(matrix);
  const crossover = crossoverTables(results);
  if (crossover.length) {
    out.push("## Where parallel starts to pay", "", CROSSOVER_NOTE, "");
    for (const { line, table } of crossover) out.push(line, "", md(table), "");
  }
  for (const [workload, runs] of byWorkload(results)) {
    out.push(
      `## ${workload}`,
      "",
      batchLine(runs),
      "",
      ...modelLines(runs).map((l) => `- ${l}`),
      ...(modelLines(runs).length ? [""] : []),
      md(workloadTable(runs)),
      "",
    );
    out.push("Where a step's time goes (mean ms per step):", "", md(phaseTable(runs)), "");
    const sweep = bucketSweepTable(runs);
    if (sweep) out.push("DDP bucket sizes (`--bucket-mb`):", "", md(sweep), "");
    const stragglers = stragglerLines(runs);
    if (stragglers.length) out.push(...stragglers.map((l) => `- ${l}`), "");
  }
  if (allreduce) {
    out.push(
      "## All-reduce (ring, in place, float32 sum)",
      "",
      ...allreduceLines(allreduce).flatMap((l) => [l, ""]),
      md(allreduceTable(allreduce)),
      "",
    );
  }
  if (prediction) {
    out.push(
      "## Predicted scaling (prediction.json)",
      "",
      ...predictionLines(prediction).flatMap((l) => [l, ""]),
    );
    for (const [title, group] of reportGroups(prediction)) {
      out.push(`### ${title}`, "", md(predictionTable(group)), "");
    }
  }
  return out.join("\n");
}
