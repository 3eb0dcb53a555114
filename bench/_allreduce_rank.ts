/**
 * Rank side of the all-reduce benchmark, started by `bench/allreduce.ts` through the
 * launcher. Its one argument is a JSON {@linkcode RankPlan}:
 *
 * - `raw`: two ranks send `bytes` to each other over one plain Unix socket, both directions
 *   at once, with no framing: the transport's ceiling.
 * - `ring`: every rank times `allReduce` on buffers of each size.
 *
 * Each rank reports its per-iteration times in µs with `reportResult`.
 *
 * @module
 */
import { join } from "node:path";
import { initProcessGroupFromEnv } from "../comm/init_process_group.ts";
import { readRankEnv } from "../comm/rank_env.ts";
import { reportResult } from "../comm/report_result.ts";
import { runRank } from "../comm/rank_main.ts";
import type { ReduceOp } from "../comm/process_group.ts";
import { readEnvInteger } from "../core/env_integer.ts";
import { evenSplit } from "../core/even_split.ts";
import { writeAtomic } from "../core/write_atomic.ts";

/** Pause between attempts to connect to the raw-throughput socket. */
/** Environment variable (tests only) naming a rank that sends wrong values under `-c 1`. */
export const CORRUPT_ENV = "PARATRAIN_TEST_CORRUPT_RANK";

const CONNECT_RETRY_MS = 20;
/** Attempts before giving up on the raw-throughput socket (× CONNECT_RETRY_MS = 10 s). */
const CONNECT_ATTEMPTS = 500;

/** One size to time. */
export interface SizePlan {
  bytes: number;
  warmup: number;
  iterations: number;
}

/** What a rank is asked to measure. */
/** The collectives the benchmark measures (nccl-tests' all_reduce_perf, all_gather_perf, …). */
export const COLLECTIVES = ["all-reduce", "all-gather", "reduce-scatter", "broadcast"] as const;

/** One of {@linkcode COLLECTIVES}. */
export type Collective = typeof COLLECTIVES[number];

export type RankPlan = {
  mode: "raw";
  size: SizePlan;
  transport?: "unix" | "tcp";
  /** The two ranks are on different hosts: they find each other through the TCP rendezvous. */
  acrossHosts?: boolean;
} | {
  mode: "ring";
  sizes: SizePlan[];
  collective?: Collective;
  op?: ReduceOp;
  /** Check each size once on known values and count the wrong elements (`-c 1`). */
  check?: boolean;
};

/** What a rank reports: per size, the time of each timed iteration in µs. */
export interface RankTimings {
  rank: number;
  /** `us`: in place; `usOutOfPlace`: into a separate output buffer (ring mode). */
  sizes: { bytes: number; us: number[]; usOutOfPlace?: number[]; wrong?: number }[];
}

if (import.meta.main) {
  const plan = JSON.parse(Deno.args[0]) as RankPlan;
  await runRank(async () => {
    const timings = plan.mode === "raw"
      ? await measureRaw(plan.size, plan.acrossHosts ? "hosts" : plan.transport ?? "unix")
      : await measureRing(plan);
    await reportResult(timings);
  });
}

async function measureRing(plan: Extract<RankPlan, { mode: "ring" }>): Promise<RankTimings> {
  const { sizes, collective = "all-reduce", op = "sum", check = false } = plan;
  const pg = await initProcessGroupFromEnv();
  const result: RankTimings = { rank: pg.rank, sizes: [] };
  const run = (buf: Float32Array) => {
    if (collective === "all-reduce") return pg.allReduce(buf, { op });
    if (collective === "reduce-scatter") return pg.reduceScatter(buf, { op });
    if (collective === "all-gather") return pg.allGather(buf);
    return pg.broadcast(buf, { root: 0 });
  };
  // Tests only: this rank sends wrong values, so that the check must see them.
  const corrupt = readEnvInteger(Deno.env.toObject(), CORRUPT_ENV) === pg.rank;
  for (const { bytes, warmup, iterations } of sizes) {
    const length = bytes / Float32Array.BYTES_PER_ELEMENT;
    const buf = new Float32Array(length);
    let wrong: number | undefined;
    if (check) {
      for (let i = 0; i < length; i++) buf[i] = checkValue(pg.rank, i) + (corrupt ? 1 : 0);
      await run(buf);
      wrong = countWrong(buf, { collective, op, rank: pg.rank, worldSize: pg.worldSize });
    } else {
      // Check once that the timed operation is right, as before any timing.
      buf.fill(1);
      await pg.allReduce(buf);
      if (buf.some((value) => value !== pg.worldSize)) {
        throw new Error(`All-reduce of ${bytes} bytes gave a wrong sum on rank ${pg.rank}`);
      }
    }
    // Timed on zeros: sums stay finite. Out of place: the input is copied into a separate
    // output buffer that the collective then works on (the copy is part of the time).
    buf.fill(0);
    const input = new Float32Array(length);
    const time = async (outOfPlace: boolean) => {
      const us: number[] = [];
      for (let i = 0; i < warmup + iterations; i++) {
        const start = performance.now();
        if (outOfPlace) buf.set(input);
        await run(buf);
        if (i >= warmup) us.push((performance.now() - start) * 1000);
      }
      return us;
    };
    const usOutOfPlace = await time(true);
    const us = await time(false);
    result.sizes.push({ bytes, us, usOutOfPlace, ...(wrong === undefined ? {} : { wrong }) });
  }
  pg.close();
  return result;
}

/** The known input of `rank` at element `i`: small integers, so every sum is exact. */
function checkValue(rank: number, i: number): number {
  return ((rank * 7 + i) % 13) + 1;
}

/** Elements of this rank's result that differ from what the collective must give. */
function countWrong(
  buf: Float32Array,
  c: { collective: Collective; op: ReduceOp; rank: number; worldSize: number },
): number {
  const { collective, op, rank, worldSize } = c;
  const chunks = evenSplit(buf.length, worldSize);
  const reduced = (i: number) => {
    const values = Array.from({ length: worldSize }, (_, r) => checkValue(r, i));
    if (op === "max") return Math.max(...values);
    if (op === "min") return Math.min(...values);
    const sum = values.reduce((a, b) => a + b, 0);
    return op === "avg" ? Math.fround(Math.fround(sum) / worldSize) : sum;
  };
  let wrong = 0;
  const compare = (i: number, expected: number) => {
    if (buf[i] !== expected) wrong++;
  };
  if (collective === "all-reduce") { for (let i = 0; i < buf.length; i++) compare(i, reduced(i)); }
  else if (collective === "broadcast") {
    for (let i = 0; i < buf.length; i++) compare(i, checkValue(0, i));
  } else if (collective === "reduce-scatter") {
    const { offset, length } = chunks[rank];
    for (let i = offset; i < offset + length; i++) compare(i, reduced(i));
  } else {
    for (const [owner, { offset, length }] of chunks.entries()) {
      for (let i = offset; i < offset + length; i++) compare(i, checkValue(owner, i));
    }
  }
  return wrong;
}

async function measureRaw(
  { bytes, warmup, iterations }: SizePlan,
  transport: "unix" | "tcp" | "hosts",
): Promise<RankTimings> {
  const { rank, worldSize, rendezvousDir } = readRankEnv();
  if (worldSize !== 2 || rendezvousDir === null) {
    throw new Error(`Raw throughput needs exactly 2 launched ranks, got ${worldSize}`);
  }
  const path = join(rendezvousDir, "raw.sock");
  const conn = transport === "hosts"
    ? await tcpPairAcrossHosts()
    : transport === "tcp"
    ? await tcpPair(rank, join(rendezvousDir, "raw.port"))
    : rank === 0
    ? await acceptOne(path)
    : await connectWithRetry(path);
  const outgoing = new Uint8Array(bytes).fill(rank + 1);
  const incoming = new Uint8Array(bytes);
  const us: number[] = [];
  for (let i = 0; i < warmup + iterations; i++) {
    const start = performance.now();
    await Promise.all([writeAll(conn, outgoing), readAll(conn, incoming)]);
    if (i >= warmup) us.push((performance.now() - start) * 1000);
  }
  conn.close();
  return { rank, sizes: [{ bytes, us }] };
}

/**
 * A TCP connection on loopback between the two ranks, as the ring's TCP links are (no delay):
 * rank 0 listens on a free port and writes it to `portFile`; rank 1 connects to it.
 */
async function tcpPair(rank: number, portFile: string): Promise<Deno.Conn> {
  if (rank === 0) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      await writeAtomic(portFile, String((listener.addr as Deno.NetAddr).port));
      const conn = await listener.accept();
      conn.setNoDelay(true);
      return conn;
    } finally {
      listener.close();
    }
  }
  for (let attempt = 1;; attempt++) {
    try {
      const port = Number(await Deno.readTextFile(portFile));
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.setNoDelay(true);
      return conn;
    } catch (error) {
      if (attempt >= CONNECT_ATTEMPTS) {
        throw new Error(`Cannot connect to rank 0: ${(error as Error).message}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, CONNECT_RETRY_MS));
    }
  }
}

/**
 * A TCP connection between two ranks on different hosts: they join a process group through the
 * job's TCP rendezvous, rank 0 listens where it serves the rendezvous (or its bind address) and
 * broadcasts the port, rank 1 connects to it.
 */
async function tcpPairAcrossHosts(): Promise<Deno.Conn> {
  const env = readRankEnv();
  const pg = await initProcessGroupFromEnv();
  try {
    const port = new Float32Array(1);
    if (pg.rank === 0) {
      const listener = Deno.listen({ hostname: env.bind ?? env.masterAddr!, port: 0 });
      try {
        port[0] = (listener.addr as Deno.NetAddr).port;
        await pg.broadcast(port);
        const conn = await listener.accept();
        conn.setNoDelay(true);
        return conn;
      } finally {
        listener.close();
      }
    }
    await pg.broadcast(port);
    const conn = await Deno.connect({ hostname: env.masterAddr!, port: port[0] });
    conn.setNoDelay(true);
    return conn;
  } finally {
    pg.close();
  }
}

async function acceptOne(path: string): Promise<Deno.Conn> {
  const listener = Deno.listen({ transport: "unix", path });
  try {
    return await listener.accept();
  } finally {
    listener.close();
  }
}

async function connectWithRetry(path: string): Promise<Deno.Conn> {
  for (let attempt = 1;; attempt++) {
    try {
      return await Deno.connect({ transport: "unix", path });
    } catch (error) {
      if (attempt >= CONNECT_ATTEMPTS) {
        throw new Error(`Cannot connect to rank 0: ${(error as Error).message}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, CONNECT_RETRY_MS));
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

async function readAll(conn: Deno.Conn, target: Uint8Array): Promise<void> {
  for (let filled = 0; filled < target.length;) {
    const n = await conn.read(target.subarray(filled));
    if (n === null) throw new Error("Rank closed the raw-throughput socket early");
    filled += n;
  }
}
