/**
 * DDP's transport and multi-host flags, shared by `train`, `bench` and `allreduce`: `--transport`,
 * torchrun's `--nnodes --node-rank --nproc-per-node --master-addr --master-port`, `--bind` and
 * `--token-file`, checked into a node spec before anything starts.
 *
 * @module
 */
import type { Command } from "commander";
import {
  ENV_NAMES,
  type RankEnv,
  rankSource,
  readRankEnv,
  type TransportName,
  TRANSPORTS,
} from "../comm/rank_env.ts";
import { MIN_TOKEN_CHARS } from "../comm/_auth.ts";
import { quote, UsageError } from "../core/errors.ts";
import { readInputText } from "../core/read_input.ts";
import type { NodeSpec, RunSpec } from "../core/run_types.ts";
import { arg } from "./_options.ts";
import { nameList, nonNegativeInt, positiveInt } from "./_parsers.ts";

/** torchrun's default `--master-port`. */
const DEFAULT_MASTER_PORT = 29500;

/** The flags {@linkcode transportOption} and {@linkcode nodeOptions} add, as parsed. */
export interface DdpFlags {
  transport?: TransportName;
  nnodes?: number;
  nodeRank?: number;
  nprocPerNode?: number;
  masterAddr?: string;
  masterPort?: number;
  bind?: string;
  tokenFile?: string;
}

/**
 * Adds `--transport unix|tcp`.
 *
 * @param command `train`, `bench` or `allreduce`
 * @returns the command
 * @example
 * ```ts
 * import { Command } from "commander";
 * transportOption(new Command("bench"));
 * ```
 */
export function transportOption(command: Command): Command {
  return command.option(
    "--transport <name>",
    "ddp: unix (Unix sockets between ranks on one host, TCP across hosts) or tcp (every link over TCP, to measure it on one host)",
    (v: string) => nameList("--transport", v, TRANSPORTS, "transport")[0],
  );
}

/**
 * Adds torchrun's multi-host flags, `--bind` and `--token-file`.
 *
 * @param command `train` or `bench`
 * @returns the command
 * @example
 * ```ts
 * import { Command } from "commander";
 * nodeOptions(new Command("train"));
 * ```
 */
export function nodeOptions(command: Command): Command {
  // bench and allreduce: every host runs the same command, node 0 leads and writes.
  const bench = command.name() !== "train";
  command
    .option(
      "--nnodes <n>",
      bench
        ? "hosts, each running this same command; bench's DDP runs span them (default 1)"
        : "ddp: hosts in the job, one launcher each (default 1)",
      arg("--nnodes", positiveInt),
    )
    .option(
      "--node-rank <k>",
      bench
        ? "this host, 0 to nnodes-1; host 0 leads (bench: runs single and dp too) and writes the results"
        : "ddp: this host, 0 to nnodes-1; host 0 runs rank 0",
      arg("--node-rank", nonNegativeInt),
    )
    .option(
      "--nproc-per-node <n>",
      bench
        ? "ranks on each host (default 1): bench's DDP runs have nnodes × this many; allreduce's world size n uses n / this many hosts"
        : "ddp: ranks on each host (default: --world-size / --nnodes)",
      arg("--nproc-per-node", positiveInt),
    )
    .option("--master-addr <host>", "ddp: host 0's address, where rank 0 serves the rendezvous")
    .option(
      "--master-port <port>",
      bench
        ? `host 0's control port (default ${DEFAULT_MASTER_PORT}); each job's rendezvous takes the port above`
        : `ddp: the rendezvous port on host 0 (default ${DEFAULT_MASTER_PORT})`,
      arg("--master-port", port),
    )
    .option(
      "--bind <addr>",
      "ddp: address the ranks listen on (default: the interface that reaches --master-addr; never every interface unless given 0.0.0.0)",
    )
    .addHelpText(
      "after",
      bench
        ? [
          "",
          "Across hosts, run the same command on every host with its own --node-rank; the job",
          `secret (16 characters or more) comes from ${ENV_NAMES.token} or --token-file. Host 0`,
          "writes --out; a host whose flags differ is refused.",
        ].join("\n")
        : [
          "",
          "Under torchrun or Kubernetes (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), mpirun",
          "(OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE) or srun (SLURM_PROCID, SLURM_NTASKS),",
          "train --strategy ddp runs as the one rank the environment names; this host holds",
          "its own ranks (LOCAL_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_SIZE, SLURM_NTASKS_PER_NODE),",
          "integers are digits only, and the job secret (16 characters or more) comes from",
          `${ENV_NAMES.token} or --token-file. Every host must run the same settings: the`,
          "rendezvous compares them (and --resume's checkpoint) and fails all hosts on a difference.",
        ].join("\n"),
    )
    .option(
      "--token-file <file>",
      `ddp: file holding the job secret shared by every host (mode 600), instead of ${ENV_NAMES.token}`,
    );
  return command;
}

/**
 * Checks `bench`'s multi-host flags: DDP runs then span `nnodes` hosts with
 * `nproc-per-node` ranks each (default 1), and the job secret must be set.
 *
 * @param flags the parsed flags
 * @param strategies `--strategies`
 * @returns the node spec, or null on one host
 * @throws {UsageError} One line naming the flag.
 * @example
 * ```ts
 * await resolveBenchNodes({}, ["single", "ddp"]); // null
 * ```
 */
export async function resolveBenchNodes(
  flags: DdpFlags,
  strategies: readonly string[],
): Promise<NodeSpec | null> {
  if (flags.tokenFile !== undefined) await readTokenFile(flags.tokenFile);
  const given = (["nodeRank", "nprocPerNode", "masterAddr", "masterPort", "bind"] as const)
    .filter((name) => flags[name] !== undefined);
  if ((flags.nnodes ?? 1) === 1) {
    if (given.length === 0) return null;
    const flag = `--${given[0].replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw new UsageError(
      `${flag} needs --nnodes 2 or more: on one host, --world-sizes says the ranks`,
    );
  }
  if (!strategies.includes("ddp")) {
    throw new UsageError(
      `--nnodes ${flags.nnodes} needs ddp among --strategies: only DDP runs span hosts`,
    );
  }
  const { nodes } = await resolveNodes(
    flags,
    "ddp",
    flags.nnodes! * (flags.nprocPerNode ?? 1),
  );
  if (nodes!.masterPort > 65534) {
    throw new UsageError(
      `Invalid --master-port ${nodes!.masterPort}: a bench across hosts also takes the port ` +
        `above it, so expected 1 to 65534`,
    );
  }
  return nodes!;
}

function port(flag: string, value: string): number {
  const n = positiveInt(flag, value);
  if (n > 65535) {
    throw new UsageError(`Invalid ${flag} ${quote(value)}: expected a port from 1 to 65535`);
  }
  return n;
}

/**
 * Checks the multi-host flags and turns them into the run's `nodes` (and `worldSize`); reads
 * `--token-file` into this process's `PARATRAIN_TOKEN`, whence the launcher hands it to the
 * ranks' environment (never their command line).
 *
 * @param flags the parsed flags
 * @param strategy the run's strategy
 * @param worldSize `--world-size`
 * @returns the spec fields: `worldSize`, and `nodes` for a multi-host job
 * @throws {UsageError} One line naming the flag, e.g. a job across hosts without a secret.
 * @example
 * ```ts
 * await resolveNodes({ nnodes: 1 }, "ddp", 2); // { worldSize: 2 }
 * ```
 */
export async function resolveNodes(
  flags: DdpFlags,
  strategy: string,
  worldSize: number,
): Promise<Pick<RunSpec, "worldSize" | "nodes">> {
  if (flags.tokenFile !== undefined) await readTokenFile(flags.tokenFile);
  const given =
    (["nnodes", "nodeRank", "nprocPerNode", "masterAddr", "masterPort", "bind"] as const)
      .filter((name) => flags[name] !== undefined);
  if (given.length === 0) return { worldSize };
  const flag = (name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  if (strategy !== "ddp") {
    throw new UsageError(`${flag(given[0])} needs --strategy ddp`);
  }
  const nnodes = flags.nnodes ?? 1;
  const nodeRank = flags.nodeRank ?? 0;
  if (nodeRank >= nnodes) {
    throw new UsageError(
      `Invalid --node-rank ${nodeRank}: expected 0 to ${nnodes - 1} (--nnodes ${nnodes})`,
    );
  }
  if (nnodes > 1 && flags.nodeRank === undefined) {
    throw new UsageError(
      `--nnodes ${nnodes} needs --node-rank: which host this launcher is, 0 to ${nnodes - 1}`,
    );
  }
  if (nnodes > 1 && !flags.masterAddr) {
    throw new UsageError(
      `--nnodes ${nnodes} needs --master-addr: host 0's address, as every host reaches it`,
    );
  }
  if (flags.masterAddr !== undefined && flags.masterAddr.trim() === "") {
    throw new UsageError(`Invalid --master-addr: it is empty`);
  }
  if (flags.bind !== undefined && flags.bind.trim() === "") {
    throw new UsageError(`Invalid --bind: it is empty`);
  }
  if (flags.nprocPerNode === undefined && worldSize % nnodes !== 0) {
    throw new UsageError(
      `--world-size ${worldSize} does not divide across --nnodes ${nnodes}; give --nproc-per-node`,
    );
  }
  const nprocPerNode = flags.nprocPerNode ?? worldSize / nnodes;
  const secret = Deno.env.get(ENV_NAMES.token);
  if (secret !== undefined && secret.length < MIN_TOKEN_CHARS) {
    throw new UsageError(
      `Invalid environment variable ${ENV_NAMES.token}: expected at least ${MIN_TOKEN_CHARS} ` +
        `characters (e.g. openssl rand -hex 32), got ${secret.length}`,
    );
  }
  if (nnodes > 1 && !Deno.env.get(ENV_NAMES.token)) {
    throw new UsageError(
      `A job across ${nnodes} hosts needs a shared secret: export ${ENV_NAMES.token}=$(openssl rand -hex 32) ` +
        `with the same value on every host, or pass --token-file <file> (mode 600)`,
    );
  }
  return {
    worldSize: nnodes * nprocPerNode,
    nodes: {
      nnodes,
      nodeRank,
      nprocPerNode,
      masterAddr: (flags.masterAddr ?? "127.0.0.1").trim(),
      masterPort: flags.masterPort ?? DEFAULT_MASTER_PORT,
      ...(flags.bind ? { bind: flags.bind.trim() } : {}),
    },
  };
}

/** The largest `--token-file` read (64 KiB): a secret is tens of characters. */
const MAX_TOKEN_FILE_BYTES = 64 << 10;

/**
 * Reads the job secret from a file that only its owner can read, into `PARATRAIN_TOKEN`: a
 * regular file of at most 64 KiB (a FIFO or a device is refused at once, never waited on).
 *
 * @param path the file
 * @throws {UsageError} If it cannot be read, is readable by group or others, or is too short.
 * @example
 * ```ts
 * await readTokenFile("/home/me/.paratrain-token");
 * ```
 */
export async function readTokenFile(path: string): Promise<void> {
  const text = await readInputText(path, {
    what: "--token-file",
    limitBytes: MAX_TOKEN_FILE_BYTES,
    limitName: "a token file",
  });
  let mode: number | null;
  try {
    mode = (await Deno.stat(path)).mode;
  } catch (error) {
    throw new UsageError(`Cannot read --token-file ${path}: ${(error as Error).message}`);
  }
  if (mode !== null && (mode & 0o077) !== 0) {
    throw new UsageError(
      `Refusing --token-file ${path}: it is readable by group or others (mode ` +
        `${(mode & 0o777).toString(8)}); chmod 600 ${path}`,
    );
  }
  const token = text.trim();
  if (token.length < MIN_TOKEN_CHARS) {
    throw new UsageError(
      `Invalid --token-file ${path}: expected a secret of at least ${MIN_TOKEN_CHARS} characters ` +
        `(e.g. openssl rand -hex 32 > ${path}), got ${token.length}`,
    );
  }
  Deno.env.set(ENV_NAMES.token, token);
}

/** Where a `train` run's ranks come from, and the spec fields that follow. */
export interface DdpPlacement {
  /** Spec fields: the job's world size, `nodes` across hosts, the transport. */
  spec: Pick<RunSpec, "worldSize" | "nodes" | "transport">;
  /** This process is one rank a scheduler started (torchrun, mpirun, srun): its place. */
  asRank: RankEnv | null;
}

/**
 * Decides how `train` runs DDP: as the one rank a scheduler's environment names, across hosts
 * with our launcher (torchrun's flags), or on this host alone.
 *
 * @param flags the parsed flags
 * @param strategy the run's strategy
 * @param worldSize `--world-size` (ignored when the environment names the rank)
 * @returns the spec fields, and this rank's place when a scheduler started it
 * @throws {UsageError} For bad flags or environment variables, in one line.
 * @example
 * ```ts
 * const { spec, asRank } = await placeDdp({}, "ddp", 2); // { worldSize: 2, transport: undefined }, null
 * ```
 */
export async function placeDdp(
  flags: DdpFlags,
  strategy: string,
  worldSize: number,
): Promise<DdpPlacement> {
  if (flags.transport !== undefined && strategy !== "ddp") {
    throw new UsageError(`--transport needs --strategy ddp`);
  }
  const source = strategy === "ddp" ? rankSource(Deno.env.toObject()) : null;
  if (source !== null && source !== "paratrain") {
    if (flags.tokenFile !== undefined) await readTokenFile(flags.tokenFile);
    if (flags.nnodes !== undefined || flags.nodeRank !== undefined) {
      throw new UsageError(
        `--nnodes/--node-rank given, but the environment already names this rank (${source}); ` +
          `drop them`,
      );
    }
    if (flags.transport) Deno.env.set(ENV_NAMES.transport, flags.transport);
    if (flags.bind) Deno.env.set(ENV_NAMES.bind, flags.bind);
    const asRank = readRankEnv();
    return { spec: { worldSize: asRank.worldSize, transport: asRank.transport }, asRank };
  }
  const placed = await resolveNodes(flags, strategy, worldSize);
  return { spec: { ...placed, transport: flags.transport }, asRank: null };
}
