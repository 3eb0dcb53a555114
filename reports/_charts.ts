/**
 * The report's charts as Vega-Lite specs (data inline), rendered to SVG by `_svg.ts`:
 * throughput and efficiency against world size, memory per worker, all-reduce bus bandwidth
 * against message size.
 *
 * @module
 */
import type { TopLevelSpec } from "vega-lite";
import type { AllreduceResult } from "../bench/allreduce.ts";
import type { PredictionFile } from "../analysis/predict.ts";
import { reportGroups } from "./prediction_markdown.ts";
import { phasesOf, type Results, type RunRecord } from "../analysis/results.ts";
import { PHASES } from "../core/phases.ts";
import type { StrategyName } from "../core/run_types.ts";
import { runLabel } from "../core/run_types.ts";
import { fixed } from "../analysis/format.ts";
import { WORTHWHILE_SPEEDUP } from "../analysis/matrix.ts";
import { byWorkload, setLabels } from "./_tables.ts";

/** Size of one facet panel, px. */
export const PANEL = { width: 240, height: 170 } as const;
/** Panels per row before wrapping. */
export const PANELS_PER_ROW = 3;
/** One colour per strategy, the same in every chart. */
const STRATEGY_COLORS = {
  domain: ["single", "dp", "ddp"],
  range: ["#7f7f7f", "#e45756", "#4c78a8"],
};
/** Height of one worker's bar in the memory chart, px. */
const MEMORY_BAR_STEP = 7;
/** Bytes per MiB, for memory axes. */
const MIB = 1024 * 1024;
/** Headroom above the raw-throughput line in the all-reduce chart. */
const HEADROOM = 1.2;
/** Shared look: white background, no chart border. */
export const CONFIG = { background: "white", view: { stroke: "#dddddd" }, font: "sans-serif" };

interface ScalingPoint {
  workload: string;
  strategy: StrategyName;
  worldSize: number;
  samplesPerSec: number;
  efficiency: number;
  efficiencyVsCeiling: number | null;
}

/** Per workload: single at N=1, and each parallel strategy's line starting from it. */
function scalingPoints(results: Results): ScalingPoint[] {
  const label = setLabels(results);
  const point = (r: RunRecord, strategy = r.strategy): ScalingPoint => ({
    workload: label(r),
    strategy,
    worldSize: r.worldSize,
    samplesPerSec: r.samplesPerSec,
    efficiency: r.efficiency,
    efficiencyVsCeiling: r.efficiencyVsCeiling,
  });
  return byWorkload(results).flatMap(([, runs]) => {
    const single = runs.find((r) => r.strategy === "single");
    // One point per strategy and world size: the first variant run (the default bucket cap,
    // uncompressed, where a bench swept them).
    const seen = new Set<string>();
    const parallel = runs.filter((r) => {
      const key = `${r.strategy}|${r.worldSize}`;
      if (r.strategy === "single" || seen.has(key)) return false;
      seen.add(key);
      return true;
    }).sort((a, b) => a.strategy.localeCompare(b.strategy) || a.worldSize - b.worldSize);
    const starts = single
      ? [...new Set(parallel.map((r) => r.strategy))].map((s) => ({
        ...point(single, s),
        // At N=1 the ceiling is single itself: 100% of it, when the strategy has a ceiling.
        efficiencyVsCeiling: parallel.some((r) =>
            r.strategy === s && r.efficiencyVsCeiling !== null
          )
          ? 1
          : null,
      }))
      : [];
    return [...(single ? [point(single)] : []), ...starts, ...parallel.map((r) => point(r))];
  });
}

function facetOver(results: Results) {
  return {
    field: "workload",
    type: "nominal" as const,
    title: null,
    sort: byWorkload(results).map(([w]) => w),
  };
}

const worldSizeAxis = {
  field: "worldSize",
  type: "quantitative" as const,
  title: "world size (replicas or ranks)",
  axis: { tickMinStep: 1, format: "d" },
};

const strategyColor = {
  field: "strategy",
  type: "nominal" as const,
  title: "strategy",
  scale: STRATEGY_COLORS,
};

/** Lines with points, one panel per workload, each panel's y scale its own. */
function lineFacets(
  results: Results,
  title: string,
  values: object[],
  encoding: Record<string, unknown>,
): TopLevelSpec {
  return {
    title,
    data: { values },
    facet: facetOver(results),
    columns: PANELS_PER_ROW,
    spec: { ...PANEL, mark: { type: "line", point: true }, encoding },
    resolve: { scale: { y: "independent" } },
    config: CONFIG,
  } as TopLevelSpec;
}

/** samples/s against world size, one panel per workload. */
export function throughputChart(results: Results): TopLevelSpec {
  return lineFacets(
    results,
    "Throughput against world size (lines start at single, N=1)",
    scalingPoints(results),
    {
      x: worldSizeAxis,
      y: { field: "samplesPerSec", type: "quantitative", title: "samples/s" },
      color: strategyColor,
    },
  );
}

/** Efficiency (and efficiency against the ceiling) against world size, per workload. */
export function efficiencyChart(results: Results): TopLevelSpec {
  const values = scalingPoints(results).flatMap((p) => [
    { ...p, measure: "speedup / N", value: p.efficiency },
    ...(p.efficiencyVsCeiling === null
      ? []
      : [{ ...p, measure: "of ceiling", value: p.efficiencyVsCeiling }]),
  ]);
  return {
    title: "Parallel efficiency against world size (dashed: against the no-communication ceiling)",
    data: { values },
    facet: facetOver(results),
    columns: PANELS_PER_ROW,
    spec: {
      ...PANEL,
      layer: [
        {
          mark: { type: "rule", color: "#999999", strokeDash: [2, 2] },
          encoding: { y: { datum: 1 } },
        },
        {
          mark: { type: "line", point: true },
          encoding: {
            x: worldSizeAxis,
            y: {
              field: "value",
              type: "quantitative",
              title: "efficiency",
              axis: { format: "%" },
            },
            color: strategyColor,
            strokeDash: {
              field: "measure",
              type: "nominal",
              title: "measure",
              scale: { domain: ["speedup / N", "of ceiling"], range: [[1, 0], [5, 3]] },
              legend: { symbolType: "stroke" },
            },
            detail: { field: "measure" },
          },
        },
      ],
    },
    config: CONFIG,
  };
}

/**
 * Where a step's time goes, per run: its mean phases stacked (the timeline of a `--trace`
 * file, summarised), one bar per run, per workload.
 */
export function phaseChart(results: Results): TopLevelSpec {
  const label = setLabels(results);
  const values = results.runs.flatMap((r) => {
    const phases = phasesOf(r);
    return PHASES.filter((p) => phases[p] > 0).map((p) => ({
      workload: label(r),
      run: runLabel(r),
      phase: p === "allReduce" ? "all-reduce" : p,
      ms: phases[p],
    }));
  });
  return {
    title: "Where a step's time goes (mean ms per step, by phase)",
    data: { values },
    facet: facetOver(results),
    columns: PANELS_PER_ROW,
    spec: {
      width: PANEL.width,
      height: { step: MEMORY_BAR_STEP * 2 },
      mark: { type: "bar" },
      encoding: {
        y: { field: "run", type: "nominal", title: null, sort: null },
        x: { field: "ms", type: "quantitative", title: "ms per step", stack: "zero" },
        color: {
          field: "phase",
          type: "nominal",
          title: "phase",
          scale: {
            domain: ["compute", "replicate", "scatter", "gather", "all-reduce", "update"],
          },
        },
      },
    },
    resolve: { scale: { x: "independent", y: "independent" } },
    config: CONFIG,
  };
}

/**
 * The distribution of step times per run (every timed step of every repeat), one box per run,
 * per workload; null when the results hold no step samples (`bench --step-samples`).
 */
export function stepTimeChart(results: Results): TopLevelSpec | null {
  const label = setLabels(results);
  const values = results.runs.flatMap((r) =>
    (r.stepSamplesMs ?? []).flat().map((ms) => ({
      workload: label(r),
      run: runLabel(r),
      strategy: r.strategy,
      ms,
    }))
  );
  if (values.length === 0) return null;
  return {
    title: "Step time distribution (every timed step of every repeat)",
    data: { values },
    facet: facetOver(results),
    columns: PANELS_PER_ROW,
    spec: {
      width: PANEL.width,
      height: PANEL.height,
      mark: { type: "boxplot", extent: 1.5 },
      encoding: {
        x: {
          field: "run",
          type: "nominal",
          title: null,
          sort: [...new Set(values.map((v) => v.run))],
        },
        y: { field: "ms", type: "quantitative", title: "step ms", scale: { zero: false } },
        color: strategyColor,
      },
    },
    resolve: { scale: { x: "independent", y: "independent" } },
    config: CONFIG,
  };
}

/** Peak memory of every worker of every run, one bar per worker grouped by run, per workload. */
export function memoryChart(results: Results): TopLevelSpec {
  const label = setLabels(results);
  const values = results.runs.flatMap((r) =>
    r.memory.workers.map((w, position) => ({
      workload: label(r),
      run: `${runLabel(r)} (${fixed(r.memory.imbalance, 2)})`,
      position,
      worker: `${w.role} ${w.index}`,
      role: w.role,
      MiB: w.peakBytes / MIB,
    }))
  );
  return {
    title: "Peak memory per worker (tensor bytes + wasm heap); in brackets: max/mean imbalance",
    data: { values },
    facet: facetOver(results),
    columns: PANELS_PER_ROW,
    spec: {
      width: PANEL.width,
      height: { step: MEMORY_BAR_STEP },
      mark: { type: "bar" },
      encoding: {
        y: { field: "run", type: "nominal", title: null, sort: null },
        yOffset: { field: "position", type: "ordinal" },
        x: { field: "MiB", type: "quantitative", title: "peak MiB" },
        color: {
          field: "role",
          type: "nominal",
          title: "worker role",
          scale: {
            domain: ["main", "replica", "rank"],
            range: ["#f58518", "#e45756", "#4c78a8"],
          },
        },
      },
    },
    resolve: { scale: { x: "independent", y: "independent" } },
    config: CONFIG,
  };
}

/**
 * The bucket-size sweep (`bench --bucket-mb X,Y…`): each DDP run's step time, communication
 * and exposed communication against its bucket cap, per workload; null when no sweep was run.
 */
export function bucketChart(results: Results): TopLevelSpec | null {
  const ddp = results.runs.filter((r) => r.strategy === "ddp" && r.bucketBytes != null);
  if (new Set(ddp.map((r) => r.bucketBytes)).size < 2) return null;
  const label = setLabels(results);
  const values = ddp.flatMap((r) => {
    const series = `ddp-${r.worldSize}${
      r.gradCompression && r.gradCompression !== "none" ? `-${r.gradCompression}` : ""
    }`;
    const point = { workload: label(r), bucketMiB: r.bucketBytes! / MIB };
    return [
      { ...point, series: `${series} step`, ms: r.stepMs.p50 },
      { ...point, series: `${series} comm`, ms: r.comm.msPerStep },
      {
        ...point,
        series: `${series} comm exposed`,
        ms: r.comm.exposedMsPerStep ?? r.comm.msPerStep,
      },
    ];
  });
  return lineFacets(
    results,
    "DDP: step time and communication against bucket size (--bucket-mb)",
    values,
    {
      x: {
        field: "bucketMiB",
        type: "quantitative",
        title: "bucket cap, MiB (log)",
        scale: { type: "log" },
      },
      y: { field: "ms", type: "quantitative", title: "ms per step" },
      color: { field: "series", type: "nominal", title: null },
    },
  );
}

/** Bus bandwidth against message size per world size, with the raw transport as a ceiling. */
export function allreduceChart(result: AllreduceResult): TopLevelSpec {
  // In-place rows only (out-of-place ones add a copy), one line per collective and world size.
  const values = result.rows.filter((r) => r.inPlace !== false).map((r) => ({
    ranks: `${
      r.collective && r.collective !== "all-reduce" ? `${r.collective}, ` : ""
    }${r.worldSize} ranks`,
    bytes: r.bytes,
    busbwGBps: r.busbwGBps,
  }));
  const minBytes = Math.min(...result.rows.map((r) => r.bytes));
  const raw = [{
    GBps: result.raw.GBps,
    label: `raw ${result.raw.transport} socket, both directions: ${fixed(result.raw.GBps, 3)} GB/s`,
  }];
  // Room above the higher of the raw line and the data, so the raw line's label shows.
  const yMax = HEADROOM * Math.max(result.raw.GBps, ...result.rows.map((r) => r.busbwGBps));
  const bytesLabel = "datum.value >= 1048576 ? format(datum.value / 1048576, 'd') + ' MiB' : " +
    "format(datum.value / 1024, 'd') + ' KiB'";
  return {
    title: "All-reduce bus bandwidth against message size",
    width: 2 * PANEL.width,
    height: PANEL.height + 60,
    layer: [
      {
        data: { values },
        mark: { type: "line", point: true },
        encoding: {
          x: {
            field: "bytes",
            type: "quantitative",
            title: "message size",
            scale: { type: "log", base: 2 },
            axis: { labelExpr: bytesLabel, labelOverlap: true },
          },
          y: {
            field: "busbwGBps",
            type: "quantitative",
            title: "busbw (GB/s)",
            scale: { domain: [0, yMax] },
          },
          color: { field: "ranks", type: "nominal", title: "world size" },
        },
      },
      {
        data: { values: raw },
        mark: { type: "rule", color: "black", strokeDash: [6, 4] },
        encoding: { y: { field: "GBps", type: "quantitative" } },
      },
      {
        data: { values: raw },
        mark: { type: "text", align: "left", baseline: "bottom", dx: 4, dy: -4 },
        encoding: {
          x: { datum: minBytes },
          y: { field: "GBps", type: "quantitative" },
          text: { field: "label" },
        },
      },
    ],
    config: CONFIG,
  };
}

/**
 * Predicted speedup over the best single process against world size (log scale), a line and
 * its interval per scaling, with the measured DDP runs as points on it; one panel per workload.
 *
 * @param prediction `prediction.json`
 * @param results the results the prediction came from (the measured points)
 * @returns the spec, or null with nothing to draw
 */
export function predictionChart(
  prediction: PredictionFile,
  results: Results,
): TopLevelSpec | null {
  const groups = reportGroups(prediction);
  if (groups.length === 0) return null;
  const predicted = groups.flatMap(([, group]) =>
    group.map((p) => ({
      workload: p.workload,
      worldSize: p.worldSize,
      series: `predicted, ${p.scaling} scaling`,
      speedup: p.speedupVsBestSingle,
      low: p.interval.low,
      high: p.interval.high,
    }))
  );
  const first = new Map(groups.map(([, g]) => [g[0].workload, g[0]]));
  const measured = results.runs.filter((r) => {
    const p = first.get(r.workload);
    return p && r.strategy === "ddp" && r.speedupVsBestSingle != null &&
      (r.gradCompression ?? "none") === p.gradCompression && r.bucketBytes === p.bucketBytes;
  }).map((r) => ({
    workload: r.workload,
    worldSize: r.worldSize,
    series: `measured, ${r.scaling ?? "strong"} scaling${
      (r.hosts ?? 1) > 1 ? `, ${r.hosts} hosts` : ""
    }`,
    speedup: r.speedupVsBestSingle!,
  }));
  const x = {
    field: "worldSize",
    type: "quantitative" as const,
    title: "ranks (log scale)",
    scale: { type: "log" as const, base: 2 },
    axis: { format: "d" },
  };
  const y = {
    field: "speedup",
    type: "quantitative" as const,
    title: "× the best single process",
    scale: { type: "log" as const },
  };
  const color = { field: "series", type: "nominal" as const, title: null };
  return {
    title:
      "Predicted DDP speedup over the best single process (prediction.json), measured runs as points",
    data: { values: [...predicted, ...measured] },
    facet: {
      field: "workload",
      type: "nominal",
      title: null,
      sort: groups.map(([, g]) => g[0].workload),
    },
    columns: PANELS_PER_ROW,
    spec: {
      ...PANEL,
      layer: [
        {
          transform: [{ filter: "isValid(datum.low)" }],
          mark: { type: "area", opacity: 0.2 },
          encoding: { x, y: { ...y, field: "low" }, y2: { field: "high" }, color },
        },
        {
          transform: [{ filter: "isValid(datum.low)" }],
          mark: { type: "line" },
          encoding: { x, y, color },
        },
        {
          transform: [{ filter: "!isValid(datum.low)" }],
          mark: { type: "point", filled: true, size: 60 },
          encoding: { x, y, color },
        },
      ],
    },
    resolve: { scale: { y: "independent" } },
    config: CONFIG,
  } as TopLevelSpec;
}

/**
 * Where parallel starts to pay (`results.crossover`): per family, each strategy's speedup over
 * the best single process (a point at the median, a bar over its interval) against the work of
 * a step (`by: "flops"`) or the gradient a step all-reduces (`by: "gradient"`), with the 1.10x
 * the verdicts ask for drawn across; null when the results have no crossover.
 *
 * @param results the results
 * @param by the x axis: FLOPs per step, or gradient bytes
 * @returns the spec, or null
 */
export function crossoverChart(
  results: Results,
  by: "flops" | "gradient",
): TopLevelSpec | null {
  if (!results.crossover?.length) return null;
  const values = results.crossover.flatMap((c) =>
    c.points.map((p) => ({
      family: c.family,
      strategy: c.strategy,
      series: `${c.strategy}-${c.worldSize}`,
      x: by === "flops" ? p.flopsPerStep / 1e9 : p.gradientBytes / 1e6,
      speedup: p.speedupVsBestSingle,
      low: p.interval?.low ?? p.speedupVsBestSingle,
      high: p.interval?.high ?? p.speedupVsBestSingle,
      configuration: `${p.workload}, batch ${p.globalBatch}`,
    }))
  );
  const x = {
    field: "x",
    type: "quantitative" as const,
    title: by === "flops"
      ? "work per step, GFLOP (log)"
      : "gradient all-reduced per step, MB (log)",
    scale: { type: "log" as const },
  };
  // The strategies' colours, as in every chart; a dash per world size where there are several.
  const color = {
    field: "strategy",
    type: "nominal" as const,
    title: "strategy",
    scale: STRATEGY_COLORS,
  };
  const dash = new Set(values.map((v) => v.series)).size >
      new Set(values.map((v) => v.strategy)).size
    ? { strokeDash: { field: "series", type: "nominal" as const, title: "run" } }
    : { detail: { field: "series", type: "nominal" as const } };
  return {
    title: by === "flops"
      ? `Where parallel starts to pay: speedup over the best single process (bar: its interval) against the work of a step; dashed: the ${
        fixed(WORTHWHILE_SPEEDUP, 2)
      }x a verdict asks for`
      : "… and against the gradient a step all-reduces",
    data: { values },
    facet: {
      field: "family",
      type: "nominal",
      title: null,
      sort: [...new Set(values.map((v) => v.family))],
    },
    columns: PANELS_PER_ROW,
    spec: {
      ...PANEL,
      layer: [
        {
          mark: { type: "rule" },
          encoding: {
            x,
            y: { field: "low", type: "quantitative" },
            y2: { field: "high" },
            color,
            ...("detail" in dash ? dash : { detail: { field: "series", type: "nominal" } }),
          },
        },
        {
          mark: { type: "line", point: true },
          encoding: {
            x,
            y: { field: "speedup", type: "quantitative", title: "× the best single process" },
            color,
            ...dash,
            tooltip: [{ field: "configuration" }, { field: "series" }, {
              field: "speedup",
              format: ".2f",
            }],
          },
        },
        {
          mark: { type: "rule", color: "black", strokeDash: [4, 3] },
          encoding: { y: { datum: WORTHWHILE_SPEEDUP } },
        },
      ],
    },
    resolve: { scale: { y: "independent" } },
    config: CONFIG,
  } as TopLevelSpec;
}
