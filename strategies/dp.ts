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
 * communication, and `gather` includes `commWait`, the time the main thread waited for the
 * slowest replica after finishing its own slice (`commTransfer` is the rest).
 *
 * @module
 */
import { BatchStream } from "../core/batch_stream.ts";
import { saveCheckpoint, startingParams } from "../core/checkpoint.ts";
import { batchStream, finishRun, setupReplica } from "../core/replica.ts";
import type { RunMeasurement, RunSpec, WorkerMemory } from "../core/run_types.ts";
import { median } from "../core/stats.ts";
import { type GradientFn, type StepProgress, timed, trainLoop } from "../core/train_loop.ts";
import type { Trainer } from "../core/trainer.ts";
import type { Dataset } from "../core/workload.ts";
import { resolveWorkload } from "../workloads/resolve_workload.ts";
import { gather } from "./_dp_gather.ts";
import type { FaultMode } from "./_dp_messages.ts";
import { parallelApply } from "./_dp_parallel_apply.ts";
import { replicate } from "./_dp_replicate.ts";
import { scatter } from "./_dp_scatter.ts";
import { WorkerReplica } from "./_dp_worker_replica.ts";
import { DistributedSampler } from "./distributed_sampler.ts";

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
 * and `worldSize − 1` Web Workers. A replica that fails fails the run with a
 * {@linkcode ReplicaError} naming it; every worker is terminated on every exit path.
 *
 * @param spec the run (`globalBatch` ≥ `worldSize`; it need not divide evenly)
 * @param onStep progress callback
 * @param options see {@linkcode DpOptions}
 * @returns the measurement: one `main` memory row and one `replica` row per worker
 * @example
 * ```ts
 * const m = await runDp({ ...spec, strategy: "dp", worldSize: 2 });
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
  const workers = startWorkers(1, spec.worldSize);
  try {
    const replica = await setupReplica(spec);
    replica.trainer.setParams(await startingParams(spec, replica.trainer));
    await initWorkers(workers, spec, replica.data, failReplicaAtStep);
    // The global batch is drawn exactly as `single` draws it.
    const sampler = new DistributedSampler(replica.data.train.size, { seed: spec.seed });
    const batches = batchStream(replica, sampler, spec.globalBatch);
    const traffic = { bytes: 0, hostPeakBytes: 0 };
    const loop = await trainLoop(
      replica.trainer,
      () => batches.next(),
      dataParallel(replica.trainer, workers, { timeoutMs: stepTimeoutMs, traffic }),
      spec.steps,
      { warmup: spec.warmup, onStep, snapshotStep: spec.snapshotStep },
    );
    await saveCheckpoint(spec, replica.trainer, spec.warmup + spec.steps);
    const ms = (phase: string) => loop.phaseMs[phase] ?? 0;
    return finishRun(replica, spec, loop, {
      workers: memoryRows(loop.peakBytes + traffic.hostPeakBytes, loop.peakRssBytes, workers),
      comm: {
        bytesPerStep: traffic.bytes / (spec.warmup + spec.steps),
        msPerStep: ms("replicate") + ms("scatter") + ms("gather"),
        waitMsPerStep: ms("commWait"),
        transferMsPerStep: ms("commTransfer"),
      },
    });
  } finally {
    workers.forEach((w) => w.terminate());
  }
}

/**
 * What this machine's cores can give at all: `spec.worldSize` Web Workers in one process
 * each training (forward, backward, update) on its own slice-sized batch at the same time,
 * with no replicate, scatter or gather. A step ends when all have finished.
 *
 * @param spec the run whose per-replica work to reproduce (workload, backend, batch, steps)
 * @param options see {@linkcode DpOptions} (`failReplicaAtStep` is ignored)
 * @returns aggregate samples per second: global batch / median step wall time
 * @example
 * ```ts
 * const { samplesPerSec } = await measureDpCeiling({ ...spec, strategy: "dp", worldSize: 2 });
 * ```
 */
export async function measureDpCeiling(
  spec: RunSpec,
  options: DpOptions = {},
): Promise<{ samplesPerSec: number }> {
  const { stepTimeoutMs = spec.collectiveTimeoutMs ?? STEP_TIMEOUT_MS } = options;
  checkSpec(spec);
  const workers = startWorkers(0, spec.worldSize);
  try {
    const workload = await resolveWorkload(spec.workload);
    const data = await workload.loadData(spec.seed);
    await initWorkers(workers, spec, data);
    const sampler = new DistributedSampler(data.train.size, { seed: spec.seed });
    const batch = new BatchStream(data.train, sampler, spec.globalBatch).next();
    scatter(batch, spec.worldSize).forEach((slice, k) => {
      const own = { x: slice.x.slice(), y: slice.y.slice(), size: slice.size };
      workers[k].post({ kind: "data", batch: own }, [
        own.x.buffer as ArrayBuffer,
        own.y.buffer as ArrayBuffer,
      ]);
    });
    const stepMs: number[] = [];
    for (let step = 1; step <= spec.warmup + spec.steps; step++) {
      const t0 = performance.now();
      await Promise.all(
        workers.map((w) => w.request({ kind: "localStep", step }, [], stepTimeoutMs)),
      );
      if (step > spec.warmup) stepMs.push(performance.now() - t0);
    }
    return { samplesPerSec: spec.globalBatch / (median(stepMs) / 1000) };
  } finally {
    workers.forEach((w) => w.terminate());
  }
}

/** Bytes DP moves, and the most host memory its buffers hold on the main thread. */
interface Traffic {
  bytes: number;
  hostPeakBytes: number;
}

/**
 * DP's gradient step: replicate → scatter → parallel apply → gather. The loop then applies
 * the result with the main thread's optimizer (its `update` phase).
 */
function dataParallel(
  trainer: Trainer,
  workers: WorkerReplica[],
  options: { timeoutMs: number; traffic: Traffic },
): GradientFn {
  const { timeoutMs, traffic } = options;
  let step = 0;
  return async (batch, phases) => {
    step++;
    const sent = await timed(phases, "replicate", () => replicate(trainer, workers, step));
    const slices = await timed(phases, "scatter", () => scatter(batch, workers.length + 1));
    const applied = await timed(
      phases,
      "compute",
      () => parallelApply(trainer, workers, slices, { step, timeoutMs }),
    );
    const gathered = await timed(phases, "gather", () => gather(applied));
    phases.commWait = gathered.waitMs;
    phases.commTransfer = phases.replicate + phases.scatter + phases.gather - gathered.waitMs;
    traffic.bytes += sent + applied.bytesSent + gathered.bytesReceived;
    traffic.hostPeakBytes = Math.max(traffic.hostPeakBytes, sent, gathered.heldBytes);
    return { loss: gathered.loss, grads: gathered.grads };
  };
}

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

/** Workers `first`..`worldSize − 1`, their modules loading. */
function startWorkers(first: number, worldSize: number): WorkerReplica[] {
  return Array.from({ length: worldSize - first }, (_, k) => new WorkerReplica(first + k));
}

/** Build every worker's engine and model; rejects with the first worker that fails. */
async function initWorkers(
  workers: WorkerReplica[],
  spec: RunSpec,
  data: Dataset,
  fault?: DpOptions["failReplicaAtStep"],
): Promise<void> {
  await Promise.all(workers.map((w) =>
    w.request(
      {
        kind: "init",
        init: {
          index: w.index,
          workload: spec.workload,
          backend: spec.backend,
          fastKernels: spec.fastKernels,
          seed: spec.seed,
          featureShape: data.featureShape,
          numClasses: data.numClasses,
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
