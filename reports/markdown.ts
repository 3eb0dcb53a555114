/**
 * `report.md`: environment header, then one table per workload and where each step's time
 * goes. Fixed precision and stable order, so reports diff cleanly.
 *
 * @module
 */
import { markdownTable } from "markdown-table";
import type { Results, RunRecord } from "../bench/results.ts";
import { bytes, fixed, percent, sci } from "./_format.ts";

function label(run: RunRecord): string {
  return run.strategy === "single" ? "single" : `${run.strategy}-${run.worldSize}`;
}

function environment(results: Results): string[] {
  const { env, config } = results;
  return [
    `- Machine: ${env.cpuModel}, ${env.logicalCpus} logical CPUs, ${env.os}`,
    `- Runtime: Deno ${env.deno} (V8 ${env.v8}), TensorFlow.js ${env.tfjs}, backend \`${env.backend}\`${
      env.backend === "wasm" ? ` (fast kernels ${env.fastKernels ? "on" : "off"})` : ""
    }`,
    `- Started: ${env.startedAt}${
      env.gitCommit ? `, commit \`${env.gitCommit.slice(0, 10)}\`` : ""
    }`,
    `- Per run: ${
      config.steps ?? "workload default"
    } timed steps after ${config.warmup} warm-up steps, ${config.repeats} repeat(s), seed ${config.seed}${
      config.quick ? " (`--quick` preset)" : ""
    }`,
    "- samples/s is the global batch over the median step time (median over repeats); speedup and efficiency are against `single` on the same workload in this run.",
  ];
}

function workloadTable(runs: RunRecord[]): string {
  return markdownTable([
    [
      "strategy",
      "samples/s",
      "step p50 ms",
      "step p95 ms",
      "speedup",
      "efficiency",
      "GFLOP/s",
      "% GEMM peak",
      "peak memory (max worker)",
      "final loss",
      "accuracy",
      "max |Δparam| vs single",
    ],
    ...runs.map((r) => [
      label(r),
      fixed(r.samplesPerSec, 0),
      fixed(r.stepMs.p50, 1),
      fixed(r.stepMs.p95, 1),
      `${fixed(r.speedup, 2)}x`,
      percent(r.efficiency),
      fixed(r.compute.gflops, 2),
      percent(r.compute.fractionOfPeak),
      bytes(Math.max(...r.memory.workers.map((w) => w.peakBytes))),
      fixed(r.finalLoss, 3),
      fixed(r.accuracy, 3),
      r.strategy === "single" ? "reference" : sci(r.paramMaxAbsDiffVsSingle),
    ]),
  ], { align: ["l", ..."r".repeat(11)] });
}

function phaseTable(runs: RunRecord[]): string {
  const phases = [...new Set(runs.flatMap((r) => Object.keys(r.phaseMs)))];
  return markdownTable([
    ["strategy", "step p50 ms", ...phases.map((p) => `${p} ms`), "comm bytes/step", "comm share"],
    ...runs.map((r) => [
      label(r),
      fixed(r.stepMs.p50, 1),
      ...phases.map((p) => fixed(r.phaseMs[p], 2)),
      bytes(r.comm.bytesPerStep),
      percent(r.comm.share),
    ]),
  ], { align: ["l", ..."r".repeat(phases.length + 3)] });
}

/**
 * Render `results` as Markdown.
 *
 * @param results the validated results
 * @returns the report text
 * @example
 * ```ts
 * const text = renderMarkdown(results);
 * ```
 */
export function renderMarkdown(results: Results): string {
  const out = ["# paratrain report", "", ...environment(results), ""];
  for (const s of results.skipped) out.push(`> Skipped \`${s.strategy}\`: ${s.reason}`, "");
  const workloads = [...new Set(results.runs.map((r) => r.workload))];
  for (const workload of workloads) {
    const runs = results.runs.filter((r) => r.workload === workload);
    out.push(
      `## ${workload}`,
      "",
      `Global batch ${runs[0].globalBatch}.`,
      "",
      workloadTable(runs),
      "",
    );
    out.push("Where a step's time goes (mean ms per step):", "", phaseTable(runs), "");
  }
  return out.join("\n");
}
