/**
 * The CI regression gate: compares two `results.json` on the figures that survive a change of
 * machine (speedup, efficiency and efficiency against the no-communication ceiling, all
 * ratios to the same run's single) and on the DP/DDP equivalence with single, which must stay
 * under an absolute bound. Absolute times are never compared. The figures in `results.json`
 * are already medians over repeats.
 *
 * @module
 */
import { markdownTable } from "markdown-table";
import { UsageError } from "../core/backend.ts";
import type { StrategyName } from "../core/run_types.ts";
import { fixed, percent, sci } from "../reports/_format.ts";
import { runLabel } from "../reports/_labels.ts";
import { pairRuns } from "./_common_runs.ts";
import type { Results } from "./results.ts";

/** Default tolerance: a ratio may drop by 10% before it counts as a regression. */
export const DEFAULT_TOLERANCE = 0.1;
/** Largest max |param − single's param| a parallel run may show (absolute, not relative). */
export const EQUIVALENCE_BOUND = 1e-4;

/** The ratios compared between baseline and current. */
export const RATIO_METRICS = ["speedup", "efficiency", "efficiencyVsCeiling"] as const;

/** What a check compares. */
export type GateMetric = typeof RATIO_METRICS[number] | "paramMaxAbsDiffVsSingle";

/** One comparison of one figure of one run. */
export interface GateCheck {
  workload: string;
  strategy: StrategyName;
  worldSize: number;
  metric: GateMetric;
  baseline: number | null;
  current: number;
  /** The worst acceptable current value: a floor for ratios, a ceiling for the diff. */
  limit: number;
  /** current / baseline − 1, for ratios; null for the diff. */
  change: number | null;
  regressed: boolean;
}

/** Options for {@linkcode gate}. */
export interface GateOptions {
  /** Allowed relative drop of a ratio, in [0, 1) (default {@linkcode DEFAULT_TOLERANCE}). */
  tolerance?: number;
  /** Absolute bound on the equivalence diff (default {@linkcode EQUIVALENCE_BOUND}). */
  equivalenceBound?: number;
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
  /** {@linkcode renderGateTable} of this result. */
  table: string;
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
 * tolerance); a parallel run's equivalence diff regresses when it exceeds the absolute bound.
 * Single's own ratios are 1 by definition and not checked.
 *
 * @param baseline the accepted results
 * @param current the results under test
 * @param options see {@linkcode GateOptions}
 * @returns the checks, the regressions among them and a table of both
 * @throws UsageError for a bad tolerance, a different schema, or nothing in common to check
 * @example
 * ```ts
 * const result = gate(await readResults("base.json"), await readResults("new.json"));
 * console.log(result.table);
 * Deno.exit(result.regressions.length ? 1 : 0);
 * ```
 */
export function gate(baseline: Results, current: Results, options: GateOptions = {}): GateResult {
  const { tolerance = DEFAULT_TOLERANCE, equivalenceBound = EQUIVALENCE_BOUND } = options;
  if (!(tolerance >= 0 && tolerance < 1)) {
    throw new UsageError(`Invalid tolerance ${tolerance}: expected a number in [0, 1)`);
  }
  const pairs = pairRuns(baseline, current, ["baseline", "current"])
    .filter(({ a }) => a.strategy !== "single");
  if (pairs.length === 0) {
    throw new UsageError(
      "Nothing to gate: the baseline and current results share only single's runs",
    );
  }
  const checks: GateCheck[] = pairs.flatMap(({ a, b }) => {
    const run = { workload: a.workload, strategy: a.strategy, worldSize: a.worldSize };
    const ratios = RATIO_METRICS.flatMap((metric) => {
      const [base, now] = [a[metric], b[metric]];
      if (base === null || now === null) return [];
      const limit = base * (1 - tolerance);
      return [{
        ...run,
        metric,
        baseline: base,
        current: now,
        limit,
        change: now / base - 1,
        regressed: now < limit,
      }];
    });
    const diff = b.paramMaxAbsDiffVsSingle;
    const equivalence = diff === null ? [] : [{
      ...run,
      metric: "paramMaxAbsDiffVsSingle" as const,
      baseline: a.paramMaxAbsDiffVsSingle,
      current: diff,
      limit: equivalenceBound,
      change: null,
      regressed: !(diff <= equivalenceBound),
    }];
    return [...ratios, ...equivalence];
  });
  const partial = {
    regressions: checks.filter((c) => c.regressed),
    checked: checks.length,
    checks,
    tolerance,
    equivalenceBound,
    notes: environmentNotes(baseline, current),
  };
  return { ...partial, table: renderGateTable(partial) };
}

function value(metric: GateMetric, n: number | null): string {
  if (metric === "paramMaxAbsDiffVsSingle") return sci(n);
  return metric === "speedup" ? `${fixed(n, 3)}x` : n === null ? "n/a" : `${(100 * n).toFixed(1)}%`;
}

function signedPercent(n: number): string {
  const p = (100 * n).toFixed(1);
  return n >= 0 ? `+${p}%` : `−${p.slice(1)}%`;
}

/**
 * Render what the gate checked and what regressed by how much, as Markdown.
 *
 * @param result what {@linkcode gate} returned (its `table` is not needed)
 * @returns a verdict line, the regressions, and a table of every check
 * @example
 * ```ts
 * console.log(renderGateTable(gate(baseline, current)));
 * ```
 */
export function renderGateTable(result: Omit<GateResult, "table">): string {
  const { regressions, checked, checks, tolerance, equivalenceBound, notes } = result;
  const name = (c: GateCheck) => `${runLabel(c)} on ${c.workload}`;
  const verdict = regressions.length === 0
    ? `Gate passed: ${checked} checks, no regression (tolerance ${percent(tolerance)}).`
    : `Gate failed: ${regressions.length} of ${checked} checks regressed (tolerance ${
      percent(tolerance)
    }).`;
  const lines = regressions.map((c) =>
    c.metric === "paramMaxAbsDiffVsSingle"
      ? `- ${name(c)}: max |Δparam| vs single ${sci(c.current)} exceeds the bound ${
        sci(equivalenceBound)
      }`
      : `- ${name(c)}: ${c.metric} ${value(c.metric, c.baseline)} → ${
        value(c.metric, c.current)
      } (${signedPercent(c.change!)}, allowed −${(100 * tolerance).toFixed(1)}%)`
  );
  const table = markdownTable([
    ["run", "workload", "metric", "baseline", "current", "change", "limit", "status"],
    ...checks.map((c) => [
      runLabel(c),
      c.workload,
      c.metric,
      value(c.metric, c.baseline),
      value(c.metric, c.current),
      c.change === null ? "" : signedPercent(c.change),
      `${c.metric === "paramMaxAbsDiffVsSingle" ? "≤" : "≥"} ${value(c.metric, c.limit)}`,
      c.regressed ? "REGRESSED" : "ok",
    ]),
  ], { align: ["l", "l", "l", "r", "r", "r", "r", "l"] });
  return [
    verdict,
    ...(lines.length ? ["", ...lines] : []),
    ...(notes.length ? ["", ...notes.map((n) => `> ${n}`)] : []),
    "",
    "Ratios against each file's own single run (machine-independent); the equivalence diff " +
    "against an absolute bound.",
    "",
    table,
    "",
  ].join("\n");
}

/**
 * Parse a `--tolerance` value for the CLI.
 *
 * @param flag the flag, for the message
 * @param value the text given
 * @returns the tolerance, in [0, 1)
 * @throws UsageError when it is not a number in [0, 1)
 * @example
 * ```ts
 * parseTolerance("--tolerance", "0.15"); // 0.15
 * ```
 */
export function parseTolerance(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !(n >= 0 && n < 1)) {
    throw new UsageError(`Invalid ${flag} "${value}": expected a number in [0, 1), e.g. 0.1`);
  }
  return n;
}
