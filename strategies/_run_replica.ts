/**
 * The one run path, shared by every strategy and by their ceilings: set up the replica
 * (backend, data, model, optimizer), agree on the starting parameters, draw this process's
 * batches, run the training loop with the strategy's gradient step, agree on the final loss,
 * write the checkpoint, and assemble the measurement. A strategy supplies only a
 * {@linkcode Participation}: how this process takes part.
 *
 * @module
 */
import { initBackend } from "../backends/backend.ts";
import { TraceRecorder } from "../core/trace.ts";
import { BatchStream } from "../core/batch_stream.ts";
import { saveCheckpoint, startingBuffers, startingParams } from "../core/checkpoint.ts";
import { measureGemmPeakAsync } from "../backends/gemm_peak.ts";
import type { RunMeasurement, RunSpec, WorkerMemory } from "../core/run_types.ts";
import { summarize } from "../core/stats.ts";
import {
  type GradientFn,
  type StepProgress,
  trainLoop,
  type TrainLoopResult,
} from "../core/train_loop.ts";
import { Trainer } from "../core/trainer.ts";
import type { Dataset, ModelDef, Workload } from "../core/workload.ts";
import { resolveWorkload } from "../workloads/resolve_workload.ts";
import { DistributedSampler } from "./distributed_sampler.ts";

/** A ready replica: its trainer and everything needed to finish the run record. */
export interface Replica {
  workload: Workload;
  model: ModelDef;
  data: Dataset;
  trainer: Trainer;
  loadMs: number;
  /** The backend's plain GEMM GFLOP/s, measured after set-up. */
  peakGflops: number;
}

/** How one process takes part in a run: all that differs between strategies. */
export interface Participation {
  /** This process's data: shard `rank` of `shards` (single and DP: the whole set, 0 of 1). */
  rank: number;
  shards: number;
  /** The parameters every replica starts from, given this one's (DDP: rank 0's, broadcast). */
  start(params: Float32Array): Promise<Float32Array>;
  /** A batch of this process's data → the averaged gradient, its phases timed. */
  gradients: GradientFn;
  /** The whole global batch's loss, given this process's (DDP: averaged across ranks). */
  globalLoss(loss: number): Promise<number>;
  /** One memory row per worker of this process, from what the loop measured. */
  memory(loop: TrainLoopResult): WorkerMemory[];
}

/**
 * Initialise the backend, load the data (timed), build the trainer from `spec.seed` and
 * measure the backend's plain GEMM.
 *
 * @param spec the run
 * @returns the replica
 */
export async function setupReplica(spec: RunSpec): Promise<Replica> {
  await initBackend(spec.backend, { fastKernels: spec.fastKernels, threads: spec.threads });
  const workload = await resolveWorkload(spec.workload, { data: spec.data, loss: spec.loss });
  const t0 = performance.now();
  const data = await workload.loadData(spec.seed);
  const loadMs = performance.now() - t0;
  const model = workload.createModel();
  const trainer = new Trainer(model, data, workload.defaults.optimizer, { seed: spec.seed });
  return { workload, model, data, trainer, loadMs, peakGflops: await measureGemmPeakAsync() };
}

/** Whether every layer's FLOPs were counted (a built-in's always are). */
function flopsCounted(model: ModelDef): boolean {
  return (model.report?.flopsNotCounted.length ?? 0) === 0;
}

/** A model brought from outside: what its runs record about it (nothing for a built-in). */
function modelReport(replica: Replica): { model?: RunMeasurement["model"] } {
  const { report, loss } = replica.model;
  if (!report) return {};
  return {
    model: {
      ...report,
      lossName: loss?.name ?? "softmax-cross-entropy",
      data: replica.data.source ?? "the workload's own",
    },
  };
}

/**
 * Run `spec` in this process as `join` says it takes part.
 *
 * @param spec the run
 * @param join given the ready replica, how this process takes part
 * @param onStep progress callback
 * @returns this process's measurement
 */
export async function runReplica(
  spec: RunSpec,
  join: (replica: Replica) => Promise<Participation>,
  onStep?: StepProgress,
): Promise<RunMeasurement> {
  const replica = await setupReplica(spec);
  const { trainer } = replica;
  const part = await join(replica);
  trainer.setParams(await part.start(await startingParams(spec, trainer)));
  const buffers = await startingBuffers(spec, trainer);
  if (buffers) trainer.setBuffers(buffers);
  const sampler = new DistributedSampler(replica.data.train.size, {
    numReplicas: part.shards,
    rank: part.rank,
    seed: spec.seed,
  });
  const batches = new BatchStream(replica.data.train, sampler, spec.globalBatch / part.shards);
  const trace = spec.trace ? new TraceRecorder(part.rank) : undefined;
  const loop = await trainLoop(trainer, () => batches.next(), part.gradients, spec.steps, {
    warmup: spec.warmup,
    onStep,
    snapshotStep: spec.snapshotStep,
    trace,
    accumulate: spec.accumulate ?? 1,
  });
  const finalLoss = await part.globalLoss(loop.losses[loop.losses.length - 1]);
  if (part.rank === 0) await saveCheckpoint(spec, trainer, spec.warmup + spec.steps);
  const stepMs = summarize(loop.stepMs);
  // An optimizer step covers `accumulate` micro-batches of the global batch.
  const samplesPerStep = spec.globalBatch * (spec.accumulate ?? 1);
  return {
    spec,
    stepMs,
    stepSamples: loop.stepMs,
    samplesPerSec: samplesPerStep / (stepMs.p50 / 1000),
    phaseMs: loop.phaseMs,
    finalLoss,
    accuracy: await trainer.evaluateAsync(replica.data.test),
    workers: part.memory(loop),
    comm: { ...loop.comm, share: loop.comm.msPerStep / stepMs.p50 },
    loadMs: replica.loadMs,
    flopsPerStep: flopsCounted(replica.model)
      ? samplesPerStep * replica.model.trainFlopsPerSample
      : null,
    params: trainer.layout.totalSize,
    gradientBytes: trainer.layout.totalSize * Float32Array.BYTES_PER_ELEMENT,
    batchNorm: spec.strategy !== "single" && trainer.bufferLayout.totalSize > 0
      ? spec.batchNorm ?? "local"
      : null,
    peakGflops: replica.peakGflops,
    ...modelReport(replica),
    snapshot: loop.snapshot,
    ...(trace ? { trace: trace.events } : {}),
  };
}
