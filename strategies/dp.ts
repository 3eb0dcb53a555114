/**
 * The DataParallel strategy, modelled on PyTorch's `nn.DataParallel`: one process, several
 * threads. The main thread is replica 0: it holds the master parameters and the only
 * optimizer. Replicas 1..N−1 are Web Workers, each with its own TensorFlow.js engine. Per step:
 *
 * ```
 *   replicate      master params ──► every worker          (N−1 transferred copies)
 *   scatter        global batch  ──► N slices, sizes differ by at most 1
 *   compute        all N replicas: forward + backward on their slice, at once
 *   gather         N gradients   ──► main: Σ nᵢ gᵢ / Σ nᵢ
 *   update         main's optimizer steps the master params (the loop's `update`)
 * ```
 *
 * It sees the same batches as `single` and, up to float summation order, reaches the same
 * parameters. Phases: `compute` is the main thread's part of the parallel apply (its own
 * slice, while the workers compute theirs); `replicate`, `scatter` and `gather` are the
 * communication, and `gather` includes the wait for the slowest replica after the main
 * finished its own slice (reported as communication's `waitMs`).
 *
 * @module
 */
import { BatchStream } from "../core/batch_stream.ts";
import { timed } from "../core/phases.ts";
import { activeTrace } from "../core/trace.ts";
import type { GradCompression, RunMeasurement, RunSpec, WorkerMemory } from "../core/run_types.ts";
import type { StepProgress } from "../core/train_loop.ts";
import type { Trainer } from "../core/trainer.ts";
import type { Dataset } from "../core/workload.ts";
import { type Participation, type Replica, runReplica } from "./_run_replica.ts";
import { gather } from "./_dp_gather.ts";
import type { FaultMode, ReplicaInit } from "./_dp_messages.ts";
import { parallelApply } from "./_dp_parallel_apply.ts";
import { replicate } from "./_dp_replicate.ts";
import { mainSlice, scatter } from "./_dp_scatter.ts";
import { WorkerReplica } from "./_dp_worker_replica.ts";
import { DistributedSampler } from "./distributed_sampler.ts";
import { createSharedSumBuffer, SharedMemorySum } from "../comm/shared_memory_sum.ts";

export { ReplicaError } from "./_dp_replica_error.ts";
export type { FaultMode } from "./_dp_messages.ts";

/** A step fails when a worker has not answered within this (it hung or died silently). */
export const STEP_TIMEOUT_MS = 60_000;
/** A worker's set-up (tfjs import, backend init, model build) must finish within this. */
const SETUP_TIMEOUT_MS = 120_000;

/** Options for {@linkcode runDp} and {@linkcode measureDpCeiling}. */
export interface DpOptions {
  /** How long a step waits for a worker's answer, ms (default {@linkcode STEP_TIMEOUT_MS}). */
  stepTimeoutMs?: number;
  /**
   * For tests of the failure path: worker replica `replica` (1..N−1) fails at `step` (from 1),
   * by throwing (default), dying of an uncaught error (`crash`) or never answering (`hang`).
   */
  failReplicaAtStep?: { replica: number; step: number; mode?: FaultMode };
}

/**
 * Train `spec` with DataParallel: `spec.worldSize` replicas in one process, the main thread
 * and `worldSize − 1` Web Workers. With `spec.ceiling`, measure its ceiling instead: the same
 * replicas computing their slices in lock-step through the same loop, with no replicate,
 * scatter or gather. A replica that fails fails the run with a {@linkcode ReplicaError}
 * naming it; every worker is terminated on every exit path.
 *
 * @param spec the run (`globalBatch` ≥ `worldSize`; it need not divide evenly)
 * @param onStep progress callback
 * @param options see {@linkcode DpOptions}
 * @returns the measurement: one `main` memory row and one `replica` row per worker
 * @example
 * ```ts
 * const m = await runDp({
 *   workload: "iris-logreg", strategy: "dp", worldSize: 2, backend: "wasm",
 *   fastKernels: true, seed: 0, steps: 5, warmup: 0, globalBatch: 32, snapshotStep: 5,
 * });
 * console.log(m.phaseMs.gather);
 * ```
 */
export async function runDp(
  spec: RunSpec,
  onStep?: StepProgress,
  options: DpOptions = {},
): Promise<RunMeasurement> {
  const { stepTimeoutMs = spec.collectiveTimeoutMs ?? STEP_TIMEOUT_MS, failReplicaAtStep } =
    options;
  checkSpec(spec, failReplicaAtStep);
  // Started first, so their module loading overlaps the main thread's set-up.
  const workers = startWorkers(spec.worldSize);
  try {
    return await runReplica(spec, async (replica) => {
      const sync = syncStatistics(spec, replica.trainer, stepTimeoutMs);
      if (sync) {
        replica.trainer.synchronizeStatistics(
          new SharedMemorySum(sync.buffer, sync.parties, 0, sync.timeoutMs),
        );
      }
      await initWorkers(workers, spec, replica.data, failReplicaAtStep, sync);
      const options = { timeoutMs: stepTimeoutMs, replicas: spec.worldSize };
      return spec.ceiling
        ? computeAlongside(replica, workers, spec, options)
        : dataParallel(replica.trainer, workers, { ...options, compression: spec.gradCompression });
    }, onStep);
  } finally {
    workers.forEach((w) => w.terminate());
  }
}

/**
 * DP's ceiling, measured by the same loop as the runs it bounds.
 *
 * @param spec the run whose ceiling to measure
 * @param options see {@linkcode DpOptions}
 * @returns the ceiling run's measurement (its `samplesPerSec` is the ceiling)
 * @example
 * ```ts
 * const { samplesPerSec } = await measureDpCeiling({
 *   workload: "iris-logreg", strategy: "dp", worldSize: 2, backend: "wasm",
 *   fastKernels: true, seed: 0, steps: 5, warmup: 0, globalBatch: 32, snapshotStep: 5,
 * });
 * ```
 */
export function measureDpCeiling(spec: RunSpec, options: DpOptions = {}): Promise<RunMeasurement> {
  return runDp({ ...spec, ceiling: true }, undefined, options);
}

/** How DP's steps are run: the step timeout and the number of replicas. */
interface DpStepOptions {
  timeoutMs: number;
  replicas: number;
  /** How the workers' gradients travel to the main thread. */
  compression?: GradCompression;
}

/**
 * DP's participation: the main thread takes the whole global batch (as `single` does) and
 * turns it into the averaged gradient by replicate → scatter → parallel apply → gather. The
 * loop then applies it with the main thread's optimizer, the only one (its `update` phase).
 */
function dataParallel(
  trainer: Trainer,
  workers: WorkerReplica[],
  options: DpStepOptions,
): Participation {
  const { timeoutMs, replicas, compression } = options;
  let step = 0;
  let hostPeakBytes = 0;
  return {
    ...wholeBatch,
    gradients: async (batches, { phases, comm }) => {
      step++;
      const sent = await timed(phases, "replicate", () => replicate(trainer, workers, step));
      const slices = await timed(
        phases,
        "scatter",
        () => batches.map((batch) => scatter(batch, replicas)),
      );
      const applied = await timed(
        phases,
        "compute",
        () => parallelApply(trainer, workers, slices, { step, timeoutMs }),
      );
      const gathered = await timed(phases, "gather", () => gather(applied, compression));
      // Per worker: its parameters, its slices (with the compute request), its gradient.
      comm.messages += 3 * workers.length;
      // The worker replicas' compute, as they timed it, on their own tracks (pid k).
      gathered.computed.forEach((c, k) =>
        activeTrace()?.spanFor(
          k + 1,
          "compute",
          "compute",
          c.startedAt * 1000,
          (c.doneAt - c.startedAt) * 1000,
        )
      );
      comm.waitMs += gathered.waitMs;
      comm.bytes += sent + applied.bytesSent + gathered.bytesReceived;
      hostPeakBytes = Math.max(hostPeakBytes, sent, gathered.heldBytes);
      return { loss: gathered.loss, grads: gathered.grads };
    },
    memory: (loop) => memoryRows(loop.peakBytes + hostPeakBytes, loop.peakRssBytes, workers),
  };
}

/**
 * DP with the communication removed: each worker keeps one slice of its own, sent once
 * before the first step, and every step all replicas compute a slice's gradient at the same
 * time — the main thread its slice of the step's batch — and the step ends when the slowest
 * has finished. No parameters go out, no gradients come back; the main applies its own.
 */
function computeAlongside(
  replica: Replica,
  workers: WorkerReplica[],
  spec: RunSpec,
  options: DpStepOptions,
): Participation {
  const { timeoutMs, replicas } = options;
  const sampler = new DistributedSampler(replica.data.train.size, { seed: spec.seed });
  const first = new BatchStream(replica.data.train, sampler, spec.globalBatch).next();
  scatter(first, replicas).slice(1).forEach((own, k) => {
    workers[k].post({ kind: "data", batch: own }, [
      own.x.buffer as ArrayBuffer,
      own.y.buffer as ArrayBuffer,
    ]);
  });
  let step = 0;
  return {
    ...wholeBatch,
    gradients: async (batches, { phases }) => {
      step++;
      const mine = batches.map((batch) => mainSlice(batch, replicas));
      const times = batches.length;
      return await timed(phases, "compute", async () => {
        const theirs = workers.map((w) =>
          w.request({ kind: "computeOwn", step, times }, [], timeoutMs)
        );
        const result = await replica.trainer.accumulateGradientsAsync(mine);
        await Promise.all(theirs);
        return result;
      });
    },
    memory: (loop) => memoryRows(loop.peakBytes, loop.peakRssBytes, workers),
  };
}

/** What DP's main thread shares with `single`: all the data, its own parameters and loss. */
const wholeBatch = {
  rank: 0,
  shards: 1,
  start: (params: Float32Array) => Promise.resolve(params),
  globalLoss: (loss: number) => Promise.resolve(loss),
};

/**
 * The main thread's row (its engine — master params, optimizer state — plus DP's host
 * buffers, and the whole process's RSS) and one row per worker replica.
 */
function memoryRows(
  mainPeakBytes: number,
  processPeakRssBytes: number,
  workers: WorkerReplica[],
): WorkerMemory[] {
  return [
    { role: "main", index: 0, peakBytes: mainPeakBytes, peakRssBytes: processPeakRssBytes },
    ...workers.map((w): WorkerMemory => ({
      role: "replica",
      index: w.index,
      peakBytes: w.peakBytes,
      peakRssBytes: null, // a worker's RSS is the whole process's: not observable per worker
    })),
  ];
}

function checkSpec(spec: RunSpec, fault?: DpOptions["failReplicaAtStep"]): void {
  const n = spec.worldSize;
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`Invalid DP world size ${n}: expected a positive integer`);
  }
  if (spec.globalBatch < n) {
    throw new RangeError(
      `Global batch ${spec.globalBatch} is smaller than ${n} replicas: each needs a sample`,
    );
  }
  if (fault && !(Number.isInteger(fault.replica) && fault.replica >= 1 && fault.replica < n)) {
    throw new RangeError(
      `Cannot inject a fault into replica ${fault.replica}: only workers 1..${n - 1} can fail`,
    );
  }
}

/** Worker replicas 1..worldSize − 1, their modules loading. */
function startWorkers(worldSize: number): WorkerReplica[] {
  return Array.from({ length: worldSize - 1 }, (_, k) => new WorkerReplica(k + 1));
}

/**
 * SyncBatchNorm's shared memory, where the run asks for it (`--batchnorm sync`) and the model
 * has buffers to keep (BatchNorm's running statistics); the ceiling has no communication.
 * Each sum is at most a layer's mean and variance (or their gradients) and a count: fewer
 * floats than the buffers plus one.
 */
function syncStatistics(
  spec: RunSpec,
  trainer: Trainer,
  timeoutMs: number,
): ReplicaInit["syncStatistics"] {
  if (spec.batchNorm !== "sync" || spec.ceiling || trainer.bufferLayout.totalSize === 0) return;
  const parties = spec.worldSize;
  const buffer = createSharedSumBuffer(parties, trainer.bufferLayout.totalSize + 1);
  return { buffer, parties, timeoutMs };
}

/** Build every worker's engine and model; rejects with the first worker that fails. */
async function initWorkers(
  workers: WorkerReplica[],
  spec: RunSpec,
  data: Dataset,
  fault?: DpOptions["failReplicaAtStep"],
  syncStatistics?: ReplicaInit["syncStatistics"],
): Promise<void> {
  await Promise.all(workers.map((w) =>
    w.request(
      {
        kind: "init",
        init: {
          index: w.index,
          workload: spec.workload,
          ...(spec.data ? { data: spec.data } : {}),
          ...(spec.loss ? { loss: spec.loss } : {}),
          backend: spec.backend,
          fastKernels: spec.fastKernels,
          threads: spec.threads,
          seed: spec.seed,
          gradCompression: spec.gradCompression,
          featureShape: data.featureShape,
          numClasses: data.numClasses,
          ...(syncStatistics ? { syncStatistics } : {}),
          fault: fault?.replica === w.index
            ? { step: fault.step, mode: fault.mode ?? "throw" }
            : undefined,
        },
      },
      [],
      SETUP_TIMEOUT_MS,
    )
  ));
}
