/**
 * The communication thread of a {@linkcode ThreadedProcessGroup}: a Web Worker that joins the
 * job exactly as a rank's main thread would ({@linkcode initProcessGroup} or
 * {@linkcode initProcessGroupFromEnv}), owns the ring's sockets, and runs the collectives the
 * main thread posts, in the order they arrive, on views of shared memory (or on copies).
 *
 * The messages both ways are described by {@linkcode ToCommThread} and
 * {@linkcode FromCommThread}; the main thread imports this module's types only (importing it
 * would install the thread's message handler).
 *
 * @module
 */
import { ExpectedError } from "../core/errors.ts";
import { initProcessGroup, initProcessGroupFromEnv } from "./init_process_group.ts";
import type { InitProcessGroupOptions } from "./init_process_group.ts";
import type { CollectiveStats, ProcessGroup } from "./process_group.ts";
import type { JobRecord } from "./_tcp_rendezvous.ts";

/** The collectives the main thread can post. */
export type CollectiveName = "allReduce" | "reduceScatter" | "allGather" | "broadcast" | "barrier";

/** Where a collective's data lives, as posted by the main thread. */
export type PostedBuffer =
  /** Floats `[offset, offset + length)` of a shared buffer posted earlier with `share`. */
  | { shared: number; offset: number; length: number }
  /** A view the thread works on directly: over a SharedArrayBuffer (no copy) or a copy. */
  | { view: Float32Array; copied: boolean }
  /** No data (barrier). */
  | null;

/** What the main thread posts to the communication thread. */
export type ToCommThread =
  | {
    kind: "init";
    /** Join with these options; null: from the environment. */
    init: InitProcessGroupOptions | null;
    /** Deadline for joining when reading the environment. */
    connectTimeoutMs?: number;
    /** The job to compare at the TCP rendezvous, when reading the environment. */
    job?: JobRecord;
  }
  | { kind: "share"; id: number; buffer: SharedArrayBuffer }
  | {
    kind: "call";
    id: number;
    method: CollectiveName;
    buf: PostedBuffer;
    options: unknown;
    /**
     * For a caller blocked in `Atomics.wait` (a collective inside a synchronous forward): when
     * the call settles, `[seq, failed, bytes]` is stored into `Int32Array(buffer)[0..3)`, a
     * failure's {@linkcode SerializedError} as `bytes` bytes of JSON from byte `errorAt` on,
     * and index 0 notified, besides the usual reply.
     */
    signal?: { buffer: SharedArrayBuffer; seq: number; errorAt: number };
  };

/** An error as it crosses threads: enough to rebuild its class on the main thread. */
export interface SerializedError {
  /** The error's `name` ("CommError", "CallMismatchError", "RangeError", …). */
  name: string;
  /** Its message. */
  message: string;
  /** `peer` of a CommError (null otherwise). */
  peer: number | null;
  /** Whether it was an ExpectedError. */
  expected: boolean;
  /** Its stack in the communication thread. */
  stack: string;
  /** Its `cause` (the transport error behind a CommError, say), or null. */
  cause: SerializedError | null;
}

/** What the communication thread posts back. */
export type FromCommThread =
  | { kind: "ready"; rank: number; worldSize: number; transport: "unix" | "tcp" }
  | { kind: "init-failed"; error: SerializedError }
  | {
    kind: "done";
    id: number;
    stats: CollectiveStats;
    /** When the thread finished the call: `performance.timeOrigin + performance.now()`. */
    finishedAt: number;
    /** The result of a copied buffer, to copy back (null when the data was shared). */
    result: Float32Array | null;
  }
  | { kind: "failed"; id: number; error: SerializedError };

/** Turns anything thrown into a {@linkcode SerializedError}. */
function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const peer = (error as { peer?: unknown }).peer;
    return {
      name: error.name,
      message: error.message,
      peer: typeof peer === "number" ? peer : null,
      expected: error instanceof ExpectedError,
      stack: error.stack ?? `${error.name}: ${error.message}`,
      cause: error.cause === undefined ? null : serializeError(error.cause),
    };
  }
  return {
    name: "Error",
    message: String(error),
    peer: null,
    expected: false,
    stack: "",
    cause: null,
  };
}

interface CommThreadScope {
  onmessage: ((event: MessageEvent<ToCommThread>) => void) | null;
  postMessage(message: FromCommThread, transfer?: Transferable[]): void;
}

const scope = self as unknown as CommThreadScope;
let group: ProcessGroup | null = null;
const sharedBuffers = new Map<number, SharedArrayBuffer>();

scope.onmessage = ({ data }) => {
  if (data.kind === "init") void join(data);
  else if (data.kind === "share") sharedBuffers.set(data.id, data.buffer);
  else if (data.kind === "call") run(data);
  else throw new Error(`Unknown message to the communication thread: ${JSON.stringify(data)}`);
};

async function join(message: Extract<ToCommThread, { kind: "init" }>): Promise<void> {
  try {
    group = message.init ? await initProcessGroup(message.init) : await initProcessGroupFromEnv({
      connectTimeoutMs: message.connectTimeoutMs,
      job: message.job,
    });
    scope.postMessage({
      kind: "ready",
      rank: group.rank,
      worldSize: group.worldSize,
      transport: group.transport,
    });
  } catch (error) {
    scope.postMessage({ kind: "init-failed", error: serializeError(error) });
  }
}

/** Starts one collective at once (the process group queues it behind earlier ones). */
function run(call: Extract<ToCommThread, { kind: "call" }>): void {
  let view: Float32Array | null = null;
  let copied = false;
  const started = (async () => {
    if (group === null) throw new Error("The communication thread has not joined the job");
    if (call.buf !== null && "shared" in call.buf) {
      const buffer = sharedBuffers.get(call.buf.shared);
      if (!buffer) throw new Error(`Unknown shared buffer ${call.buf.shared}`);
      view = new Float32Array(buffer, call.buf.offset * 4, call.buf.length);
    } else if (call.buf !== null) {
      view = call.buf.view;
      copied = call.buf.copied;
    }
    // deno-lint-ignore no-explicit-any
    const options = call.options as any;
    const buf = view ?? new Float32Array(0);
    switch (call.method) {
      case "allReduce":
        return await group.allReduce(buf, options);
      case "reduceScatter":
        return await group.reduceScatter(buf, options);
      case "allGather":
        return await group.allGather(buf);
      case "broadcast":
        return await group.broadcast(buf, options);
      case "barrier":
        return await group.barrier();
    }
  })();
  started.then(
    (stats) => {
      const finishedAt = performance.timeOrigin + performance.now();
      const result = copied ? view : null;
      signal(call, false);
      scope.postMessage(
        { kind: "done", id: call.id, stats, finishedAt, result },
        result ? [result.buffer as ArrayBuffer] : [],
      );
    },
    (error) => {
      const serialized = serializeError(error);
      signal(call, serialized);
      scope.postMessage({ kind: "failed", id: call.id, error: serialized });
    },
  );
}

/**
 * Wakes a caller blocked on the call's signal, if it has one: `[seq, failed, bytes]` and, on
 * failure, the error as JSON from `errorAt` on, then notify.
 */
function signal(
  call: Extract<ToCommThread, { kind: "call" }>,
  failure: SerializedError | false,
): void {
  if (!call.signal) return;
  const flag = new Int32Array(call.signal.buffer, 0, 3);
  let bytes = 0;
  if (failure) {
    const text = new Uint8Array(call.signal.buffer, call.signal.errorAt);
    let encoded = new TextEncoder().encode(JSON.stringify(failure));
    if (encoded.length > text.length) {
      // Too long with its stack and causes: the name and the start of the message still fit.
      const { name, message, peer, expected } = failure;
      const short = {
        name,
        message: message.slice(0, 1000),
        peer,
        expected,
        stack: "",
        cause: null,
      };
      encoded = new TextEncoder().encode(JSON.stringify(short)).subarray(0, text.length);
    }
    text.set(encoded);
    bytes = encoded.length;
  }
  Atomics.store(flag, 2, bytes);
  Atomics.store(flag, 1, failure ? 1 : 0);
  Atomics.store(flag, 0, call.signal.seq);
  Atomics.notify(flag, 0);
}
