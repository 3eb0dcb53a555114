/**
 * Ring set-up: each rank listens, connects to its right neighbour and accepts its left
 * neighbour, each connection authenticated by challenge–response over the job secret
 * (`_auth.ts`: the secret never crosses the wire).
 *
 * Two ways to find the neighbours:
 * - a private rendezvous directory on one machine (the launcher's default): rank k listens on
 *   `<dir>/rank-<k>.sock`;
 * - the TCP rendezvous at `MASTER_ADDR:MASTER_PORT` (`_tcp_rendezvous.ts`): every rank listens
 *   on TCP (on `bind`, default the interface that reaches the master) and, unless TCP is
 *   forced, on a Unix socket too; it dials its right neighbour over the Unix socket when both
 *   are on the same host, else over TCP (with `TCP_NODELAY`).
 *
 * A server that receives a wrong hello (or none within a short deadline) closes that
 * connection and goes on accepting; handshakes run concurrently, so a stray or hostile client
 * cannot stop or stall the job.
 *
 * @module
 */
import { join } from "node:path";
import { formatSeconds } from "../core/durations.ts";
import { clientHandshake, importTokenKey, refusalReason, serverHandshake } from "./_auth.ts";
import { CommError, Ring } from "./_ring.ts";
import {
  connectWithin,
  type JobRecord,
  reachStore,
  register,
  type Registration,
  startStore,
  type StoreServer,
} from "./_tcp_rendezvous.ts";
import { rankSocketPath } from "./rendezvous.ts";
import { acceptLoop } from "./_accept_loop.ts";
import { createSocketDir } from "./_socket_dir.ts";

/** Pause between attempts to connect to a neighbour whose socket is not there yet. */
const CONNECT_RETRY_MS = 20;
/**
 * A client must complete its hello within this, or the server drops it. Each connection has
 * its own deadline and handshakes run side by side, so silent clients delay nobody.
 */
const HANDSHAKE_TIMEOUT_MS = 2_000;
/** Handshakes in progress on a rank's ring listener at once; past it, the oldest is dropped. */
const MAX_PENDING_HANDSHAKES = 64;

/** Addresses that mean every interface. */
const WILDCARDS = ["0.0.0.0", "::", "[::]"];

/** The ring's links: Unix sockets between ranks on one host, or TCP. */
export type Transport = "unix" | "tcp";

/** Where the TCP rendezvous is, and how this rank's links go. */
export interface TcpRendezvousOptions {
  /** Rank 0's host (it serves the rendezvous there). */
  masterAddr: string;
  /** The rendezvous port. */
  masterPort: number;
  /** `tcp`: every link over TCP; `unix`: Unix sockets between ranks on the same host. */
  transport: Transport;
  /** Address ring listeners bind to (default: the interface that reaches the master). */
  bind?: string | null;
}

/** What {@linkcode connectRing} needs. */
export interface ConnectRingOptions {
  rank: number;
  worldSize: number;
  /** Private directory: the Unix-socket rendezvous, or where this rank's Unix socket goes. */
  rendezvousDir: string | null;
  token: string;
  /** The TCP rendezvous; without it, the directory is the rendezvous. */
  tcp?: TcpRendezvousOptions | null;
  /** Deadline for the whole set-up. */
  connectTimeoutMs: number;
  /** Deadline for each collective on the resulting ring. */
  collectiveTimeoutMs: number;
  /** This rank's job, compared at the TCP rendezvous with rank 0's (absent: not compared). */
  job?: JobRecord;
}

type Address = { transport: "unix"; path: string } | {
  transport: "tcp";
  hostname: string;
  port: number;
};

interface Job {
  rank: number;
  worldSize: number;
  key: CryptoKey;
  deadline: number;
  connectTimeoutMs: number;
}

/**
 * Connects this rank into the ring.
 *
 * @param options Rank, world size, rendezvous and deadlines.
 * @returns The ring, with both connections authenticated.
 */
export async function connectRing(options: ConnectRingOptions): Promise<Ring> {
  const { rank, worldSize, rendezvousDir, connectTimeoutMs } = options;
  const key = await importTokenKey(options.token);
  const sendTo = (rank + 1) % worldSize;
  const recvFrom = (rank - 1 + worldSize) % worldSize;
  const deadline = Date.now() + connectTimeoutMs;
  const job: Job = { rank, worldSize, key, deadline, connectTimeoutMs };

  const listeners: Deno.Listener[] = [];
  let ownDir: string | null = null;
  let right: Address;
  let hosts: [string, string] | null = null;
  /** This rank's advertised address across hosts, for messages that blame it. */
  let self: string | null = null;
  let transport: Transport = "unix";
  // Rank 0's rendezvous stays up while the job runs, to tell a late or duplicate rank why it
  // cannot join; it closes with the ring.
  let rendezvous: StoreServer | null = null;
  try {
    if (!options.tcp) {
      if (!rendezvousDir) throw new Error("A rendezvous directory is required without MASTER_ADDR");
      listeners.push(listenUnix(rankSocketPath(rendezvousDir, rank)));
      right = { transport: "unix", path: rankSocketPath(rendezvousDir, sendTo) };
    } else {
      const tcp = options.tcp;
      const store = {
        rank,
        worldSize,
        masterAddr: tcp.masterAddr,
        masterPort: tcp.masterPort,
        key,
        deadline,
        connectTimeoutMs,
      };
      const server = rendezvous = rank === 0 ? startStore(store) : null;
      const storeConn = server ? null : await reachStore(store);
      // The address that reaches the master: where peers reach this rank by default.
      const reach = server ? server.hostname : (storeConn!.localAddr as Deno.NetAddr).hostname;
      const bind = tcp.bind || reach;
      // Bound to every interface (asked for with --bind 0.0.0.0): advertise the one that
      // reaches the master, which peers can dial.
      const advertised = WILDCARDS.includes(bind) ? reach : bind;
      const tcpListener = listenTcp(bind);
      listeners.push(tcpListener);
      let unix: string | null = null;
      if (tcp.transport === "unix") {
        const dir = rendezvousDir ?? (ownDir = await createSocketDir());
        unix = join(dir, `rank-${rank}.sock`);
        listeners.push(listenUnix(unix));
      }
      const own: Registration = {
        rank,
        host: `${Deno.hostname()}/${advertised}`,
        tcp: { hostname: advertised, port: (tcpListener.addr as Deno.NetAddr).port },
        unix,
        ...(options.job ? { job: options.job } : {}),
      };
      const table = server ? await server.serve(own) : await register(storeConn!, own, store);
      const peer = table[sendTo];
      const sameHost = peer.host === own.host;
      right = sameHost && peer.unix !== null && tcp.transport === "unix"
        ? { transport: "unix", path: peer.unix }
        : { transport: "tcp", hostname: peer.tcp.hostname, port: peer.tcp.port };
      transport = right.transport === "tcp" || table[recvFrom].host !== own.host ||
          tcp.transport === "tcp"
        ? "tcp"
        : "unix";
      hosts = [peer.tcp.hostname, table[recvFrom].tcp.hostname];
      self = advertised;
    }
  } catch (error) {
    rendezvous?.close();
    for (const listener of listeners) closeQuietly(listener);
    if (ownDir) await Deno.remove(ownDir, { recursive: true }).catch(() => {});
    throw error;
  }

  const stopAccepting = setTimeout(
    () => listeners.forEach(closeQuietly),
    Math.max(0, deadline - Date.now()),
  );
  const [rightConn, leftConn] = await Promise.allSettled([
    dial(right, sendTo, job),
    accept(listeners, recvFrom, job),
  ]);
  clearTimeout(stopAccepting);
  for (const listener of listeners) closeQuietly(listener);
  if (ownDir) await Deno.remove(ownDir, { recursive: true }).catch(() => {});

  if (rightConn.status === "fulfilled" && leftConn.status === "fulfilled") {
    const server = rendezvous as StoreServer | null;
    return new Ring(rank, worldSize, rightConn.value, leftConn.value, options.collectiveTimeoutMs, {
      hosts,
      transport,
      self,
      ...(server ? { onClose: () => server.close() } : {}),
    });
  }
  (rendezvous as StoreServer | null)?.close();
  for (const side of [rightConn, leftConn]) {
    if (side.status === "fulfilled") closeQuietly(side.value);
  }
  throw rightConn.status === "rejected"
    ? rightConn.reason
    : (leftConn as PromiseRejectedResult).reason;
}

function listenUnix(path: string): Deno.Listener {
  try {
    return Deno.listen({ transport: "unix", path });
  } catch (error) {
    throw new CommError(`Cannot listen on ${path}: ${(error as Error).message}`, null, {
      cause: error,
    });
  }
}

function listenTcp(hostname: string): Deno.TcpListener {
  try {
    return Deno.listen({ transport: "tcp", hostname, port: 0 });
  } catch (error) {
    throw new CommError(`Cannot listen on ${hostname}: ${(error as Error).message}`, null, {
      cause: error,
    });
  }
}

function describe(address: Address): string {
  return address.transport === "unix" ? address.path : `${address.hostname}:${address.port}`;
}

/** Connects to `peer`, retrying until its socket exists, then proves itself. */
async function dial(address: Address, peer: number, job: Job): Promise<Deno.Conn> {
  let conn: Deno.Conn;
  while (true) {
    try {
      if (address.transport === "unix") {
        conn = await Deno.connect({ transport: "unix", path: address.path });
      } else {
        const tcp = await connectWithin(address, job.deadline - Date.now());
        tcp.setNoDelay(true);
        conn = tcp;
      }
      break;
    } catch (error) {
      const notYet = error instanceof Deno.errors.NotFound ||
        error instanceof Deno.errors.ConnectionRefused ||
        (error instanceof Deno.errors.TimedOut && Date.now() < job.deadline);
      if (!notYet) {
        throw new CommError(
          `Cannot connect to rank ${peer} at ${describe(address)}: ${(error as Error).message}`,
          peer,
          { cause: error },
        );
      }
      if (Date.now() >= job.deadline) {
        const what = error instanceof Deno.errors.NotFound
          ? "socket not found"
          : error instanceof Deno.errors.TimedOut
          ? "no answer"
          : "refused";
        throw new CommError(
          `Cannot connect to rank ${peer}${
            address.transport === "tcp" ? ` at ${describe(address)}` : ""
          }: ${what} after ${formatSeconds(job.connectTimeoutMs)}`,
          peer,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, CONNECT_RETRY_MS));
    }
  }
  const outcome = await withTimeout(
    conn,
    job.deadline - Date.now(),
    async () => ({
      problem: await clientHandshake(
        conn,
        job.key,
        { rank: job.rank, worldSize: job.worldSize, purpose: "ring" },
        (server) =>
          server.purpose !== "ring" || server.rank !== peer || server.worldSize !== job.worldSize
            ? `it is rank ${server.rank} of ${server.worldSize}, expected rank ${peer} of ` +
              job.worldSize
            : null,
      ),
    }),
  );
  const problem = outcome === null ? "closed during the handshake" : outcome.problem;
  if (problem !== null) {
    closeQuietly(conn);
    throw new CommError(
      `Rank ${peer} refused the connection from rank ${job.rank}: ${refusalReason(problem)}`,
      peer,
    );
  }
  return conn;
}

/**
 * Accepts connections until `peer` proves itself; refuses and drops the rest. Each
 * connection's handshake runs on its own, under its own short deadline, so that clients that
 * connect and say nothing cannot hold up the one that matters.
 */
function accept(listeners: Deno.Listener[], peer: number, job: Job): Promise<Deno.Conn> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let open = listeners.length;
    const pending = new Set<Deno.Conn>();
    const finish = (conn: Deno.Conn | null, error?: CommError) => {
      if (settled) return;
      settled = true;
      for (const other of pending) if (other !== conn) closeQuietly(other);
      pending.clear();
      if (conn) resolve(conn);
      else reject(error);
    };
    const handshake = async (conn: Deno.Conn) => {
      pending.add(conn);
      const limitMs = Math.min(HANDSHAKE_TIMEOUT_MS, job.deadline - Date.now());
      const result = await withTimeout(
        conn,
        limitMs,
        () =>
          serverHandshake(
            conn,
            job.key,
            { rank: job.rank, worldSize: job.worldSize, purpose: "ring" },
            (client) =>
              client.purpose !== "ring"
                ? "not a ring link"
                : client.worldSize !== job.worldSize
                ? `world size ${client.worldSize}, expected ${job.worldSize}`
                : client.rank !== peer
                ? `claims rank ${client.rank}, expected rank ${peer}`
                : null,
          ),
      );
      if (result !== null && typeof result !== "string" && !settled) {
        if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
        return finish(conn);
      }
      if (!settled) {
        console.warn(
          `Rank ${job.rank} refused a connection on its rendezvous socket: ${
            result ?? "no valid hello"
          }`,
        );
      }
      pending.delete(conn);
      closeQuietly(conn);
    };
    for (const listener of listeners) {
      acceptLoop(listener, {
        maxPending: MAX_PENDING_HANDSHAKES,
        handshake,
        stopped: () => settled,
        onError: (error) =>
          console.warn(
            `Rank ${job.rank} could not accept a connection on its rendezvous socket: ` +
              `${(error as Error).message}; accepting again`,
          ),
      }).then((error) => {
        // Closed at the deadline (or by the other listener's peer arriving first).
        if (settled || --open > 0) return;
        finish(
          null,
          new CommError(
            `Rank ${peer} did not connect to rank ${job.rank} within ` +
              `${formatSeconds(job.connectTimeoutMs)}`,
            peer,
            { cause: error },
          ),
        );
      });
    }
  });
}

/** Runs `io` on `conn`, closing `conn` after `limitMs`; a failure becomes null. */
async function withTimeout<T>(
  conn: Deno.Conn,
  limitMs: number,
  io: () => Promise<T | null>,
): Promise<T | null> {
  const timer = setTimeout(() => closeQuietly(conn), Math.max(0, limitMs));
  try {
    return await io();
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}
