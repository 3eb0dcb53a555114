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

/** Pause between attempts to connect to the raw-throughput socket. */
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
export type RankPlan = { mode: "raw"; size: SizePlan } | { mode: "ring"; sizes: SizePlan[] };

/** What a rank reports: per size, the time of each timed iteration in µs. */
export interface RankTimings {
  rank: number;
  sizes: { bytes: number; us: number[] }[];
}

if (import.meta.main) {
  const plan = JSON.parse(Deno.args[0]) as RankPlan;
  await runRank(async () => {
    const timings = plan.mode === "raw"
      ? await measureRaw(plan.size)
      : await measureRing(plan.sizes);
    await reportResult(timings);
  });
}

async function measureRing(sizes: SizePlan[]): Promise<RankTimings> {
  const pg = await initProcessGroupFromEnv();
  const result: RankTimings = { rank: pg.rank, sizes: [] };
  for (const { bytes, warmup, iterations } of sizes) {
    const buf = new Float32Array(bytes / Float32Array.BYTES_PER_ELEMENT);
    // Check once that the timed operation is right, then time it on zeros (sums stay finite).
    buf.fill(1);
    await pg.allReduce(buf);
    if (buf.some((value) => value !== pg.worldSize)) {
      throw new Error(`All-reduce of ${bytes} bytes gave a wrong sum on rank ${pg.rank}`);
    }
    buf.fill(0);
    const us: number[] = [];
    for (let i = 0; i < warmup + iterations; i++) {
      const start = performance.now();
      await pg.allReduce(buf);
      if (i >= warmup) us.push((performance.now() - start) * 1000);
    }
    result.sizes.push({ bytes, us });
  }
  pg.close();
  return result;
}

async function measureRaw({ bytes, warmup, iterations }: SizePlan): Promise<RankTimings> {
  const { rank, worldSize, rendezvousDir } = readRankEnv();
  if (worldSize !== 2 || rendezvousDir === null) {
    throw new Error(`Raw throughput needs exactly 2 launched ranks, got ${worldSize}`);
  }
  const path = join(rendezvousDir, "raw.sock");
  const conn = rank === 0 ? await acceptOne(path) : await connectWithRetry(path);
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
