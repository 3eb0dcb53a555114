/**
 * Joining the job: connect this rank into the ring and get its {@linkcode ProcessGroup}.
 *
 * @module
 */
import { timerMs } from "../core/durations.ts";
import { connectRing, type TcpRendezvousOptions } from "./_connect_ring.ts";
import type { JobRecord } from "./_tcp_rendezvous.ts";
export { JobMismatchError, type JobRecord } from "./_tcp_rendezvous.ts";
import { ProcessGroup } from "./process_group.ts";
import { ENV_NAMES, readRankEnv, type ReadRankEnvOptions } from "./rank_env.ts";
import { makesSocketDir, onMainThread, whileJoining } from "./_socket_dir.ts";

/** Default deadline for one collective: a peer silent this long is reported as stuck. */
export const DEFAULT_COLLECTIVE_TIMEOUT_MS = 60_000;
/** Default deadline for joining the ring: all ranks must start within it. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** Options for {@linkcode initProcessGroup}. */
export interface InitProcessGroupOptions {
  /** This rank, 0 ≤ rank < worldSize. */
  rank: number;
  /** Number of ranks in the job. */
  worldSize: number;
  /** Private rendezvous directory (required when worldSize > 1 without `tcp`). */
  rendezvousDir?: string | null;
  /** Job secret, at least 16 characters (required when worldSize > 1). */
  token?: string | null;
  /**
   * The TCP rendezvous at `MASTER_ADDR:MASTER_PORT` and how links go; without it, ranks meet
   * in the rendezvous directory over Unix sockets.
   */
  tcp?: TcpRendezvousOptions | null;
  /** Deadline for each collective (default {@linkcode DEFAULT_COLLECTIVE_TIMEOUT_MS}). */
  timeoutMs?: number | null;
  /** Deadline for joining the ring (default {@linkcode DEFAULT_CONNECT_TIMEOUT_MS}). */
  connectTimeoutMs?: number;
  /**
   * This rank's job (its run's settings by flag, `--resume`'s hash, the code's version): at
   * the TCP rendezvous rank 0 compares every rank's with its own, and any difference fails
   * every rank at once with a `JobMismatchError` naming the settings and the hosts.
   */
  job?: JobRecord;
}

/**
 * Connects this rank to its neighbours (listening on `<dir>/rank-<rank>.sock`, or, with `tcp`,
 * on TCP after meeting at `masterAddr:masterPort`; connecting to rank `(rank + 1) % worldSize`,
 * accepting rank `(rank − 1) % worldSize`, each connection authenticated by challenge–response
 * over the token) and returns its process group. A world of one connects nothing.
 *
 * @param options Rank, world size, rendezvous directory, token and deadlines.
 * @returns The process group, ready for collectives.
 * @example
 * ```ts
 * import { createRendezvous } from "./rendezvous.ts";
 * const { dir, token } = await createRendezvous();
 * const grads = new Float32Array(1024);
 * const pg = await initProcessGroup({ rank: 0, worldSize: 2, rendezvousDir: dir, token });
 * await pg.allReduce(grads, { op: "avg" });
 * pg.close();
 * ```
 */
export async function initProcessGroup(options: InitProcessGroupOptions): Promise<ProcessGroup> {
  const {
    rank,
    worldSize,
    rendezvousDir,
    token,
    timeoutMs,
    tcp,
    connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS,
    job,
  } = options;
  if (!Number.isInteger(worldSize) || worldSize < 1) {
    throw new RangeError(`Invalid world size ${worldSize}: expected a positive integer`);
  }
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
    throw new RangeError(`Invalid rank ${rank}: expected an integer from 0 to ${worldSize - 1}`);
  }
  const collectiveTimeoutMs = timerMs(
    timeoutMs ?? DEFAULT_COLLECTIVE_TIMEOUT_MS,
    "collective timeout",
  );
  timerMs(connectTimeoutMs, "connect timeout");
  if (worldSize === 1) return new ProcessGroup(0, 1, null);
  if ((!rendezvousDir && !tcp) || !token) {
    throw new Error(
      `Cannot join a world of ${worldSize}: a rendezvous directory (or ${ENV_NAMES.masterAddr}) ` +
        `and token are required (${ENV_NAMES.rendezvousDir} and ${ENV_NAMES.token}, as set by ` +
        `launch())`,
    );
  }
  const connect = () =>
    connectRing({
      rank,
      worldSize,
      rendezvousDir: rendezvousDir ?? null,
      token,
      tcp,
      connectTimeoutMs,
      collectiveTimeoutMs,
      job,
    });
  // A socket directory of its own exists while the ring forms: a signal then must not leave
  // it behind (in a communication thread, the main thread's own join watches for signals).
  const ring = makesSocketDir({ rendezvousDir, tcp }) && onMainThread()
    ? await whileJoining(connect)
    : await connect();
  return new ProcessGroup(rank, worldSize, ring);
}

/** Options for {@linkcode initProcessGroupFromEnv}. */
export interface InitFromEnvOptions extends ReadRankEnvOptions {
  /** Deadline for joining the ring (default {@linkcode DEFAULT_CONNECT_TIMEOUT_MS}). */
  connectTimeoutMs?: number;
  /** This rank's job, compared at the TCP rendezvous (see {@linkcode InitProcessGroupOptions}). */
  job?: JobRecord;
}

/**
 * {@linkcode initProcessGroup} with everything read from the environment by
 * {@linkcode readRankEnv}; without `RANK` set, a world of one.
 *
 * @param options `env` to read instead of this process's; `connectTimeoutMs`.
 * @returns The process group.
 * @example
 * ```ts
 * const pg = await initProcessGroupFromEnv(); // rank 0 of 1 unless started by launch()
 * ```
 */
export async function initProcessGroupFromEnv(
  options: InitFromEnvOptions = {},
): Promise<ProcessGroup> {
  const env = readRankEnv(options);
  return await initProcessGroup({
    rank: env.rank,
    worldSize: env.worldSize,
    rendezvousDir: env.rendezvousDir,
    token: env.token,
    timeoutMs: env.collectiveTimeoutMs,
    tcp: env.masterAddr
      ? {
        masterAddr: env.masterAddr,
        masterPort: env.masterPort!,
        transport: env.transport ?? "unix",
        bind: env.bind,
      }
      : null,
    connectTimeoutMs: options.connectTimeoutMs,
    job: options.job,
  });
}
