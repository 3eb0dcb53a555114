/**
 * The messages between DP's main thread and its worker replicas, in both directions.
 *
 * @module
 */
import type { BackendName } from "../backends/backend.ts";
import type { GradCompression } from "../core/run_types.ts";
import type { Batch } from "../core/trainer.ts";

/** How an injected fault shows itself (see `DpOptions.failReplicaAtStep`). */
export type FaultMode =
  /** The replica's step throws; the worker reports the error in a message. */
  | "throw"
  /** The worker dies of an uncaught error; the main thread sees its `error` event. */
  | "crash"
  /** The worker never answers; the main thread's step timeout fires. */
  | "hang";

/** What a worker replica needs to build its engine and model. */
export interface ReplicaInit {
  /** This replica's index, 1..N−1 (the main thread is 0). */
  index: number;
  workload: string;
  /** A Layers model's `--data` and `--loss` (`RunSpec.data`, `RunSpec.loss`). */
  data?: string;
  loss?: string;
  backend: BackendName;
  fastKernels: boolean;
  /** Compute threads of this worker. */
  threads?: number;
  seed: number;
  featureShape: number[];
  numClasses: number;
  /** SyncBatchNorm: the shared memory the replicas sum their batch statistics through. */
  syncStatistics?: { buffer: SharedArrayBuffer; parties: number; timeoutMs: number };
  /** Gradients to the main thread as float32 (`none`, default) or cast to fp16 / bf16. */
  gradCompression?: GradCompression;
  /** Fail at this step, for tests; absent in every real run. */
  fault?: { step: number; mode: FaultMode };
}

/** Main → worker. */
export type ToReplica =
  /** Build the engine and model; answered with `ready`. */
  | { kind: "init"; init: ReplicaInit }
  /**
   * Load the master parameters (and the main replica's buffers, where the model has any) for
   * `step`; not answered.
   */
  | { kind: "params"; step: number; params: Float32Array; buffers?: Float32Array }
  /**
   * Forward and backward on this replica's slice of each micro-batch (one unless
   * accumulating), their gradients accumulated; answered with `grads`.
   */
  | { kind: "compute"; step: number; batches: Batch[] }
  /** The ceiling: keep `batch` as this replica's own data for `computeOwn`; not answered. */
  | { kind: "data"; batch: Batch }
  /**
   * The ceiling: forward and backward on the replica's own data, `times` times (the
   * micro-batches of a step); answered with `computed`.
   */
  | { kind: "computeOwn"; step: number; times: number };

/** Worker → main. */
export type FromReplica =
  | { kind: "ready"; peakBytes: number }
  | {
    kind: "grads";
    step: number;
    loss: number;
    /** The gradient: float32, or its 16-bit cast with `gradCompression`. */
    grads: Float32Array | Uint16Array;
    /** When the replica began computing it, ms since the epoch (`timeOrigin + now()`). */
    startedAt: number;
    /** When the gradient was ready, ms since the epoch (`timeOrigin + now()`). */
    doneAt: number;
    peakBytes: number;
  }
  /** The ceiling's answer: the gradient exists, and stays with the replica. */
  | { kind: "computed"; step: number; peakBytes: number }
  /** The message being handled failed (`step` 0: during set-up). */
  | { kind: "error"; step: number; message: string };
