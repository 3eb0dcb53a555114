/**
 * The one place a rank reads its place in the job from the environment (as set by
 * {@linkcode launch}, or by hand). Unset `RANK` means a single process: rank 0 of 1, the
 * same names with the single-process values, so training code has no `if (ddp)` branches.
 *
 * @module
 */
import { MAX_TIMER_MS } from "../core/durations.ts";
import { quote } from "../core/errors.ts";

/** Environment variable names, shared by the launcher (which sets them) and the ranks. */
export const ENV_NAMES = {
  rank: "RANK",
  worldSize: "WORLD_SIZE",
  localRank: "LOCAL_RANK",
  rendezvousDir: "PARATRAIN_RENDEZVOUS",
  token: "PARATRAIN_TOKEN",
  collectiveTimeoutMs: "PARATRAIN_COLLECTIVE_TIMEOUT_MS",
} as const;

/** A rank's place in the job. */
export interface RankEnv {
  /** This process's rank, 0 ≤ rank < worldSize. */
  rank: number;
  /** Number of ranks in the job. */
  worldSize: number;
  /** Rank on this machine; equal to `rank` here, since all ranks share one machine. */
  localRank: number;
  /** Private rendezvous directory, or null for a single process. */
  rendezvousDir: string | null;
  /** Job token, or null for a single process. */
  token: string | null;
  /** Collective timeout override in ms, or null for the default. */
  collectiveTimeoutMs: number | null;
}

/** Options for {@linkcode readRankEnv}. */
export interface ReadRankEnvOptions {
  /** The environment to read (default: this process's). */
  env?: Record<string, string | undefined>;
}

/**
 * Reads rank, world size, rendezvous directory, token and collective timeout from the
 * environment.
 *
 * @param options `env`: the environment to read (default: this process's).
 * @returns The rank's place in the job; rank 0 of 1 when `RANK` is unset.
 * @throws {Error} Naming the variable, when one is set but invalid or missing.
 * @example
 * ```ts
 * const { rank, worldSize } = readRankEnv();
 * ```
 */
export function readRankEnv(options: ReadRankEnvOptions = {}): RankEnv {
  const { env = Deno.env.toObject() } = options;
  if (env[ENV_NAMES.rank] === undefined) {
    return {
      rank: 0,
      worldSize: 1,
      localRank: 0,
      rendezvousDir: null,
      token: null,
      collectiveTimeoutMs: null,
    };
  }
  const worldSize = readInteger(env, ENV_NAMES.worldSize, 1);
  const rank = readInteger(env, ENV_NAMES.rank, 0);
  if (rank >= worldSize) {
    throw new Error(
      `Invalid environment variable ${ENV_NAMES.rank}: ${rank} is not below ${ENV_NAMES.worldSize}=${worldSize}`,
    );
  }
  const timeout = env[ENV_NAMES.collectiveTimeoutMs];
  return {
    rank,
    worldSize,
    localRank: env[ENV_NAMES.localRank] === undefined
      ? rank
      : readInteger(env, ENV_NAMES.localRank, 0),
    rendezvousDir: readString(env, ENV_NAMES.rendezvousDir),
    token: readString(env, ENV_NAMES.token),
    collectiveTimeoutMs: timeout === undefined
      ? null
      : readInteger(env, ENV_NAMES.collectiveTimeoutMs, 1, MAX_TIMER_MS),
  };
}

function readInteger(
  env: Record<string, string | undefined>,
  name: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const text = env[name];
  if (text === undefined) {
    throw new Error(
      `Missing environment variable ${name}: ${ENV_NAMES.rank} is set, so it is required`,
    );
  }
  const value = Number(text);
  if (text.trim() === "" || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new Error(
      `Invalid environment variable ${name}: expected an integer ${range}, got ${quote(text)}`,
    );
  }
  return value;
}

function readString(env: Record<string, string | undefined>, name: string): string {
  const text = env[name];
  if (!text) {
    throw new Error(
      `Missing environment variable ${name}: ${ENV_NAMES.rank} is set, so it is required`,
    );
  }
  return text;
}
