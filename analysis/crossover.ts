/**
 * Where parallel starts to pay: for each workload family measured at several configurations
 * (sizes `family:size` and global batches, `--batches`), each strategy and world size, the
 * speedup over the best single process at every configuration, ordered by the work of a step,
 * and the smallest configuration at which the verdict rule would choose the strategy.
 *
 * @module
 */
import type { RunRecord } from "./results.ts";
import { runSets } from "./_runs.ts";
import { eligible, vsBest, vsBestInterval, WORTHWHILE_SPEEDUP } from "./matrix.ts";
import { runLabel } from "../core/run_types.ts";
import type { Interval } from "../core/stats.ts";
import { isModuleOrModel } from "../workloads/resolve_workload.ts";

/** One configuration of a family, for one strategy and world size. */
export interface CrossoverPoint {
  workload: string;
  /** The configuration's global batch (with weak scaling, each worker's). */
  globalBatch: number;
  params: number;
  flopsPerStep: number;
  gradientBytes: number;
  /** The run the point is: the best eligible run of this strategy and world size. */
  run: string;
  speedupVsBestSingle: number;
  interval: Interval | null;
  /** Whether the verdict rule would choose it: eligible, whole interval at or above 1.10x. */
  chosen: boolean;
}

/** One family, strategy and world size: `results.crossover`'s entries. */
export interface CrossoverEntry {
  family: string;
  strategy: "dp" | "ddp";
  worldSize: number;
  /** Smallest work per step first. */
  points: CrossoverPoint[];
  /** The smallest configuration that is chosen, or null: not within the measured range. */
  firstChoose: { workload: string; globalBatch: number } | null;
}

/**
 * A workload's family: the part of its name before `:` (the name itself when it has no size,
 * and for a model brought from outside — `model:…`, `…#export` — whose name has no size).
 *
 * @param workload a workload name
 * @returns its family
 * @example
 * ```ts
 * familyOf("transformer-lm:small"); // "transformer-lm"
 * familyOf("model:/models/mlp/model.json"); // "model:/models/mlp/model.json"
 * ```
 */
export function familyOf(workload: string): string {
  if (isModuleOrModel(workload)) return workload;
  const colon = workload.indexOf(":");
  return colon < 0 ? workload : workload.slice(0, colon);
}

/**
 * The crossover of every family measured at two configurations or more. Runs from files that
 * predate `params` and `flopsPerStep`, and those whose FLOPs are unknown (a Layers model with
 * a layer the count does not cover), are left out.
 *
 * @param runs the run records
 * @returns one entry per family, strategy and world size (families in first-seen order)
 * @example
 * ```ts
 * import type { RunRecord } from "./results.ts";
 * declare const runs: RunRecord[];
 * for (const c of buildCrossover(runs)) console.log(c.family, c.strategy, c.firstChoose);
 * ```
 */
export function buildCrossover(runs: RunRecord[]): CrossoverEntry[] {
  const sets = runSets({ runs }).filter((s) =>
    s.runs.every((r) => r.params !== undefined && r.flopsPerStep != null)
  );
  const families = [...new Set(sets.map((s) => familyOf(s.workload)))];
  return families.flatMap((family) => {
    const configurations = sets.filter((s) => familyOf(s.workload) === family);
    if (configurations.length < 2) return [];
    const parallel = configurations.flatMap((s) => s.runs.filter((r) => r.strategy !== "single"));
    // DP before DDP, smaller worlds first.
    const kinds = [...new Map(parallel.map((r) => [`${r.strategy}|${r.worldSize}`, r])).values()]
      .map((r) => ({ strategy: r.strategy as "dp" | "ddp", worldSize: r.worldSize }))
      .sort((a, b) => a.strategy.length - b.strategy.length || a.worldSize - b.worldSize);
    return kinds.map(({ strategy, worldSize }): CrossoverEntry => {
      const points = configurations.flatMap((set): CrossoverPoint[] => {
        const candidates = set.runs.filter((r) =>
          r.strategy === strategy && r.worldSize === worldSize && eligible(r)
        );
        const best = candidates.reduce<RunRecord | undefined>(
          (b, r) => (b === undefined || vsBest(r) > vsBest(b) ? r : b),
          undefined,
        );
        if (!best) return [];
        const interval = vsBestInterval(best);
        return [{
          workload: set.workload,
          globalBatch: set.runs.find((r) => r.strategy === "single")?.globalBatch ??
            best.globalBatch,
          params: best.params!,
          flopsPerStep: best.flopsPerStep!,
          gradientBytes: best.gradientBytes ?? best.params! * 4,
          run: runLabel(best),
          speedupVsBestSingle: vsBest(best),
          interval: best.speedupVsBestSingleInterval ?? null,
          chosen: interval.low >= WORTHWHILE_SPEEDUP,
        }];
      }).sort((a, b) => a.flopsPerStep - b.flopsPerStep || a.gradientBytes - b.gradientBytes);
      const first = points.find((p) => p.chosen);
      return {
        family,
        strategy,
        worldSize,
        points,
        firstChoose: first ? { workload: first.workload, globalBatch: first.globalBatch } : null,
      };
    });
  });
}
