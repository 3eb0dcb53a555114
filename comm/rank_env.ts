/**
 * The one place a rank reads its place in the job from the environment: as set by
 * {@linkcode launch}, by hand, or by the launcher a cluster already runs. Unset `RANK` (and no
 * scheduler's variables) means a single process: rank 0 of 1, the same names with the
 * single-process values, so training code has no `if (ddp)` branches.
 *
 * Who named the rank, in this order:
 * - `paratrain`: our launcher (`RANK` and `PARATRAIN_RENDEZVOUS`; `MASTER_ADDR` too across
 *   hosts or over TCP);
 * - `torchrun`: torchrun, Kubernetes jobs and the like: `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
 *   `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`;
 * - `openmpi`: `mpirun`: `OMPI_COMM_WORLD_RANK`, `OMPI_COMM_WORLD_SIZE`,
 *   `OMPI_COMM_WORLD_LOCAL_RANK`, `OMPI_COMM_WORLD_LOCAL_SIZE` (`MASTER_ADDR` defaults to
 *   127.0.0.1 when every rank is on one host: local size = size);
 * - `slurm`: `srun`: `SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`, the tasks per node
 *   (`SLURM_NTASKS_PER_NODE`, else the most of `SLURM_STEP_TASKS_PER_NODE` or
 *   `SLURM_TASKS_PER_NODE`, e.g. `2(x3),1` → 2), and `MASTER_ADDR` defaulting to the first host
 *   of `SLURM_JOB_NODELIST` (`node[01-03],gpu7` → `node01`).
 *
 * `localWorldSize` is the job's ranks on this host (not the whole job's): what this machine
 * must hold. Without a variable that says it (Kubernetes starts one rank per pod), it is 1.
 * Every integer is read strictly (decimal digits only: `0x1`, `1e1`, ` 1`, `+1` are refused).
 *
 * `MASTER_PORT` defaults to {@linkcode DEFAULT_MASTER_PORT} (torchrun's) for the schedulers.
 * A rank named by a scheduler needs the job secret in `PARATRAIN_TOKEN`, at least
 * {@linkcode MIN_TOKEN_CHARS} characters.
 *
 * @module
 */
import { MAX_TIMER_MS } from "../core/durations.ts";
import { readEnvInteger } from "../core/env_integer.ts";
import { quote, UsageError } from "../core/errors.ts";
import { MIN_TOKEN_CHARS } from "./_auth.ts";

/** Environment variable names, shared by the launcher (which sets them) and the ranks. */
export const ENV_NAMES = {
  rank: "RANK",
  worldSize: "WORLD_SIZE",
  localRank: "LOCAL_RANK",
  localWorldSize: "LOCAL_WORLD_SIZE",
  masterAddr: "MASTER_ADDR",
  masterPort: "MASTER_PORT",
  rendezvousDir: "PARATRAIN_RENDEZVOUS",
  token: "PARATRAIN_TOKEN",
  collectiveTimeoutMs: "PARATRAIN_COLLECTIVE_TIMEOUT_MS",
  /** The launcher's pid, so a rank that starts after its launcher died knows at once. */
  launcherPid: "PARATRAIN_LAUNCHER_PID",
  transport: "PARATRAIN_TRANSPORT",
  bind: "PARATRAIN_BIND",
  ompiRank: "OMPI_COMM_WORLD_RANK",
  ompiSize: "OMPI_COMM_WORLD_SIZE",
  ompiLocalRank: "OMPI_COMM_WORLD_LOCAL_RANK",
  ompiLocalSize: "OMPI_COMM_WORLD_LOCAL_SIZE",
  slurmRank: "SLURM_PROCID",
  slurmSize: "SLURM_NTASKS",
  slurmLocalRank: "SLURM_LOCALID",
  slurmTasksPerNode: "SLURM_NTASKS_PER_NODE",
  slurmStepTasks: "SLURM_STEP_TASKS_PER_NODE",
  slurmJobTasks: "SLURM_TASKS_PER_NODE",
  slurmNodeList: "SLURM_JOB_NODELIST",
} as const;

/** torchrun's default rendezvous port, used when a scheduler names the rank but no port. */
export const DEFAULT_MASTER_PORT = 29500;

/** The ring's transports: Unix sockets between ranks on one host (TCP across), or all TCP. */
export const TRANSPORTS = ["unix", "tcp"] as const;

/** One of {@linkcode TRANSPORTS}. */
export type TransportName = typeof TRANSPORTS[number];

/** Who named this process's rank; null for a single process. */
export type RankSource = "paratrain" | "torchrun" | "openmpi" | "slurm";

/** A rank's place in the job. */
export interface RankEnv {
  /** This process's rank, 0 ≤ rank < worldSize. */
  rank: number;
  /** Number of ranks in the job. */
  worldSize: number;
  /** Rank on this machine. */
  localRank: number;
  /** The job's ranks on this machine (1 for a single process). */
  localWorldSize: number;
  /** Private rendezvous directory, or null (a single process, or a scheduler's rank). */
  rendezvousDir: string | null;
  /** Job token, or null for a single process. */
  token: string | null;
  /** Collective timeout override in ms, or null for the default. */
  collectiveTimeoutMs: number | null;
  /** Rank 0's host, serving the TCP rendezvous; null: the rendezvous directory instead. */
  masterAddr?: string | null;
  /** The TCP rendezvous port, or null. */
  masterPort?: number | null;
  /** `unix` (Unix sockets between ranks on one host, TCP across) or `tcp` (TCP for all). */
  transport?: TransportName;
  /** Address this rank's listeners bind to; null: the interface that reaches the master. */
  bind?: string | null;
  /** Who named the rank; absent for a single process. */
  source?: RankSource;
}

/** Options for {@linkcode readRankEnv}. */
export interface ReadRankEnvOptions {
  /** The environment to read (default: this process's). */
  env?: Record<string, string | undefined>;
}

type Env = Record<string, string | undefined>;

/**
 * Reads rank, world size, rendezvous, token and collective timeout from the environment, from
 * our launcher's variables or a scheduler's (see the module doc).
 *
 * @param options `env`: the environment to read (default: this process's).
 * @returns The rank's place in the job; rank 0 of 1 when nothing names a rank.
 * @throws {UsageError} Naming the variable, when one is set but invalid or missing.
 * @example
 * ```ts
 * const { rank, worldSize } = readRankEnv();
 * ```
 */
export function readRankEnv(options: ReadRankEnvOptions = {}): RankEnv {
  const { env = Deno.env.toObject() } = options;
  const source = rankSource(env);
  if (source === null) {
    return {
      rank: 0,
      worldSize: 1,
      localRank: 0,
      localWorldSize: 1,
      rendezvousDir: null,
      token: null,
      collectiveTimeoutMs: null,
    };
  }
  const names = source === "openmpi"
    ? { rank: ENV_NAMES.ompiRank, size: ENV_NAMES.ompiSize, local: ENV_NAMES.ompiLocalRank }
    : source === "slurm"
    ? { rank: ENV_NAMES.slurmRank, size: ENV_NAMES.slurmSize, local: ENV_NAMES.slurmLocalRank }
    : { rank: ENV_NAMES.rank, size: ENV_NAMES.worldSize, local: ENV_NAMES.localRank };
  const worldSize = readInteger(env, names.size, 1, names.rank);
  const rank = readInteger(env, names.rank, 0, names.rank);
  if (rank >= worldSize) {
    throw new UsageError(
      `Invalid environment variable ${names.rank}: ${rank} is not below ${names.size}=${worldSize}`,
    );
  }
  const localRank = readEnvInteger(env, names.local) ?? rank;
  const local = readLocalWorldSize(env, source, worldSize);
  if (local.value > worldSize) {
    throw new UsageError(
      `Invalid environment variable ${local.name}: ${local.value} ranks on this host, more ` +
        `than ${names.size}=${worldSize} in the job`,
    );
  }
  if (env[names.local] !== undefined && local.name !== null && localRank >= local.value) {
    throw new UsageError(
      `Invalid environment variable ${names.local}: ${localRank} is not below ` +
        `${local.name}=${local.value}`,
    );
  }
  const timeout = env[ENV_NAMES.collectiveTimeoutMs];
  const result: RankEnv = {
    rank,
    worldSize,
    localRank,
    localWorldSize: local.value,
    rendezvousDir: source === "paratrain" ? readString(env, ENV_NAMES.rendezvousDir) : null,
    token: source === "paratrain" ? readString(env, ENV_NAMES.token) : schedulerToken(env),
    collectiveTimeoutMs: timeout === undefined
      ? null
      : readInteger(env, ENV_NAMES.collectiveTimeoutMs, 1, names.rank, MAX_TIMER_MS),
  };
  const masterAddr = readMasterAddr(env, source, worldSize, local.value);
  const masterPort = masterAddr === null
    ? null
    : source === "paratrain" || env[ENV_NAMES.masterPort] !== undefined
    ? readInteger(env, ENV_NAMES.masterPort, 1, ENV_NAMES.masterAddr, 65535)
    : DEFAULT_MASTER_PORT;
  return {
    ...result,
    masterAddr,
    masterPort,
    transport: readTransport(env),
    bind: env[ENV_NAMES.bind] || null,
    source,
  };
}

/**
 * Who names this process's rank, if anyone (see the module doc for the order).
 *
 * @param env The environment.
 * @returns The source, or null for a single process.
 * @example
 * ```ts
 * rankSource({ OMPI_COMM_WORLD_RANK: "1", OMPI_COMM_WORLD_SIZE: "2" }); // "openmpi"
 * ```
 */
export function rankSource(env: Env): RankSource | null {
  if (env[ENV_NAMES.rank] !== undefined) {
    return env[ENV_NAMES.rendezvousDir] !== undefined ? "paratrain" : "torchrun";
  }
  if (env[ENV_NAMES.ompiRank] !== undefined) return "openmpi";
  if (env[ENV_NAMES.slurmRank] !== undefined && env[ENV_NAMES.slurmSize] !== undefined) {
    return "slurm";
  }
  return null;
}

/**
 * The first host of a SLURM node list, compressed or not: `node[01-03],gpu7` → `node01`,
 * `rack[2,4]-n[7-9]` → `rack2-n7`, `login1` → `login1`.
 *
 * @param list `SLURM_JOB_NODELIST`'s value.
 * @returns The first host name.
 * @throws {UsageError} If the list is empty or its brackets do not match.
 * @example
 * ```ts
 * firstSlurmHost("node[01-03],other"); // "node01"
 * ```
 */
export function firstSlurmHost(list: string): string {
  let first = "";
  let depth = 0;
  for (const char of list.trim()) {
    if (char === "[") depth++;
    if (char === "]") depth--;
    if (depth < 0 || depth > 1) break;
    if (char === "," && depth === 0) break;
    first += char;
  }
  const host = depth === 0
    ? first.replace(/\[([^\]]*)\]/g, (_, inside: string) => inside.split(/[,-]/)[0])
    : "";
  if (host === "" || /[\[\],]/.test(host)) {
    throw new UsageError(
      `Invalid environment variable ${ENV_NAMES.slurmNodeList}: cannot read a host from ` +
        `${quote(list)}`,
    );
  }
  return host;
}

/**
 * The job's ranks on this host, and the variable that said so (null: nobody did).
 * `SLURM_TASKS_PER_NODE` lists every node's count in SLURM's compressed form (`2(x3),1`): the
 * most any node runs bounds this one.
 */
function readLocalWorldSize(
  env: Env,
  source: RankSource,
  worldSize: number,
): { value: number; name: string | null } {
  const named = (name: string) => {
    const value = readEnvInteger(env, name, { min: 1 });
    return value === undefined ? null : { value, name };
  };
  switch (source) {
    case "paratrain":
      return named(ENV_NAMES.localWorldSize) ?? { value: worldSize, name: null };
    case "torchrun":
      return named(ENV_NAMES.localWorldSize) ?? { value: 1, name: null };
    case "openmpi":
      return named(ENV_NAMES.ompiLocalSize) ?? { value: 1, name: null };
    case "slurm": {
      const given = named(ENV_NAMES.slurmTasksPerNode);
      if (given) return given;
      for (const name of [ENV_NAMES.slurmStepTasks, ENV_NAMES.slurmJobTasks]) {
        const text = env[name];
        if (text === undefined) continue;
        const counts = /^\d+(\(x\d+\))?(,\d+(\(x\d+\))?)*$/.test(text)
          ? text.split(",").map((part) => Number(part.split("(")[0]))
          : [];
        if (counts.length === 0 || counts.some((n) => !Number.isSafeInteger(n) || n < 1)) {
          throw new UsageError(
            `Invalid environment variable ${name}: expected task counts such as 2(x3),1, got ` +
              quote(text),
          );
        }
        return { value: Math.max(...counts), name };
      }
      return { value: 1, name: null };
    }
  }
}

function readMasterAddr(
  env: Env,
  source: RankSource,
  worldSize: number,
  localWorldSize: number,
): string | null {
  const given = env[ENV_NAMES.masterAddr];
  if (given !== undefined && given.trim() !== "") return given.trim();
  if (given !== undefined) {
    throw new UsageError(`Invalid environment variable ${ENV_NAMES.masterAddr}: it is empty`);
  }
  switch (source) {
    case "paratrain":
      return null;
    case "openmpi": {
      if (env[ENV_NAMES.ompiLocalSize] !== undefined && localWorldSize === worldSize) {
        return "127.0.0.1";
      }
      throw new UsageError(
        `Missing environment variable ${ENV_NAMES.masterAddr}: ranks on several hosts need ` +
          `rank 0's host, e.g. mpirun -x ${ENV_NAMES.masterAddr}=<host> -x ${ENV_NAMES.token} …`,
      );
    }
    case "slurm": {
      const list = env[ENV_NAMES.slurmNodeList] ?? env.SLURM_NODELIST;
      if (list) return firstSlurmHost(list);
      throw new UsageError(
        `Missing environment variable ${ENV_NAMES.masterAddr}: set it (or ` +
          `${ENV_NAMES.slurmNodeList}) to rank 0's host`,
      );
    }
    case "torchrun":
      throw new UsageError(
        `Missing environment variable ${ENV_NAMES.masterAddr}: ${ENV_NAMES.rank} is set ` +
          `without ${ENV_NAMES.rendezvousDir}, so rank 0's host is required`,
      );
  }
}

function schedulerToken(env: Env): string {
  const token = env[ENV_NAMES.token];
  if (token && token.length < MIN_TOKEN_CHARS) {
    throw new UsageError(
      `Invalid environment variable ${ENV_NAMES.token}: expected at least ${MIN_TOKEN_CHARS} ` +
        `characters (e.g. openssl rand -hex 32), got ${token.length}`,
    );
  }
  if (token) return token;
  throw new UsageError(
    `Missing environment variable ${ENV_NAMES.token}: a job launched by a scheduler needs a ` +
      `shared secret; export ${ENV_NAMES.token}=$(openssl rand -hex 32) where the job starts ` +
      `(mpirun: add -x ${ENV_NAMES.token}) or pass --token-file`,
  );
}

function readTransport(env: Env): TransportName {
  const text = env[ENV_NAMES.transport];
  if (text === undefined || text === "") return "unix";
  if ((TRANSPORTS as readonly string[]).includes(text)) return text as TransportName;
  throw new UsageError(
    `Invalid environment variable ${ENV_NAMES.transport}: ${quote(text)}; choose from ` +
      TRANSPORTS.join(", "),
  );
}

function readInteger(
  env: Env,
  name: string,
  min: number,
  because: string,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const value = readEnvInteger(env, name, { min, max });
  if (value === undefined) {
    throw new UsageError(
      `Missing environment variable ${name}: ${because} is set, so it is required`,
    );
  }
  return value;
}

function readString(env: Env, name: string): string {
  const text = env[name];
  if (!text) {
    throw new UsageError(
      `Missing environment variable ${name}: ${ENV_NAMES.rank} is set, so it is required`,
    );
  }
  return text;
}
