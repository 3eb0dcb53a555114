/**
 * DDP as one rank of a job that a cluster's own launcher started (torchrun or Kubernetes,
 * `mpirun`, `srun`): the environment names this process's rank (read in `comm/rank_env.ts`), so
 * `train --strategy ddp` joins the job's TCP rendezvous as that rank instead of launching ranks.
 *
 * @module
 */
import { initProcessGroupFromEnv } from "../comm/init_process_group.ts";
import { startThreadedProcessGroup } from "../comm/threaded_process_group.ts";
import type { RunMeasurement, RunSpec } from "../core/run_types.ts";
import type { StepProgress } from "../core/train_loop.ts";
import { runReplica } from "./_run_replica.ts";
import { jobRecord } from "./_job_record.ts";
import { arrivalLags, DEFAULT_BUCKET_BYTES, distributedDataParallel } from "./ddp.ts";

/**
 * Runs `spec` as the rank the environment names, in this process.
 *
 * @param spec the run; `worldSize` must be the job's
 * @param onStep progress (typically given on rank 0 only)
 * @param env the environment naming the rank (default: this process's)
 * @returns this rank's measurement and the transport its links used
 * @example
 * ```ts
 * declare const spec: import("../core/run_types.ts").RunSpec;
 * const m = await runDdpAsThisRank(spec); // under mpirun, srun or torchrun
 * ```
 */
export async function runDdpAsThisRank(
  spec: RunSpec,
  onStep?: StepProgress,
  env?: Record<string, string | undefined>,
): Promise<RunMeasurement & { rank: number; transport: "unix" | "tcp" }> {
  // As a launched rank: the ring on a communication thread (overlap) unless --no-overlap; a
  // given environment (tests) is read on this thread.
  // The rendezvous compares this job with rank 0's, so hosts that disagree fail before training.
  const job = await jobRecord(spec);
  const pg = (spec.overlap === false && spec.batchNorm !== "sync") || env
    ? await initProcessGroupFromEnv({ env, job })
    : await startThreadedProcessGroup({ job });
  try {
    // The spec's own bucket size wins where it has one.
    const rankSpec = { bucketBytes: DEFAULT_BUCKET_BYTES, ...spec, strategy: "ddp" as const };
    const m = await runReplica(rankSpec, distributedDataParallel(pg, rankSpec), onStep);
    return {
      ...m,
      workers: arrivalLags(m.workers, spec.warmup),
      rank: pg.rank,
      transport: pg.transport,
    };
  } finally {
    pg.close();
  }
}
