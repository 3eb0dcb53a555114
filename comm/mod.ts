/**
 * paratrain's communication layer for DistributedDataParallel: ranks are separate Deno
 * processes, joined in a ring of Unix domain sockets on one machine (inside a private rendezvous
 * directory) or of TCP connections across machines (meeting at `MASTER_ADDR:MASTER_PORT`), every
 * connection authenticated by challenge–response over a per-job secret.
 *
 * - Launch side: {@linkcode launch} starts N ranks of a module (like `torchrun`), relays their
 *   output, collects their results, and stops every rank if one fails.
 * - Rank side: {@linkcode initProcessGroupFromEnv} joins the ring; the
 *   {@linkcode ProcessGroup} offers `allReduce` (ring, sum or average, in place),
 *   `broadcast` and `barrier`, each returning what it cost; {@linkcode reportResult} hands a
 *   value back to the launcher.
 *
 * @example
 * ```ts
 * // train_rank.ts, started by: await launch(new URL("./train_rank.ts", import.meta.url), { worldSize: 4 })
 * import { initProcessGroupFromEnv, reportResult } from "./mod.ts";
 *
 * const pg = await initProcessGroupFromEnv(); // rank 0 of 1 when run directly
 * const grads = new Float32Array(1024).fill(pg.rank);
 * const stats = await pg.allReduce(grads, { op: "avg" });
 * await reportResult({ rank: pg.rank, commMs: stats.waitMs + stats.transferMs });
 * pg.close();
 * ```
 *
 * @module
 */
export {
  DEFAULT_COLLECTIVE_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type InitFromEnvOptions,
  initProcessGroup,
  initProcessGroupFromEnv,
  type InitProcessGroupOptions,
  JobMismatchError,
  type JobRecord,
} from "./init_process_group.ts";
export {
  type AllReduceOptions,
  type BroadcastOptions,
  type CollectiveStats,
  type CommTotals,
  ProcessGroup,
  type ReduceOp,
} from "./process_group.ts";
export { CallMismatchError, CommError } from "./_ring.ts";
export {
  launch,
  LaunchError,
  type LaunchOptions,
  type LaunchResult,
  type NodeSpec,
  type RankLine,
} from "./launcher.ts";
export {
  DEFAULT_MASTER_PORT,
  ENV_NAMES,
  firstSlurmHost,
  type RankEnv,
  type RankSource,
  rankSource,
  readRankEnv,
  type ReadRankEnvOptions,
  type TransportName,
  TRANSPORTS,
} from "./rank_env.ts";
export { reportResult, type ReportResultOptions } from "./report_result.ts";
export { type RankFailure, runRank } from "./rank_main.ts";
export { createRendezvous, type Rendezvous } from "./rendezvous.ts";
export {
  startThreadedProcessGroup,
  type ThreadedCollectiveStats,
  ThreadedProcessGroup,
  type ThreadedProcessGroupOptions,
} from "./threaded_process_group.ts";
export { fastWireCodec, type WireCodec, wireCodec } from "./wire_codec.ts";
