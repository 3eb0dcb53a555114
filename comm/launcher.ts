/**
 * A torchrun-style launcher: starts N ranks of a module as Deno subprocesses on this machine,
 * relays their output, collects one JSON result per rank, and makes sure that when anything
 * goes wrong every rank is stopped, nothing is left behind, and the error leads with the cause.
 *
 * Across hosts, one launcher runs per host with torchrun's settings (`nodes`: `nnodes`,
 * `nodeRank`, `nprocPerNode`, `masterAddr`, `masterPort`): it starts ranks
 * `nodeRank · nprocPerNode …` of `nnodes · nprocPerNode`, which meet at the TCP rendezvous that
 * rank 0 serves, authenticated by the job secret (`token`, or `PARATRAIN_TOKEN` in this
 * process's environment; handed to the ranks in their environment, never on a command line).
 * With `transport: "tcp"` on one host, the ranks meet at a TCP rendezvous on 127.0.0.1 and every
 * link is TCP.
 *
 * There is no job time limit unless the caller sets one (`timeoutMs`): a healthy job runs as
 * long as it needs, and a hung one is caught by the ranks' collective timeout. Ranks run their
 * body through `runRank`, which watches this process: if the launcher dies, its ranks remove
 * the rendezvous directory and exit within a fraction of a second.
 *
 * @module
 */
import { ExpectedError, STOP_SIGNALS, stripAnsi } from "../core/errors.ts";
import { formatSeconds, timerMs } from "../core/durations.ts";
import { createRendezvous } from "./rendezvous.ts";
import { ENV_NAMES, type TransportName } from "./rank_env.ts";
import { resultPath } from "./report_result.ts";
import { failurePath, type RankFailure } from "./rank_main.ts";
import type { NodeSpec } from "../core/run_types.ts";

/** Lines of a failed rank's stderr quoted in the error when it left no failure report. */
const STDERR_TAIL_LINES = 20;
/** Flags given to `deno run` before the module, unless `denoArgs` replaces them. */
const DEFAULT_DENO_ARGS = ["--allow-all"];
/**
 * After the first rank fails, how long to wait for the others' exits before stopping them:
 * a rank killed by a signal and its peer that saw the connection close fail within
 * milliseconds of each other, and the one that died is the cause to name.
 */
const FAILURE_GRACE_MS = 250;

/** One line a rank wrote. */
export interface RankLine {
  /** The rank that wrote it. */
  rank: number;
  /** Which of its streams. */
  stream: "stdout" | "stderr";
  /** The line, without its newline. */
  line: string;
}

/** Options for {@linkcode launch}. */
export interface LaunchOptions {
  /** Number of ranks (default 2). */
  worldSize?: number;
  /** Arguments after the module, the same for every rank. */
  args?: string[];
  /** Extra environment variables for every rank (the rank variables are added). */
  env?: Record<string, string>;
  /** A deadline for the whole job, in ms; none by default. */
  timeoutMs?: number;
  /** Collective timeout handed to the ranks (`PARATRAIN_COLLECTIVE_TIMEOUT_MS`). */
  collectiveTimeoutMs?: number;
  /** Flags for `deno run` before the module (default `["--allow-all"]`). */
  denoArgs?: string[];
  /** Receives every output line (default: printed with a `[rank k] ` prefix). */
  onLine?: (line: RankLine) => void;
  /**
   * `unix` (default): Unix sockets between ranks on one host, TCP across hosts; `tcp`: every
   * link over TCP.
   */
  transport?: TransportName;
  /** This host's part of a job across hosts; `worldSize` is then `nnodes · nprocPerNode`. */
  nodes?: NodeSpec;
  /** The job secret across hosts (default: `PARATRAIN_TOKEN` from this environment). */
  token?: string;
}

export type { NodeSpec };

/** What a successful job produced. */
export interface LaunchResult<T> {
  /** Number of ranks in the job (on every host). */
  worldSize: number;
  /** The ranks this launcher ran, in order (all of them on one host). */
  ranks: number[];
  /** Each of those ranks' {@linkcode reportResult} value, or null where a rank reported none. */
  results: (T | null)[];
  /** Wall time from the first spawn to the last exit, in ms. */
  wallMs: number;
}

/** A job that failed: leads with the cause and names the rank that caused it. */
export class LaunchError extends ExpectedError {
  override name = "LaunchError";
  /** The rank that failed first, or null when the job timed out or was interrupted. */
  readonly rank: number | null;
  /** The rank the failure points at (a peer that stopped answering), or null. */
  readonly culprit: number | null;
  /** What the failed rank reported itself, when it left a report. */
  readonly reported: string | null;
  /** Its exit code, or null. */
  readonly code: number | null;
  /** The signal that killed it (or that stopped the launcher), or null. */
  readonly signal: string | null;
  /** Its last lines of stderr. */
  readonly stderrTail: string[];
  /** The failed rank reported a usage error (the command then exits 2, not 1). */
  readonly usage: boolean;

  /**
   * Creates the error.
   *
   * @param message Sentence-case description, cause first.
   * @param details The failed rank, the one it blames, and how it ended.
   */
  constructor(
    message: string,
    details: {
      rank: number | null;
      culprit?: number | null;
      reported?: string | null;
      code: number | null;
      signal: string | null;
      stderrTail: string[];
      usage?: boolean;
    },
  ) {
    super(message);
    this.rank = details.rank;
    this.culprit = details.culprit ?? details.rank;
    this.reported = details.reported ?? null;
    this.code = details.code;
    this.signal = details.signal;
    this.stderrTail = details.stderrTail;
    this.usage = details.usage ?? false;
  }
}

interface RankProcess {
  rank: number;
  child: Deno.ChildProcess;
  running: boolean;
  /** How it ended, once it has. */
  status: Deno.CommandStatus | null;
  stderrTail: string[];
  /** Resolves when both output streams are drained. */
  relayed: Promise<void>;
}

type Outcome =
  | { kind: "done" }
  | { kind: "failed" }
  | { kind: "timeout" }
  | { kind: "signal"; signal: Deno.Signal };

/**
 * Runs `moduleUrl` as `worldSize` ranks, each `deno run --allow-all <module> ...args` with
 * `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `PARATRAIN_RENDEZVOUS` and `PARATRAIN_TOKEN` set, in a
 * fresh private rendezvous directory. Resolves when every rank exits with code 0. If any rank
 * fails (non-zero exit, crash, signal), the job passes its optional deadline, or the launcher
 * gets SIGINT, SIGTERM or another catchable stop signal (`STOP_SIGNALS`), all remaining ranks
 * are killed at once and the promise rejects with a {@linkcode LaunchError}. The rendezvous
 * directory is removed on every path.
 *
 * @param moduleUrl The rank module (path or URL), which typically runs its body with
 *   `runRank`, calling `initProcessGroupFromEnv()` and `reportResult()`.
 * @param options World size, arguments, environment, deadlines and output handling.
 * @returns Each rank's reported result and the wall time.
 * @example
 * ```ts
 * const { results } = await launch(new URL("./train_rank.ts", import.meta.url), { worldSize: 4 });
 * ```
 */
export async function launch<T = unknown>(
  moduleUrl: string | URL,
  options: LaunchOptions = {},
): Promise<LaunchResult<T>> {
  const {
    nodes,
    transport = "unix",
    args = [],
    env = {},
    timeoutMs,
    collectiveTimeoutMs,
    denoArgs = DEFAULT_DENO_ARGS,
    onLine = printLine,
  } = options;
  const worldSize = nodes ? nodes.nnodes * nodes.nprocPerNode : options.worldSize ?? 2;
  if (!Number.isInteger(worldSize) || worldSize < 1) {
    throw new RangeError(`Invalid world size ${worldSize}: expected a positive integer`);
  }
  const first = nodes ? nodes.nodeRank * nodes.nprocPerNode : 0;
  const local = nodes ? nodes.nprocPerNode : worldSize;
  const secret = nodes ? options.token ?? Deno.env.get(ENV_NAMES.token) : undefined;
  if (nodes && nodes.nnodes > 1 && !secret) {
    throw new RangeError(
      `A job across ${nodes.nnodes} hosts needs a shared secret: export ${ENV_NAMES.token}=` +
        `$(openssl rand -hex 32) on every host (the same value), or pass --token-file`,
    );
  }
  const tcpRendezvous = nodes
    ? { masterAddr: nodes.masterAddr, masterPort: nodes.masterPort, bind: nodes.bind }
    : transport === "tcp"
    ? { masterAddr: "127.0.0.1", masterPort: freeLoopbackPort(), bind: undefined }
    : null;
  if (timeoutMs !== undefined) timerMs(timeoutMs, "job timeout");
  if (collectiveTimeoutMs !== undefined) timerMs(collectiveTimeoutMs, "collective timeout");
  const module = moduleUrl instanceof URL ? moduleUrl.href : moduleUrl;
  const rendezvous = await createRendezvous();
  const { dir } = rendezvous;
  const token = secret ?? rendezvous.token;
  const ranks: RankProcess[] = [];
  let stopSignal: ((signal: Deno.Signal) => void) | null = null;
  const onSignal = (signal: Deno.Signal) => () => stopSignal?.(signal);
  const listeners = Deno.build.os === "windows"
    ? []
    : STOP_SIGNALS.map((signal) => ({ signal, handler: onSignal(signal) }));
  for (const { signal, handler } of listeners) Deno.addSignalListener(signal, handler);
  // Colour codes belong on a terminal only: ranks write to pipes that may end in a log file.
  const plain = !Deno.stderr.isTerminal();
  const relay = plain
    ? (line: RankLine) => onLine({ ...line, line: stripAnsi(line.line) })
    : onLine;
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    for (let rank = first; rank < first + local; rank++) {
      const rankEnv: Record<string, string> = {
        ...env,
        ...(plain ? { NO_COLOR: "1" } : {}),
        [ENV_NAMES.launcherPid]: String(Deno.pid),
        [ENV_NAMES.rank]: String(rank),
        [ENV_NAMES.worldSize]: String(worldSize),
        [ENV_NAMES.localRank]: String(rank - first),
        [ENV_NAMES.localWorldSize]: String(local),
        [ENV_NAMES.rendezvousDir]: dir,
        [ENV_NAMES.token]: token,
        [ENV_NAMES.transport]: transport,
      };
      if (tcpRendezvous) {
        rankEnv[ENV_NAMES.masterAddr] = tcpRendezvous.masterAddr;
        rankEnv[ENV_NAMES.masterPort] = String(tcpRendezvous.masterPort);
        if (tcpRendezvous.bind) rankEnv[ENV_NAMES.bind] = tcpRendezvous.bind;
      }
      if (collectiveTimeoutMs !== undefined) {
        rankEnv[ENV_NAMES.collectiveTimeoutMs] = String(collectiveTimeoutMs);
      }
      ranks.push(spawnRank(rank, [...denoArgs, module, ...args], rankEnv, relay));
    }
    const outcome = await new Promise<Outcome>((resolve) => {
      let exited = 0;
      for (const rank of ranks) {
        rank.child.status.then((status) => {
          rank.running = false;
          rank.status = status;
          if (!status.success) setTimeout(() => resolve({ kind: "failed" }), FAILURE_GRACE_MS);
          else if (++exited === local) resolve({ kind: "done" });
        });
      }
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => resolve({ kind: "timeout" }), timeoutMs);
      }
      stopSignal = (signal) => resolve({ kind: "signal", signal });
    });
    clearTimeout(timer);
    const stillRunning = ranks.filter((rank) => rank.running).map((rank) => rank.rank);
    killAll(ranks);
    await Promise.all(ranks.map((rank) => rank.child.status));
    await Promise.all(ranks.map((rank) => rank.relayed));
    if (outcome.kind !== "done") {
      throw await describeFailure(outcome, { ranks, stillRunning, dir, timeoutMs });
    }
    const results = await Promise.all(ranks.map((rank) => readResult<T>(dir, rank.rank)));
    return {
      worldSize,
      ranks: ranks.map((rank) => rank.rank),
      results,
      wallMs: performance.now() - started,
    };
  } finally {
    clearTimeout(timer);
    killAll(ranks);
    await Promise.allSettled(ranks.map((rank) => rank.child.status));
    for (const { signal, handler } of listeners) Deno.removeSignalListener(signal, handler);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** A loopback port nothing listens on now, for a one-host TCP rendezvous. */
function freeLoopbackPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

function spawnRank(
  rank: number,
  runArgs: string[],
  env: Record<string, string>,
  onLine: (line: RankLine) => void,
): RankProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...runArgs],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderrTail: string[] = [];
  const relayed = Promise.all([
    forEachLine(child.stdout, (line) => onLine({ rank, stream: "stdout", line })),
    forEachLine(child.stderr, (line) => {
      stderrTail.push(stripAnsi(line));
      if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
      onLine({ rank, stream: "stderr", line });
    }),
  ]).then(() => {});
  return { rank, child, running: true, status: null, stderrTail, relayed };
}

/** Sends SIGKILL to every rank still running; ranks have nothing to clean up themselves. */
function killAll(ranks: RankProcess[]): void {
  for (const rank of ranks) {
    if (!rank.running) continue;
    try {
      rank.child.kill("SIGKILL");
    } catch {
      // It exited between the check and the kill.
    }
  }
}

/**
 * The error for a job that did not finish, cause first. Of the ranks that failed on their own
 * (before the launcher stopped the rest), the cause is, in order: one that died without a
 * report (a signal, a crash, an exit code of its own); one that reported a failure of its own;
 * else the first report, which names the peer it blames.
 */
async function describeFailure(
  outcome: Exclude<Outcome, { kind: "done" }>,
  job: { ranks: RankProcess[]; stillRunning: number[]; dir: string; timeoutMs?: number },
): Promise<LaunchError> {
  const { stillRunning } = job;
  const running = stillRunning.length > 0 ? `ranks ${stillRunning.join(", ")}` : "no ranks";
  if (outcome.kind === "timeout") {
    return new LaunchError(
      `Job timed out after ${
        formatSeconds(job.timeoutMs!)
      } with ${running} still running; all were killed`,
      { rank: null, code: null, signal: null, stderrTail: [] },
    );
  }
  if (outcome.kind === "signal") {
    return new LaunchError(`Job interrupted by ${outcome.signal}; all ranks were killed`, {
      rank: null,
      code: null,
      signal: outcome.signal,
      stderrTail: [],
    });
  }
  const failed = job.ranks.filter((r) =>
    r.status && !r.status.success && !stillRunning.includes(r.rank)
  );
  const withReports = await Promise.all(
    failed.map(async (r) => ({ r, report: await readFailure(job.dir, r.rank) })),
  );
  const cause = withReports.find(({ report }) => report === null) ??
    withReports.find(({ r, report }) => report!.culprit === r.rank) ?? withReports[0];
  const { r: rank, report } = cause;
  const status = rank.status!;
  const how = status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
  const stopped = stillRunning.length > 0 ? `; stopped ${running}` : "";
  const details = {
    rank: rank.rank,
    code: status.signal ? null : status.code,
    signal: status.signal,
    stderrTail: [...rank.stderrTail],
  };
  if (report) {
    const blamesPeer = report.culprit !== rank.rank;
    const message = blamesPeer
      ? `${report.message} (seen by rank ${rank.rank}, which ${how}${stopped})`
      : `Rank ${rank.rank} failed: ${report.message} (it ${how}${stopped})`;
    return new LaunchError(message, {
      ...details,
      culprit: report.culprit,
      reported: report.message,
      usage: report.usage === true,
    });
  }
  const tail = rank.stderrTail.length > 0
    ? `; last lines of its stderr:\n${rank.stderrTail.map((line) => `  ${line}`).join("\n")}`
    : "; its stderr was empty";
  return new LaunchError(
    `Rank ${rank.rank} ${how}${stillRunning.length > 0 ? ` (stopped ${running})` : ""}${tail}`,
    details,
  );
}

async function readFailure(dir: string, rank: number): Promise<RankFailure | null> {
  try {
    return JSON.parse(await Deno.readTextFile(failurePath(dir, rank))) as RankFailure;
  } catch {
    return null;
  }
}

async function readResult<T>(dir: string, rank: number): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(resultPath(dir, rank))) as T;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw new Error(`Cannot read the result of rank ${rank}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Calls `fn` with each line of a byte stream (without its newline) until the stream ends. */
async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  fn: (line: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const bytes of stream) {
    pending += decoder.decode(bytes, { stream: true });
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      fn(pending.slice(0, newline).replace(/\r$/, ""));
      pending = pending.slice(newline + 1);
    }
  }
  pending += decoder.decode();
  if (pending !== "") fn(pending);
}

function printLine({ rank, stream, line }: RankLine): void {
  if (stream === "stdout") console.log(`[rank ${rank}] ${line}`);
  else console.error(`[rank ${rank}] ${line}`);
}
