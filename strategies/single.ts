/**
 * The single-device strategy: one model, one engine, the plain loop. It is world size 1 of
 * the data-parallel replica loop, and the reference every other strategy is compared with.
 *
 * @module
 */
import type { RunMeasurement, RunSpec } from "../core/run_types.ts";
import type { StepProgress } from "../core/train_loop.ts";
import { runReplicaLoop, SOLO_GROUP } from "./_replica_loop.ts";

/**
 * Train `spec` on one device in this process.
 *
 * @param spec the run (`worldSize` must be 1)
 * @param onStep progress callback
 * @returns the measurement
 * @example
 * ```ts
 * const m = await runSingle({ ...spec, strategy: "single", worldSize: 1 });
 * ```
 */
export function runSingle(spec: RunSpec, onStep?: StepProgress): Promise<RunMeasurement> {
  return runReplicaLoop({ ...spec, strategy: "single", worldSize: 1 }, SOLO_GROUP, onStep);
}
