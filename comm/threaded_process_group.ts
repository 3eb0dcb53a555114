/**
 * A process group whose ring runs in a communication thread (a Web Worker of this process),
 * so that collectives progress while the rank's main thread is busy in synchronous work such
 * as a backward pass.
 *
 * The thread joins the job exactly as the main thread would (same rendezvous, token,
 * deadlines and error messages) and owns the sockets. Each collective is posted to it at call
 * time (posting does not block) and runs there in call order; the returned promise settles
 * when the main thread next gets to its event loop. Data in a shared region
 * ({@linkcode ThreadedProcessGroup.sharedFloats}) is reduced in place without a copy: only
 * its offset and length cross threads. Any other buffer is copied to the thread and back.
 *
 * @example
 * ```ts
 * import { startThreadedProcessGroup } from "./threaded_process_group.ts";
 * declare function backward(grads: Float32Array): void; // synchronous kernels
 *
 * const pg = await startThreadedProcessGroup(); // rank 0 of 1 unless started by launch()
 * const grads = pg.sharedFloats(1 << 20);
 * backward(grads.subarray(0, 1 << 19)); // the last layers' gradients first
 * const first = pg.allReduce(grads.subarray(0, 1 << 19), { op: "avg" }); // starts now
 * backward(grads.subarray(1 << 19)); // overlaps the all-reduce above
 * const second = pg.allReduce(grads.subarray(1 << 19), { op: "avg" });
 * await Promise.all([first, second]);
 * pg.close();
 * ```
 *
 * @module
 */
import { ExpectedError, UsageError } from "../core/errors.ts";
import { CallMismatchError, CommError } from "./_ring.ts";
import type {
  CollectiveName,
  FromCommThread,
  PostedBuffer,
  SerializedError,
  ToCommThread,
} from "./_comm_thread_worker.ts";
import type { InitProcessGroupOptions, JobRecord } from "./init_process_group.ts";
import { JobMismatchError } from "./_tcp_rendezvous.ts";
import { readRankEnv } from "./rank_env.ts";
import { waitUntilReached } from "../core/wait_until.ts";
import { makesSocketDir, onMainThread, whileJoining } from "./_socket_dir.ts";
import type {
  AllReduceOptions,
  BroadcastOptions,
  CollectiveStats,
  CommTotals,
} from "./process_group.ts";

/** Where a blocking call's error starts in its signal buffer: after `[seq, failed, bytes]`. */
const SIGNAL_ERROR_AT = 3 * Int32Array.BYTES_PER_ELEMENT;
/** Room for that error (JSON); a longer one keeps its name and the start of its message. */
const SIGNAL_ERROR_BYTES = 16 * 1024;

/** What one collective cost this rank, as the communication thread measured it. */
export interface ThreadedCollectiveStats extends CollectiveStats {
  /**
   * When the communication thread finished the call, in milliseconds since the Unix epoch
   * (`performance.timeOrigin + performance.now()` in that thread); compare it with the same
   * expression on the main thread. The promise itself settles only when the main thread
   * next reaches its event loop.
   */
  finishedAt: number;
}

/** Options for {@linkcode startThreadedProcessGroup}. */
export interface ThreadedProcessGroupOptions {
  /**
   * Join with these options, as {@linkcode initProcessGroup} would; omitted: read everything
   * from the environment, as {@linkcode initProcessGroupFromEnv} does.
   */
  init?: InitProcessGroupOptions;
  /** Deadline for joining when reading the environment (default that of initProcessGroup). */
  connectTimeoutMs?: number;
  /** The job to compare at the TCP rendezvous when reading the environment. */
  job?: JobRecord;
  /**
   * The module the communication thread runs (default `comm/_comm_thread_worker.ts`); for
   * tests that need a thread that fails.
   */
  workerModule?: URL;
}

/**
 * Starts this rank's communication thread and joins the job from it. Rejects as
 * {@linkcode initProcessGroup} would (same error class and message) when joining fails.
 *
 * @param options `init` (join with these options) or nothing (join from the environment).
 * @returns The process group, ready for collectives.
 * @example
 * ```ts
 * import { createRendezvous } from "./rendezvous.ts";
 * const { dir, token } = await createRendezvous();
 * const pg = await startThreadedProcessGroup({
 *   init: { rank: 0, worldSize: 2, rendezvousDir: dir, token },
 * });
 * await pg.barrier();
 * pg.close();
 * ```
 */
export function startThreadedProcessGroup(
  options: ThreadedProcessGroupOptions = {},
): Promise<ThreadedProcessGroup> {
  const who = options.init ? `rank ${options.init.rank}` : "this rank";
  const worker = new Worker(
    options.workerModule ?? new URL("./_comm_thread_worker.ts", import.meta.url),
    { type: "module", name: `communication thread of ${who}` },
  );
  const joined = new Promise<ThreadedProcessGroup>((resolve, reject) => {
    worker.onmessage = ({ data }: MessageEvent<FromCommThread>) => {
      if (data.kind === "ready") {
        resolve(new ThreadedProcessGroup(worker, data.rank, data.worldSize, data.transport));
      } else {
        worker.terminate();
        reject(data.kind === "init-failed" ? reviveError(data.error) : new Error(data.kind));
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      worker.terminate();
      reject(new Error(`The communication thread of ${who} died: ${describe(event)}`));
    };
    post(worker, { kind: "init", init: options.init ?? null, ...pick(options) });
  });
  // The thread may make a socket directory while it joins: a signal to the process meanwhile
  // must not leave it behind, and only the main thread can end the process.
  return makesSocketDir(joinOptions(options)) && onMainThread()
    ? whileJoining(() => joined)
    : joined;
}

/** The rendezvous the thread will join: the options given, else the environment's. */
function joinOptions(
  options: ThreadedProcessGroupOptions,
): Parameters<typeof makesSocketDir>[0] {
  if (options.init) return options.init;
  try {
    const env = readRankEnv();
    const tcp = env.masterAddr ? { transport: env.transport ?? "unix" } : null;
    return { rendezvousDir: env.rendezvousDir, tcp };
  } catch {
    return {}; // The thread reports what is wrong with the environment.
  }
}

function pick(
  options: ThreadedProcessGroupOptions,
): { connectTimeoutMs?: number; job?: JobRecord } {
  return {
    ...(options.connectTimeoutMs === undefined
      ? {}
      : { connectTimeoutMs: options.connectTimeoutMs }),
    ...(options.job === undefined ? {} : { job: options.job }),
  };
}

/** A call posted to the thread and not yet answered. */
interface Pending {
  resolve: (stats: ThreadedCollectiveStats) => void;
  reject: (error: Error) => void;
  /** The caller's buffer, when the thread works on a copy of it. */
  copyBack: Float32Array | null;
  op: string;
}

/**
 * One rank's handle on the job, with the ring in a communication thread: the same surface as
 * {@linkcode ProcessGroup} (`rank`, `worldSize`, the collectives, `totals`, `close`) plus a
 * shared region. Every collective is posted to the thread when called and runs there in call
 * order; a buffer in the shared region must not be touched until its call settles.
 *
 * Errors keep their class: a {@linkcode CommError} in the thread rejects here as a CommError
 * (or {@linkcode CallMismatchError}) with the same message and `peer`. If the thread dies,
 * every pending and later call rejects with one CommError naming this rank's communication
 * thread.
 *
 * Create it with {@linkcode startThreadedProcessGroup}.
 */
export class ThreadedProcessGroup {
  /** This process's rank, 0 ≤ rank < worldSize. */
  readonly rank: number;
  /** Number of ranks in the job. */
  readonly worldSize: number;
  /** What the ring's links run over (`unix`, or `tcp` across hosts or when forced). */
  readonly transport: "unix" | "tcp";

  #worker: Worker;
  #nextId = 0;
  #pending = new Map<number, Pending>();
  #shared = new Map<ArrayBufferLike, number>();
  #failure: Error | null = null;
  #closed = false;
  #totals: CommTotals = { calls: 0, bytes: 0, waitMs: 0, transferMs: 0 };
  /**
   * `[seq, failed, bytes]` of the last blocking call the thread settled, then its error as
   * JSON from byte {@linkcode SIGNAL_ERROR_AT} on (see allReduceBlocking).
   */
  #signal = new Int32Array(new SharedArrayBuffer(SIGNAL_ERROR_AT + SIGNAL_ERROR_BYTES), 0, 3);
  #blockingSeq = 0;

  /**
   * Wraps a started communication thread; use {@linkcode startThreadedProcessGroup} rather
   * than calling this.
   *
   * @param worker The thread, already joined.
   * @param rank This rank.
   * @param worldSize Ranks in the job.
   * @param transport What the ring's links run over.
   */
  constructor(worker: Worker, rank: number, worldSize: number, transport: "unix" | "tcp" = "unix") {
    this.transport = transport;
    this.rank = rank;
    this.worldSize = worldSize;
    this.#worker = worker;
    worker.onmessage = ({ data }: MessageEvent<FromCommThread>) => this.#answer(data);
    worker.onerror = (event) => {
      event.preventDefault();
      this.#fail(
        new CommError(
          `The communication thread of rank ${rank} died: ${describe(event)}`,
          rank,
        ),
      );
    };
    worker.onmessageerror = () => {
      this.#fail(
        new CommError(`The communication thread of rank ${rank} sent an unreadable reply`, rank),
      );
    };
  }

  /**
   * A Float32Array of `length` zeros over a SharedArrayBuffer that the communication thread
   * also holds. Collectives on views of it (`subarray`) run in place, without a copy. Both
   * threads keep every region until `close()`: allocate the gradient buffer once and
   * reuse it. (A view over any other SharedArrayBuffer is shared too, posted with its call.)
   *
   * @param length Floats in the region.
   * @returns The region.
   * @example
   * ```ts
   * import type { ThreadedProcessGroup } from "./threaded_process_group.ts";
   * declare const pg: ThreadedProcessGroup;
   * const grads = pg.sharedFloats(4096);
   * await pg.allReduce(grads.subarray(2048), { op: "avg" }); // the second half only
   * ```
   */
  sharedFloats(length: number): Float32Array {
    if (!Number.isInteger(length) || length < 0) {
      throw new RangeError(`Invalid shared region length ${length}: expected an integer ≥ 0`);
    }
    const buffer = new SharedArrayBuffer(length * Float32Array.BYTES_PER_ELEMENT);
    const id = this.#shared.size;
    this.#shared.set(buffer, id);
    if (this.#failure === null) post(this.#worker, { kind: "share", id, buffer });
    return new Float32Array(buffer);
  }

  /**
   * Sums (or averages) `buf` across all ranks, in place, as {@linkcode ProcessGroup.allReduce}
   * does, in the communication thread. The call is posted before this returns.
   *
   * @param buf This rank's values; replaced by the result when the promise settles.
   * @param options Passed to the thread's `ProcessGroup.allReduce` unchanged (`op`, …).
   * @returns What the call cost this rank, and when the thread finished it.
   * @example
   * ```ts
   * import type { ThreadedProcessGroup } from "./threaded_process_group.ts";
   * declare const pg: ThreadedProcessGroup;
   * const grads = pg.sharedFloats(1024);
   * const done = pg.allReduce(grads, { op: "avg" }); // already on its way
   * const stats = await done;
   * console.log(stats.transferMs);
   * ```
   */
  allReduce(buf: Float32Array, options: AllReduceOptions = {}): Promise<ThreadedCollectiveStats> {
    return this.#call("allReduce", "all-reduce", buf, options);
  }

  /**
   * {@linkcode ThreadedProcessGroup.allReduce}, with this thread blocked (`Atomics.wait`)
   * until the communication thread has finished it: for a collective in the middle of
   * synchronous work, such as SyncBatchNorm's statistics inside a forward pass, which cannot
   * return to the event loop. `buf` must lie in a shared region; calls still queue behind
   * earlier ones, in call order, as every collective does.
   *
   * @param buf This rank's values, in a region from {@linkcode ThreadedProcessGroup.sharedFloats}.
   * @param options As {@linkcode ThreadedProcessGroup.allReduce}'s.
   * @param timeoutMs Give up (throwing) after this long; the collective's own timeout on the
   *   communication thread normally fails it first.
   * @returns The wall time this thread was blocked, ms.
   * @throws CommError when the call fails, the thread is gone, or the wait times out.
   * @example
   * ```ts
   * import type { ThreadedProcessGroup } from "./threaded_process_group.ts";
   * declare const pg: ThreadedProcessGroup;
   * const stats = pg.sharedFloats(16);
   * pg.allReduceBlocking(stats, { op: "sum" }, 60_000); // returns with the sums in place
   * ```
   */
  allReduceBlocking(buf: Float32Array, options: AllReduceOptions, timeoutMs: number): number {
    if (this.#failure) throw this.#rejection("all-reduce");
    if (!this.#shared.has(buf.buffer)) {
      throw new RangeError("A blocking all-reduce needs a buffer in a region from sharedFloats()");
    }
    const seq = ++this.#blockingSeq;
    const t0 = performance.now();
    const call = this.#call("allReduce", "all-reduce", buf, options, {
      buffer: this.#signal.buffer as SharedArrayBuffer,
      seq,
      errorAt: SIGNAL_ERROR_AT,
    });
    call.catch(() => {}); // failures are reported below, on this thread
    const flag = this.#signal;
    const left = timeoutMs - (performance.now() - t0);
    if (!waitUntilReached(flag, 0, seq, left)) {
      throw new CommError(
        `Rank ${this.rank} waited ${
          Math.round(timeoutMs / 1000)
        } s for a blocking all-reduce: the communication thread did not answer`,
        null,
      );
    }
    if (Atomics.load(flag, 1) !== 0) {
      // The thread's own error, as the promise would have rejected with it.
      const bytes = new Uint8Array(flag.buffer, SIGNAL_ERROR_AT, Atomics.load(flag, 2)).slice();
      let serialized: SerializedError | null = null;
      try {
        serialized = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        // Cut short: fall through to the line below.
      }
      throw serialized ? reviveError(serialized) : new CommError(
        `A blocking all-reduce failed on rank ${this.rank}'s communication thread`,
        null,
      );
    }
    return performance.now() - t0;
  }

  /**
   * Reduce-scatter in place, as {@linkcode ProcessGroup.reduceScatter} does, in the
   * communication thread.
   *
   * @param buf The same length on every rank.
   * @param options Passed to the thread's `ProcessGroup.reduceScatter` unchanged.
   * @returns What the call cost this rank, and when the thread finished it.
   * @example
   * ```ts
   * import type { ThreadedProcessGroup } from "./threaded_process_group.ts";
   * declare const pg: ThreadedProcessGroup;
   * await pg.reduceScatter(pg.sharedFloats(1024));
   * ```
   */
  reduceScatter(
    buf: Float32Array,
    options: AllReduceOptions = {},
  ): Promise<ThreadedCollectiveStats> {
    return this.#call("reduceScatter", "reduce-scatter", buf, options);
  }

  /**
   * All-gather in place, as {@linkcode ProcessGroup.allGather} does, in the communication
   * thread.
   *
   * @param buf The same length on every rank.
   * @returns What the call cost this rank, and when the thread finished it.
   * @example
   * ```ts
   * import type { ThreadedProcessGroup } from "./threaded_process_group.ts";
   * declare const pg: ThreadedProcessGroup;
   * await pg.allGather(pg.sharedFloats(1024));
   * ```
   */
  allGather(buf: Float32Array): Promise<ThreadedCollectiveStats> {
    return this.#call("allGather", "all-gather", buf, {});
  }

  /**
   * Copies the root's `buf` into every other rank's `buf`, in place, as
   * {@linkcode ProcessGroup.broadcast} does, in the communication thread.
   *
   * @param buf The root's data, or where the others receive it.
   * @param options Passed to the thread's `ProcessGroup.broadcast` unchanged (`root`, …).
   * @returns What the call cost this rank, and when the thread finished it.
   * @example
   * ```ts
   * import type { ThreadedProcessGroup } from "./threaded_process_group.ts";
   * declare const pg: ThreadedProcessGroup;
   * const params = new Float32Array(1000); // rank 0 fills it; copied to the thread and back
   * await pg.broadcast(params, { root: 0 });
   * ```
   */
  broadcast(buf: Float32Array, options: BroadcastOptions = {}): Promise<ThreadedCollectiveStats> {
    return this.#call("broadcast", "broadcast", buf, options);
  }

  /**
   * Waits until every rank has called `barrier()`.
   *
   * @returns What the call cost this rank (all of it is `waitMs`).
   * @example
   * ```ts
   * import type { ThreadedProcessGroup } from "./threaded_process_group.ts";
   * declare const pg: ThreadedProcessGroup;
   * await pg.barrier();
   * ```
   */
  barrier(): Promise<ThreadedCollectiveStats> {
    return this.#call("barrier", "barrier", null, {});
  }

  /** Totals over every collective that has completed so far. */
  get totals(): CommTotals {
    return { ...this.#totals };
  }

  /**
   * Stops the communication thread at once, which closes its connections (peers see this
   * rank close them). Pending and later collectives reject. Safe to call twice. Unlike a
   * {@linkcode ProcessGroup}'s open sockets, a live communication thread keeps the process
   * running: close the group before the program ends.
   */
  close(): void {
    if (this.#failure === null) this.#closed = true;
    this.#fail(new CommError("The process group is closed", null));
  }

  #call(
    method: CollectiveName,
    op: string,
    buf: Float32Array | null,
    options: unknown,
    signal?: { buffer: SharedArrayBuffer; seq: number; errorAt: number },
  ): Promise<ThreadedCollectiveStats> {
    if (this.#failure) return Promise.reject(this.#rejection(op));
    const id = this.#nextId++;
    let posted: PostedBuffer = null;
    let copyBack: Float32Array | null = null;
    const transfer: Transferable[] = [];
    if (buf !== null) {
      const shared = this.#shared.get(buf.buffer);
      if (shared !== undefined) {
        posted = {
          shared,
          offset: buf.byteOffset / Float32Array.BYTES_PER_ELEMENT,
          length: buf.length,
        };
      } else if (buf.buffer instanceof SharedArrayBuffer) {
        posted = { view: buf, copied: false };
      } else {
        const copy = buf.slice();
        transfer.push(copy.buffer);
        posted = { view: copy, copied: true };
        copyBack = buf;
      }
    }
    return new Promise<ThreadedCollectiveStats>((resolve, reject) => {
      try {
        post(this.#worker, {
          kind: "call",
          id,
          method,
          buf: posted,
          options,
          ...(signal ? { signal } : {}),
        }, transfer);
      } catch (error) {
        // Options that cannot be cloned (a function, say): nothing was posted.
        reject(error);
        return;
      }
      this.#pending.set(id, { resolve, reject, copyBack, op });
    });
  }

  #answer(message: FromCommThread): void {
    if (message.kind !== "done" && message.kind !== "failed") return;
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    this.#pending.delete(message.id);
    if (message.kind === "failed") {
      pending.reject(reviveError(message.error));
      return;
    }
    if (pending.copyBack && message.result) pending.copyBack.set(message.result);
    const stats: ThreadedCollectiveStats = { ...message.stats, finishedAt: message.finishedAt };
    this.#totals.calls++;
    this.#totals.bytes += stats.bytes;
    this.#totals.waitMs += stats.waitMs;
    this.#totals.transferMs += stats.transferMs;
    pending.resolve(stats);
  }

  /** Ends the thread and rejects every pending and later call with `error`. */
  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#worker.terminate();
    for (const pending of this.#pending.values()) pending.reject(this.#rejection(pending.op));
    this.#pending.clear();
  }

  #rejection(op: string): Error {
    // Closed: the same message the ring gives a collective called after close().
    if (this.#closed) return new CommError(`Cannot run ${op}: the process group is closed`, null);
    return this.#failure!;
  }
}

function post(worker: Worker, message: ToCommThread, transfer: Transferable[] = []): void {
  worker.postMessage(message, transfer);
}

function describe(event: ErrorEvent): string {
  const where = event.filename ? ` (${event.filename}:${event.lineno}:${event.colno})` : "";
  return `${event.message}${where}`;
}

/**
 * Rebuilds an error of the communication thread with its class, message, `peer` and `cause`.
 * An ExpectedError of a class not rebuilt here becomes an ExpectedError with the same name.
 */
function reviveError(serialized: SerializedError): Error {
  const { name, message, peer, expected } = serialized;
  const options = serialized.cause ? { cause: reviveError(serialized.cause) } : undefined;
  let error: Error;
  if (name === "CallMismatchError") error = new CallMismatchError(message, peer);
  else if (name === "CommError") error = new CommError(message, peer, options);
  else if (name === "UsageError") error = new UsageError(message, options);
  else if (name === "JobMismatchError") error = new JobMismatchError(message, options);
  else if (name === "RangeError") error = new RangeError(message, options);
  else if (name === "TypeError") error = new TypeError(message, options);
  else {
    error = expected ? new ExpectedError(message, options) : new Error(message, options);
    error.name = name;
  }
  if (peer !== null && !(error instanceof CommError)) {
    (error as Error & { peer: number }).peer = peer;
  }
  error.stack = `${serialized.stack}\n    at (communication thread)\n` +
    (error.stack ?? "").split("\n").slice(1).join("\n");
  return error;
}
