/**
 * Ring all-reduce, in place (the Baidu / Horovod algorithm).
 *
 * ```
 *      ┌──────────▶ rank 1 ──────────┐        every rank sends only to its right
 *      │                             ▼        neighbour and receives only from its
 *   rank 0                         rank 2     left one, so every link carries the
 *      ▲                             │        same load at the same time
 *      └────────── rank N−1 ◀── ... ◀┘
 * ```
 *
 * The buffer (K bytes) is cut into N chunks, chunk c starting at about c·K/N.
 *
 * - Phase 1, reduce-scatter (N−1 steps): at step s, rank r sends chunk (r − s) mod N and
 *   receives chunk (r − s − 1) mod N, adding it into its own copy. Afterwards rank r holds the
 *   complete sum of chunk (r + 1) mod N.
 * - Phase 2, all-gather (N−1 steps): at step s, rank r sends chunk (r + 1 − s) mod N and
 *   receives chunk (r − s) mod N, overwriting its copy. Afterwards every rank holds every
 *   complete chunk, bit for bit the same.
 *
 * Each rank sends 2(N−1) chunks of K/N bytes: 2K(N−1)/N bytes in all, nearly 2K however many
 * ranks there are. Every step sends and receives at once, and each chunk received is sent on
 * piece by piece as it arrives (see `_ring_schedule.ts`).
 *
 * @module
 */
import { evenSplit } from "../core/even_split.ts";
import type { Ring } from "./_ring.ts";
import { runRingSchedule, type Step } from "./_ring_schedule.ts";

/** How an all-reduce combines the ranks' buffers. */
export type ReduceOp = "sum" | "avg";

/**
 * Sums (or averages) `buf` across the ring, in place.
 *
 * @param ring This rank's ring, with at least two ranks.
 * @param buf This rank's buffer; every rank's has the same length (checked beforehand).
 * @param reduce "sum", or "avg" to divide the sum by the world size.
 * @returns Payload bytes this rank sent.
 */
export async function ringAllReduce(
  ring: Ring,
  buf: Float32Array,
  reduce: ReduceOp,
): Promise<number> {
  const n = ring.size;
  const rank = ring.rank;
  // Chunk sizes differ by at most one; with fewer elements than ranks some chunks are empty,
  // both neighbours know it and skip them, so no empty frame is ever sent.
  const chunks = evenSplit(buf.length, n);
  const chunk = (index: number) => chunks[((index % n) + n) % n];
  const steps: Step[] = [];

  // Phase 1, reduce-scatter: pass partial sums to the right, adding what comes from the left.
  for (let s = 0; s < n - 1; s++) {
    steps.push({ send: chunk(rank - s), recv: chunk(rank - s - 1), add: true, divideBy: 1 });
  }
  // Rank r now owns the complete sum of chunk r + 1: averaging it, once, is enough.
  if (reduce === "avg") steps[steps.length - 1].divideBy = n;

  // Phase 2, all-gather: pass complete chunks to the right, straight into the flat buffer.
  for (let s = 0; s < n - 1; s++) {
    steps.push({ send: chunk(rank + 1 - s), recv: chunk(rank - s), add: false, divideBy: 1 });
  }

  return await runRingSchedule(ring, buf, steps);
}
