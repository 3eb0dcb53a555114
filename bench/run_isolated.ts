/**
 * Every bench run in fresh processes, so no run inherits another's wasm heap, JIT state or
 * tensors: single and dp in one child process each, ddp in its own rank processes. Ceilings
 * likewise (a ceiling is the run with `spec.ceiling` set).
 *
 * @module
 */
import { launch } from "../comm/launcher.ts";
import type { RunMeasurement, RunSpec } from "../core/run_types.ts";
import type { StepProgress } from "../core/train_loop.ts";
import { STRATEGIES } from "../strategies/registry.ts";
import { fromWire, readProgress, type WireMeasurement } from "../strategies/_wire.ts";

/**
 * Run `spec` in fresh processes and return its measurement.
 *
 * @param spec the run
 * @param onStep progress
 * @returns the measurement
 * @example
 * ```ts
 * const m = await runIsolated({
 *   workload: "iris-logreg", strategy: "single", worldSize: 1, backend: "wasm",
 *   fastKernels: true, seed: 0, steps: 5, warmup: 0, globalBatch: 32, snapshotStep: 5,
 * });
 * ```
 */
export async function runIsolated(spec: RunSpec, onStep?: StepProgress): Promise<RunMeasurement> {
  // DDP ranks are fresh processes already.
  if (spec.strategy === "ddp") return STRATEGIES.ddp.run(spec, onStep);
  const { results } = await launch<WireMeasurement>(
    new URL("./_isolated_main.ts", import.meta.url),
    {
      worldSize: 1,
      args: [JSON.stringify(spec)],
      onLine: ({ stream, line }) => {
        if (stream === "stdout" && readProgress(line, onStep)) return;
        (stream === "stdout" ? console.log : console.error)(line);
      },
    },
  );
  if (!results[0]) throw new Error(`The ${spec.strategy} run exited without reporting`);
  return fromWire(results[0]);
}
