/**
 * Two `results.json` side by side: the runs both hold, with throughput and the ratios in
 * each and B/A (`reports/compare_markdown.ts` renders them).
 *
 * @module
 */
import type { StrategyName } from "../core/run_types.ts";
import { pairRuns } from "./_runs.ts";
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
 * import { readResults } from "./validate_results.ts";
 * const rows = compareResults(await readResults("a.json"), await readResults("b.json"));
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
