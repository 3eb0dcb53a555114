/**
 * Two results side by side, as one Markdown table.
 *
 * @module
 */
import type { CompareRow } from "../analysis/compare.ts";
import { fixed, percent } from "../analysis/format.ts";
import { runLabel } from "../core/run_types.ts";
import { escapeMarkdown, markdownSafe, markdownTableText } from "./_markdown.ts";

/** Options for {@linkcode renderCompareMarkdown}. */
export interface CompareMarkdownOptions {
  /** Names of the two files in the headers (default `["A", "B"]`). */
  labels?: [string, string];
}

/**
 * Render compared rows as one Markdown table.
 *
 * @param rows what `compareResults` returned
 * @param options see {@linkcode CompareMarkdownOptions}
 * @returns the table with a one-line legend
 * @example
 * ```ts
 * import { compareResults } from "../analysis/compare.ts";
 * import { readResults } from "../analysis/validate_results.ts";
 * const rows = compareResults(await readResults("a.json"), await readResults("b.json"));
 * console.log(renderCompareMarkdown(rows, { labels: ["main", "branch"] }));
 * ```
 */
export function renderCompareMarkdown(
  given: CompareRow[],
  options: CompareMarkdownOptions = {},
): string {
  const rows = markdownSafe(given);
  const [A, B] = (options.labels ?? ["A", "B"]).map(escapeMarkdown);
  const ratio = (n: number | null) => n === null ? "n/a" : `${fixed(n, 2)}`;
  const speed = (n: number | null) => `${fixed(n, 2)}x`;
  const table = markdownTableText([
    [
      "workload",
      "run",
      `samples/s ${A}`,
      `samples/s ${B}`,
      `${B}/${A}`,
      `speedup ${A}`,
      `speedup ${B}`,
      `${B}/${A}`,
      `efficiency ${A}`,
      `efficiency ${B}`,
      `${B}/${A}`,
      `vs ceiling ${A}`,
      `vs ceiling ${B}`,
      `${B}/${A}`,
    ],
    ...rows.map((r) => [
      r.workload,
      runLabel(r),
      fixed(r.a.samplesPerSec, 0),
      fixed(r.b.samplesPerSec, 0),
      ratio(r.ratio.samplesPerSec),
      speed(r.a.speedup),
      speed(r.b.speedup),
      ratio(r.ratio.speedup),
      percent(r.a.efficiency),
      percent(r.b.efficiency),
      ratio(r.ratio.efficiency),
      percent(r.a.efficiencyVsCeiling),
      percent(r.b.efficiencyVsCeiling),
      ratio(r.ratio.efficiencyVsCeiling),
    ]),
  ], ["l", "l", ...Array<"r">(12).fill("r")]);
  return [
    `${B}/${A} is the ratio of the second file's figure to the first's; speedup and efficiency are each file's own, against its own single run.`,
    "",
    table,
    "",
  ].join("\n");
}
