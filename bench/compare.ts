/**
 * Two `results.json` side by side: the runs both hold, with throughput and the ratios in
 * each and B/A.
 *
 * @module
 */
import { markdownTable } from "markdown-table";
import type { StrategyName } from "../core/run_types.ts";
import { fixed, percent } from "../reports/_format.ts";
import { runLabel } from "../reports/_labels.ts";
import { pairRuns } from "./_common_runs.ts";
import type { Results, RunRecord } from "./results.ts";

/** The figures compared. */
export interface CompareFigures {
  samplesPerSec: number;
  speedup: number;
  efficiency: number;
  efficiencyVsCeiling: number | null;
}

/** One run present in both files. */
export interface CompareRow {
  workload: string;
  strategy: StrategyName;
  worldSize: number;
  a: CompareFigures;
  b: CompareFigures;
  /** b / a per figure; null where either is null. */
  ratio: { [K in keyof CompareFigures]: number | null };
}

const figures = (r: RunRecord): CompareFigures => ({
  samplesPerSec: r.samplesPerSec,
  speedup: r.speedup,
  efficiency: r.efficiency,
  efficiencyVsCeiling: r.efficiencyVsCeiling,
});

const divide = (b: number | null, a: number | null) =>
  a === null || b === null || a === 0 ? null : b / a;

/**
 * Pair the runs `a` and `b` share by (workload, strategy, world size), in `a`'s order.
 *
 * @param a the first results
 * @param b the second results
 * @returns one row per shared run
 * @throws UsageError when a schema differs or no run is shared
 * @example
 * ```ts
 * const rows = compareResults(await readResults("a.json"), await readResults("b.json"));
 * console.log(renderCompareMarkdown(rows));
 * ```
 */
export function compareResults(a: Results, b: Results): CompareRow[] {
  return pairRuns(a, b, ["first", "second"]).map((pair) => {
    const [fa, fb] = [figures(pair.a), figures(pair.b)];
    return {
      workload: pair.a.workload,
      strategy: pair.a.strategy,
      worldSize: pair.a.worldSize,
      a: fa,
      b: fb,
      ratio: {
        samplesPerSec: divide(fb.samplesPerSec, fa.samplesPerSec),
        speedup: divide(fb.speedup, fa.speedup),
        efficiency: divide(fb.efficiency, fa.efficiency),
        efficiencyVsCeiling: divide(fb.efficiencyVsCeiling, fa.efficiencyVsCeiling),
      },
    };
  });
}

/** Options for {@linkcode renderCompareMarkdown}. */
export interface CompareMarkdownOptions {
  /** Names of the two files in the headers (default `["A", "B"]`). */
  labels?: [string, string];
}

/**
 * Render compared rows as one Markdown table.
 *
 * @param rows what {@linkcode compareResults} returned
 * @param options see {@linkcode CompareMarkdownOptions}
 * @returns the table with a one-line legend
 * @example
 * ```ts
 * console.log(renderCompareMarkdown(rows, { labels: ["main", "branch"] }));
 * ```
 */
export function renderCompareMarkdown(
  rows: CompareRow[],
  options: CompareMarkdownOptions = {},
): string {
  const { labels: [A, B] = ["A", "B"] } = options;
  const ratio = (n: number | null) => n === null ? "n/a" : `${fixed(n, 2)}`;
  const speed = (n: number | null) => `${fixed(n, 2)}x`;
  const table = markdownTable([
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
  ], { align: ["l", "l", ..."r".repeat(12)] });
  return [
    `${B}/${A} is the ratio of the second file's figure to the first's; speedup and efficiency are each file's own, against its own single run.`,
    "",
    table,
    "",
  ].join("\n");
}
