/**
 * What a run is asked to do ({@linkcode RunSpec}) and what it measured
 * ({@linkcode RunMeasurement}): one record type for every strategy.
 *
 * @module
 */
import type { BackendName } from "./backend_seam.ts";
import type { Percentiles } from "./stats.ts";
import type { StepPhases } from "./phases.ts";
import type { TraceEvent } from "./trace.ts";
import type { ModelReport } from "./workload.ts";

/** The strategies paratrain compares, in report order. */
export const STRATEGY_NAMES = ["single", "dp", "ddp"] as const;

/** One of {@linkcode STRATEGY_NAMES}. */
export type StrategyName = typeof STRATEGY_NAMES[number];

/** How gradients travel between workers: as float32 (`none`) or cast to 16 bits on the wire. */
export const GRAD_COMPRESSIONS = ["none", "fp16", "bf16"] as const;

/** One of {@linkcode GRAD_COMPRESSIONS}. */
export type GradCompression = typeof GRAD_COMPRESSIONS[number];

/**
 * How the global batch grows with the workers: `strong` keeps it (each of N workers takes
 * 1/N), `weak` keeps each worker's (N workers train on N × the batch).
 */
export const SCALINGS = ["strong", "weak"] as const;

/** One of {@linkcode SCALINGS}. */
export type Scaling = typeof SCALINGS[number];

/**
 * BatchNorm under DP and DDP: `local` normalises each replica's slice with its own statistics
 * (the running statistics broadcast from the main replica / rank 0 every step, as PyTorch's
 * `broadcast_buffers=True`); `sync` is SyncBatchNorm, the statistics of the global batch.
 */
export const BATCH_NORM_MODES = ["local", "sync"] as const;

/** One of {@linkcode BATCH_NORM_MODES}. */
export type BatchNormMode = typeof BATCH_NORM_MODES[number];

/**
 * Steps after which a parallel run's parameters are compared with single's
 * (`paramMaxAbsDiffVsSingle`), unless the workload says otherwise (`equivalenceSteps`).
 */
export const EQUIVALENCE_STEPS = 20;

/** Gradient bucket cap, as PyTorch DDP's default `bucket_cap_mb=25`. */
export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;

/** One host's part of a job across hosts, in torchrun's terms. */
export interface NodeSpec {
  /** Hosts in the job. */
  nnodes: number;
  /** This host, 0 ≤ nodeRank < nnodes; node 0 runs rank 0, which serves the rendezvous. */
  nodeRank: number;
  /** Ranks on each host. */
  nprocPerNode: number;
  /** Node 0's address, as every host reaches it. */
  masterAddr: string;
  /** The rendezvous port on node 0. */
  masterPort: number;
  /** Address the ranks' listeners bind to (default: the interface that reaches the master). */
  bind?: string;
}

/** Everything a replica needs to reproduce a run, in plain data (it crosses processes). */
export interface RunSpec {
  /**
   * A built-in workload name, `model:/abs/model.json` (a saved TensorFlow.js Layers model), or
   * `module-url#export` for a user's own (a Workload, or a function returning a Layers model).
   */
  workload: string;
  /**
   * A Layers model's data (`--data`): `synthetic` (default, shaped to the model), `mnist`,
   * `iris`, or `module-url#export`.
   */
  data?: string;
  /** A Layers model's loss (`--loss`), instead of its compile configuration's. */
  loss?: string;
  strategy: StrategyName;
  /** Replicas (dp) or ranks (ddp); 1 for single. */
  worldSize: number;
  backend: BackendName;
  fastKernels: boolean;
  /** Compute threads per worker (default 1; more than one needs the `native` backend). */
  threads?: number;
  seed: number;
  /** Timed steps. */
  steps: number;
  /** Untimed steps before them. */
  warmup: number;
  /**
   * Global batch size of one micro-step (one forward and backward on every worker), split
   * across replicas/ranks; an optimizer step sees `accumulate` of them.
   */
  globalBatch: number;
  /**
   * Micro-batches per optimizer step (default 1): gradients are accumulated locally and
   * communicated once per optimizer step (DDP's `no_sync` pattern; DP gathers once).
   */
  accumulate?: number;
  /** DP and DDP: gradients on the wire as float32 (default `none`) or cast to fp16 / bf16. */
  gradCompression?: GradCompression;
  /** DDP: gradient bucket cap in bytes (default {@linkcode DEFAULT_BUCKET_BYTES}). */
  bucketBytes?: number;
  /**
   * DDP: start each bucket's all-reduce as soon as its gradients exist, on a communication
   * thread, while backward goes on (default true); false all-reduces after the backward.
   */
  overlap?: boolean;
  /** Strong (default) or weak scaling: recorded; `globalBatch` already says the batch. */
  scaling?: Scaling;
  /**
   * DP and DDP, on a model with BatchNorm: each replica's own batch statistics (`local`,
   * default) or the global batch's (`sync`, SyncBatchNorm).
   */
  batchNorm?: BatchNormMode;
  /** Step after which parameters are snapshotted for the equivalence check. */
  snapshotStep: number;
  /** Start from this checkpoint's parameters instead of a fresh initialisation. */
  resumePath?: string;
  /** After training, the main replica / rank 0 writes the parameters here. */
  checkpointPath?: string;
  /**
   * DP and DDP: how long a collective (DDP) or a replica's answer (DP) may take before the run
   * fails, ms (default 60 s).
   */
  collectiveTimeoutMs?: number;
  /** DDP: a deadline for the whole job, ms; none by default. */
  jobTimeoutMs?: number;
  /**
   * DDP: `unix` (default: Unix sockets between ranks on one host, TCP across hosts) or `tcp`
   * (every link over TCP).
   */
  transport?: "unix" | "tcp";
  /**
   * DDP across hosts: this host's part of the job, in torchrun's terms (`worldSize` is then
   * `nnodes · nprocPerNode`). The job secret is never here: it travels in the environment.
   */
  nodes?: NodeSpec;
  /** Record a timeline of every worker's steps and phases (`--trace`), returned as `trace`. */
  trace?: boolean;
  /**
   * Measure this run's ceiling instead: the same workers doing the same per-worker work in
   * lock-step, through the same loop, with the communication removed (dp and ddp only).
   */
  ceiling?: boolean;
}

/** What a run of a model brought from outside records about it, its data included. */
export interface RunModelReport extends ModelReport {
  /** The loss's `--loss` name (`losses.ts`), to resolve the model again with it. */
  lossName: string;
  /** Where the data came from (`Dataset.source`). */
  data: string;
}

/** One worker's memory: a row of `memory.workers` in `results.json`. */
export interface WorkerMemory {
  role: "main" | "replica" | "rank";
  index: number;
  /** Tensor bytes plus wasm heap of this worker's engine. */
  peakBytes: number;
  /** Process RSS; null where it cannot be observed per worker. */
  peakRssBytes: number | null;
  /**
   * DDP ranks: how long after the first rank this one arrived at each step's collective
   * (p50, p95 over the timed steps), ms. The ring makes every rank's wall time equal, so who
   * is slow shows in arrival, not duration.
   */
  arrivalLagMs?: { p50: number; p95: number };
  /** DDP ranks, on the wire only: this rank's arrival time at each step's collective, ms. */
  arrivals?: number[];
}

/** Communication cost per step. */
export interface CommMeasurement {
  bytesPerStep: number;
  msPerStep: number;
  /** Of that, waiting for the slowest rank/replica. */
  waitMsPerStep: number;
  /** Of that, moving bytes. */
  transferMsPerStep: number;
  /**
   * Of `msPerStep`, the part the step waited for: communication not hidden behind compute
   * (equal to `msPerStep` when nothing overlaps).
   */
  exposedMsPerStep: number;
  /** Collective calls (DDP) or messages to and from the workers (DP) per optimizer step. */
  messagesPerStep: number;
  /** msPerStep / step p50. */
  share: number;
}

/** What one run measured, before comparison with the single-device reference. */
export interface RunMeasurement {
  spec: RunSpec;
  stepMs: Percentiles;
  /** Wall time of every timed step, ms (for pooling repeats). */
  stepSamples: number[];
  samplesPerSec: number;
  /** Mean ms per step in each phase. */
  phaseMs: StepPhases;
  finalLoss: number;
  accuracy: number;
  workers: WorkerMemory[];
  comm: CommMeasurement;
  /** Dataset load time (kept out of step times), ms. */
  loadMs: number;
  /**
   * FLOPs of one global training step; null where some layer's FLOPs could not be counted
   * (`model.flopsNotCounted` names them).
   */
  flopsPerStep: number | null;
  /** Trainable parameters. */
  params: number;
  /** Bytes of float32 gradient one step all-reduces (before any compression). */
  gradientBytes: number;
  /**
   * How BatchNorm normalised: `local` or `sync` for DP and DDP runs of a model with buffers,
   * null otherwise (single, or a model without any).
   */
  batchNorm: BatchNormMode | null;
  /** The backend's plain GEMM GFLOP/s, measured in this run's process before its steps. */
  peakGflops: number;
  /** A model brought from outside (a Layers model): what the report must say about it. */
  model?: RunModelReport;
  /** Flat parameters after `spec.snapshotStep` steps, for the equivalence check. */
  snapshot: Float32Array;
  /** With `spec.trace`: every worker's trace events, `pid` = worker (DP replica, DDP rank). */
  trace?: TraceEvent[];
  /** DDP: the links rank 0's ring used, `tcp` when either was TCP (absent elsewhere). */
  transport?: "unix" | "tcp";
}

/**
 * How tables and messages name a run: compute threads per worker are added when more than
 * one, a DDP bucket cap other than the default (25 MiB), in MiB, compressed gradients, and
 * SyncBatchNorm.
 *
 * @param run its strategy, world size, threads, bucket cap, compression and BatchNorm mode
 * @returns `single`, `dp-2`, `ddp-4`, `single-2t` (one process, two threads), `ddp-2-b1mb`,
 *   `ddp-2-fp16`, `dp-2-syncbn`
 * @example
 * ```ts
 * runLabel({ strategy: "ddp", worldSize: 4 }); // "ddp-4"
 * runLabel({ strategy: "single", worldSize: 1, threads: 2 }); // "single-2t"
 * runLabel({ strategy: "ddp", worldSize: 2, bucketBytes: 2 ** 20 }); // "ddp-2-b1mb"
 * ```
 */
export function runLabel(
  run: {
    strategy: StrategyName;
    worldSize: number;
    threads?: number;
    bucketBytes?: number | null;
    gradCompression?: GradCompression;
    batchNorm?: BatchNormMode | null;
  },
): string {
  const base = run.strategy === "single" ? "single" : `${run.strategy}-${run.worldSize}`;
  const threads = (run.threads ?? 1) > 1 ? `${base}-${run.threads}t` : base;
  const bucket = run.strategy === "ddp" && run.bucketBytes != null &&
      run.bucketBytes !== DEFAULT_BUCKET_BYTES
    ? `-b${Number((run.bucketBytes / 2 ** 20).toPrecision(3))}mb`
    : "";
  const compressed = run.strategy !== "single" && run.gradCompression &&
      run.gradCompression !== "none"
    ? `-${run.gradCompression}`
    : "";
  const syncBn = run.strategy !== "single" && run.batchNorm === "sync" ? "-syncbn" : "";
  return threads + bucket + compressed + syncBn;
}
