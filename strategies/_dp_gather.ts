/**
 * DP's `gather`: collect every replica's gradient on the main thread and reduce them to the
 * gradient of the global batch's mean loss.
 *
 * @module
 */
import type { GradCompression } from "../core/run_types.ts";
import type { GradientResult } from "../core/trainer.ts";
import { fastWireCodec } from "../comm/wire_codec.ts";
import type { Applied } from "./_dp_parallel_apply.ts";

/** The reduced gradient and what gathering it cost. */
export interface Gathered extends GradientResult {
  /** ms the main thread waited for the slowest replica after finishing its own slice. */
  waitMs: number;
  /** Gradient bytes received from the workers. */
  bytesReceived: number;
  /** Host bytes held on the main thread at the reduce (gathered gradients, sum and mean). */
  heldBytes: number;
  /** When each worker replica (1, 2, …) computed its slice, ms since the epoch. */
  computed: { startedAt: number; doneAt: number }[];
}

/**
 * Weighted mean of per-slice results: Σ nᵢ gᵢ / Σ nᵢ, the loss likewise. Each slice's
 * gradient is of its own mean loss, so weighting by slice size gives exactly the gradient of
 * the global batch's mean loss, also when slices differ in size.
 *
 * @param parts each slice's size and result, in replica order
 * @returns the global batch's loss and gradient
 * @example
 * ```ts
 * const a = { loss: 0.5, grads: new Float32Array([1, 2]) };
 * const b = { loss: 0.7, grads: new Float32Array([3, 4]) };
 * const { grads } = weightedMean([{ size: 33, ...a }, { size: 32, ...b }]);
 * ```
 */
export function weightedMean(parts: (GradientResult & { size: number })[]): GradientResult {
  if (parts.length === 1) return { loss: parts[0].loss, grads: parts[0].grads };
  const total = parts.reduce((sum, p) => sum + p.size, 0);
  const length = parts[0].grads.length;
  parts.forEach((p, k) => {
    if (p.grads.length !== length) {
      throw new Error(
        `Cannot reduce gradients: replica ${k} sent ${p.grads.length} floats, expected ${length}`,
      );
    }
  });
  const acc = new Float64Array(length); // accumulated in float64, rounded to float32 once
  for (const { size, grads } of parts) {
    for (let j = 0; j < length; j++) acc[j] += size * grads[j];
  }
  const grads = new Float32Array(length);
  for (let j = 0; j < length; j++) grads[j] = acc[j] / total;
  const loss = parts.reduce((sum, p) => sum + p.size * p.loss, 0) / total;
  return { loss, grads };
}

/**
 * Wait for every worker's gradient (failing at the first replica that fails) and reduce,
 * casting 16-bit gradients back to float32 first (`gradCompression`); the reduction is float32
 * and float64 as without.
 *
 * @param applied what `parallelApply` started
 * @param compression how the workers' gradients travel (default `none`)
 * @returns the reduced gradient, the wait for the slowest replica and the bytes moved
 * @throws ReplicaError from the first replica that failed
 * @example
 * ```ts
 * import { parallelApply } from "./_dp_parallel_apply.ts";
 * import type { WorkerReplica } from "./_dp_worker_replica.ts";
 * import type { Batch, Trainer } from "../core/trainer.ts";
 * declare const trainer: Trainer, workers: WorkerReplica[], slices: Batch[][];
 * const opts = { step: 1, timeoutMs: 60_000 };
 * const { loss, grads, waitMs } = await gather(await parallelApply(trainer, workers, slices, opts));
 * ```
 */
export async function gather(
  applied: Applied,
  compression: GradCompression = "none",
): Promise<Gathered> {
  const codec = await fastWireCodec(compression);
  const t0 = performance.now();
  const replies = await Promise.all(applied.pending.map((p) => p.result));
  const awaitedMs = performance.now() - t0;
  const lastDoneAt = Math.max(applied.mainDoneAt, ...replies.map((r) => r.doneAt));
  const waitMs = Math.min(awaitedMs, lastDoneAt - applied.mainDoneAt);
  const parts = [
    applied.main,
    ...replies.map((r, k) => {
      let grads = r.grads;
      if (codec && grads instanceof Uint16Array) {
        const decoded = new Float32Array(grads.length);
        codec.decode(grads, decoded);
        grads = decoded;
      }
      return { size: applied.pending[k].size, loss: r.loss, grads: grads as Float32Array };
    }),
  ];
  const reduced = weightedMean(parts);
  const bytesReceived = replies.reduce((sum, r) => sum + r.grads.byteLength, 0);
  // The gathered gradients, plus the reduce's float64 sum and float32 mean.
  const reduceBytes = parts.length > 1 ? 3 * reduced.grads.byteLength : 0;
  const heldBytes = parts.reduce((sum, p) => sum + p.grads.byteLength, 0) + reduceBytes;
  // Each replica's compute on the host's clock, for a trace.
  const computed = replies.map((r) => ({ startedAt: r.startedAt, doneAt: r.doneAt }));
  return { ...reduced, waitMs, bytesReceived, heldBytes, computed };
}
