/**
 * Every bench run in fresh processes, so no run inherits another's wasm heap, JIT state or
 * tensors: single and dp in one child process each, ddp in its own rank processes.
 *
 * @module
 */
import { launch } from "../comm/launcher.ts";
import type { RunMeasurement, RunSpec } from "../core/run_types.ts";
import type { StepProgress } from "../core/train_loop.ts";
import { runDdp } from "../strategies/ddp.ts";
import { fromWire, readProgress, type WireMeasurement } from "../strategies/_wire.ts";

/** Options for {@linkcode runIsolated}. */
export interface RunIsolatedOptions {
  /** DDP only: measure the no-communication ceiling instead of the strategy. */
  ceiling?: boolean;
}

/**
 * Run `spec` in fresh processes and return its measurement.
 *
 * @param spec the run
 * @param onStep progress
 * @param options see {@linkcode RunIsolatedOptions}
 * @returns the measurement
 * @example
 * ```ts
 * const m = await runIsolated(spec, (done, total) => console.log(done, total));
 * ```
 */
export async function runIsolated(
  spec: RunSpec,
  onStep?: StepProgress,
  options: RunIsolatedOptions = {},
): Promise<RunMeasurement> {
  if (spec.strategy === "ddp") return runDdp(spec, onStep, { ceiling: options.ceiling });
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
