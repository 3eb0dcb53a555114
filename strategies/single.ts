/**
 * The single-device strategy: one model, one engine, the plain loop — the reference every
 * other strategy is compared with. Its participation is the trivial one: all of the data,
 * its own parameters, its own gradient.
 *
 * @module
 */
import type { RunMeasurement, RunSpec } from "../core/run_types.ts";
import { timed } from "../core/phases.ts";
import type { StepProgress } from "../core/train_loop.ts";
import { type Participation, runReplica } from "./_run_replica.ts";

/**
 * Train `spec` on one device in this process.
 *
 * @param spec the run (`worldSize` must be 1)
 * @param onStep progress callback
 * @returns the measurement
 * @example
 * ```ts
 * const m = await runSingle({
 *   workload: "iris-logreg", strategy: "single", worldSize: 1, backend: "wasm",
 *   fastKernels: true, seed: 0, steps: 5, warmup: 0, globalBatch: 32, snapshotStep: 5,
 * });
 * console.log(m.samplesPerSec);
 * ```
 */
export function runSingle(spec: RunSpec, onStep?: StepProgress): Promise<RunMeasurement> {
  return runReplica(
    { ...spec, strategy: "single", worldSize: 1 },
    ({ trainer }): Promise<Participation> =>
      Promise.resolve({
        rank: 0,
        shards: 1,
        start: (params) => Promise.resolve(params),
        gradients: (batches, step) =>
          timed(step.phases, "compute", () => trainer.accumulateGradientsAsync(batches)),
        globalLoss: (loss) => Promise.resolve(loss),
        memory: (loop) => [
          { role: "main", index: 0, peakBytes: loop.peakBytes, peakRssBytes: loop.peakRssBytes },
        ],
      }),
    onStep,
  );
}
