/**
 * The gate's verdict, what regressed or is missing, and every check, as Markdown.
 *
 * @module
 */
import type { GateCheck, GateMetric, GateResult } from "../analysis/gate.ts";
import { fixed, percent, sci } from "../analysis/format.ts";
import { runLabel } from "../core/run_types.ts";
import { escapeMarkdownText, markdownSafe, markdownTableText } from "./_markdown.ts";

function value(metric: GateMetric, n: number | null): string {
  if (metric === "run") return n === null ? "" : String(n);
  if (metric === "paramMaxAbsDiffVsSingle") return sci(n);
  if (n === null || !Number.isFinite(n)) return "n/a";
  return metric === "speedup" ? `${fixed(n, 3)}x` : `${(100 * n).toFixed(1)}%`;
}

function signedPercent(n: number): string {
  if (!Number.isFinite(n)) return "n/a";
  const p = (100 * n).toFixed(1);
  return n >= 0 ? `+${p}%` : `−${p.slice(1)}%`;
}

/** `[low–high]` in the metric's format. */
function span(metric: GateCheck["metric"], interval: { low: number; high: number }): string {
  return `[${value(metric, interval.low)}–${value(metric, interval.high)}]`;
}

/**
 * What one failed check found, in one line: the run, the figure, and by how much.
 *
 * @param c a regressed or missing check
 * @param result the gate's tolerance and equivalence bound
 * @returns `ddp-2 on mnist-cnn: speedup 1.420x → 1.100x (−22.5%, allowed −10.0%)` and the like
 * @example
 * ```ts
 * import { gate } from "../analysis/gate.ts";
 * import { readResults } from "../analysis/validate_results.ts";
 * const result = gate(await readResults("a.json"), await readResults("b.json"));
 * result.regressions.map((c) => regressionLine(c, result));
 * ```
 */
export function regressionLine(
  c: GateCheck,
  result: Pick<GateResult, "tolerance" | "equivalenceBound">,
): string {
  const { tolerance, equivalenceBound } = result;
  const name = `${runLabel(c)} on ${c.workload}`;
  return c.missing
    ? c.metric === "run"
      ? `${name}: the run is missing from the current results`
      : `${name}: ${c.metric} is missing from the current results (baseline ${
        value(c.metric, c.baseline)
      })`
    : c.metric === "paramMaxAbsDiffVsSingle"
    ? `${name}: max |Δparam| vs single ${sci(c.current)} exceeds the bound ${sci(equivalenceBound)}`
    : c.by === "interval"
    ? `${name}: ${c.metric} ${span(c.metric, c.baselineInterval!)} → ${
      span(c.metric, c.currentInterval!)
    }: the whole current interval lies below ${
      value(c.metric, c.limit)
    } (the baseline's low end less ${(100 * tolerance).toFixed(1)}%)`
    : `${name}: ${c.metric} ${value(c.metric, c.baseline)} → ${value(c.metric, c.current)} (${
      signedPercent(c.change!)
    }, allowed −${(100 * tolerance).toFixed(1)}%)`;
}

/**
 * Render what the gate checked and what regressed by how much, as Markdown.
 *
 * @param result what `gate` returned
 * @returns a verdict line, the regressions, and a table of every check
 * @example
 * ```ts
 * import { gate } from "../analysis/gate.ts";
 * import { readResults } from "../analysis/validate_results.ts";
 * const [baseline, current] = await Promise.all(["a.json", "b.json"].map((f) => readResults(f)));
 * console.log(renderGateTable(gate(baseline, current)));
 * ```
 */
export function renderGateTable(given: GateResult): string {
  // The notes are the gate's own sentences (with code spans) around names from the files.
  const result = { ...markdownSafe(given), notes: given.notes.map(escapeMarkdownText) };
  const { regressions, checked, checks, tolerance, notes } = result;
  const verdict = regressions.length === 0
    ? `Gate passed: ${checked} checks, no regression (tolerance ${percent(tolerance)}).`
    : `Gate failed: ${regressions.length} of ${checked} checks regressed or are missing (tolerance ${
      percent(tolerance)
    }).`;
  const lines = regressions.map((c) => `- ${regressionLine(c, result)}`);
  const table = markdownTableText([
    ["run", "workload", "metric", "baseline", "current", "change", "limit", "status"],
    ...checks.map((c) => [
      runLabel(c),
      c.workload,
      c.metric,
      `${value(c.metric, c.baseline)}${
        c.baselineInterval ? ` ${span(c.metric, c.baselineInterval)}` : ""
      }`,
      c.missing
        ? "missing"
        : `${value(c.metric, c.current)}${
          c.currentInterval ? ` ${span(c.metric, c.currentInterval)}` : ""
        }`,
      c.change === null ? "" : signedPercent(c.change),
      c.limit === null
        ? ""
        : `${c.metric === "paramMaxAbsDiffVsSingle" ? "≤" : "≥"} ${value(c.metric, c.limit)}`,
      c.regressed ? (c.missing ? "MISSING" : "REGRESSED") : c.missing ? "missing (allowed)" : "ok",
    ]),
  ], ["l", "l", "l", "r", "r", "r", "r", "l"]);
  return [
    verdict,
    ...(lines.length ? ["", ...lines] : []),
    ...(notes.length ? ["", ...notes.map((n) => `> ${n}`)] : []),
    "",
    "Ratios against each file's own single run (machine-independent): where both files carry " +
    "intervals over several repeats, a ratio regresses only when the whole current interval " +
    "lies below the baseline interval's low end less the tolerance; otherwise medians are " +
    "compared. The equivalence diff against an absolute bound.",
    "",
    table,
    "",
  ].join("\n");
}
