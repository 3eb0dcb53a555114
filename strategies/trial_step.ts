/**
 * A trial step: one forward and backward of a model brought from outside, on two samples of
 * its own data, on the run's backend, in this process — so that a layer the backend cannot
 * train, or data that does not fit the model, is a usage error before any process, worker or
 * file is made, not a failed run.
 *
 * @module
 */
import { initBackend } from "../backends/backend.ts";
import { UsageError } from "../core/errors.ts";
import type { RunSpec } from "../core/run_types.ts";
import { Trainer } from "../core/trainer.ts";
import { resolveWorkload } from "../workloads/resolve_workload.ts";

/** Samples of the trial step's batch. */
const TRIAL_SAMPLES = 2;

/**
 * Check that `spec`'s workload, when it is a model brought from outside (it has a report),
 * loads its data and trains one step on `spec.backend`. A built-in workload is not tried.
 *
 * @param spec the workload, its `--data` and `--loss`, the backend and the seed
 * @throws UsageError naming the problem and the fix: data that does not fit, or a kernel or
 *   gradient the backend lacks (with the layer, where it failed in one)
 * @example
 * ```ts
 * await trialStep({
 *   workload: "model:/models/mlp/model.json", backend: "wasm", fastKernels: true, seed: 0,
 * });
 * ```
 */
export async function trialStep(
  spec: Pick<
    RunSpec,
    "workload" | "data" | "loss" | "backend" | "fastKernels" | "threads" | "seed"
  >,
): Promise<void> {
  const workload = await resolveWorkload(spec.workload, { data: spec.data, loss: spec.loss });
  if (!workload.createModel().report) return;
  await initBackend(spec.backend, { fastKernels: spec.fastKernels, threads: spec.threads });
  const data = await workload.loadData(spec.seed);
  const trainer = new Trainer(workload.createModel(), data, workload.defaults.optimizer, {
    seed: spec.seed,
  });
  const n = Math.min(TRIAL_SAMPLES, data.train.size);
  const width = data.train.x.length / data.train.size;
  const labels = data.train.y.length / data.train.size;
  const batch = {
    x: data.train.x.slice(0, n * width),
    y: data.train.y.slice(0, n * labels),
    size: n,
  };
  try {
    await trainer.accumulateGradientsAsync([batch]);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(
      `Cannot train ${spec.workload} on ${spec.backend}: ${
        (error as Error).message.split("\n")[0]
      }; try --backend cpu, which has every TensorFlow.js kernel`,
    );
  } finally {
    trainer.dispose();
  }
}
