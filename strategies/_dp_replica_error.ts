/**
 * The error a DP run fails with when one of its replicas fails: it names the replica and the
 * step, as PyTorch's `parallel_apply` re-raises a replica's exception on the main thread.
 *
 * @module
 */

import { ExpectedError } from "../core/errors.ts";

/** A replica (0 is the main thread) failed during set-up (step 0) or at a step. */
export class ReplicaError extends ExpectedError {
  override name = "ReplicaError";
  /** The replica that failed. */
  readonly replica: number;
  /** The step it failed at, from 1; 0 during set-up. */
  readonly step: number;

  /**
   * @param replica the replica that failed
   * @param step the step (0: during set-up)
   * @param reason what went wrong
   * @param options the underlying error, if any
   */
  constructor(replica: number, step: number, reason: string, options?: ErrorOptions) {
    const where = step === 0 ? "during set-up" : `at step ${step}`;
    super(`Replica ${replica} failed ${where}: ${reason}`, options);
    this.replica = replica;
    this.step = step;
  }
}
