/**
 * Where a training step's time goes. The phases run one after another and add up to the
 * step; communication's own breakdown (waiting for the slowest worker, bytes moved) is kept
 * apart, because it splits the communication phases rather than adding to them.
 *
 * @module
 */

import { hostMicros, tracePhase } from "./trace.ts";

/** Milliseconds of one step (or the mean of many) in each phase. */
export interface StepPhases {
  /** Forward and backward on this worker's data (DP: the main's slice, while the replicas compute theirs). */
  compute: number;
  /**
   * DP: the master parameters (and buffers) copied to every replica; DDP: rank 0's buffers
   * (BatchNorm's running statistics) broadcast to every rank, where the model has any.
   */
  replicate: number;
  /** DP: the global batch cut into slices and sent to the replicas. */
  scatter: number;
  /** DP: the replicas' gradients collected and averaged, waiting for the slowest included. */
  gather: number;
  /** DDP: the gradient averaged across ranks, bucket by bucket (a barrier in the ceiling). */
  allReduce: number;
  /** The optimizer step. */
  update: number;
}

/** A step's phases in the order they run. */
export const PHASES = ["compute", "replicate", "scatter", "gather", "allReduce", "update"] as const;

/** The phases that move data between workers. */
export const COMMUNICATION_PHASES = ["replicate", "scatter", "gather", "allReduce"] as const;

/** One step's communication, beyond its phase times. */
export interface CommBreakdown {
  /** Payload bytes this worker moved (DP: all the main thread sent and received). */
  bytes: number;
  /** Of the communication phases, time spent waiting for the slowest worker to arrive. */
  waitMs: number;
  /**
   * Communication that ran while this worker computed (DDP's overlapped buckets), so it is in
   * no communication phase: the step did not wait for it.
   */
  hiddenMs: number;
  /** Collective calls (DDP) or messages to and from the workers (DP). */
  messages: number;
}

/** What a strategy's step fills in while it runs. */
export interface StepTiming {
  phases: StepPhases;
  comm: CommBreakdown;
}

/**
 * A step's timing with every phase at zero.
 *
 * @returns fresh zeroed phases and communication
 * @example
 * ```ts
 * const step = emptyTiming();
 * step.phases.compute += 3.5;
 * ```
 */
export function emptyTiming(): StepTiming {
  return {
    phases: { compute: 0, replicate: 0, scatter: 0, gather: 0, allReduce: 0, update: 0 },
    comm: { bytes: 0, waitMs: 0, hiddenMs: 0, messages: 0 },
  };
}

/**
 * Run `fn` and add its wall time to `phases[name]`.
 *
 * @param phases the step's phases
 * @param name the phase `fn` belongs to
 * @param fn the work
 * @returns what `fn` returned
 * @example
 * ```ts
 * const { phases } = emptyTiming();
 * const sum = await timed(phases, "compute", () => 1 + 1);
 * ```
 */
export async function timed<T>(
  phases: StepPhases,
  name: keyof StepPhases,
  fn: () => T | Promise<T>,
): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    const elapsed = performance.now() - t0;
    phases[name] += elapsed;
    tracePhase(name, hostMicros(t0), elapsed * 1000);
  }
}

/**
 * The time a step spent communicating: the sum of its communication phases.
 *
 * @param phases a step's (or a mean step's) phases
 * @returns ms
 * @example
 * ```ts
 * communicationMs(emptyTiming().phases); // 0
 * ```
 */
export function communicationMs(phases: StepPhases): number {
  return COMMUNICATION_PHASES.reduce((sum, p) => sum + phases[p], 0);
}
