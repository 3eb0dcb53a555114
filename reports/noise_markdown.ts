/**
 * The noise table: the spread of every gated ratio, worst first.
 *
 * @module
 */
import type { NoiseRow } from "../analysis/noise.ts";
import { markdownSafe, markdownTableText } from "./_markdown.ts";

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
export function renderNoiseMarkdown(given: NoiseRow[]): string {
  const rows = markdownSafe(given);
  const sorted = [...rows].sort((a, b) => b.worstDrop - a.worstDrop);
  const worst = sorted[0]?.worstDrop ?? 0;
  const withIntervals = rows.every((r) => r.worstIntervalDrop !== null);
  const worstInterval = Math.max(0, ...rows.map((r) => r.worstIntervalDrop ?? 0));
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  return [
    markdownTableText([
      ["run", "ratio", "min", "median", "max", "worst drop", "worst interval drop"],
      ...sorted.map((r) => [
        r.run,
        r.metric,
        r.min.toFixed(3),
        r.median.toFixed(3),
        r.max.toFixed(3),
        pct(r.worstDrop),
        r.worstIntervalDrop === null ? "–" : pct(r.worstIntervalDrop),
      ]),
    ], ["l", "l", "r", "r", "r", "r", "r"]),
    "",
    `Largest worst drop: ${
      pct(worst)
    } — a gate on medians with a tolerance below it would have flaked on these runs.`,
    ...(withIntervals
      ? [
        "",
        `Largest worst interval drop: ${
          pct(worstInterval)
        } — the gate compares intervals when both files have them (a regression is the whole current interval below the baseline interval's low end less the tolerance): a tolerance below this would have flaked on these runs.`,
      ]
      : []),
  ].join("\n");
}
