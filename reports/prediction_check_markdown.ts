/**
 * `docs/prediction.md`: the predictor against shaped links (`prediction-check`): the
 * conditions, each link's fit, predicted against measured step per case with its error, the
 * mean absolute percentage error, and what fp16 does to the communication on the slow link
 * and over Unix sockets.
 *
 * @module
 */
import { markdownTable } from "markdown-table";
import type { LinkModel } from "../bench/link_model.ts";
import { fixed } from "../analysis/format.ts";

/** One measured case and its prediction. */
export interface CheckCase {
  rate: string;
  workload: string;
  worldSize: number;
  hosts: number;
  gradCompression: string;
  predictedStepMs: number;
  measuredStepMs: number;
  predictedCommMs: number;
  /** The communication the measured step waited for. */
  measuredCommMs: number;
  /** The prediction's interval of the speedup over the best single process. */
  interval: { low: number; high: number };
  speedup: number | null;
  predictedSpeedup: number;
  transport: string;
  singleStepMs: number | null;
}

/** Everything the page shows. */
export interface CheckReport {
  command: string;
  startedAt: string;
  minutes: number;
  loadBefore: string;
  loadAfter: string;
  cpus: number;
  cpuModel: string;
  backend: string;
  burst: string;
  steps: number;
  repeats: number;
  castNsPerValue: number;
  links: { rate: string; models: LinkModel[] }[];
  cases: CheckCase[];
  /** The one-host bench's DDP runs over Unix sockets, float32 and fp16. */
  unix: {
    workload: string;
    worldSize: number;
    gradCompression: string;
    commMs: number;
    exposedMs: number;
    stepMs: number;
  }[];
}

/** (predicted − measured) / measured. */
export function relativeError(c: Pick<CheckCase, "predictedStepMs" | "measuredStepMs">): number {
  return (c.predictedStepMs - c.measuredStepMs) / c.measuredStepMs;
}

/**
 * Mean absolute percentage error of the cases' step times.
 *
 * @param cases the cases
 * @returns the MAPE as a fraction (0.1: 10%)
 * @example
 * ```ts
 * mape([{ predictedStepMs: 11, measuredStepMs: 10 }, { predictedStepMs: 9, measuredStepMs: 10 }]); // 0.1
 * ```
 */
export function mape(cases: Pick<CheckCase, "predictedStepMs" | "measuredStepMs">[]): number {
  return cases.reduce((s, c) => s + Math.abs(relativeError(c)), 0) / cases.length;
}

/**
 * The page.
 *
 * @param report what `prediction-check` measured
 * @returns Markdown
 */
export function renderPredictionCheck(report: CheckReport): string {
  const pct = (x: number) => `${x >= 0 ? "+" : ""}${fixed(x * 100, 1)}%`;
  const caseTable = markdownTable(
    [
      [
        "link",
        "workload",
        "ranks × hosts",
        "gradients",
        "predicted step ms",
        "measured step ms",
        "error",
        "predicted comm ms",
        "measured comm ms",
        "predicted vs best single [interval]",
        "measured vs best single",
      ],
      ...report.cases.map((c) => [
        c.rate,
        c.workload,
        `${c.worldSize} × ${c.hosts}`,
        c.gradCompression === "none" ? "float32" : c.gradCompression,
        fixed(c.predictedStepMs, 1),
        fixed(c.measuredStepMs, 1),
        pct(relativeError(c)),
        fixed(c.predictedCommMs, 1),
        fixed(c.measuredCommMs, 1),
        `${fixed(c.predictedSpeedup, 2)}x [${fixed(c.interval.low, 2)}–${
          fixed(c.interval.high, 2)
        }]`,
        c.speedup === null ? "–" : `${fixed(c.speedup, 2)}x`,
      ]),
    ],
    { align: ["l", "l", "r", "l", "r", "r", "r", "r", "r", "r", "r"] },
  );
  const linkTable = markdownTable(
    [
      ["link", "ranks", "α µs per message", "β GB/s per link", "β Mbit/s", "fit residual"],
      ...report.links.flatMap(({ rate, models }) =>
        models.map((m) => [
          rate,
          String(m.worldSize),
          fixed(m.alphaUs, 1),
          fixed(m.betaGBps, 4),
          fixed(m.betaGBps * 8e3, 0),
          `${fixed(m.residual * 100, 1)}%`,
        ])
      ),
    ],
    { align: ["l", "r", "r", "r", "r", "r"] },
  );
  const byRate = [...new Set(report.cases.map((c) => c.rate))].map((rate) => {
    const cases = report.cases.filter((c) => c.rate === rate);
    return `${rate}: ${fixed(mape(cases) * 100, 1)}% over ${cases.length} cases`;
  });
  const compressed = report.cases.filter((c) => c.gradCompression !== "none");
  const fp16Lines = compressed.flatMap((c) => {
    const plain = report.cases.find((p) =>
      p.rate === c.rate && p.workload === c.workload && p.worldSize === c.worldSize &&
      p.gradCompression === "none"
    );
    return plain
      ? [
        [
          c.rate,
          c.workload,
          `${c.worldSize} × ${c.hosts}`,
          fixed(plain.measuredCommMs, 1),
          fixed(c.measuredCommMs, 1),
          `${fixed((c.measuredCommMs / plain.measuredCommMs) * 100, 0)}%`,
          fixed(plain.measuredStepMs, 1),
          fixed(c.measuredStepMs, 1),
        ],
      ]
      : [];
  });
  const unixPairs = report.unix.filter((u) => u.gradCompression !== "none").flatMap((u) => {
    const plain = report.unix.find((p) =>
      p.workload === u.workload && p.worldSize === u.worldSize && p.gradCompression === "none"
    );
    return plain
      ? [[
        u.workload,
        `DDP-${u.worldSize}`,
        fixed(plain.commMs, 2),
        fixed(u.commMs, 2),
        `${fixed(u.commMs / plain.commMs, 2)}x`,
        fixed(plain.stepMs, 1),
        fixed(u.stepMs, 1),
      ]]
      : [];
  });
  return [
    "# The scaling predictor against shaped links",
    "",
    "`deno task predict` predicts DDP's step time from a bench's measured compute and a link model " +
    "(`analysis/predict.ts`). Here it is checked against links it did not see: hosts made of " +
    "network namespaces on one machine, joined by veth pairs shaped with `tc qdisc … tbf` (both " +
    `directions, burst ${report.burst}), DDP with one rank per host. At each rate, \`allreduce\` ` +
    "across the hosts fits the link (α per message, β per link); each DDP run is then predicted " +
    "from that fit and what the same bench measured without communication — its ceiling run, the " +
    "same ranks on the same hosts with a barrier for the all-reduce — with the share of compute " +
    "and its tail after the last bucket from a bench of the same workloads on one host (the " +
    "namespace hosts share this machine's CPUs). The DDP run itself is never an input. Weak " +
    "scaling (each rank trains on the workload's whole batch), so that 3 ranks divide it.",
    "",
    "## Conditions",
    "",
    `- Command: \`${report.command}\` (${fixed(report.minutes, 1)} min).`,
    `- Started ${report.startedAt}; ${report.cpus} logical CPUs (${report.cpuModel}), backend ` +
    `${report.backend}; ${report.steps} timed steps per run, ${report.repeats} repeats, medians.`,
    `- Load average (1, 5, 15 min) before: ${report.loadBefore}; after: ${report.loadAfter}. ` +
    "A load above the CPU count means other work shared the machine during the measurement.",
    `- fp16 casts (WebAssembly SIMD, as a ring does them): ${
      fixed(report.castNsPerValue, 2)
    } ns per value.`,
    "",
    "## Links, as `allreduce` fitted them",
    "",
    linkTable,
    "",
    "α 0.0: the fit's intercept came out below zero and is clamped (small all-reduces cost no more " +
    "per byte than the line through the large ones). β well below the shaped rate: the hosts' " +
    "CPUs, not the link, limited the ring (the namespace hosts share this machine's cores); the fit " +
    "then carries that, as a cluster's own `allreduce` would carry its hosts'.",
    "",
    "## Predicted against measured",
    "",
    caseTable,
    "",
    `**MAPE ${
      fixed(mape(report.cases) * 100, 1)
    }%** over ${report.cases.length} cases (target ≤ 10%); ` +
    `by link: ${byRate.join("; ")}.`,
    "",
    "Step: the median step time over the timed steps of every repeat. Comm: the communication the " +
    "step waited for (measured: DDP's all-reduce phase; predicted: the ring time of each bucket " +
    "past the end of the backward).",
    "",
    ...(fp16Lines.length
      ? [
        "## fp16 on the slow link",
        "",
        markdownTable(
          [
            [
              "link",
              "workload",
              "ranks × hosts",
              "float32 comm ms",
              "fp16 comm ms",
              "fp16 / float32",
              "float32 step ms",
              "fp16 step ms",
            ],
            ...fp16Lines,
          ],
          { align: ["l", "l", "r", "r", "r", "r", "r", "r"] },
        ),
        "",
      ]
      : []),
    ...(unixPairs.length
      ? [
        "## fp16 over Unix sockets (one host)",
        "",
        "Communication per step (DDP's all-reduce, hidden part included) in the one-host bench, " +
        "float32 and fp16 runs side by side in the same bench:",
        "",
        markdownTable(
          [
            [
              "workload",
              "run",
              "float32 comm ms",
              "fp16 comm ms",
              "fp16 / float32",
              "float32 step ms",
              "fp16 step ms",
            ],
            ...unixPairs,
          ],
          { align: ["l", "l", "r", "r", "r", "r", "r"] },
        ),
        "",
      ]
      : []),
  ].join("\n");
}
