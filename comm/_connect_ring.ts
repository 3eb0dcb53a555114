/**
 * Ring set-up: each rank listens on `<dir>/rank-<k>.sock`, connects to its right neighbour
 * and accepts its left neighbour, both authenticated by the job token.
 *
 * Handshake (one frame each way, frames as in `_ring.ts`):
 * - hello, client → server: magic "paratrn1", the 32 token bytes, client rank, world size;
 * - welcome, server → client: magic "paratrok", server rank, world size.
 * A server that receives a wrong hello (or none within a short deadline) closes that
 * connection and goes on accepting; handshakes run concurrently, so a stray or hostile client
 * cannot stop or stall the job.
 *
 * @module
 */
import { formatSeconds } from "../core/durations.ts";
import { CommError, Ring } from "./_ring.ts";
import { decodeToken, rankSocketPath, TOKEN_BYTES } from "./rendezvous.ts";

/** Pause between attempts to connect to a neighbour whose socket is not there yet. */
const CONNECT_RETRY_MS = 20;
/**
 * A client must complete its hello within this, or the server drops it. Each connection has
 * its own deadline and handshakes run side by side, so silent clients delay nobody.
 */
const HANDSHAKE_TIMEOUT_MS = 2_000;
/** Magic bytes opening a hello. */
const HELLO_MAGIC = new TextEncoder().encode("paratrn1");
/** Magic bytes opening a welcome. */
const WELCOME_MAGIC = new TextEncoder().encode("paratrok");
/** Hello payload: magic, token, rank (u32), world size (u32). */
const HELLO_BYTES = HELLO_MAGIC.length + TOKEN_BYTES + 8;
/** Welcome payload: magic, rank (u32), world size (u32). */
const WELCOME_BYTES = WELCOME_MAGIC.length + 8;

/** What {@linkcode connectRing} needs. */
export interface ConnectRingOptions {
  rank: number;
  worldSize: number;
  rendezvousDir: string;
  token: string;
  /** Deadline for the whole set-up. */
  connectTimeoutMs: number;
  /** Deadline for each collective on the resulting ring. */
  collectiveTimeoutMs: number;
}

/**
 * Connects this rank into the ring.
 *
 * @param options Rank, world size, rendezvous and deadlines.
 * @returns The ring, with both connections authenticated.
 */
export async function connectRing(options: ConnectRingOptions): Promise<Ring> {
  const { rank, worldSize, rendezvousDir, connectTimeoutMs } = options;
  const token = decodeToken(options.token);
  const sendTo = (rank + 1) % worldSize;
  const recvFrom = (rank - 1 + worldSize) % worldSize;
  const deadline = Date.now() + connectTimeoutMs;
  const job = { rank, worldSize, token, deadline, connectTimeoutMs };

  const path = rankSocketPath(rendezvousDir, rank);
  let listener: Deno.UnixListener;
  try {
    listener = Deno.listen({ transport: "unix", path });
  } catch (error) {
    throw new CommError(`Cannot listen on ${path}: ${(error as Error).message}`, null, {
      cause: error,
    });
  }
  const stopAccepting = setTimeout(() => listener.close(), connectTimeoutMs);
  const [right, left] = await Promise.allSettled([
    dial(rankSocketPath(rendezvousDir, sendTo), sendTo, job),
    accept(listener, recvFrom, job),
  ]);
  clearTimeout(stopAccepting);
  closeQuietly(listener);

  if (right.status === "fulfilled" && left.status === "fulfilled") {
    return new Ring(rank, worldSize, right.value, left.value, options.collectiveTimeoutMs);
  }
  for (const side of [right, left]) if (side.status === "fulfilled") closeQuietly(side.value);
  throw right.status === "rejected" ? right.reason : (left as PromiseRejectedResult).reason;
}

interface Job {
  rank: number;
  worldSize: number;
  token: Uint8Array;
  deadline: number;
  connectTimeoutMs: number;
}

/** Connects to `peer`, retrying until its socket exists, then says hello. */
async function dial(path: string, peer: number, job: Job): Promise<Deno.Conn> {
  let conn: Deno.UnixConn;
  while (true) {
    try {
      conn = await Deno.connect({ transport: "unix", path });
      break;
    } catch (error) {
      const notYet = error instanceof Deno.errors.NotFound ||
        error instanceof Deno.errors.ConnectionRefused;
      if (!notYet) {
        throw new CommError(`Cannot connect to rank ${peer}: ${(error as Error).message}`, peer, {
          cause: error,
        });
      }
      if (Date.now() >= job.deadline) {
        const what = error instanceof Deno.errors.NotFound ? "socket not found" : "refused";
        throw new CommError(
          `Cannot connect to rank ${peer}: ${what} after ${formatSeconds(job.connectTimeoutMs)}`,
          peer,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, CONNECT_RETRY_MS));
    }
  }
  const welcome = await withTimeout(conn, job.deadline - Date.now(), async () => {
    await writeFrame(conn, encodeHello(job));
    return await readFrame(conn, WELCOME_BYTES);
  });
  if (!welcome || !isWelcome(welcome, peer, job.worldSize)) {
    closeQuietly(conn);
    throw new CommError(
      `Rank ${peer} refused the connection from rank ${job.rank}: wrong token or world size`,
      peer,
    );
  }
  return conn;
}

/**
 * Accepts connections until `peer` presents a valid hello; refuses and drops the rest. Each
 * connection's handshake runs on its own, under its own short deadline, so that clients that
 * connect and say nothing cannot hold up the one that matters.
 */
function accept(listener: Deno.UnixListener, peer: number, job: Job): Promise<Deno.Conn> {
  return new Promise((resolve, reject) => {
    let settled = false;
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
      const hello = await withTimeout(conn, limitMs, () => readFrame(conn, HELLO_BYTES));
      const problem = hello ? checkHello(hello, peer, job) : "no valid hello";
      if (problem === null && !settled) {
        const welcomed = await withTimeout(
          conn,
          limitMs,
          () => writeFrame(conn, encodeWelcome(job)),
        );
        if (welcomed) return finish(conn);
      } else if (problem !== null && !settled) {
        console.warn(`Rank ${job.rank} refused a connection on its rendezvous socket: ${problem}`);
      }
      pending.delete(conn);
      closeQuietly(conn);
    };
    (async () => {
      while (!settled) {
        let conn: Deno.UnixConn;
        try {
          conn = await listener.accept();
        } catch (error) {
          return finish(
            null,
            new CommError(
              `Rank ${peer} did not connect to rank ${job.rank} within ` +
                `${formatSeconds(job.connectTimeoutMs)}`,
              peer,
              { cause: error },
            ),
          );
        }
        if (settled) closeQuietly(conn);
        else handshake(conn);
      }
    })();
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

function encodeHello(job: Job): Uint8Array {
  const hello = new Uint8Array(HELLO_BYTES);
  hello.set(HELLO_MAGIC, 0);
  hello.set(job.token, HELLO_MAGIC.length);
  const view = new DataView(hello.buffer);
  view.setUint32(HELLO_MAGIC.length + TOKEN_BYTES, job.rank, true);
  view.setUint32(HELLO_MAGIC.length + TOKEN_BYTES + 4, job.worldSize, true);
  return hello;
}

/** Returns null for a valid hello from `peer`, or what is wrong with it. */
function checkHello(hello: Uint8Array, peer: number, job: Job): string | null {
  const view = new DataView(hello.buffer, hello.byteOffset);
  if (!bytesEqual(hello.subarray(0, HELLO_MAGIC.length), HELLO_MAGIC)) {
    return "not a paratrain hello";
  }
  const token = hello.subarray(HELLO_MAGIC.length, HELLO_MAGIC.length + TOKEN_BYTES);
  if (!bytesEqual(token, job.token)) return "wrong token";
  const rank = view.getUint32(HELLO_MAGIC.length + TOKEN_BYTES, true);
  const worldSize = view.getUint32(HELLO_MAGIC.length + TOKEN_BYTES + 4, true);
  if (worldSize !== job.worldSize) return `world size ${worldSize}, expected ${job.worldSize}`;
  if (rank !== peer) return `claims rank ${rank}, expected rank ${peer}`;
  return null;
}

function encodeWelcome(job: Job): Uint8Array {
  const welcome = new Uint8Array(WELCOME_BYTES);
  welcome.set(WELCOME_MAGIC, 0);
  const view = new DataView(welcome.buffer);
  view.setUint32(WELCOME_MAGIC.length, job.rank, true);
  view.setUint32(WELCOME_MAGIC.length + 4, job.worldSize, true);
  return welcome;
}

function isWelcome(welcome: Uint8Array, peer: number, worldSize: number): boolean {
  const view = new DataView(welcome.buffer, welcome.byteOffset);
  return bytesEqual(welcome.subarray(0, WELCOME_MAGIC.length), WELCOME_MAGIC) &&
    view.getUint32(WELCOME_MAGIC.length, true) === peer &&
    view.getUint32(WELCOME_MAGIC.length + 4, true) === worldSize;
}

/** Compares in time independent of where the bytes differ (the token is a secret). */
function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

async function writeFrame(conn: Deno.Conn, payload: Uint8Array): Promise<true> {
  const frame = new Uint8Array(4 + payload.length);
  new DataView(frame.buffer).setUint32(0, payload.length, true);
  frame.set(payload, 4);
  for (let written = 0; written < frame.length;) {
    written += await conn.write(frame.subarray(written));
  }
  return true;
}

/** Reads one frame whose payload must be `expected` bytes; null on EOF or another size. */
async function readFrame(conn: Deno.Conn, expected: number): Promise<Uint8Array | null> {
  const header = await readExactly(conn, 4);
  if (!header || new DataView(header.buffer).getUint32(0, true) !== expected) return null;
  return await readExactly(conn, expected);
}

async function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array | null> {
  const bytes = new Uint8Array(length);
  for (let filled = 0; filled < length;) {
    const n = await conn.read(bytes.subarray(filled));
    if (n === null) return null;
    filled += n;
  }
  return bytes;
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}
