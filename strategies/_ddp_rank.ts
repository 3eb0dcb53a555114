/**
 * One DDP rank, as the launcher starts it: join the process group (rank, world size and
 * rendezvous come from the environment, read in one place) — from a communication thread
 * unless `--no-overlap` — run the shared run path with DDP's participation, report the
 * measurement. Rank 0 alone prints progress.
 *
 * @module
 */
import { initProcessGroupFromEnv } from "../comm/init_process_group.ts";
import { startThreadedProcessGroup } from "../comm/threaded_process_group.ts";
import { runRank } from "../comm/rank_main.ts";
import { reportResult } from "../comm/report_result.ts";
import { runReplica } from "./_run_replica.ts";
import type { RunSpec } from "../core/run_types.ts";
import { distributedDataParallel } from "./ddp.ts";
import { printProgress, toWire } from "./_wire.ts";
import { jobRecord } from "./_job_record.ts";

const spec = JSON.parse(Deno.args[0]) as RunSpec;
await runRank(async () => {
  // With overlap (the default) the ring runs on a communication thread, so a bucket's
  // all-reduce progresses while this thread computes the rest of the backward; SyncBatchNorm
  // needs that thread too, to block on inside the forward.
  // Across hosts, the rendezvous compares this job with rank 0's before anything trains.
  const job = await jobRecord(spec);
  const pg = spec.overlap === false && spec.batchNorm !== "sync"
    ? await initProcessGroupFromEnv({ job })
    : await startThreadedProcessGroup({ job });
  try {
    const progress = pg.rank === 0 ? printProgress : undefined;
    const m = await runReplica(spec, distributedDataParallel(pg, spec), progress);
    await reportResult(toWire({ ...m, transport: pg.transport }));
  } finally {
    pg.close();
  }
});
