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
  stepTimeChart,
  throughputChart,
} from "./_charts.ts";
import { renderSvg } from "./_svg.ts";
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
  phaseTable,
  RULE_LINES,
  sentence,
  stragglerLines,
  type Table,
  workloadTable,
} from "./_tables.ts";

/** Options for {@linkcode renderHtml}. */
export interface HtmlOptions {
  /** Language of the matrix headers (default `en`). */
  lang?: Lang;
  /** All-reduce results to include (default: none). */
  allreduce?: AllreduceResult | null;
}

/** The page's whole style sheet, inline. */
const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; vertical-align: top; }
th { background: #f3f3f3; }
td.r { text-align: right; font-variant-numeric: tabular-nums; }
table.matrix td { max-width: 26em; }
table.answer { font-size: 15px; }
table.answer td:nth-child(2) { font-weight: 600; }
figure { margin: 1em 0 2em; overflow-x: auto; }
code { background: #f3f3f3; padding: 0 3px; }
`;

function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/** Escape, then the two inline Markdown forms the shared lines use: `code` and **bold**. */
function inline(text: string): string {
  return escapeHtml(text)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
}

function htmlTable(table: Table, className = ""): string {
  const [header, ...body] = table.rows;
  const cls = className ? ` class="${className}"` : "";
  const row = (cells: string[]) =>
    `<tr>${
      cells.map((c, i) => `<td${table.align[i] === "r" ? ' class="r"' : ""}>${inline(c)}</td>`)
        .join("")
    }</tr>`;
  return [
    `<table${cls}>`,
    `<thead><tr>${header.map((h) => `<th>${inline(h)}</th>`).join("")}</tr></thead>`,
    `<tbody>`,
    ...body.map(row),
    `</tbody>`,
    `</table>`,
  ].join("\n");
}

const list = (items: string[], tag = "ul") =>
  [`<${tag}>`, ...items.map((i) => `<li>${inline(i)}</li>`), `</${tag}>`].join("\n");

async function figure(spec: Parameters<typeof renderSvg>[0], id: string): Promise<string> {
  return `<figure>\n${await renderSvg(spec, id)}\n</figure>`;
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
  const { lang = "en", allreduce = null } = options;
  const out = [
    "<!doctype html>",
    `<html lang="${lang}">`,
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>paratrain report</title>",
    `<style>${STYLE}</style>`,
    "</head>",
    "<body>",
    "<h1>paratrain report</h1>",
    ...(answerTable(results).rows.length > 1
      ? [
        `<h2>${escapeHtml(MATRIX_LABELS[lang].answer)}</h2>`,
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
  out.push("</body>", "</html>", "");
  return out.join("\n");
}
