/**
 * Why a parallel run is as fast as it is, in one word, from what was measured: its phases
 * (the share of a step spent communicating), its ceiling (what N workers with no
 * communication reached on this machine) and, where an all-reduce table sits beside the
 * results, the communication time that table predicts for the run's gradient buffer.
 *
 * @module
 */
import type { AllreduceResult } from "../bench/allreduce.ts";
import type { RunRecord } from "./results.ts";

/** The four labels. */
export type Bound = "compute" | "communication" | "latency" | "machine";

/** A run whose communication takes at least this share of a step is communication- or latency-bound. */
export const COMM_BOUND_SHARE = 0.3;
/** A run whose ceiling is below this fraction of N workers is machine-bound: the cores do not scale. */
export const MACHINE_BOUND_CEILING = 0.75;
/** Without an all-reduce table: gradient buffers below this are latency-bound when communication dominates. */
export const LATENCY_BOUND_BYTES = 256 * 1024;

/** The rules, as the report states them. */
export const BOUND_RULES = `Bound labels ("why"): a run whose communication takes ≥ ${
  COMM_BOUND_SHARE * 100
}% of its step is communication-bound, or latency-bound when the all-reduce table's fixed cost (its smallest message) is at least half the predicted time (without a table: a gradient buffer under ${
  LATENCY_BOUND_BYTES / 1024
} KiB); otherwise machine-bound when the no-communication ceiling is below ${
  MACHINE_BOUND_CEILING * 100
}% of N workers; otherwise compute-bound. Predicted communication = the all-reduce table's time at the run's buffer size (interpolated), beside the measured.`;

/** The gradient buffer a run all-reduces per step: a ring sends 2(N−1)/N of it from each rank. */
function bufferBytes(run: RunRecord): number {
  return run.comm.bytesPerStep / Math.max(1e-9, (2 * (run.worldSize - 1)) / run.worldSize);
}

/** The communication an all-reduce table predicts for one step. */
export interface CommPrediction {
  /** The table's time for the run's buffer, ms. */
  totalMs: number;
  /** Of that, the fixed cost: the table's time for its smallest message, ms. */
  latencyMs: number;
}

/**
 * The all-reduce table's time for a DDP run's gradient buffer (interpolated in log size
 * between the rows of the same world size); null for DP, or with no rows for that world size.
 *
 * @param table `allreduce.json`, or null
 * @param run the run
 * @returns the prediction, or null
 * @example
 * ```ts
 * import type { AllreduceResult } from "../bench/allreduce.ts";
 * import type { RunRecord } from "./results.ts";
 * declare const table: AllreduceResult;
 * declare const run: RunRecord;
 * predictComm(table, run)?.totalMs;
 * ```
 */
export function predictComm(table: AllreduceResult | null, run: RunRecord): CommPrediction | null {
  if (!table || run.strategy !== "ddp" || run.worldSize < 2) return null;
  const rows = table.rows.filter((r) =>
    r.worldSize === run.worldSize && (r.collective ?? "all-reduce") === "all-reduce" &&
    r.inPlace !== false && r.transport === (run.transport ?? "unix")
  )
    .sort((a, b) => a.bytes - b.bytes);
  if (rows.length === 0) return null;
  const buffer = bufferBytes(run);
  const ms = (us: number) => us / 1000;
  const latencyMs = ms(rows[0].usPerOp);
  if (buffer <= rows[0].bytes) return { totalMs: latencyMs, latencyMs };
  const last = rows[rows.length - 1];
  if (buffer >= last.bytes) {
    // Past the table: its largest message's bus bandwidth, plus the fixed cost.
    const busBytes = buffer * 2 * (run.worldSize - 1) / run.worldSize;
    return { totalMs: latencyMs + busBytes / (last.busbwGBps * 1e9) * 1000, latencyMs };
  }
  const upper = rows.findIndex((r) => r.bytes >= buffer);
  const [a, b] = [rows[upper - 1], rows[upper]];
  const t = Math.log(buffer / a.bytes) / Math.log(b.bytes / a.bytes);
  return { totalMs: ms(a.usPerOp + t * (b.usPerOp - a.usPerOp)), latencyMs };
}

/**
 * The label of a parallel run (null for single), by {@linkcode BOUND_RULES}.
 *
 * @param run the run
 * @param prediction what the all-reduce table predicts for it, or null
 * @returns the label, or null
 * @example
 * ```ts
 * import type { RunRecord } from "./results.ts";
 * declare const run: RunRecord;
 * boundOf(run, null); // "compute", "communication", "latency" or "machine"
 * ```
 */
export function boundOf(run: RunRecord, prediction: CommPrediction | null): Bound | null {
  if (run.strategy === "single") return null;
  if (run.comm.share >= COMM_BOUND_SHARE) {
    const latency = prediction
      ? prediction.latencyMs >= 0.5 * prediction.totalMs
      : bufferBytes(run) < LATENCY_BOUND_BYTES;
    return latency ? "latency" : "communication";
  }
  if (run.ceiling && run.ceiling.speedup < MACHINE_BOUND_CEILING * run.worldSize) return "machine";
  return "compute";
}

/**
 * Label every run and record the predicted communication beside the measured, in place.
 *
 * @param runs the run records
 * @param table `allreduce.json` found beside the results, or null
 * @example
 * ```ts
 * import type { RunRecord } from "./results.ts";
 * declare const runs: RunRecord[];
 * labelBounds(runs, null);
 * ```
 */
export function labelBounds(runs: RunRecord[], table: AllreduceResult | null): void {
  for (const run of runs) {
    const prediction = predictComm(table, run);
    run.bound = boundOf(run, prediction);
    run.comm.predictedMsPerStep = prediction ? prediction.totalMs : null;
  }
}
