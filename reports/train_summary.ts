/**
 * The summary `train` prints after one run: throughput, loss and accuracy, where a step's
 * time went, and each worker's memory. No comparison: that is `bench`'s job.
 *
 * @module
 */
import { PHASES } from "../core/phases.ts";
import { runLabel, type RunMeasurement } from "../core/run_types.ts";
import { bytes, fixed } from "../analysis/format.ts";

/** Achieved GFLOP/s against the workers' GEMM peak, or why there is none. */
function computeLine(m: RunMeasurement): string {
  if (m.flopsPerStep === null) {
    const layers = m.model?.flopsNotCounted.map((l) => `${l.layer} ×${l.count} (${l.reason})`);
    return `  compute: FLOPs not counted for ${layers?.join(", ")}, so no GFLOP/s`;
  }
  const gflops = m.samplesPerSec * (m.flopsPerStep /
    (m.spec.globalBatch * (m.spec.accumulate ?? 1))) /
    1e9;
  const peak = m.spec.worldSize * m.peakGflops;
  return `  compute: ${fixed(gflops, 2)} GFLOP/s, ${
    fixed(100 * gflops / peak, 0)
  }% of ${m.spec.worldSize} × this backend's plain GEMM (${fixed(m.peakGflops, 1)} GFLOP/s)`;
}

/**
 * Render one run's measurement as a few plain lines.
 *
 * @param m the measurement
 * @returns the summary text
 * @example
 * ```ts
 * import type { RunMeasurement } from "../core/run_types.ts";
 * declare const measurement: RunMeasurement;
 * console.log(renderTrainSummary(measurement));
 * ```
 */
export function renderTrainSummary(m: RunMeasurement): string {
  const { spec } = m;
  const name = runLabel(spec);
  const phases = PHASES.filter((p) => m.phaseMs[p] > 0).map((p) =>
    `${p} ${fixed(m.phaseMs[p], 2)} ms`
  );
  const memory = m.workers.map((w) =>
    `${w.role} ${w.index}: ${bytes(w.peakBytes)}` +
    (w.peakRssBytes === null ? "" : ` (process RSS ${bytes(w.peakRssBytes)})`)
  );
  return [
    `${spec.workload} ${name} on ${spec.backend}: ${spec.steps} timed steps after ${spec.warmup} warm-up, global batch ${spec.globalBatch}${
      (spec.accumulate ?? 1) > 1
        ? ` × ${spec.accumulate} micro-batches per optimizer step (figures per optimizer step)`
        : ""
    }${spec.scaling === "weak" ? " (weak scaling)" : ""}`,
    `  ${fixed(m.samplesPerSec, 0)} samples/s · step p50 ${fixed(m.stepMs.p50, 1)} ms, p95 ${
      fixed(m.stepMs.p95, 1)
    } ms · data loaded in ${fixed(m.loadMs, 0)} ms (not timed)`,
    `  final loss ${fixed(m.finalLoss, 4)} · holdout accuracy ${fixed(m.accuracy, 3)}`,
    `  ${fixed(m.params / 1e6, 2)} M parameters, ${bytes(m.gradientBytes)} of gradient per step${
      m.batchNorm === "sync"
        ? " · BatchNorm: SyncBatchNorm (statistics of the global batch)"
        : m.batchNorm === "local"
        ? " · BatchNorm: each replica's own statistics, running statistics from rank 0 / the main replica each step"
        : ""
    }`,
    computeLine(m),
    ...(m.model
      ? [
        `  model: ${m.model.source} · loss: ${m.model.loss}`,
        `  data: ${m.model.data}`,
        ...m.model.notes.map((n) => `  note: ${n}`),
      ]
      : []),
    `  per step: ${phases.join(" · ")}`,
    `  communication: ${bytes(m.comm.bytesPerStep)}/step, ${
      fixed(m.comm.msPerStep, 2)
    } ms (waiting ${fixed(m.comm.waitMsPerStep, 2)}, moving bytes ${
      fixed(m.comm.transferMsPerStep, 2)
    }), ${fixed(100 * m.comm.share, 0)}% of the step${
      m.comm.exposedMsPerStep < m.comm.msPerStep - 0.005
        ? `; ${
          fixed(m.comm.exposedMsPerStep, 2)
        } ms of it exposed (the rest overlapped the backward)`
        : ""
    }${
      spec.gradCompression && spec.gradCompression !== "none"
        ? `; gradients sent as ${spec.gradCompression}`
        : ""
    } · ${fixed(m.comm.messagesPerStep, 0)} ${
      spec.strategy === "ddp" ? "all-reduce calls" : "messages"
    }/step`,
    `  peak memory: ${memory.join(" · ")}`,
    ...(spec.checkpointPath ? [`  checkpoint written to ${spec.checkpointPath}`] : []),
  ].join("\n");
}
