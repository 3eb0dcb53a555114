/**
 * The CI regression gate: compares two `results.json` on the figures that survive a change of
 * machine (speedup, efficiency and efficiency against the no-communication ceiling, all
 * ratios to the same run's single) and on the DP/DDP equivalence with single, which must stay
 * under an absolute bound. `reports/gate_table.ts` renders what it found. Absolute times are never compared. The figures in `results.json`
 * are already medians over repeats.
 *
 * @module
 */
import { UsageError } from "../core/errors.ts";
import type { StrategyName } from "../core/run_types.ts";
import { pairRuns, runKey } from "./_runs.ts";
import { runLabel } from "../core/run_types.ts";
import { EQUIVALENCE_BOUND, type Results, type RunRecord } from "./results.ts";

/** Default tolerance: a ratio may drop by 10% before it counts as a regression. */
export const DEFAULT_TOLERANCE = 0.1;

/** The ratios compared between baseline and current. */
export const RATIO_METRICS = ["speedup", "efficiency", "efficiencyVsCeiling"] as const;

/** What a check compares: a gated figure, or (`run`) whether the run is there at all. */
export type GateMetric = typeof RATIO_METRICS[number] | "paramMaxAbsDiffVsSingle" | "run";

/** One comparison of one figure of one run. */
export interface GateCheck {
  workload: string;
  strategy: StrategyName;
  worldSize: number;
  /** Compute threads per worker, where more than one. */
  threads?: number;
  metric: GateMetric;
  baseline: number | null;
  /** null when the figure (or the whole run) is missing from the current results. */
  current: number | null;
  /** The worst acceptable current value: a floor for ratios, a ceiling for the diff. */
  limit: number | null;
  /** current / baseline − 1, for ratios; null for the diff and for missing figures. */
  change: number | null;
  /** True when the baseline has it and the current results do not. */
  missing: boolean;
  regressed: boolean;
  /**
   * Ratios: what was compared. `interval` when both files carry intervals over several
   * repeats — a regression is the current interval's top below the baseline interval's bottom
   * less the tolerance (`limit`); `median` otherwise (the current median below the baseline
   * median less the tolerance).
   */
  by?: "interval" | "median";
  /** With `by: "interval"`: the two intervals. */
  baselineInterval?: { low: number; high: number };
  currentInterval?: { low: number; high: number };
}

/** Options for {@linkcode gate}. */
export interface GateOptions {
  /** Allowed relative drop of a ratio, in [0, 1) (default {@linkcode DEFAULT_TOLERANCE}). */
  tolerance?: number;
  /** Absolute bound on the equivalence diff (default {@linkcode EQUIVALENCE_BOUND}). */
  equivalenceBound?: number;
  /**
   * A run or gated figure that the baseline has and the current results lack is a warning
   * instead of a failure (default false: missing is a regression).
   */
  allowMissing?: boolean;
}

/** What {@linkcode gate} found. */
export interface GateResult {
  /** The failed checks; empty when the gate passes. */
  regressions: GateCheck[];
  /** How many checks ran. */
  checked: number;
  checks: GateCheck[];
  tolerance: number;
  equivalenceBound: number;
  /** Differences between the two machines or configurations worth knowing, one line each. */
  notes: string[];
}

function environmentNotes(baseline: Results, current: Results): string[] {
  const describe = (r: Results) =>
    `${r.env.cpuModel}, ${r.env.logicalCpus} logical CPUs, backend ${r.env.backend}`;
  const notes = [];
  if (describe(baseline) !== describe(current)) {
    notes.push(`Baseline ran on ${describe(baseline)}; current on ${describe(current)}.`);
  }
  if (baseline.config.quick !== current.config.quick) {
    notes.push("Only one of the two used the `--quick` preset.");
  }
  return notes;
}

/**
 * Compare `current` with `baseline`: a ratio regresses when current < baseline × (1 −
 * tolerance); a parallel run's equivalence diff regresses when it exceeds the absolute bound;
 * a run, or a gated figure (ratio, ceiling, equivalence), that the baseline has and the
 * current results lack regresses too, unless `allowMissing`. Single's own ratios are 1 by
 * definition and not checked.
 *
 * @param baseline the accepted results
 * @param current the results under test
 * @param options see {@linkcode GateOptions}
 * @returns the checks and the regressions among them (`renderGateTable` shows them)
 * @throws UsageError for a bad tolerance, a different schema, or nothing in common to check
 * @example
 * ```ts
 * import { readResults } from "./validate_results.ts";
 * const result = gate(await readResults("base.json"), await readResults("new.json"));
 * for (const c of result.regressions) console.log(c.workload, c.strategy, c.metric);
 * ```
 */
export function gate(baseline: Results, current: Results, options: GateOptions = {}): GateResult {
  const {
    tolerance = DEFAULT_TOLERANCE,
    equivalenceBound = EQUIVALENCE_BOUND,
    allowMissing = false,
  } = options;
  if (!(tolerance >= 0 && tolerance < 1)) {
    throw new UsageError(`Invalid tolerance ${tolerance}: expected a number in [0, 1)`);
  }
  // Schemas match and at least one run is shared, or the two are not comparable at all.
  pairRuns(baseline, current, ["baseline", "current"]);
  // Ratios move with the backend (faster compute makes communication weigh more): a baseline
  // of another backend says nothing about a regression.
  if (baseline.env.backend !== current.env.backend) {
    throw new UsageError(
      `Not comparable: the baseline ran on backend ${baseline.env.backend}, the current on ${current.env.backend}; gate results of one backend (bench --backend ${baseline.env.backend}, or a baseline measured on ${current.env.backend})`,
    );
  }
  // So do they with the knobs: a step of 4 micro-batches, or of twice the batch, is another run.
  const knobs = [
    ["--accumulate", (r: Results) => r.config.accumulate ?? 1],
    ["--scaling", (r: Results) => r.config.scaling ?? "strong"],
    ["--grad-compression", (r: Results) => r.config.gradCompression ?? "none"],
  ] as const;
  for (const [flag, of] of knobs) {
    if (of(baseline) !== of(current)) {
      throw new UsageError(
        `Not comparable: the baseline ran with ${flag} ${of(baseline)}, the current with ${
          of(current)
        }; gate results of the same settings`,
      );
    }
  }
  const parallel = baseline.runs.filter((r) => r.strategy !== "single");
  if (parallel.length === 0) {
    throw new UsageError(
      "Nothing to gate: the baseline and current results share only single's runs",
    );
  }
  const currentRuns = new Map(current.runs.map((r) => [runKey(r), r]));
  const checks: GateCheck[] = parallel.flatMap((a) => {
    const run = {
      workload: a.workload,
      strategy: a.strategy,
      worldSize: a.worldSize,
      ...((a.threads ?? 1) > 1 ? { threads: a.threads } : {}),
    };
    const missing = (metric: GateMetric, base: number | null): GateCheck => ({
      ...run,
      metric,
      baseline: base,
      current: null,
      limit: null,
      change: null,
      missing: true,
      regressed: !allowMissing,
    });
    const b = currentRuns.get(runKey(a));
    if (!b) return [missing("run", null)];
    const ratios = RATIO_METRICS.flatMap((metric): GateCheck[] => {
      const [base, now] = [a[metric], b[metric]];
      if (base === null) return [];
      if (now === null || now === undefined) return [missing(metric, base)];
      const [was, is] = [intervalOf(a, metric), intervalOf(b, metric)];
      const byInterval = was !== null && is !== null;
      const limit = (byInterval ? was.low : base) * (1 - tolerance);
      return [{
        ...run,
        metric,
        baseline: base,
        current: now,
        limit,
        change: now / base - 1,
        missing: false,
        regressed: (byInterval ? is.high : now) < limit,
        by: byInterval ? "interval" : "median",
        ...(byInterval ? { baselineInterval: was, currentInterval: is } : {}),
      }];
    });
    const [base, diff] = [a.paramMaxAbsDiffVsSingle, b.paramMaxAbsDiffVsSingle];
    // A compressed run is held to its own bound (the stricter of it and the option's).
    const bound = b.equivalenceBoundUsed != null && b.equivalenceBoundUsed > EQUIVALENCE_BOUND
      ? Math.max(equivalenceBound, b.equivalenceBoundUsed)
      : equivalenceBound;
    // No bound applies (local BatchNorm computes another gradient by design): nothing to gate.
    const unbounded = b.equivalenceBoundUsed === null && diff != null;
    const equivalence: GateCheck[] = unbounded
      ? []
      : diff === null || diff === undefined
      ? base === null ? [] : [missing("paramMaxAbsDiffVsSingle", base)]
      : [{
        ...run,
        metric: "paramMaxAbsDiffVsSingle",
        baseline: base,
        current: diff,
        limit: bound,
        change: null,
        missing: false,
        regressed: !(diff <= bound),
      }];
    return [...ratios, ...equivalence];
  });
  const absent = checks.filter((c) => c.missing);
  const notes = environmentNotes(baseline, current);
  if (absent.length > 0 && allowMissing) {
    notes.push(
      `Missing from the current results (allowed by --allow-missing): ${
        absent.map(describeCheck).join("; ")
      }.`,
    );
  }
  return {
    regressions: checks.filter((c) => c.regressed),
    checked: checks.length,
    checks,
    tolerance,
    equivalenceBound,
    notes,
  };
}

/** `dp-2 on mnist-mlp` or `dp-2 on mnist-mlp: efficiencyVsCeiling`. */
/**
 * The interval over repeats of a gated ratio, where the run has one from several repeats
 * (efficiency's is speedup's over the world size); null otherwise.
 *
 * @param run a run record
 * @param metric a gated ratio
 * @returns its interval, or null
 * @example
 * ```ts
 * import type { RunRecord } from "./results.ts";
 * declare const run: RunRecord;
 * intervalOf(run, "speedup");
 * ```
 */
export function intervalOf(
  run: RunRecord,
  metric: typeof RATIO_METRICS[number],
): { low: number; high: number } | null {
  const interval = metric === "efficiencyVsCeiling"
    ? run.efficiencyVsCeilingInterval
    : run.speedupInterval;
  if (!interval || interval.level === 0) return null;
  const scale = metric === "efficiency" ? 1 / run.worldSize : 1;
  return { low: interval.low * scale, high: interval.high * scale };
}

function describeCheck(c: GateCheck): string {
  const name = `${runLabel(c)} on ${c.workload}`;
  return c.metric === "run" ? name : `${name}: ${c.metric}`;
}
