/**
 * Run-to-run noise of the gate's ratios: given several results of the same preset on the
 * same machine, how far each ratio moves. The worst drop between any two runs is the
 * smallest tolerance under which the gate would not have flaked on them.
 *
 * @module
 */
import { UsageError } from "../core/errors.ts";
import { intervalOf, RATIO_METRICS } from "./gate.ts";
import type { Results } from "./results.ts";

/** The spread of one ratio of one run across results. */
export interface NoiseRow {
  run: string;
  metric: typeof RATIO_METRICS[number];
  values: number[];
  min: number;
  median: number;
  max: number;
  /** 1 − min / max: the largest drop the gate could see between two of these runs. */
  worstDrop: number;
  /**
   * Where every file carries intervals over several repeats: the largest `1 − high_j / low_i`
   * over ordered pairs — the tolerance below which the interval gate would have flagged one of
   * these runs against another. Null otherwise.
   */
  worstIntervalDrop: number | null;
}

/**
 * The spread of every gated ratio over `results` (at least two).
 *
 * @param results results of the same preset, in any order
 * @returns one row per (run, ratio) present in every file
 * @throws UsageError with fewer than two files, or files that share no parallel run
 * @example
 * ```ts
 * import { readResults } from "./validate_results.ts";
 * const files = ["a.json", "b.json", "c.json"];
 * const all = await Promise.all(files.map((f) => readResults(f)));
 * const rows = measureNoise(all);
 * ```
 */
export function measureNoise(results: Results[]): NoiseRow[] {
  if (results.length < 2) throw new UsageError("Noise needs at least two results files");
  const rows: NoiseRow[] = [];
  for (const run of results[0].runs.filter((r) => r.strategy !== "single")) {
    const same = results.map((r) =>
      r.runs.find((o) =>
        o.workload === run.workload && o.strategy === run.strategy && o.worldSize === run.worldSize
      )
    );
    if (same.some((r) => r === undefined)) continue;
    for (const metric of RATIO_METRICS) {
      const values = same.map((r) => r![metric]).filter((v): v is number => v !== null);
      if (values.length !== results.length) continue;
      const sorted = [...values].sort((a, b) => a - b);
      rows.push({
        run: `${run.workload} ${run.strategy}-${run.worldSize}`,
        metric,
        values,
        min: sorted[0],
        median: sorted[Math.floor(sorted.length / 2)],
        max: sorted[sorted.length - 1],
        worstDrop: 1 - sorted[0] / sorted[sorted.length - 1],
        worstIntervalDrop: intervalDrop(same.map((r) => intervalOf(r!, metric))),
      });
    }
  }
  if (rows.length === 0) {
    throw new UsageError(
      `No parallel run and ratio appears in all ${results.length} results files: noise compares results of one preset (the same workloads, strategies and world sizes)`,
    );
  }
  return rows;
}

function intervalDrop(intervals: ({ low: number; high: number } | null)[]): number | null {
  if (intervals.some((i) => i === null)) return null;
  let worst = 0;
  for (const a of intervals) {
    for (const b of intervals) worst = Math.max(worst, 1 - b!.high / a!.low);
  }
  return worst;
}
