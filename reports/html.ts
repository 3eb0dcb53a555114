/**
 * `report.html`: one self-contained page that opens offline — the tables of `report.md` plus
 * charts rendered to inline SVG at report time (Vega-Lite → Vega, no browser, no script, no
 * external URL). Deterministic, so `report` re-renders it byte for byte.
 *
 * @module
 */
import type { AllreduceResult } from "../bench/allreduce.ts";
import type { Results } from "../analysis/results.ts";
import { BOUND_RULES } from "../analysis/bound.ts";
import { type Lang, MATRIX_LABELS } from "./_labels.ts";
import {
  allreduceChart,
  bucketChart,
  crossoverChart,
  efficiencyChart,
  memoryChart,
  phaseChart,
  predictionChart,
  stepTimeChart,
  throughputChart,
} from "./_charts.ts";
import { escapeHtml, figure, htmlTable, inline, list, NOTE_STYLE, page } from "./_html.ts";
import type { PredictionFile } from "../analysis/predict.ts";
import { predictionLines, predictionTable, reportGroups } from "./prediction_markdown.ts";
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
  MATRIX_NOTES,
  matrixParts,
  matrixTable,
  modelLines,
  phaseTable,
  provisionalLine,
  RULE_LINES,
  sentence,
  stragglerLines,
  workloadTable,
} from "./_tables.ts";

/** Options for {@linkcode renderHtml}. */
export interface HtmlOptions {
  /** Language of the matrix headers (default `en`). */
  lang?: Lang;
  /** All-reduce results to include (default: none). */
  allreduce?: AllreduceResult | null;
  /** Predictions to include (`prediction.json`; default: none). */
  prediction?: PredictionFile | null;
}

function matrixSection(results: Results, lang: Lang): string[] {
  const { aspects, recommendations } = matrixParts(results);
  if (aspects.length === 0) return [];
  const labels = MATRIX_LABELS[lang];
  return [
    `<h2>${escapeHtml(labels.section)}</h2>`,
    htmlTable(matrixTable(aspects, lang), "matrix"),
    list(MATRIX_NOTES),
    `<h3>${escapeHtml(labels.recommendations)}</h3>`,
    list(recommendations.map((r) => sentence(r.text))),
    "<p>Rules, in order:</p>",
    list(RULE_LINES, "ol"),
  ];
}

/** Where parallel starts to pay: its note, each family's line and table, then the two charts. */
async function crossoverSection(results: Results): Promise<string[]> {
  const families = crossoverTables(results);
  if (families.length === 0) return [];
  return [
    `<h2 id="crossover">Where parallel starts to pay</h2>`,
    `<p>${inline(CROSSOVER_NOTE)}</p>`,
    ...families.flatMap(({ line, table }) => [`<p>${inline(line)}</p>`, htmlTable(table)]),
    await figure(crossoverChart(results, "flops")!, "chart-crossover-flops"),
    await figure(crossoverChart(results, "gradient")!, "chart-crossover-gradient"),
  ];
}

/**
 * Render `results` as a self-contained HTML page with inline SVG charts.
 *
 * @param results the validated results
 * @param options see {@linkcode HtmlOptions}
 * @returns the page
 * @example
 * ```ts
 * import type { Results } from "../analysis/results.ts";
 * declare const results: Results;
 * await Deno.writeTextFile("report.html", await renderHtml(results));
 * ```
 */
export async function renderHtml(results: Results, options: HtmlOptions = {}): Promise<string> {
  const { lang = "en", allreduce = null, prediction = null } = options;
  const provisional = provisionalLine(results);
  const out = [
    ...(answerTable(results).rows.length > 1
      ? [
        `<h2>${escapeHtml(MATRIX_LABELS[lang].answer)}</h2>`,
        ...(provisional ? [`<p class="provisional">${inline(provisional)}</p>`] : []),
        htmlTable(answerTable(results), "answer"),
        `<p>${inline(ANSWER_NOTE)}</p>`,
        ...(results.runs.some((r) => r.bound) ? [`<p>${inline(BOUND_RULES)}</p>`] : []),
      ]
      : []),
    await figure(throughputChart(results), "chart-throughput"),
    list(environmentLines(results)),
    ...matrixSection(results, lang),
    ...(await crossoverSection(results)),
    "<h2>Charts</h2>",
    await figure(efficiencyChart(results), "chart-efficiency"),
    await figure(memoryChart(results), "chart-memory"),
    await figure(phaseChart(results), "chart-phases"),
    ...(stepTimeChart(results) ? [await figure(stepTimeChart(results)!, "chart-step-time")] : []),
    ...(bucketChart(results) ? [await figure(bucketChart(results)!, "chart-buckets")] : []),
  ];
  for (const [workload, runs] of byWorkload(results)) {
    out.push(
      `<h2>${escapeHtml(workload)}</h2>`,
      `<p>${inline(batchLine(runs))}</p>`,
      ...(modelLines(runs).length ? [list(modelLines(runs))] : []),
      htmlTable(workloadTable(runs)),
      "<p>Where a step's time goes (mean ms per step):</p>",
      htmlTable(phaseTable(runs)),
      ...(bucketSweepTable(runs)
        ? [
          "<p>DDP bucket sizes (<code>--bucket-mb</code>):</p>",
          htmlTable(bucketSweepTable(runs)!),
        ]
        : []),
      ...(stragglerLines(runs).length ? [list(stragglerLines(runs))] : []),
    );
  }
  if (allreduce) {
    out.push(
      "<h2>All-reduce (ring, in place, float32 sum)</h2>",
      ...allreduceLines(allreduce).map((l) => `<p>${inline(l)}</p>`),
      htmlTable(allreduceTable(allreduce)),
      await figure(allreduceChart(allreduce), "chart-allreduce"),
    );
  }
  if (prediction) {
    const chart = predictionChart(prediction, results);
    out.push(
      "<h2>Predicted scaling (prediction.json)</h2>",
      ...predictionLines(prediction).map((l) => `<p>${inline(l)}</p>`),
      ...(chart ? [await figure(chart, "chart-prediction")] : []),
      ...reportGroups(prediction).flatMap(([title, group]) => [
        `<h3>${escapeHtml(title)}</h3>`,
        htmlTable(predictionTable(group)),
      ]),
    );
  }
  return page("paratrain report", out, { lang, style: provisional ? NOTE_STYLE : "" });
}
