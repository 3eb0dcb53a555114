/**
 * One DDP rank, as the launcher starts it: join the process group (rank, world size and
 * rendezvous come from the environment, read in one place), run the shared run path with
 * DDP's participation, report the measurement. Rank 0 alone prints progress.
 *
 * @module
 */
import { initProcessGroupFromEnv } from "../comm/init_process_group.ts";
import { runRank } from "../comm/rank_main.ts";
import { reportResult } from "../comm/report_result.ts";
import { runReplica } from "./_run_replica.ts";
import type { RunSpec } from "../core/run_types.ts";
import { distributedDataParallel } from "./ddp.ts";
import { printProgress, toWire } from "./_wire.ts";

const spec = JSON.parse(Deno.args[0]) as RunSpec;
await runRank(async () => {
  const pg = await initProcessGroupFromEnv();
  try {
    const progress = pg.rank === 0 ? printProgress : undefined;
    const m = await runReplica(spec, distributedDataParallel(pg, spec), progress);
    await reportResult(toWire(m));
  } finally {
    pg.close();
  }
});
