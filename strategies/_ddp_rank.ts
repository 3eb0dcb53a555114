/**
 * One DDP rank, as the launcher starts it: join the process group (rank, world size and
 * rendezvous come from the environment, read in one place), run the shared replica loop
 * with the group, report the measurement. Rank 0 alone prints progress.
 *
 * @module
 */
import { initProcessGroupFromEnv } from "../comm/init_process_group.ts";
import { reportResult } from "../comm/report_result.ts";
import { runRank } from "../comm/rank_main.ts";
import type { RunSpec } from "../core/run_types.ts";
import { runReplicaLoop } from "./_replica_loop.ts";
import { printProgress, toWire } from "./_wire.ts";
import { bucketedGroup } from "./_bucketed_group.ts";

const spec = JSON.parse(Deno.args[0]) as RunSpec & { bucketBytes: number; ceiling: boolean };
await runRank(async () => {
  const pg = await initProcessGroupFromEnv();
  try {
    const group = bucketedGroup(pg, spec.bucketBytes, { communicate: !spec.ceiling });
    const m = await runReplicaLoop(spec, group, pg.rank === 0 ? printProgress : undefined);
    await reportResult(toWire(m));
  } finally {
    pg.close();
  }
});
