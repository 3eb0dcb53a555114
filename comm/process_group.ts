/**
 * The process group: the collectives one rank can call, with per-call statistics.
 *
 * @module
 */
import { exchangeCalls } from "./_call_exchange.ts";
import type { Ring } from "./_ring.ts";
import {
  type ReduceOp,
  ringAllGather,
  ringAllReduce,
  ringReduceScatter,
} from "./_ring_all_reduce.ts";
import { ringBroadcast } from "./_ring_broadcast.ts";
import { fastWireCodec } from "./wire_codec.ts";
import type { GradCompression } from "../core/run_types.ts";

export type { ReduceOp };

/** What one collective cost this rank. */
export interface CollectiveStats {
  /** "all-reduce", "broadcast" or "barrier". */
  op: string;
  /** Payload bytes this rank sent (frame headers and call records not counted). */
  bytes: number;
  /** Time waiting for the slowest rank to arrive: the call exchange before any data moves. */
  waitMs: number;
  /** Time moving (and reducing) the data. */
  transferMs: number;
  /** When the call began and ended on this rank, µs on the host's clock (`timeOrigin + now()`). */
  startUs: number;
  endUs: number;
}

/** Running totals over every collective this rank has called. */
export interface CommTotals {
  /** Collectives called. */
  calls: number;
  /** Payload bytes sent. */
  bytes: number;
  /** Time spent waiting for other ranks to arrive. */
  waitMs: number;
  /** Time spent moving data. */
  transferMs: number;
}

/** Options for {@linkcode ProcessGroup.allReduce}. */
export interface AllReduceOptions {
  /** "sum" (default), "avg" (the sum divided by the world size), "max" or "min". */
  op?: ReduceOp;
  /**
   * All-reduce only: values on the wire as float32 (`none`, default) or cast to fp16 / bf16
   * (half the bytes), every reduction still computed in float32. Every rank must pass the same.
   */
  compression?: GradCompression;
}

/** Options for {@linkcode ProcessGroup.broadcast}. */
export interface BroadcastOptions {
  /** The rank whose buffer is copied to all others (default 0). */
  root?: number;
}

/**
 * One rank's handle on the job: rank, world size and the collectives. Every rank must call
 * the same collectives in the same order with buffers of the same length; a mismatch is
 * detected before any data moves and rejects on every rank. Calls made without awaiting the
 * previous one run one after another, in call order.
 *
 * Create it with {@linkcode initProcessGroup} or {@linkcode initProcessGroupFromEnv}.
 */
export class ProcessGroup {
  /** This process's rank, 0 ≤ rank < worldSize. */
  readonly rank: number;
  /** Number of ranks in the job. */
  readonly worldSize: number;

  #ring: Ring | null;
  #seq = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #totals: CommTotals = { calls: 0, bytes: 0, waitMs: 0, transferMs: 0 };

  /**
   * Wraps a connected ring; use {@linkcode initProcessGroup} rather than calling this.
   *
   * @param rank This rank.
   * @param worldSize Ranks in the job.
   * @param ring The connected ring, or null for a world of one.
   */
  constructor(rank: number, worldSize: number, ring: Ring | null) {
    this.rank = rank;
    this.worldSize = worldSize;
    this.#ring = ring;
  }

  /**
   * How this rank's links run: `tcp` when either is TCP, `unix` for Unix sockets (and for a
   * world of one, which has no links).
   *
   * @returns The transport.
   */
  get transport(): "unix" | "tcp" {
    return this.#ring?.transport ?? "unix";
  }

  /**
   * Sums (or averages) `buf` across all ranks, in place, with a ring all-reduce. Every rank
   * ends with bit-identical contents.
   *
   * @param buf This rank's values; replaced by the result.
   * @param options `op`: "sum" (default), "avg", "max" or "min"; `compression`: none, fp16
   *   or bf16.
   * @returns What the call cost this rank.
   * @example
   * ```ts
   * import { initProcessGroupFromEnv } from "./init_process_group.ts";
   * const pg = await initProcessGroupFromEnv();
   * const grads = new Float32Array([pg.rank, 1]);
   * await pg.allReduce(grads, { op: "avg" });
   * ```
   */
  async allReduce(buf: Float32Array, options: AllReduceOptions = {}): Promise<CollectiveStats> {
    const reduce = checkOp(options.op);
    const codec = await fastWireCodec(options.compression);
    return await this.#collective(
      {
        op: "all-reduce",
        length: buf.length,
        root: 0,
        reduce: codec ? `${reduce}/${codec.name}` : reduce,
      },
      (ring) => ringAllReduce(ring, buf, reduce, codec),
    );
  }

  /**
   * Reduce-scatter in place: afterwards this rank's chunk (chunk `rank` of the buffer cut
   * into `worldSize` nearly equal chunks) holds the reduction of every rank's same chunk;
   * the rest of the buffer is scratch.
   *
   * @param buf The same length on every rank.
   * @param options `op`: "sum" (default), "avg", "max" or "min".
   * @returns bytes moved and time spent.
   * @example
   * ```ts
   * import { initProcessGroupFromEnv } from "./init_process_group.ts";
   * const pg = await initProcessGroupFromEnv();
   * await pg.reduceScatter(new Float32Array(1024));
   * ```
   */
  async reduceScatter(buf: Float32Array, options: AllReduceOptions = {}): Promise<CollectiveStats> {
    const reduce = checkOp(options.op);
    return await this.#collective(
      { op: "reduce-scatter", length: buf.length, root: 0, reduce },
      (ring) => ringReduceScatter(ring, buf, reduce),
    );
  }

  /**
   * All-gather in place: every rank contributes its chunk (chunk `rank`) of `buf`; afterwards
   * every rank's `buf` holds all of them.
   *
   * @param buf The same length on every rank.
   * @returns bytes moved and time spent.
   * @example
   * ```ts
   * import { initProcessGroupFromEnv } from "./init_process_group.ts";
   * const pg = await initProcessGroupFromEnv();
   * await pg.allGather(new Float32Array(1024));
   * ```
   */
  async allGather(buf: Float32Array): Promise<CollectiveStats> {
    return await this.#collective(
      { op: "all-gather", length: buf.length, root: 0, reduce: "" },
      (ring) => ringAllGather(ring, buf),
    );
  }

  /**
   * Copies the root's `buf` into every other rank's `buf`, in place.
   *
   * @param buf The root's data, or where the others receive it.
   * @param options `root` (default 0).
   * @returns What the call cost this rank.
   * @example
   * ```ts
   * import { initProcessGroupFromEnv } from "./init_process_group.ts";
   * const pg = await initProcessGroupFromEnv();
   * const params = new Float32Array(1000); // rank 0 fills it
   * await pg.broadcast(params, { root: 0 });
   * ```
   */
  async broadcast(buf: Float32Array, options: BroadcastOptions = {}): Promise<CollectiveStats> {
    const { root = 0 } = options;
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) {
      throw new RangeError(`Invalid broadcast root ${root}: expected 0 to ${this.worldSize - 1}`);
    }
    return await this.#collective(
      { op: "broadcast", length: buf.length, root, reduce: "" },
      (ring) => ringBroadcast(ring, buf, root),
    );
  }

  /**
   * Waits until every rank has called `barrier()`.
   *
   * @returns What the call cost this rank (all of it is `waitMs`).
   * @example
   * ```ts
   * import { initProcessGroupFromEnv } from "./init_process_group.ts";
   * const pg = await initProcessGroupFromEnv();
   * await pg.barrier();
   * ```
   */
  barrier(): Promise<CollectiveStats> {
    return this.#collective(
      { op: "barrier", length: 0, root: 0, reduce: "" },
      () => Promise.resolve(0),
    );
  }

  /** Totals over every collective called so far. */
  get totals(): CommTotals {
    return { ...this.#totals };
  }

  /** Closes the connections. Collectives called afterwards reject. */
  close(): void {
    this.#ring?.close();
  }

  #collective(
    call: { op: string; length: number; root: number; reduce: string },
    move: (ring: Ring) => Promise<number>,
  ): Promise<CollectiveStats> {
    const run = this.#queue.then(async () => {
      const seq = this.#seq++;
      const ring = this.#ring;
      // A world of one has nothing to exchange: the buffer already is the result.
      if (ring === null) {
        const now = hostUs(performance.now());
        return this.#record({
          op: call.op,
          bytes: 0,
          waitMs: 0,
          transferMs: 0,
          startUs: now,
          endUs: now,
        });
      }
      return await ring.run(call.op, async () => {
        const start = performance.now();
        await exchangeCalls(ring, { ...call, seq });
        const arrived = performance.now();
        const bytes = await move(ring);
        const end = performance.now();
        return this.#record({
          op: call.op,
          bytes,
          waitMs: arrived - start,
          transferMs: end - arrived,
          startUs: hostUs(start),
          endUs: hostUs(end),
        });
      });
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  #record(stats: CollectiveStats): CollectiveStats {
    this.#totals.calls++;
    this.#totals.bytes += stats.bytes;
    this.#totals.waitMs += stats.waitMs;
    this.#totals.transferMs += stats.transferMs;
    return stats;
  }
}

/** `performance.now()` as µs on the host's clock, which every process and thread reads alike. */
function hostUs(now: number): number {
  return (performance.timeOrigin + now) * 1000;
}

/** The reduce ops the collectives take. */
export const REDUCE_OPS: readonly ReduceOp[] = ["sum", "avg", "max", "min"];

function checkOp(op: ReduceOp | undefined): ReduceOp {
  const reduce = op ?? "sum";
  if (!REDUCE_OPS.includes(reduce)) {
    throw new Error(`Unknown reduce op "${reduce}": expected ${REDUCE_OPS.join(", ")}`);
  }
  return reduce;
}
