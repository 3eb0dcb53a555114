/**
 * The noise table: the spread of every gated ratio, worst first.
 *
 * @module
 */
import { markdownTable } from "markdown-table";
import type { NoiseRow } from "../analysis/noise.ts";

/**
 * The noise table, worst first, and the largest worst drop.
 *
 * @param rows from `measureNoise`
 * @returns Markdown
 * @example
 * ```ts
 * import { measureNoise } from "../analysis/noise.ts";
 * import { readResults } from "../analysis/validate_results.ts";
 * const files = await Promise.all(["a.json", "b.json"].map((f) => readResults(f)));
 * console.log(renderNoiseMarkdown(measureNoise(files)));
 * ```
 */
export function renderNoiseMarkdown(rows: NoiseRow[]): string {
  const sorted = [...rows].sort((a, b) => b.worstDrop - a.worstDrop);
  const worst = sorted[0]?.worstDrop ?? 0;
  return [
    markdownTable([
      ["run", "ratio", "min", "median", "max", "worst drop"],
      ...sorted.map((r) => [
        r.run,
        r.metric,
        r.min.toFixed(3),
        r.median.toFixed(3),
        r.max.toFixed(3),
        `${(100 * r.worstDrop).toFixed(1)}%`,
      ]),
    ], { align: ["l", "l", "r", "r", "r", "r"] }),
    "",
    `Largest worst drop: ${
      (100 * worst).toFixed(1)
    }% — a gate tolerance below it would have flaked on these runs.`,
  ].join("\n");
}
