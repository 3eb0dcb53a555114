/**
 * A history over commits (`report --history DIR`): the points and how they were ordered, the
 * gate's regressions between neighbours, then per workload a table and a chart of samples/s
 * and speedup (with their intervals) against the commit, regressions marked. Markdown and an
 * offline HTML page, from one {@linkcode History}.
 *
 * @module
 */
import type { TopLevelSpec } from "vega-lite";
import { type History, regressionsAt } from "../analysis/history.ts";
import type { RunRecord } from "../analysis/results.ts";
import { intervalText } from "../analysis/matrix.ts";
import { fixed, percent } from "../analysis/format.ts";
import { type Interval, INTERVAL_METHOD, medianInterval } from "../core/stats.ts";
import { runLabel } from "../core/run_types.ts";
import { CONFIG, PANEL } from "./_charts.ts";
import { escapeHtml, figure, htmlTable, list, NOTE_STYLE, page } from "./_html.ts";
import { type Table, toMarkdown } from "./_tables.ts";
import { escapeMarkdownText, markdownSafe } from "./_markdown.ts";
import { regressionLine } from "./gate_table.ts";

/** The page's title. */
const TITLE = "paratrain: history over commits";
/** Width per point of a chart panel, px (never narrower than a report panel). */
const POINT_WIDTH = 56;
/** Beyond this many points the commit labels are slanted. */
const UPRIGHT_LABELS = 6;
/** A figure and its interval stay on one line in the history tables. */
const TABLE_STYLE = "table.history td.r, table.history td:nth-child(2) { white-space: nowrap; }\n";
/** How a regression is marked in the tables. */
const REGRESSED = "▼";

/** The runs of a workload over every point, single first, then by strategy and world size. */
function runLabels(history: History, workload: string): { label: string; parallel: boolean }[] {
  const runs = history.points.flatMap((p) => p.results.runs.filter((r) => r.workload === workload));
  const rank = (r: RunRecord) => r.strategy === "single" ? 0 : r.strategy === "dp" ? 1 : 2;
  runs.sort((a, b) =>
    rank(a) - rank(b) || a.worldSize - b.worldSize || (a.threads ?? 1) - (b.threads ?? 1)
  );
  const seen = new Map<string, boolean>();
  for (const r of runs) seen.set(runLabel(r), r.strategy !== "single");
  return [...seen].map(([label, parallel]) => ({ label, parallel }));
}

function runAt(history: History, k: number, workload: string, label: string) {
  return history.points[k].results.runs.find((r) =>
    r.workload === workload && runLabel(r) === label
  );
}

/** The interval of a run's samples/s over its repeats; null for one repeat (or all alike). */
function samplesInterval(run: RunRecord): Interval | null {
  const interval = medianInterval(run.samplesPerSecRepeats);
  return interval.level > 0 && interval.high > interval.low ? interval : null;
}

/** The points: when, dated by what, on what, from which file. */
function pointsTable(history: History): Table {
  return {
    rows: [
      ["point", "commit", "date", "dated by", "machine", "backend", "settings", "file"],
      ...history.points.map((p) => {
        const { env, config } = p.results;
        return [
          `**${p.id}**`,
          p.commit ? `\`${p.commit.slice(0, 10)}\`` : "–",
          p.date,
          p.dateFrom === "commit" ? "commit date" : "bench start (no commit date)",
          `${env.cpuModel}, ${env.logicalCpus} CPUs`,
          env.backend,
          `${config.quick ? "--quick, " : ""}${config.repeats} repeat${
            config.repeats === 1 ? "" : "s"
          }`,
          `\`${p.source}\``,
        ];
      }),
    ],
    align: ["l", "l", "l", "l", "l", "l", "l", "l"],
  };
}

/** One line per step that regressed or was not compared; one line saying so when none. */
function regressionLines(history: History): string[] {
  const lines = history.steps.flatMap((step, k) => {
    if (!step) return [];
    const pair = `${history.points[k - 1].id} → ${history.points[k].id}`;
    if (step.notCompared) return [`${pair}: not compared — ${step.notCompared}`];
    return step.gate!.regressions.map((c) =>
      `${pair}: ${REGRESSED} ${regressionLine(c, step.gate!)}`
    );
  });
  if (history.points.length < 2) return ["One point: nothing to compare yet."];
  return lines.length ? lines : [
    `None: every point passes the gate against the one before (tolerance ${
      percent(history.tolerance)
    }).`,
  ];
}

/** The gate's cell for point `k` of a workload's table. */
function gateCell(history: History, k: number, workload: string): string {
  const step = history.steps[k];
  if (!step) return "first point";
  if (step.notCompared) return "not compared (see above)";
  const checks = step.gate!.checks.filter((c) => c.workload === workload);
  const regressed = regressionsAt(history, { point: k, workload });
  const missing = checks.filter((c) => c.missing && c.metric === "run").map((c) => runLabel(c));
  const gone = missing.length ? `; missing: ${missing.join(", ")}` : "";
  if (checks.length === 0) return "nothing to check";
  return regressed.length
    ? `${REGRESSED} ${regressed.map((c) => `${runLabel(c)} ${c.metric}`).join(", ")}${gone}`
    : `pass (${checks.length} checks)${gone}`;
}

/**
 * A workload's table: a row per point, samples/s of every run and speedup of the parallel
 * ones with their intervals, then the gate against the point before; `flagged[row][column]`
 * marks the cells the gate found regressed.
 */
function workloadHistory(
  history: History,
  workload: string,
): { table: Table; flagged: boolean[][] } {
  const labels = runLabels(history, workload);
  const header = ["point", "date"];
  for (const { label, parallel } of labels) {
    header.push(`${label} samples/s`);
    if (parallel) header.push(`${label} speedup`);
  }
  header.push("gate vs the point before");
  const flagged: boolean[][] = [];
  const rows = history.points.map((p, k) => {
    const row = [`**${p.id}**`, p.date.slice(0, 10)];
    const flags = [false, false];
    for (const { label, parallel } of labels) {
      const run = runAt(history, k, workload, label);
      const samples = run
        ? `${fixed(run.samplesPerSec, 0)} ${spanOf(samplesInterval(run), 0)}`
        : "–";
      row.push(samples.trim());
      flags.push(false);
      if (!parallel) continue;
      const regressed = regressionsAt(history, { point: k, workload, run: label }).length > 0;
      row.push(
        run
          ? `${fixed(run.speedup, 2)}x ${intervalText(run.speedupInterval)}${
            regressed ? ` ${REGRESSED}` : ""
          }`
            .replace(/\s+/g, " ").trim()
          : "–",
      );
      flags.push(regressed);
    }
    const gateText = gateCell(history, k, workload);
    row.push(gateText);
    flags.push(gateText.startsWith(REGRESSED));
    flagged.push(flags);
    return row;
  });
  return {
    table: {
      rows: [header, ...rows],
      align: header.map((_, i) => i < 2 || i === header.length - 1 ? "l" : "r"),
    },
    flagged,
  };
}

/** `[1200–1310]` at `digits` decimals, or nothing without an interval. */
function spanOf(interval: Interval | null, digits: number): string {
  return interval ? `[${fixed(interval.low, digits)}–${fixed(interval.high, digits)}]` : "";
}

/** The measures each workload's chart draws, one panel each. */
const MEASURES = { samples: "samples/s", speedup: "speedup over single (×)" } as const;

/**
 * A workload's chart: samples/s and speedup against the commit, a line per run, the interval
 * over repeats as a bar, and a red ring where the gate found a regression.
 *
 * @param history the history
 * @param workload the workload
 * @returns the Vega-Lite spec
 * @example
 * ```ts
 * import type { History } from "../analysis/history.ts";
 * declare const history: History;
 * historyChart(history, "mnist-cnn");
 * ```
 */
export function historyChart(history: History, workload: string): TopLevelSpec {
  const values = history.points.flatMap((p, k) =>
    runLabels(history, workload).flatMap(({ label, parallel }) => {
      const run = runAt(history, k, workload, label);
      if (!run) return [];
      const samples = samplesInterval(run);
      const speedup = run.speedupInterval?.level ? run.speedupInterval : null;
      return [
        {
          point: p.id,
          run: label,
          measure: MEASURES.samples,
          value: run.samplesPerSec,
          low: samples?.low ?? run.samplesPerSec,
          high: samples?.high ?? run.samplesPerSec,
          regressed: false,
        },
        ...(parallel
          ? [{
            point: p.id,
            run: label,
            measure: MEASURES.speedup,
            value: run.speedup,
            low: speedup?.low ?? run.speedup,
            high: speedup?.high ?? run.speedup,
            regressed: regressionsAt(history, { point: k, workload, run: label }).length > 0,
          }]
          : []),
      ];
    })
  );
  const x = {
    field: "point",
    type: "ordinal" as const,
    title: "commit (oldest first)",
    sort: history.points.map((p) => p.id),
    axis: { labelAngle: history.points.length > UPRIGHT_LABELS ? -45 : 0 },
  };
  const color = {
    field: "run",
    type: "nominal" as const,
    title: "run",
    legend: { symbolOpacity: 1 },
  };
  return {
    title:
      `${workload}: samples/s and speedup against the commit (bars: interval over repeats; red ring: the gate's regression against the point before)`,
    data: { values },
    facet: {
      column: {
        field: "measure",
        type: "nominal",
        title: null,
        sort: [MEASURES.samples, MEASURES.speedup],
      },
    },
    spec: {
      width: Math.max(PANEL.width, POINT_WIDTH * history.points.length),
      height: PANEL.height,
      layer: [
        {
          mark: { type: "rule", opacity: 0.55, strokeWidth: 1.5 },
          encoding: { x, y: { field: "low", type: "quantitative" }, y2: { field: "high" }, color },
        },
        {
          mark: { type: "line", point: true },
          encoding: {
            x,
            y: { field: "value", type: "quantitative", title: null, scale: { zero: false } },
            color,
            detail: { field: "run" },
          },
        },
        {
          transform: [{ filter: "datum.regressed" }],
          mark: { type: "point", shape: "circle", size: 260, strokeWidth: 2.5, color: "#d62728" },
          encoding: { x, y: { field: "value", type: "quantitative" } },
        },
      ],
    },
    resolve: { scale: { y: "independent" } },
    config: CONFIG,
  } as TopLevelSpec;
}

/** The words under the points table. */
function aboutLines(history: History): string[] {
  return [
    ...history.notes,
    `Speedup is samples/s over the same point's one-worker \`single\` (machine-independent); the gate compares it, efficiency and efficiency against the ceiling, and the equivalence with single, between each point and the one before (tolerance ${
      percent(history.tolerance)
    }; where both carry intervals, only a whole interval below the earlier one's low end less the tolerance regresses). Absolute samples/s are shown, not gated.`,
    `Intervals [low–high] are a ${INTERVAL_METHOD}; samples/s intervals are over the repeats' samples/s.`,
  ];
}

/**
 * The history as Markdown.
 *
 * @param history the history
 * @returns `report.md`
 * @example
 * ```ts
 * import type { History } from "../analysis/history.ts";
 * declare const history: History;
 * renderHistoryMarkdown(history);
 * ```
 */
export function renderHistoryMarkdown(given: History): string {
  // Every string from the files escaped once, here; the notes keep their code spans.
  const history = { ...markdownSafe(given), notes: given.notes.map(escapeMarkdownText) };
  const out = [`# ${TITLE}`, "", "## Regressions", ""];
  out.push(...regressionLines(history).map((l) => `- ${l}`), "");
  out.push("## Points", "", toMarkdown(pointsTable(history)), "");
  out.push(...aboutLines(history).map((l) => `- ${l}`), "");
  for (const workload of history.workloads) {
    out.push(`## ${workload}`, "", toMarkdown(workloadHistory(history, workload).table), "");
  }
  return out.join("\n");
}

/**
 * The history as one offline HTML page: the Markdown's tables, regressions shaded, and a
 * chart per workload as inline SVG.
 *
 * @param history the history
 * @returns `report.html`
 * @example
 * ```ts
 * import type { History } from "../analysis/history.ts";
 * declare const history: History;
 * await renderHistoryHtml(history);
 * ```
 */
export async function renderHistoryHtml(history: History): Promise<string> {
  const body = [
    "<h2>Regressions</h2>",
    list(regressionLines(history)),
    "<h2>Points</h2>",
    htmlTable(pointsTable(history)),
    list(aboutLines(history)),
  ];
  for (const [i, workload] of history.workloads.entries()) {
    const { table, flagged } = workloadHistory(history, workload);
    body.push(
      `<h2>${escapeHtml(workload)}</h2>`,
      await figure(historyChart(history, workload), `chart-history-${i + 1}`),
      htmlTable(table, "history", (row, column) => flagged[row][column] ? "regressed" : null),
    );
  }
  return page(TITLE, body, { style: `${NOTE_STYLE}${TABLE_STYLE}` });
}
