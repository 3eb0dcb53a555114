/**
 * DP's `parallel_apply`: every replica computes the gradient of its own slice at once, the
 * main thread on slice 0 while the workers compute theirs.
 *
 * @module
 */
import type { Batch, GradientResult, Trainer } from "../core/trainer.ts";
import type { FromReplica } from "./_dp_messages.ts";
import { ReplicaError } from "./_dp_replica_error.ts";
import type { WorkerReplica } from "./_dp_worker_replica.ts";

/** A worker's answer to `compute`. */
export type WorkerGradients = Extract<FromReplica, { kind: "grads" }>;

/** What {@linkcode parallelApply} started: the main replica's result and the workers' to come. */
export interface Applied {
  /** Replica 0's (the main thread's) result, with its slice size. */
  main: GradientResult & { size: number };
  /** When the main thread finished its slice, ms since the epoch. */
  mainDoneAt: number;
  /** The workers' results, in replica order, with their slice sizes. */
  pending: { size: number; result: Promise<WorkerGradients> }[];
  /** Input bytes sent to the workers. */
  bytesSent: number;
}

/**
 * Hand slice k of every micro-batch to worker replica k (k ≥ 1) and compute slice 0 of each
 * on the main thread meanwhile; each replica accumulates its slices' gradients (weighted by
 * size) before answering, so a step gathers once however many micro-batches it has.
 *
 * @param trainer the main replica (holds the master parameters)
 * @param workers worker replicas 1..N−1
 * @param slices per micro-batch, one slice per replica (from `scatter`)
 * @param options the step (for error messages) and the per-step timeout
 * @returns the main result and the pending worker results
 * @throws ReplicaError naming replica 0 when the main thread's own slice fails
 * @example
 * ```ts
 * import { scatter } from "./_dp_scatter.ts";
 * import type { WorkerReplica } from "./_dp_worker_replica.ts";
 * import type { Batch, Trainer } from "../core/trainer.ts";
 * declare const trainer: Trainer, workers: WorkerReplica[], batch: Batch;
 * const [step, timeoutMs] = [1, 60_000];
 * const applied = await parallelApply(trainer, workers, [scatter(batch, 3)], { step, timeoutMs });
 * ```
 */
export async function parallelApply(
  trainer: Trainer,
  workers: WorkerReplica[],
  slices: Batch[][],
  options: { step: number; timeoutMs: number },
): Promise<Applied> {
  const { step, timeoutMs } = options;
  let bytesSent = 0;
  const pending = workers.map((worker, k) => {
    const batches = slices.map((micro) => micro[k + 1]);
    const transfer = batches.flatMap((b) => {
      bytesSent += b.x.byteLength + b.y.byteLength;
      return [b.x.buffer as ArrayBuffer, b.y.buffer as ArrayBuffer];
    });
    const reply = worker.request({ kind: "compute", step, batches }, transfer, timeoutMs);
    const size = batches.reduce((sum, b) => sum + b.size, 0);
    return { size, result: reply as Promise<WorkerGradients> };
  });
  let main: GradientResult & { size: number };
  try {
    main = await trainer.accumulateGradientsAsync(slices.map((micro) => micro[0]));
  } catch (error) {
    throw new ReplicaError(0, step, (error as Error).message, { cause: error });
  }
  const mainDoneAt = performance.timeOrigin + performance.now();
  return { main, mainDoneAt, pending, bytesSent };
}
