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
import { clientHandshake, readFrame, serverHandshake, writeFrame } from "./_auth.ts";
import { CommError } from "./_ring.ts";
import { acceptLoop } from "./_accept_loop.ts";

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
  /** Waits for every rank, then sends each the table; resolves with the table. */
  serve(own: Registration): Promise<Registration[]>;
  /** Stops listening and drops every client. */
  close(): void;
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
  const close = () => {
    closed = true;
    closeQuietly(listener);
    for (const conn of [...pending, ...clients.values()]) closeQuietly(conn);
  };
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
        const maybeDone = async () => {
          if (!table.every((entry) => entry !== undefined)) return;
          clearTimeout(stopAt);
          const bytes = new TextEncoder().encode(JSON.stringify(table));
          await Promise.allSettled([...clients.values()].map((conn) => writeFrame(conn, bytes)));
          close();
          resolve(table as Registration[]);
        };
        const handle = async (conn: Deno.Conn) => {
          pending.add(conn);
          const timer = setTimeout(() => closeQuietly(conn), HANDSHAKE_TIMEOUT_MS);
          let problem: string;
          try {
            const client = await serverHandshake(
              conn,
              key,
              { rank: 0, worldSize, purpose: "store" },
              (c) =>
                c.purpose !== "store"
                  ? "not a rendezvous client"
                  : c.worldSize !== worldSize
                  ? `world size ${c.worldSize}, expected ${worldSize}`
                  : c.rank < 1 || c.rank >= worldSize
                  ? `claims rank ${c.rank}, expected 1 to ${worldSize - 1}`
                  : table[c.rank] || clients.has(c.rank)
                  ? `rank ${c.rank} has registered already`
                  : null,
            );
            if (typeof client === "string") problem = client;
            else {
              const frame = await readFrame(conn, MAX_ENTRY_BYTES, true);
              const entry = frame && parseRegistration(frame, client.rank);
              if (entry && !table[entry.rank]) {
                clearTimeout(timer);
                pending.delete(conn);
                clients.set(entry.rank, conn);
                table[entry.rank] = entry;
                return await maybeDone();
              }
              problem = "no valid registration";
            }
          } catch {
            problem = "no valid hello";
          }
          clearTimeout(timer);
          pending.delete(conn);
          closeQuietly(conn);
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

/**
 * A rank other than 0 reaches the rendezvous (retrying until it is up or the deadline passes)
 * and proves itself. The connection's local address is the interface that reaches the master.
 *
 * @param options The address and the job.
 * @returns The authenticated connection.
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
    throw new CommError(
      `Rank ${rank} could not join ${where}: ${problem} (same PARATRAIN_TOKEN and world size ` +
        `on every host?)`,
      0,
    );
  }
}

/**
 * Registers on an authenticated rendezvous connection and waits for the table.
 *
 * @param conn From {@linkcode reachStore}.
 * @param own Where this rank listens.
 * @param options The job, for the deadline and messages.
 * @returns Every rank's registration, by rank.
 */
export async function register(
  conn: Deno.Conn,
  own: Registration,
  options: StoreOptions,
): Promise<Registration[]> {
  const timer = setTimeout(() => closeQuietly(conn), Math.max(0, options.deadline - Date.now()));
  try {
    await writeFrame(conn, new TextEncoder().encode(JSON.stringify(own)));
    const frame = await readFrame(conn, MAX_ENTRY_BYTES * options.worldSize, true);
    const table = frame && parseTable(frame, options.worldSize);
    if (table) return table;
  } catch {
    // Reported below.
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
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
    const ok = entry.rank === rank && typeof entry.host === "string" &&
      typeof entry.tcp?.hostname === "string" && Number.isInteger(entry.tcp?.port) &&
      (entry.unix === null || typeof entry.unix === "string");
    return ok ? entry : null;
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
