/**
 * The selection matrix as Markdown: the five rows, what each counts, then one recommendation
 * per workload and the rules that produced them.
 *
 * @module
 */
import type { Results } from "../analysis/results.ts";
import { type Lang, MATRIX_LABELS } from "./_labels.ts";
import { MATRIX_NOTES, matrixParts, matrixTable, RULE_LINES, sentence } from "./_tables.ts";
import { markdownSafe, markdownTableText } from "./_markdown.ts";

/**
 * Render `results.matrix` as Markdown; headers in `lang` (`zh`: the article's wording).
 *
 * @param results results whose `matrix` was filled by `buildMatrix`
 * @param lang `en` (default) or `zh`
 * @returns the section, or an empty string when the results hold no matrix
 * @example
 * ```ts
 * import type { Results } from "../analysis/results.ts";
 * declare const results: Results;
 * console.log(renderMatrixMarkdown(results, "zh"));
 * ```
 */
export function renderMatrixMarkdown(given: Results, lang: Lang = "en"): string {
  const { aspects, recommendations } = matrixParts(markdownSafe(given));
  if (aspects.length === 0) return "";
  const labels = MATRIX_LABELS[lang];
  const table = matrixTable(aspects, lang);
  return [
    `## ${labels.section}`,
    "",
    markdownTableText(table.rows, table.align),
    "",
    ...MATRIX_NOTES.map((n) => `- ${n}`),
    "",
    `### ${labels.recommendations}`,
    "",
    ...recommendations.map((r) => `- ${sentence(r.text)}`),
    "",
    "Rules, in order:",
    "",
    ...RULE_LINES.map((rule, i) => `${i + 1}. ${rule}`),
    "",
  ].join("\n");
}
