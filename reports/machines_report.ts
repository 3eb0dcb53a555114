/**
 * Machines side by side (`report --in A --in B …`): the machines and how they differ, each
 * machine's verdict and best single process per workload, one chart of the speedup over each
 * machine's best single process with a line per machine, and per workload the runs side by
 * side. Markdown and an offline HTML page, from one {@linkcode MachineComparison}.
 *
 * @module
 */
import type { TopLevelSpec } from "vega-lite";
import type { Machine, MachineComparison } from "../analysis/machines.ts";
import type { RunRecord } from "../analysis/results.ts";
import { intervalText, vsBest, vsBestInterval, WORTHWHILE_SPEEDUP } from "../analysis/matrix.ts";
import { provisionalNote } from "../analysis/provisional.ts";
import { fixed } from "../analysis/format.ts";
import { INTERVAL_METHOD } from "../core/stats.ts";
import { runLabel } from "../core/run_types.ts";
import { CONFIG, PANEL, PANELS_PER_ROW } from "./_charts.ts";
import { escapeHtml, figure, htmlTable, inline, list, NOTE_STYLE, page } from "./_html.ts";
import { answerTable, type Table, toMarkdown } from "./_tables.ts";
import { keepCodeSpans, markdownSafe } from "./_markdown.ts";

/** The page's title. */
const TITLE = "paratrain: machines side by side";
/** Stroke dash per parallel strategy in the chart (solid for DDP). */
const STRATEGY_DASHES = { domain: ["dp", "ddp"], range: [[6, 3], [1, 0]] };

/** Who each machine is: one row per machine, from its environment. */
function machinesTable(comparison: MachineComparison): Table {
  return {
    rows: [
      ["machine", "CPU", "logical CPUs", "OS", "compute", "GPU", "hosts", "settings", "commit"],
      ...comparison.machines.map((m) => [
        `**${m.id}**`,
        m.cpu,
        String(m.logicalCpus),
        m.os,
        `${m.compute}${m.provisional ? " (verdicts provisional)" : ""}`,
        m.gpu ?? "–",
        String(m.hosts),
        m.settings,
        m.commit ? `\`${m.commit.slice(0, 10)}\`` : "–",
      ]),
    ],
    align: ["l", "l", "r", "l", "l", "l", "r", "l", "l"],
  };
}

/** Lines under the machines table: the files, what differs, what is left out. */
function machineLines(comparison: MachineComparison): string[] {
  return [
    ...comparison.machines.map((m) =>
      `${m.id}: \`${m.source}\`, started ${m.startedAt} — ${m.label.slice(m.id.length + 2)}`
    ),
    comparison.differences.length
      ? `Settings that differ (each machine's figures are its own; ratios compare within a machine): ${
        comparison.differences.join("; ")
      }.`
      : "Every machine ran with the same settings.",
    ...comparison.unshared.map((u) =>
      `${u.workload}: run on ${u.machine} only, so not set side by side (see ${u.machine}'s own report).`
    ),
  ];
}

/** The best single process of a machine's workload: its fastest `single` run. */
function bestSingle(runs: RunRecord[]): RunRecord | undefined {
  return runs.filter((r) => r.strategy === "single")
    .reduce<RunRecord | undefined>(
      (b, r) => !b || r.samplesPerSec > b.samplesPerSec ? r : b,
      undefined,
    );
}

const runsOf = (m: Machine, workload: string) =>
  m.results.runs.filter((r) => r.workload === workload);

/** Per shared workload, one row per machine: the machine's own answer-table row. */
function answersTable(comparison: MachineComparison): Table {
  const own = comparison.machines.map((m) => answerTable(m.results));
  const [header] = own[0].rows;
  const rows = comparison.shared.flatMap((workload) =>
    comparison.machines.map((m, i) => {
      const row = own[i].rows.slice(1).find((r) => r[0] === workload);
      if (row) return [workload, `**${m.id}**`, ...row.slice(1)];
      const ran = runsOf(m, workload).length > 0;
      return [workload, `**${m.id}**`, ran ? "no verdict in the file" : "not run", "", "", "", ""];
    })
  );
  return {
    rows: [[header[0], "machine", ...header.slice(1)], ...rows],
    align: ["l", "l", "l", "l", "r", "l", "l"],
  };
}

/** How the run rows are ordered: single first, then by strategy and world size. */
function runOrder(a: RunRecord, b: RunRecord): number {
  const rank = (r: RunRecord) => r.strategy === "single" ? 0 : r.strategy === "dp" ? 1 : 2;
  return rank(a) - rank(b) || a.worldSize - b.worldSize || (a.threads ?? 1) - (b.threads ?? 1);
}

/** One workload's runs side by side: samples/s and the speedup over each machine's best single. */
function runsTable(comparison: MachineComparison, workload: string): Table {
  const { machines } = comparison;
  const all = machines.flatMap((m) => runsOf(m, workload)).sort(runOrder);
  const labels = [...new Set(all.map(runLabel))];
  const cells = (m: Machine, label: string) => {
    const runs = runsOf(m, workload);
    const run = runs.find((r) => runLabel(r) === label);
    if (!run) return ["not run", ""];
    const best = bestSingle(runs);
    const ratio = run.strategy === "single"
      ? run === best
        ? "best single"
        : best
        ? `${fixed(run.samplesPerSec / best.samplesPerSec, 2)}x`
        : "–"
      : `${fixed(vsBest(run), 2)}x ${intervalText(vsBestInterval(run))}`.trim();
    return [fixed(run.samplesPerSec, 0), ratio];
  };
  return {
    rows: [
      ["run", ...machines.flatMap((m) => [`${m.id} samples/s`, `${m.id} vs its best single`])],
      ...labels.map((label) => [label, ...machines.flatMap((m) => cells(m, label))]),
    ],
    align: ["l", ...machines.flatMap(() => ["r" as const, "r" as const])],
  };
}

/** The first screen's notes: which machines' verdicts are provisional, and how to get native. */
function provisionalLines(comparison: MachineComparison): string[] {
  return comparison.machines.flatMap((m) =>
    m.provisional ? [provisionalNote(m.results.env, m.id) ?? ""].filter(Boolean) : []
  );
}

/** What the answer rows compare, under their table. */
const ANSWERS_NOTE =
  `Each machine's verdict is its own: its parallel runs against its own best single process (the faster \`single\` run there), by the interval of the speedup over its repeats; "choose" needs the whole interval at or above ${
    fixed(WORTHWHILE_SPEEDUP, 2)
  }x. Absolute speeds differ between machines; the ratios are what compare.`;

interface ChartPoint {
  workload: string;
  machine: string;
  strategy: string;
  series: string;
  worldSize: number;
  speedup: number;
  low: number;
  high: number;
}

/**
 * Per shared workload and machine: the speedup over that machine's best single process against
 * world size, one line per machine and strategy, starting from the one-worker `single` at N=1.
 */
function chartPoints(comparison: MachineComparison): ChartPoint[] {
  return comparison.shared.flatMap((workload) =>
    comparison.machines.flatMap((m) => {
      const runs = runsOf(m, workload);
      const best = bestSingle(runs);
      const single = runs.find((r) => r.strategy === "single" && (r.threads ?? 1) === 1) ??
        best;
      if (!best || !single) return [];
      // One point per strategy and world size: the first variant run, as the bench's own chart.
      const seen = new Set<string>();
      const parallel = runs.filter((r) => {
        const key = `${r.strategy}|${r.worldSize}`;
        if (r.strategy === "single" || seen.has(key)) return false;
        seen.add(key);
        return true;
      }).sort(runOrder);
      const point = (
        strategy: string,
        worldSize: number,
        speedup: number,
        i = { low: speedup, high: speedup },
      ) => ({
        workload,
        machine: m.label,
        strategy,
        series: `${m.id} ${strategy}`,
        worldSize,
        speedup,
        low: i.low,
        high: i.high,
      });
      const start = single.samplesPerSec / best.samplesPerSec;
      return [
        ...[...new Set(parallel.map((r) => r.strategy))].map((s) => point(s, 1, start)),
        ...parallel.map((r) => point(r.strategy, r.worldSize, vsBest(r), vsBestInterval(r))),
      ];
    })
  );
}

/**
 * The comparison's chart: speedup over each machine's best single process against world size,
 * a panel per shared workload, a colour per machine, a dash per strategy, the interval as a bar.
 *
 * @param comparison the machines
 * @returns the Vega-Lite spec
 * @example
 * ```ts
 * import type { MachineComparison } from "../analysis/machines.ts";
 * declare const comparison: MachineComparison;
 * machinesChart(comparison);
 * ```
 */
export function machinesChart(comparison: MachineComparison): TopLevelSpec {
  const color = {
    field: "machine",
    type: "nominal" as const,
    title: "machine",
    scale: { domain: comparison.machines.map((m) => m.label) },
    legend: { orient: "bottom" as const, direction: "vertical" as const, labelLimit: 600 },
  };
  const x = {
    field: "worldSize",
    type: "quantitative" as const,
    title: "world size (replicas or ranks)",
    scale: { zero: false },
    axis: { tickMinStep: 1, format: "d" },
  };
  return {
    title: `Speedup over each machine's best single process (bars: interval over repeats; dotted: ${
      fixed(WORTHWHILE_SPEEDUP, 2)
    }x, the bar to choose)`,
    data: { values: chartPoints(comparison) },
    facet: {
      field: "workload",
      type: "nominal",
      title: null,
      sort: comparison.shared,
    },
    columns: PANELS_PER_ROW,
    spec: {
      ...PANEL,
      layer: [
        {
          mark: { type: "rule", color: "#999999", strokeDash: [2, 2] },
          encoding: { y: { datum: WORTHWHILE_SPEEDUP } },
        },
        {
          mark: { type: "rule" },
          encoding: {
            x,
            y: { field: "low", type: "quantitative" },
            y2: { field: "high" },
            color,
          },
        },
        {
          mark: { type: "line", point: true },
          encoding: {
            x,
            y: {
              field: "speedup",
              type: "quantitative",
              title: "× its best single process",
            },
            color,
            strokeDash: {
              field: "strategy",
              type: "nominal",
              title: "strategy",
              scale: STRATEGY_DASHES,
              legend: {
                orient: "bottom",
                symbolType: "stroke",
                // The symbol is a dashed stroke; without a colour of its own it draws nothing.
                encode: { symbols: { update: { stroke: { value: "#444444" } } } },
              },
            },
            detail: { field: "series" },
          },
        },
      ],
    },
    config: CONFIG,
  } as TopLevelSpec;
}

/** The words before the tables, in both renderers. */
const INTRO =
  "Each results file is a machine, labelled from its environment. Verdicts, speedups and their intervals are each machine's own; the chart draws a line per machine.";

/**
 * The comparison as Markdown.
 *
 * @param comparison the machines
 * @returns `report.md`
 * @example
 * ```ts
 * import type { MachineComparison } from "../analysis/machines.ts";
 * declare const comparison: MachineComparison;
 * renderMachinesMarkdown(comparison);
 * ```
 */
export function renderMachinesMarkdown(given: MachineComparison): string {
  // Every string from the files (workload names, CPU models, paths) escaped once, here.
  const comparison = markdownSafe(given);
  comparison.machines.forEach((m, i) =>
    m.results.env.nativeUnavailable = keepCodeSpans(given.machines[i].results.env.nativeUnavailable)
  );
  const out = [`# ${TITLE}`, "", ...provisionalLines(comparison).flatMap((l) => [`> ${l}`, ""])];
  out.push(INTRO, "", "## Machines", "", toMarkdown(machinesTable(comparison)), "");
  out.push(...machineLines(comparison).map((l) => `- ${l}`), "");
  out.push("## The answer on each machine", "", toMarkdown(answersTable(comparison)), "");
  out.push(ANSWERS_NOTE, "", `Intervals [low–high] are a ${INTERVAL_METHOD}.`, "");
  for (const workload of comparison.shared) {
    out.push(`## ${workload}`, "", toMarkdown(runsTable(comparison, workload)), "");
  }
  return out.join("\n");
}

/**
 * The comparison as one offline HTML page: the Markdown's tables and the chart as inline SVG.
 *
 * @param comparison the machines
 * @returns `report.html`
 * @example
 * ```ts
 * import type { MachineComparison } from "../analysis/machines.ts";
 * declare const comparison: MachineComparison;
 * await renderMachinesHtml(comparison);
 * ```
 */
export async function renderMachinesHtml(comparison: MachineComparison): Promise<string> {
  const body = [
    ...provisionalLines(comparison).map((l) => `<p class="provisional">${inline(l)}</p>`),
    `<p>${inline(INTRO)}</p>`,
    "<h2>Machines</h2>",
    htmlTable(machinesTable(comparison)),
    list(machineLines(comparison)),
    "<h2>The answer on each machine</h2>",
    htmlTable(answersTable(comparison), "answer"),
    `<p>${inline(ANSWERS_NOTE)}</p>`,
    await figure(machinesChart(comparison), "chart-machines"),
    `<p>${inline(`Intervals [low–high] are a ${INTERVAL_METHOD}.`)}</p>`,
  ];
  for (const workload of comparison.shared) {
    body.push(`<h2>${escapeHtml(workload)}</h2>`, htmlTable(runsTable(comparison, workload)));
  }
  return page(TITLE, body, { style: NOTE_STYLE });
}
