/**
 * `--trace DIR`: one Chrome trace-event file per run (Perfetto, `chrome://tracing`), with a
 * process per worker, a track per phase, step spans and the run's metadata; long runs keep the
 * first and last steps and a sample between (said in the file's metadata).
 *
 * @module
 */
import { join } from "node:path";
import { runLabel, type RunMeasurement } from "../core/run_types.ts";
import { boundSteps, TRACE_EDGE_STEPS, TRACE_MAX_STEPS, traceFile } from "../core/trace.ts";
import { writeAtomic } from "../core/write_atomic.ts";

/** The worker names of a run, by pid. */
function workerNames(m: RunMeasurement): string[] {
  const { strategy, worldSize } = m.spec;
  if (strategy === "ddp") return Array.from({ length: worldSize }, (_, k) => `rank ${k}`);
  if (strategy === "dp") {
    return [
      "main (replica 0)",
      ...Array.from({ length: worldSize - 1 }, (_, k) => `replica ${k + 1}`),
    ];
  }
  return ["main"];
}

/**
 * The file name of a run's trace.
 *
 * @param m the run
 * @param repeat its repeat (bench), or undefined (train)
 * @returns e.g. `mnist-mlp-ddp-2-repeat1.json`
 * @example
 * ```ts
 * import type { RunMeasurement } from "../core/run_types.ts";
 * declare const m: RunMeasurement;
 * traceFileName(m, 0);
 * ```
 */
export function traceFileName(m: RunMeasurement, repeat?: number): string {
  const ceiling = m.spec.ceiling ? "-ceiling" : "";
  const which = repeat === undefined ? "" : `-repeat${repeat + 1}`;
  return `${m.spec.workload}-${runLabel(m.spec)}${ceiling}${which}.json`.replaceAll(
    /[^\w.-]/g,
    "_",
  );
}

/**
 * Writes `m`'s trace into `dir` (atomically).
 *
 * @param dir the trace folder
 * @param m a run measured with `spec.trace`
 * @param repeat its repeat (bench), or undefined (train)
 * @returns the file written
 * @example
 * ```ts
 * import type { RunMeasurement } from "../core/run_types.ts";
 * declare const m: RunMeasurement;
 * await writeTrace("traces", m);
 * ```
 */
export async function writeTrace(dir: string, m: RunMeasurement, repeat?: number): Promise<string> {
  const steps = m.spec.warmup + m.spec.steps;
  const { events, kept } = boundSteps(m.trace ?? [], steps);
  const file = traceFile(events, workerNames(m), {
    workload: m.spec.workload,
    strategy: m.spec.strategy,
    worldSize: m.spec.worldSize,
    threads: m.spec.threads ?? 1,
    backend: m.spec.backend,
    globalBatch: m.spec.globalBatch,
    ceiling: m.spec.ceiling ?? false,
    repeat: repeat === undefined ? null : repeat + 1,
    steps,
    warmupSteps: m.spec.warmup,
    keptSteps: kept.length === steps
      ? "all"
      : `${kept.length} of ${steps}: the first and last ${TRACE_EDGE_STEPS} and an even sample between (at most ${TRACE_MAX_STEPS})`,
    clock:
      "µs on the host's clock (performance.timeOrigin + performance.now() in every process and worker), so one machine's processes line up without offsets",
    tracks:
      "per worker: step, compute, replicate, scatter, gather, allReduce (with one span per DDP bucket), wait (a DDP rank waiting for the others at a collective), update; DP replicas' compute as their Web Worker timed it",
  });
  const path = join(dir, traceFileName(m, repeat));
  await writeAtomic(path, JSON.stringify(file));
  return path;
}
