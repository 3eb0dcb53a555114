/**
 * The rendezvous over TCP, at `MASTER_ADDR:MASTER_PORT` (torchrun's names): rank 0 serves it,
 * every rank (rank 0 included) registers where it listens, and once all `worldSize` ranks have
 * registered each gets the whole table, from which it learns its ring neighbours' addresses.
 *
 * Every connection to the rendezvous is authenticated as ring links are (`_auth.ts`); a client
 * that fails (a wrong secret, garbage, a replayed handshake, another world size, a rank already
 * registered) is dropped and the rendezvous goes on.
 *
 * @module
 */
import { formatSeconds } from "../core/durations.ts";
import { UsageError } from "../core/errors.ts";
import {
  clientHandshake,
  isRefusal,
  readFrame,
  refusalReason,
  serverHandshake,
  writeFrame,
} from "./_auth.ts";
import { CommError } from "./_ring.ts";
import { acceptLoop } from "./_accept_loop.ts";
import { ENV_NAMES } from "./rank_env.ts";

/** Largest registration or table frame, in bytes per rank. */
const MAX_ENTRY_BYTES = 4096;
/** Pause between attempts to reach a rendezvous that is not up yet. */
const CONNECT_RETRY_MS = 50;
/** A client must finish its handshake and registration within this. */
const HANDSHAKE_TIMEOUT_MS = 5_000;
/**
 * Handshakes in progress beyond one per rank that the rendezvous holds at once; past that, the
 * oldest is dropped (`_accept_loop.ts`), so a flood holds a bounded number of descriptors.
 */
const MAX_STRAY_HANDSHAKES = 64;

/**
 * What a rank says its job is: its run's settings by the flag that sets them (`--batch`,
 * `--seed`, `--resume` as the checkpoint's hash, the code's version, …). Every host must say
 * the same; the rendezvous compares each rank's with rank 0's.
 */
export type JobRecord = Record<string, string | number | boolean | null>;

/** Where one rank listens. */
export interface Registration {
  /** Its rank. */
  rank: number;
  /** Which machine: ranks with the same host may use Unix sockets between them. */
  host: string;
  /** Its TCP listener. */
  tcp: { hostname: string; port: number };
  /** Its Unix socket, when it listens on one. */
  unix: string | null;
  /** Its job, compared with rank 0's (absent: not compared). */
  job?: JobRecord;
}

/**
 * A rank refused because it is not part of this job as rank 0 runs it: its settings, world
 * size or rank differ, or its rank is taken. A usage error: exit 2, with every difference named.
 */
export class JobMismatchError extends UsageError {
  override name = "JobMismatchError";
}

/** The rendezvous address and the job. */
export interface StoreOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  key: CryptoKey;
  /** Deadline (ms since the epoch) for the whole exchange. */
  deadline: number;
  connectTimeoutMs: number;
}

/** Rank 0's rendezvous server, listening before rank 0 knows its own registration. */
export interface StoreServer {
  /** Where the server listens (the address ring listeners should use by default). */
  hostname: string;
  /**
   * Waits for every rank, then sends each the table; resolves with the table. Rejects with a
   * {@linkcode JobMismatchError} as soon as one rank's job differs from rank 0's (every rank
   * registered by then is told the same), or a CommError when ranks are missing at the
   * deadline. Once the table is out, the server keeps answering: a rank that comes later (a
   * second host with the same `--node-rank`) is told its rank is taken, until `close()`.
   */
  serve(own: Registration): Promise<Registration[]>;
  /** Stops listening and drops every client. */
  close(): void;
}

/**
 * The settings on which two jobs differ, with each side's value.
 *
 * @param a one rank's job
 * @param b another's
 * @returns `--flag (a's value vs b's value)` for each difference, in key order
 * @example
 * ```ts
 * jobDifferences({ "--batch": 48 }, { "--batch": 96 }); // ["--batch (48 vs 96)"]
 * ```
 */
export function jobDifferences(a: JobRecord, b: JobRecord): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const shown = (v: JobRecord[string] | undefined) => v === undefined ? "unset" : String(v);
  return keys.filter((k) => a[k] !== b[k]).map((k) => `${k} (${shown(a[k])} vs ${shown(b[k])})`);
}

/**
 * Starts rank 0's rendezvous server on `masterAddr:masterPort`.
 *
 * @param options The address and the job.
 * @returns The server.
 */
export function startStore(options: StoreOptions): StoreServer {
  const { worldSize, masterAddr, masterPort, key } = options;
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: masterAddr, port: masterPort, transport: "tcp" });
  } catch (error) {
    throw new CommError(
      `Rank 0 cannot serve the rendezvous at ${masterAddr}:${masterPort}: ` +
        `${(error as Error).message} (is MASTER_ADDR this host, and the port free?)`,
      0,
      { cause: error },
    );
  }
  const clients = new Map<number, Deno.Conn>();
  const table: (Registration | undefined)[] = Array.from({ length: worldSize }, () => undefined);
  const pending = new Set<Deno.Conn>();
  let closed = false;
  let complete = false;
  const close = () => {
    closed = true;
    closeQuietly(listener);
    for (const conn of [...pending, ...clients.values()]) closeQuietly(conn);
  };
  const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  const where = (rank: number) => `rank ${rank} (${table[rank]?.host ?? "?"})`;
  const taken = (rank: number) =>
    `rank ${rank} is already in the job (registered from ` +
    `${table[rank]?.host ?? "another host"}): are two hosts started with the same ` +
    `--node-rank (or RANK)?`;
  return {
    hostname: (listener.addr as Deno.NetAddr).hostname,
    close,
    serve: (own) =>
      new Promise<Registration[]>((resolve, reject) => {
        table[0] = own;
        const stopAt = setTimeout(() => {
          const missing = table.flatMap((entry, r) => entry ? [] : [r]);
          const many = missing.length > 1;
          close();
          reject(
            new CommError(
              `Rank${many ? "s" : ""} ${missing.join(", ")} did not register at the ` +
                `rendezvous ${masterAddr}:${masterPort} within ` +
                `${formatSeconds(options.connectTimeoutMs)}`,
              missing[0],
            ),
          );
        }, Math.max(0, options.deadline - Date.now()));
        /** Fails the whole job at once: every rank registered so far is told why. */
        const mismatch = async (why: string) => {
          if (complete || closed) return;
          clearTimeout(stopAt);
          const refusal = encode({ refused: why });
          await Promise.allSettled([...clients.values()].map((conn) => writeFrame(conn, refusal)));
          close();
          reject(new JobMismatchError(why));
        };
        const maybeDone = async () => {
          if (complete || !table.every((entry) => entry !== undefined)) return;
          complete = true;
          clearTimeout(stopAt);
          // Each rank needs every address; the jobs stay here.
          const bytes = encode(table.map((entry) => ({ ...entry, job: undefined })));
          await Promise.allSettled([...clients.values()].map((conn) => writeFrame(conn, bytes)));
          for (const conn of clients.values()) closeQuietly(conn);
          clients.clear();
          resolve(table as Registration[]);
        };
        const handle = async (conn: Deno.Conn) => {
          pending.add(conn);
          const timer = setTimeout(() => closeQuietly(conn), HANDSHAKE_TIMEOUT_MS);
          const from = remoteHost(conn);
          let problem: string;
          let wrongJob: string | null = null;
          try {
            const client = await serverHandshake(
              conn,
              key,
              { rank: 0, worldSize, purpose: "store" },
              (c) => {
                if (c.purpose !== "store") return "not a rendezvous client";
                if (c.worldSize !== worldSize || c.rank < 1 || c.rank >= worldSize) {
                  wrongJob = `Hosts disagree on the job: a rank from ${from} joins as rank ` +
                    `${c.rank} of world size ${c.worldSize}, but ${where(0)} runs world size ` +
                    `${worldSize}; start every host with the same --nnodes and ` +
                    `--nproc-per-node (or WORLD_SIZE)`;
                  return wrongJob;
                }
                return table[c.rank] || clients.has(c.rank) ? taken(c.rank) : null;
              },
            );
            if (typeof client === "string") problem = client;
            else {
              const frame = await readFrame(conn, MAX_ENTRY_BYTES, true);
              const entry = frame && parseRegistration(frame, client.rank);
              const differences = entry?.job && own.job ? jobDifferences(own.job, entry.job) : [];
              if (entry && differences.length > 0) {
                wrongJob = `Hosts disagree on the job: ${differences.join(", ")} between ` +
                  `${where(0)} and rank ${entry.rank} (${entry.host}); start every host with ` +
                  `the same settings`;
                await writeFrame(conn, encode({ refused: wrongJob })).catch(() => {});
                problem = wrongJob;
              } else if (entry && table[entry.rank]) {
                // Another connection claiming the same rank registered during this handshake.
                problem = taken(entry.rank);
                await writeFrame(conn, encode({ refused: problem })).catch(() => {});
              } else if (entry) {
                clearTimeout(timer);
                pending.delete(conn);
                clients.set(entry.rank, conn);
                table[entry.rank] = entry;
                return await maybeDone();
              } else problem = "no valid registration";
            }
          } catch {
            problem = "no valid hello";
          }
          clearTimeout(timer);
          pending.delete(conn);
          closeQuietly(conn);
          if (wrongJob) return await mismatch(wrongJob);
          if (!closed) {
            console.warn(`Rank 0 refused a connection on the rendezvous port: ${problem}`);
          }
        };
        acceptLoop(listener, {
          maxPending: worldSize + MAX_STRAY_HANDSHAKES,
          handshake: handle,
          stopped: () => closed,
          onError: (error) =>
            console.warn(
              `Rank 0 could not accept a connection on the rendezvous port: ` +
                `${(error as Error).message}; accepting again`,
            ),
        });
        maybeDone();
      }),
  };
}

/** The error for a rank the rendezvous refused, saying why (the whole job's when it disagrees). */
function refusedError(rank: number, options: StoreOptions, why: string): JobMismatchError {
  if (why.startsWith("Hosts disagree")) return new JobMismatchError(why);
  const hint = why.startsWith("wrong token") ? ` (the same ${ENV_NAMES.token} on every host?)` : "";
  return new JobMismatchError(
    `Rank ${rank} could not join the rendezvous at ${options.masterAddr}:${options.masterPort} ` +
      `(rank 0's host): ${why}${hint}`,
  );
}

/** The address a connection came from, for messages. */
function remoteHost(conn: Deno.Conn): string {
  const addr = conn.remoteAddr as Deno.NetAddr;
  return addr.hostname ?? "another host";
}

/**
 * A rank other than 0 reaches the rendezvous (retrying until it is up or the deadline passes)
 * and proves itself. The connection's local address is the interface that reaches the master.
 * A connection dropped before the handshake ends (a server shedding a flood) is tried again; a
 * refusal with a reason (another job's settings, a rank already taken, a wrong token) is not.
 *
 * @param options The address and the job.
 * @returns The authenticated connection.
 * @throws {JobMismatchError} When the rendezvous refuses this rank, saying why.
 */
export async function reachStore(options: StoreOptions): Promise<Deno.TcpConn> {
  const { masterAddr, masterPort, rank, worldSize, key } = options;
  const where = `the rendezvous at ${masterAddr}:${masterPort} (rank 0's host)`;
  while (true) {
    let conn: Deno.TcpConn;
    try {
      conn = await connectWithin(
        { hostname: masterAddr, port: masterPort },
        options.deadline - Date.now(),
      );
    } catch (error) {
      const retry = error instanceof Deno.errors.ConnectionRefused ||
        error instanceof Deno.errors.ConnectionReset ||
        error instanceof Deno.errors.TimedOut;
      if (!retry || Date.now() >= options.deadline) {
        throw new CommError(
          `Rank ${rank} cannot reach ${where}: ` +
            (error instanceof Deno.errors.TimedOut ? "no answer" : (error as Error).message) +
            (retry ? ` after ${formatSeconds(options.connectTimeoutMs)}` : ""),
          0,
          { cause: error },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, CONNECT_RETRY_MS));
      continue;
    }
    const timer = setTimeout(() => closeQuietly(conn), Math.max(0, options.deadline - Date.now()));
    const problem = await clientHandshake(
      conn,
      key,
      { rank, worldSize, purpose: "store" },
      (s) => s.purpose !== "store" || s.rank !== 0 ? "not the rendezvous" : null,
    ).catch(() => "closed during the handshake");
    clearTimeout(timer);
    if (problem === null) return conn;
    closeQuietly(conn);
    if (isRefusal(problem)) throw refusedError(rank, options, refusalReason(problem));
    if (Date.now() >= options.deadline) {
      throw new CommError(`Rank ${rank} could not join ${where}: ${problem}`, 0);
    }
    await new Promise((resolve) => setTimeout(resolve, CONNECT_RETRY_MS));
  }
}

/**
 * Registers on an authenticated rendezvous connection and waits for the table.
 *
 * @param conn From {@linkcode reachStore}.
 * @param own Where this rank listens, and its job.
 * @param options The job, for the deadline and messages.
 * @returns Every rank's registration, by rank.
 * @throws {JobMismatchError} When some rank's job differs from rank 0's: every host is told.
 */
export async function register(
  conn: Deno.Conn,
  own: Registration,
  options: StoreOptions,
): Promise<Registration[]> {
  const timer = setTimeout(() => closeQuietly(conn), Math.max(0, options.deadline - Date.now()));
  let refused: string | null = null;
  try {
    await writeFrame(conn, new TextEncoder().encode(JSON.stringify(own)));
    const frame = await readFrame(conn, MAX_ENTRY_BYTES * options.worldSize, true);
    refused = frame && parseRefusal(frame);
    const table = frame && !refused && parseTable(frame, options.worldSize);
    if (table) return table;
  } catch {
    // Reported below.
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
  if (refused) throw refusedError(own.rank, options, refused);
  throw new CommError(
    `Rank ${own.rank} got no table from the rendezvous at ${options.masterAddr}:` +
      `${options.masterPort} within ${formatSeconds(options.connectTimeoutMs)} ` +
      `(rank 0 stopped, or some rank never registered)`,
    0,
  );
}

/**
 * `Deno.connect` over TCP that gives up after `ms`: a host that is cut off answers nothing, and
 * the kernel's own SYN retries last minutes. A connection that completes after the deadline is
 * closed.
 *
 * @param address Where to.
 * @param ms The longest to wait.
 * @returns The connection.
 * @throws {Deno.errors.TimedOut} After `ms`.
 */
export async function connectWithin(
  address: { hostname: string; port: number },
  ms: number,
): Promise<Deno.TcpConn> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let late = false;
  const attempt = Deno.connect({ ...address, transport: "tcp" });
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = true;
      reject(new Deno.errors.TimedOut(`no answer within ${formatSeconds(ms)}`));
    }, Math.max(1, ms));
  });
  attempt.then((conn) => late && closeQuietly(conn), () => {});
  try {
    return await Promise.race([attempt, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function parseRegistration(bytes: Uint8Array, rank: number): Registration | null {
  try {
    const entry = JSON.parse(new TextDecoder().decode(bytes)) as Registration;
    const job = entry.job;
    const ok = entry.rank === rank && typeof entry.host === "string" &&
      typeof entry.tcp?.hostname === "string" && Number.isInteger(entry.tcp?.port) &&
      (entry.unix === null || typeof entry.unix === "string") &&
      (job === undefined || (typeof job === "object" && job !== null && !Array.isArray(job) &&
        Object.values(job).every((v) => v === null || typeof v !== "object")));
    return ok ? entry : null;
  } catch {
    return null;
  }
}

/** The reason in a refusal sent in place of the table, or null when the frame is none. */
function parseRefusal(bytes: Uint8Array): string | null {
  try {
    const reply = JSON.parse(new TextDecoder().decode(bytes)) as { refused?: unknown };
    return typeof reply?.refused === "string" ? reply.refused : null;
  } catch {
    return null;
  }
}

function parseTable(bytes: Uint8Array, worldSize: number): Registration[] | null {
  try {
    const table = JSON.parse(new TextDecoder().decode(bytes)) as Registration[];
    if (!Array.isArray(table) || table.length !== worldSize) return null;
    return table.every((entry, rank) =>
        parseRegistration(
          new TextEncoder().encode(JSON.stringify(entry)),
          rank,
        )
      )
      ? table
      : null;
  } catch {
    return null;
  }
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}
