/**
 * Setting up one replica (backend, data, model, optimizer, data loader) and turning a
 * finished loop into a {@linkcode RunMeasurement}: shared by every strategy.
 *
 * @module
 */
import { initBackend } from "./backend.ts";
import { BatchStream, type IndexSampler } from "./batch_stream.ts";
import type { CommMeasurement, RunMeasurement, RunSpec, WorkerMemory } from "./run_types.ts";
import { measureGemmPeak } from "./gemm_peak.ts";
import { summarize } from "./stats.ts";
import { Trainer } from "./trainer.ts";
import type { TrainLoopResult } from "./train_loop.ts";
import type { Dataset, ModelDef, Workload } from "./workload.ts";
import { resolveWorkload } from "../workloads/resolve_workload.ts";

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

/**
 * Initialise the backend, load the data (timed) and build the trainer from `spec.seed`.
 *
 * @param spec the run
 * @returns the replica
 */
export async function setupReplica(spec: RunSpec): Promise<Replica> {
  await initBackend(spec.backend, { fastKernels: spec.fastKernels });
  const workload = await resolveWorkload(spec.workload);
  const t0 = performance.now();
  const data = await workload.loadData(spec.seed);
  const loadMs = performance.now() - t0;
  const model = workload.createModel();
  const trainer = new Trainer(model, data, workload.defaults.optimizer, { seed: spec.seed });
  return { workload, model, data, trainer, loadMs, peakGflops: measureGemmPeak() };
}

/**
 * Batches of `batchSize` from `sampler`'s shard of the training split.
 *
 * @param replica the replica
 * @param sampler the index sampler for this replica
 * @param batchSize samples per batch
 * @returns the stream
 */
export function batchStream(
  replica: Replica,
  sampler: IndexSampler,
  batchSize: number,
): BatchStream {
  return new BatchStream(replica.data.train, sampler, batchSize);
}

/**
 * Evaluate holdout accuracy and assemble the run record.
 *
 * @param replica the replica that holds the final parameters
 * @param spec the run
 * @param loop what the loop measured
 * @param extra the strategy's memory rows and communication figures
 * @returns the measurement
 */
export function finishRun(
  replica: Replica,
  spec: RunSpec,
  loop: TrainLoopResult,
  extra: { workers: WorkerMemory[]; comm: Omit<CommMeasurement, "share"> },
): RunMeasurement {
  const stepMs = summarize(loop.stepMs);
  return {
    spec,
    stepMs,
    stepSamples: loop.stepMs,
    samplesPerSec: spec.globalBatch / (stepMs.p50 / 1000),
    phaseMs: loop.phaseMs,
    finalLoss: loop.losses[loop.losses.length - 1],
    accuracy: replica.trainer.evaluate(replica.data.test),
    workers: extra.workers,
    comm: { ...extra.comm, share: extra.comm.msPerStep / stepMs.p50 },
    loadMs: replica.loadMs,
    flopsPerStep: spec.globalBatch * replica.model.trainFlopsPerSample,
    peakGflops: replica.peakGflops,
    snapshot: loop.snapshot,
  };
}
