/**
 * Every bench run in fresh processes, so no run inherits another's wasm heap, JIT state or
 * tensors: single and dp in one child process each, ddp in its own rank processes. The
 * ceilings of the parallel strategies likewise.
 *
 * @module
 */
import { launch } from "../comm/launcher.ts";
import type { RunMeasurement, RunSpec } from "../core/run_types.ts";
import type { StepProgress } from "../core/train_loop.ts";
import { STRATEGIES } from "../strategies/registry.ts";
import { fromWire, readProgress, type WireMeasurement } from "../strategies/_wire.ts";

/** What a child process is asked to do. */
export interface IsolatedTask {
  spec: RunSpec;
  /** Measure the strategy's ceiling instead of running it. */
  ceiling: boolean;
}

/** Run a task in one fresh child process; relay its progress and output. */
async function runChild<T>(task: IsolatedTask, onStep?: StepProgress): Promise<T> {
  const { results } = await launch<T>(new URL("./_isolated_main.ts", import.meta.url), {
    worldSize: 1,
    args: [JSON.stringify(task)],
    onLine: ({ stream, line }) => {
      if (stream === "stdout" && readProgress(line, onStep)) return;
      (stream === "stdout" ? console.log : console.error)(line);
    },
  });
  if (!results[0]) throw new Error(`The ${task.spec.strategy} run exited without reporting`);
  return results[0];
}

/**
 * Run `spec` in fresh processes and return its measurement.
 *
 * @param spec the run
 * @param onStep progress
 * @returns the measurement
 * @example
 * ```ts
 * const m = await runIsolated(spec, (done, total) => console.log(done, total));
 * ```
 */
export async function runIsolated(spec: RunSpec, onStep?: StepProgress): Promise<RunMeasurement> {
  // DDP ranks are fresh processes already.
  if (spec.strategy === "ddp") return STRATEGIES.ddp.run!(spec, onStep);
  return fromWire(await runChild<WireMeasurement>({ spec, ceiling: false }, onStep));
}

/**
 * Measure the ceiling of a parallel run in fresh processes.
 *
 * @param spec the run whose ceiling to measure
 * @returns the ceiling's throughput
 * @example
 * ```ts
 * const { samplesPerSec } = await measureCeilingIsolated({ ...spec, strategy: "dp", worldSize: 2 });
 * ```
 */
export function measureCeilingIsolated(spec: RunSpec): Promise<{ samplesPerSec: number }> {
  const ceiling = STRATEGIES[spec.strategy].ceiling;
  if (!ceiling) throw new Error(`Strategy ${spec.strategy} has no ceiling`);
  if (spec.strategy === "ddp") return ceiling(spec);
  return runChild<{ samplesPerSec: number }>({ spec, ceiling: true });
}
