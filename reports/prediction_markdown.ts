/**
 * `prediction.md`, and what `predict` prints: per workload and DDP configuration, the predicted
 * step, communication, throughput and speedup over the best single process (with its interval)
 * at each world size, beside what was measured where the results hold the same run.
 *
 * @module
 */
import { markdownTable } from "markdown-table";
import type { Prediction, PredictionFile } from "../analysis/predict.ts";
import { fixed } from "../analysis/format.ts";
import type { Table } from "./_tables.ts";

/**
 * What the report shows of the predictions: per workload its first configuration (the
 * default bucket cap and no compression, where the bench ran those), both scalings.
 *
 * @param file the predictions
 * @returns the groups the report shows
 */
export function reportGroups(file: PredictionFile): [string, Prediction[]][] {
  const seen = new Set<string>();
  return predictionGroups(file).filter(([, group]) => {
    const workload = group[0].workload;
    if (seen.has(workload)) return false;
    seen.add(workload);
    return true;
  });
}

/** The predictions grouped by workload and DDP configuration, in file order. */
export function predictionGroups(file: PredictionFile): [string, Prediction[]][] {
  const groups = new Map<string, Prediction[]>();
  for (const p of file.predictions) {
    const key = `${p.workload}: ${configText(p)}`;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  return [...groups.entries()];
}

/** `fp16, bucket 25 MiB, overlap`. */
function configText(p: Prediction): string {
  return [
    p.gradCompression === "none" ? "float32 gradients" : `${p.gradCompression} gradients`,
    `bucket cap ${Number((p.bucketBytes / 2 ** 20).toPrecision(3))} MiB`,
    p.overlap ? "overlap" : "no overlap",
  ].join(", ");
}

/**
 * One group's table: a row per world size and scaling.
 *
 * @param predictions one workload and configuration
 * @returns the table
 */
export function predictionTable(predictions: Prediction[]): Table {
  const measured = predictions.some((p) => p.measured);
  const rows = predictions.map((p) => [
    String(p.worldSize),
    `${p.hosts} × ${p.nprocPerNode}`,
    p.scaling,
    String(p.globalBatch),
    fixed(p.stepMs, 2),
    fixed(p.commMs, 2),
    fixed(p.samplesPerSec, 0),
    `${fixed(p.speedupVsBestSingle, 2)}x [${fixed(p.interval.low, 2)}–${
      fixed(p.interval.high, 2)
    }]`,
    p.computeFrom,
    `${p.link.transport}${p.link.fittedAt ? ` (${p.link.fittedAt} ranks)` : ""}`,
    ...(measured
      ? [
        p.measured ? fixed(p.measured.stepMs, 2) : "–",
        p.measured?.speedupVsBestSingle ? `${fixed(p.measured.speedupVsBestSingle, 2)}x` : "–",
      ]
      : []),
  ]);
  return {
    rows: [
      [
        "ranks",
        "hosts × per host",
        "scaling",
        "global batch",
        "step ms",
        "comm ms",
        "samples/s",
        "vs best single [interval]",
        "compute from",
        "link",
        ...(measured ? ["measured step ms", "measured vs best single"] : []),
      ],
      ...rows,
    ],
    align: ["r", "r", "l", "r", "r", "r", "r", "r", "l", "l", ...(measured ? ["r", "r"] : [])] as (
      | "l"
      | "r"
    )[],
  };
}

/**
 * The lines before the tables: where the links came from and how to read the figures.
 *
 * @param file the predictions
 * @returns Markdown lines
 */
export function predictionLines(file: PredictionFile): string[] {
  const { inputs } = file;
  const links = new Map(
    file.predictions.map((p) => [
      `${p.link.transport}/${p.link.fittedAt}`,
      `${p.link.transport}${p.link.fittedAt ? ` at ${p.link.fittedAt} ranks` : ""}: α ${
        fixed(p.link.alphaUs, 1)
      } µs per message, β ${fixed(p.link.betaGBps, 3)} GB/s per link, fit residual ${
        fixed(p.link.residual * 100, 1)
      }%`,
    ]),
  );
  const casts = inputs.castNsPerValue
    ? Object.entries(inputs.castNsPerValue).map(([c, ns]) => `${c} ${fixed(ns, 2)} ns`).join(", ")
    : null;
  return [
    `From ${inputs.results}${
      inputs.allreduce ? ` and the link models of ${inputs.allreduce}` : ""
    }${inputs.link ? ` and the link ${inputs.link}` : ""}${
      inputs.sharedMachine ? "; the hosts share the measuring machine's CPUs" : ""
    }.`,
    `Links: ${[...links.values()].join("; ")}.`,
    ...(casts ? [`Compression's casts, measured here: ${casts} per value.`] : []),
    "step = compute (scaled to each rank's batch) + update + the loop's own time + the communication the step waits for (ring all-reduce: 2(N−1)·α + 2(N−1)/N · bytes / β per bucket, overlapped with the backward where buckets allow). Strong scaling splits the global batch (up to one sample per rank); weak keeps each rank's. The interval carries the measured spread of the compute (the source run's repeats) and the link fit's residual. analysis/predict.ts states the model.",
  ];
}

/**
 * `prediction.md`: the lines, then a table per workload and configuration.
 *
 * @param file the predictions
 * @returns a Markdown document
 * @example
 * ```ts
 * import type { PredictionFile } from "../analysis/predict.ts";
 * declare const file: PredictionFile;
 * console.log(renderPredictionMarkdown(file));
 * ```
 */
export function renderPredictionMarkdown(file: PredictionFile): string {
  const out = ["# Predicted DDP scaling", "", ...predictionLines(file).flatMap((l) => [l, ""])];
  for (const [title, predictions] of predictionGroups(file)) {
    const table = predictionTable(predictions);
    out.push(`## ${title}`, "", markdownTable(table.rows, { align: table.align }), "");
  }
  return out.join("\n");
}
