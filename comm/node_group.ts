/**
 * Launchers on several hosts acting as one benchmark: every host runs the same command; node 0
 * leads, the others follow. Node 0 serves a control connection at `MASTER_ADDR:MASTER_PORT`
 * (torchrun's names); each follower joins it, proves the job secret (`_auth.ts`, the same
 * challenge–response as ring links) and shows a digest of its own plan, which must equal node
 * 0's. Then, for each job of the plan that spans the hosts, node 0 says "run job i"; every host
 * launches its own ranks of that job (which meet at the job's TCP rendezvous, one port above
 * the control port) and answers when they are done, with what its ranks reported.
 *
 * ```
 *   node 0 (leader)                          node k (follower)
 *   listen MASTER_ADDR:MASTER_PORT   ◀────   connect, handshake, hello {host, digest}
 *   welcome {hosts}                  ────▶
 *   run i          ──────────────────────▶   launch its ranks of job i
 *   (its own ranks of job i)                 …
 *                  ◀──────────────────────   done i {report} | failed i {message}
 *   ping (every HEARTBEAT_MS)        ────▶   (no word for SILENCE_MS: node 0 is gone)
 *   end {failure?} ──────────────────────▶   exit
 * ```
 *
 * A follower whose connection closes fails the next job at once, naming its host; a follower
 * that hears nothing from node 0 for {@linkcode SILENCE_MS} stops, naming node 0.
 *
 * @module
 */
import { formatSeconds } from "../core/durations.ts";
import { ExpectedError, UsageError } from "../core/errors.ts";
import {
  clientHandshake,
  importTokenKey,
  readFrame,
  serverHandshake,
  writeFrame,
} from "./_auth.ts";
import { connectWithin } from "./_tcp_rendezvous.ts";

/** How long node 0 waits for every follower to join, and a follower retries reaching node 0. */
export const JOIN_TIMEOUT_MS = 120_000;
/** Node 0 says something this often, so that a follower knows it is alive. */
export const HEARTBEAT_MS = 5_000;
/** A follower that hears nothing from node 0 for this long stops. */
export const SILENCE_MS = 30_000;
/** Pause between attempts to reach node 0 before it listens. */
const CONNECT_RETRY_MS = 100;
/** A client must finish its handshake and hello within this. */
const HANDSHAKE_TIMEOUT_MS = 5_000;
/** Largest control frame. */
const MAX_FRAME_BYTES = 1 << 20;

/** A host of the group, as its launcher described itself. */
export interface NodeHost {
  /** Its place, 0 to nnodes − 1. */
  nodeRank: number;
  /** Its host name. */
  host: string;
  /** The address it reaches node 0 from (node 0: the control address). */
  address: string;
}

/** Where the group meets, and this host's place. */
export interface NodeGroupOptions {
  /** Hosts in the group. */
  nnodes: number;
  /** This host. */
  nodeRank: number;
  /** Node 0's address, as every host reaches it. */
  masterAddr: string;
  /** The control port on node 0. */
  masterPort: number;
  /** The job secret (at least 16 characters). */
  token: string;
  /** A digest of this host's plan: every host's must be node 0's. */
  digest: string;
  /** The address this host's ranks listen on (`--bind`), named in node 0's records. */
  bind?: string;
  /** How long to wait for the group to form (default {@linkcode JOIN_TIMEOUT_MS}). */
  joinTimeoutMs?: number;
}

/** Node 0's side of the group. */
export interface NodeLeader {
  /** Every host, by node rank. */
  readonly hosts: NodeHost[];
  /**
   * Runs job `index` on every host: tells the followers, runs `local` here, waits for all.
   *
   * @returns `local`'s result and each follower's report, by node rank (from 1)
   * @throws {ExpectedError} when a follower failed or left, naming its host
   */
  run<T>(index: number, local: () => Promise<T>): Promise<{ local: T; remote: unknown[] }>;
  /** Ends the group: the followers exit, with `failure` as their error if given. */
  close(failure?: string): Promise<void>;
}

/** A control frame. */
type Message =
  | { hello: { host: string; digest: string; address?: string } }
  | { welcome: { hosts: NodeHost[] } }
  | { refuse: string }
  | { run: number }
  | { ping: true }
  | { end: string | null }
  | { done: number; report: unknown }
  | { failed: number; message: string };

async function send(conn: Deno.Conn, message: Message): Promise<void> {
  await writeFrame(conn, new TextEncoder().encode(JSON.stringify(message)));
}

async function receive(conn: Deno.Conn): Promise<Message | null> {
  const frame = await readFrame(conn, MAX_FRAME_BYTES, true);
  if (!frame) return null;
  try {
    return JSON.parse(new TextDecoder().decode(frame)) as Message;
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

/** A follower's connection: its messages as a queue, and how it ended. */
class Follower {
  readonly host: NodeHost;
  readonly conn: Deno.Conn;
  #queue: Message[] = [];
  #waiter: (() => void) | null = null;
  /** Frames go out one after the other (heartbeats meet commands). */
  #writing: Promise<unknown> = Promise.resolve();
  /** Why it is gone, once it is. */
  gone: string | null = null;

  constructor(host: NodeHost, conn: Deno.Conn) {
    this.host = host;
    this.conn = conn;
    (async () => {
      while (true) {
        const message = await receive(conn).catch(() => null);
        if (!message) break;
        this.#queue.push(message);
        this.#wake();
      }
      this.gone ??=
        `node ${host.nodeRank} (${host.host}, ${host.address}) left: its connection closed`;
      this.#wake();
    })();
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.();
  }

  /** Sends a frame after any frame still being written. */
  send(message: Message): Promise<void> {
    const sent = this.#writing.then(() => send(this.conn, message));
    this.#writing = sent.catch(() => {});
    return sent;
  }

  /** The next message, or null once the follower is gone. */
  async next(): Promise<Message | null> {
    while (this.#queue.length === 0 && this.gone === null) {
      await new Promise<void>((resolve) => this.#waiter = resolve);
    }
    return this.#queue.shift() ?? null;
  }
}

/**
 * Node 0: listens at `masterAddr:masterPort`, waits until every follower has joined with the
 * same plan, and returns the group.
 *
 * @param options the group and this host (node rank 0)
 * @returns the group
 * @throws {UsageError} when a follower's plan differs (different flags on that host)
 * @throws {ExpectedError} when a follower does not join in time, or the port cannot be used
 * @example
 * ```ts
 * const group = await leadNodes({
 *   nnodes: 2, nodeRank: 0, masterAddr: "10.0.0.1", masterPort: 29500,
 *   token: Deno.env.get("PARATRAIN_TOKEN")!, digest: "plan-hash",
 * });
 * const { remote } = await group.run(0, async () => "ran here");
 * await group.close();
 * ```
 */
export async function leadNodes(options: NodeGroupOptions): Promise<NodeLeader> {
  const { nnodes, masterAddr, masterPort, digest, joinTimeoutMs = JOIN_TIMEOUT_MS } = options;
  const key = await importTokenKey(options.token);
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: masterAddr, port: masterPort, transport: "tcp" });
  } catch (error) {
    throw new ExpectedError(
      `Node 0 cannot listen at ${masterAddr}:${masterPort}: ${(error as Error).message} ` +
        `(is --master-addr this host, and the port free?)`,
    );
  }
  const followers: (Follower | undefined)[] = Array.from({ length: nnodes }, () => undefined);
  const hosts: NodeHost[] = [{ nodeRank: 0, host: Deno.hostname(), address: masterAddr }];
  let mismatch: string | null = null;
  const joined = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      const missing = followers.flatMap((f, k) => k > 0 && !f ? [k] : []);
      reject(
        new ExpectedError(
          `Node${missing.length > 1 ? "s" : ""} ${missing.join(", ")} did not join node 0 at ` +
            `${masterAddr}:${masterPort} within ${formatSeconds(joinTimeoutMs)} (started with ` +
            `the same --nnodes, --master-addr, --master-port and secret?)`,
        ),
      );
    }, joinTimeoutMs);
    const check = () => {
      if (mismatch !== null) {
        clearTimeout(timer);
        reject(new UsageError(mismatch));
      } else if (followers.every((f, k) => k === 0 || f)) {
        clearTimeout(timer);
        resolve();
      }
    };
    const handle = async (conn: Deno.TcpConn) => {
      const timer = setTimeout(() => closeQuietly(conn), HANDSHAKE_TIMEOUT_MS);
      try {
        const client = await serverHandshake(
          conn,
          key,
          { rank: 0, worldSize: nnodes, purpose: "node" },
          (c) =>
            c.purpose !== "node"
              ? "not a node of this bench"
              : c.worldSize !== nnodes
              ? `--nnodes ${c.worldSize}, expected ${nnodes}`
              : c.rank < 1 || c.rank >= nnodes
              ? `claims node ${c.rank}, expected 1 to ${nnodes - 1}`
              : followers[c.rank]
              ? `node ${c.rank} has joined already`
              : null,
        );
        if (typeof client === "string") throw new Error(client);
        const hello = await receive(conn);
        if (!hello || !("hello" in hello)) throw new Error("no hello");
        clearTimeout(timer);
        const host: NodeHost = {
          nodeRank: client.rank,
          host: hello.hello.host,
          address: hello.hello.address ?? (conn.remoteAddr as Deno.NetAddr).hostname,
        };
        if (hello.hello.digest !== digest) {
          const problem = `Node ${client.rank} (${host.host}, ${host.address}) plans other ` +
            `runs than node 0: give every host the same bench flags`;
          await send(conn, { refuse: problem }).catch(() => {});
          closeQuietly(conn);
          mismatch = problem;
          return check();
        }
        followers[client.rank] = new Follower(host, conn);
        hosts[client.rank] = host;
        check();
      } catch (error) {
        clearTimeout(timer);
        closeQuietly(conn);
        console.warn(
          `Node 0 refused a connection on the control port: ${(error as Error).message}`,
        );
      }
    };
    (async () => {
      for await (const conn of listener) handle(conn);
    })().catch(() => {});
    check();
  });
  try {
    await joined;
  } catch (error) {
    closeQuietly(listener);
    await Promise.allSettled(
      followers.map((f) => f?.send({ end: (error as Error).message })),
    );
    for (const f of followers) if (f) closeQuietly(f.conn);
    throw error;
  }
  closeQuietly(listener);
  const members = followers.slice(1) as Follower[];
  await Promise.all(members.map((f) => f.send({ welcome: { hosts } })));
  const heartbeat = setInterval(() => {
    for (const f of members) if (!f.gone) f.send({ ping: true }).catch(() => {});
  }, HEARTBEAT_MS);
  let closed = false;
  const close = async (failure?: string) => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    await Promise.allSettled(
      members.map((f) => f.gone ? null : f.send({ end: failure ?? null })),
    );
    for (const f of members) closeQuietly(f.conn);
  };
  return {
    hosts,
    async run<T>(index: number, local: () => Promise<T>) {
      const gone = members.find((f) => f.gone);
      if (gone) throw new ExpectedError(`Cannot run across hosts: ${gone.gone}`);
      await Promise.all(members.map((f) => f.send({ run: index })));
      const answers = members.map(async (f) => {
        const message = await f.next();
        if (message && "done" in message && message.done === index) return message.report;
        const where = `node ${f.host.nodeRank} (${f.host.host}, ${f.host.address})`;
        if (message && "failed" in message) {
          throw new ExpectedError(`Job ${index} failed on ${where}: ${message.message}`);
        }
        throw new ExpectedError(
          message ? `${where} answered out of turn` : `Job ${index} failed: ${f.gone}`,
        );
      });
      // The local ranks fail first when a remote one dies (their ring closes); either way, wait
      // for every host before naming what failed.
      const [mine, theirs] = await Promise.allSettled([local(), Promise.all(answers)]);
      if (mine.status === "rejected") {
        await Promise.allSettled(answers);
        throw mine.reason;
      }
      if (theirs.status === "rejected") throw theirs.reason;
      return { local: mine.value, remote: theirs.value };
    },
    close,
  };
}

/**
 * A follower (node rank > 0): joins node 0 (retrying until it listens), then runs each job node
 * 0 names with `run` until node 0 ends the group.
 *
 * @param options the group and this host
 * @param run runs job `index` here; its result goes back to node 0 as the report
 * @param onWelcome called once joined, with every host
 * @returns when node 0 ends the group without a failure
 * @throws {UsageError} when node 0 refuses this plan
 * @throws {ExpectedError} when node 0 cannot be reached, goes silent, leaves or fails
 * @example
 * ```ts
 * await followNodes({
 *   nnodes: 2, nodeRank: 1, masterAddr: "10.0.0.1", masterPort: 29500,
 *   token: Deno.env.get("PARATRAIN_TOKEN")!, digest: "plan-hash",
 * }, async (index) => ({ ran: index }));
 * ```
 */
export async function followNodes(
  options: NodeGroupOptions,
  run: (index: number) => Promise<unknown>,
  onWelcome?: (hosts: NodeHost[]) => void,
): Promise<void> {
  const { nnodes, nodeRank, masterAddr, masterPort, joinTimeoutMs = JOIN_TIMEOUT_MS } = options;
  const key = await importTokenKey(options.token);
  const where = `node 0 at ${masterAddr}:${masterPort}`;
  const deadline = Date.now() + joinTimeoutMs;
  let conn: Deno.TcpConn;
  while (true) {
    try {
      conn = await connectWithin({ hostname: masterAddr, port: masterPort }, deadline - Date.now());
      break;
    } catch (error) {
      if (Date.now() >= deadline) {
        throw new ExpectedError(
          `Node ${nodeRank} cannot reach ${where} within ${formatSeconds(joinTimeoutMs)}: ` +
            `${(error as Error).message}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, CONNECT_RETRY_MS));
    }
  }
  try {
    const problem = await clientHandshake(
      conn,
      key,
      { rank: nodeRank, worldSize: nnodes, purpose: "node" },
      (s) => s.purpose !== "node" || s.rank !== 0 ? "not node 0 of a bench" : null,
    ).catch(() => "closed during the handshake");
    if (problem !== null) {
      throw new ExpectedError(
        `Node ${nodeRank} could not join ${where}: ${problem} (same PARATRAIN_TOKEN and --nnodes ` +
          `on every host?)`,
      );
    }
    await send(conn, {
      hello: {
        host: Deno.hostname(),
        digest: options.digest,
        ...(options.bind ? { address: options.bind } : {}),
      },
    });
    const next = async (): Promise<Message> => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const silent = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new ExpectedError(
                `Node 0 at ${masterAddr} stopped answering (nothing for ` +
                  `${formatSeconds(SILENCE_MS)})`,
              ),
            ),
          SILENCE_MS,
        );
      });
      try {
        const message = await Promise.race([receive(conn).catch(() => null), silent]);
        if (!message) {
          throw new ExpectedError(`Node 0 at ${masterAddr} closed the bench's connection`);
        }
        return message;
      } finally {
        clearTimeout(timer);
      }
    };
    let message = await next();
    if ("refuse" in message) throw new UsageError(message.refuse);
    if (!("welcome" in message)) throw new ExpectedError(`Node 0 at ${masterAddr} sent no welcome`);
    onWelcome?.(message.welcome.hosts);
    while (true) {
      message = await next();
      if ("ping" in message) continue;
      if ("end" in message) {
        if (message.end) throw new ExpectedError(`Node 0 stopped the bench: ${message.end}`);
        return;
      }
      if (!("run" in message)) continue;
      // Pings arrive while the job runs; they are read after it, so keep the silence check
      // for the time between jobs.
      const index = message.run;
      try {
        const report = await run(index);
        await send(conn, { done: index, report });
      } catch (error) {
        await send(conn, { failed: index, message: (error as Error).message }).catch(() => {});
        throw error;
      }
    }
  } finally {
    closeQuietly(conn);
  }
}
