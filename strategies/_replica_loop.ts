/**
 * One data-parallel replica's whole run: the loop shared by `single` (a group of one) and
 * every DDP rank. As in nanoGPT, the only difference is the group it is given.
 *
 * @module
 */
import { saveCheckpoint, startingParams } from "../core/checkpoint.ts";
import { batchStream, finishRun, setupReplica } from "../core/replica.ts";
import type { RunMeasurement, RunSpec } from "../core/run_types.ts";
import { type StepProgress, timed, trainLoop } from "../core/train_loop.ts";
import { DistributedSampler } from "./distributed_sampler.ts";

/** Timing of one collective call, as a {@linkcode GradientGroup} reports it. */
export interface CollectiveTiming {
  bytes: number;
  waitMs: number;
  transferMs: number;
}

/** What the loop needs of a process group. */
export interface GradientGroup {
  rank: number;
  worldSize: number;
  /** Average `buf` across the group, in place. */
  allReduceMean(buf: Float32Array): Promise<CollectiveTiming>;
  /** Overwrite `buf` with rank 0's values. */
  broadcast(buf: Float32Array): Promise<void>;
}

/** A group of one: every collective returns at once (as Gloo does for a world of one). */
export const SOLO_GROUP: GradientGroup = {
  rank: 0,
  worldSize: 1,
  allReduceMean: () => Promise.resolve({ bytes: 0, waitMs: 0, transferMs: 0 }),
  broadcast: () => Promise.resolve(),
};

/**
 * Run one replica of `spec` in `group`: broadcast rank 0's parameters, then per step
 * compute this rank's gradient on its shard, all-reduce it to the mean, and update.
 *
 * @param spec the run (its `globalBatch` is split evenly across the group)
 * @param group the process group ({@linkcode SOLO_GROUP} for single)
 * @param onStep progress callback
 * @returns this replica's measurement
 */
export async function runReplicaLoop(
  spec: RunSpec,
  group: GradientGroup,
  onStep?: StepProgress,
): Promise<RunMeasurement> {
  const { rank, worldSize } = group;
  if (spec.globalBatch % worldSize !== 0) {
    throw new Error(`Global batch ${spec.globalBatch} does not divide across ${worldSize} ranks`);
  }
  const replica = await setupReplica(spec);
  const params = await startingParams(spec, replica.trainer);
  await group.broadcast(params);
  replica.trainer.setParams(params);

  const sampler = new DistributedSampler(replica.data.train.size, {
    numReplicas: worldSize,
    rank,
    seed: spec.seed,
  });
  const batches = batchStream(replica, sampler, spec.globalBatch / worldSize);
  let commBytes = 0;
  const loop = await trainLoop(
    replica.trainer,
    () => batches.next(),
    async (batch, phases) => {
      const result = await timed(phases, "compute", () => replica.trainer.computeGradients(batch));
      const t = await timed(phases, "comm", () => group.allReduceMean(result.grads));
      phases.commWait = (phases.commWait ?? 0) + t.waitMs;
      phases.commTransfer = (phases.commTransfer ?? 0) + t.transferMs;
      commBytes += t.bytes;
      return result;
    },
    spec.steps,
    { warmup: spec.warmup, onStep, snapshotStep: spec.snapshotStep },
  );
  // Each rank's loss is its own shard's; the run reports the global batch's, as single does.
  const lastLoss = new Float32Array([loop.losses[loop.losses.length - 1]]);
  await group.allReduceMean(lastLoss);
  loop.losses[loop.losses.length - 1] = lastLoss[0];
  const totalSteps = spec.warmup + spec.steps;
  if (rank === 0) await saveCheckpoint(spec, replica.trainer, totalSteps);
  return finishRun(replica, spec, loop, {
    workers: [{
      role: spec.strategy === "ddp" ? "rank" : "main",
      index: rank,
      peakBytes: loop.peakBytes,
      peakRssBytes: loop.peakRssBytes,
    }],
    comm: {
      bytesPerStep: commBytes / totalSteps,
      msPerStep: loop.phaseMs.comm ?? 0,
      waitMsPerStep: loop.phaseMs.commWait ?? 0,
      transferMsPerStep: loop.phaseMs.commTransfer ?? 0,
    },
  });
}
