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
import { evenSplit, type Range } from "../core/even_split.ts";
import type { Ring } from "./_ring.ts";
import { runRingSchedule, type Step } from "./_ring_schedule.ts";
import type { WireCodec } from "./wire_codec.ts";

/** How an all-reduce combines the ranks' buffers. */
export type ReduceOp = "sum" | "avg" | "max" | "min";

/** The chunk schedule of a buffer over `n` ranks: chunk c is `chunk(c)`, any integer c. */
function chunking(length: number, n: number) {
  const chunks = evenSplit(length, n);
  return (index: number) => chunks[((index % n) + n) % n];
}

/**
 * Reduce-scatter steps: partial results passed right, combined with what comes from the
 * left; afterwards rank r holds the complete result of chunk `r + shift`.
 */
function reduceScatterSteps(
  rank: number,
  n: number,
  chunk: (i: number) => Range,
  reduce: ReduceOp,
  shift: number,
  round = false,
): Step[] {
  const combine = reduce === "avg" ? "sum" : reduce;
  const steps: Step[] = [];
  for (let s = 0; s < n - 1; s++) {
    steps.push({
      send: chunk(rank + shift - 1 - s),
      recv: chunk(rank + shift - 2 - s),
      reduce: combine,
      divideBy: 1,
    });
  }
  // Rank r now owns the complete sum of its chunk: averaging it, once, is enough.
  if (reduce === "avg" && steps.length) steps[steps.length - 1].divideBy = n;
  if (round && steps.length) steps[steps.length - 1].round = true;
  return steps;
}

/** All-gather steps: complete chunks passed right, from rank r's chunk `r + shift`. */
function allGatherSteps(
  rank: number,
  n: number,
  chunk: (i: number) => Range,
  shift: number,
): Step[] {
  const steps: Step[] = [];
  for (let s = 0; s < n - 1; s++) {
    steps.push({
      send: chunk(rank + shift - s),
      recv: chunk(rank + shift - 1 - s),
      reduce: null,
      divideBy: 1,
    });
  }
  return steps;
}

/**
 * All-reduce `buf` in place across the ring: reduce-scatter, then all-gather.
 *
 * @param ring the connected ring
 * @param buf the buffer, the same length on every rank
 * @param reduce sum, avg (sum ÷ N), max or min
 * @param codec 16-bit values on the wire, reduced in float32 (each rank's complete chunk is
 *   rounded to the codec before it is passed on, so every rank ends bit-identical); null for
 *   float32
 * @returns bytes this rank sent
 */
export async function ringAllReduce(
  ring: Ring,
  buf: Float32Array,
  reduce: ReduceOp,
  codec: WireCodec | null = null,
): Promise<number> {
  const { rank, size: n } = ring;
  // Chunk sizes differ by at most one; with fewer elements than ranks some chunks are empty,
  // both neighbours know it and skip them, so no empty frame is ever sent.
  const chunk = chunking(buf.length, n);
  return await runRingSchedule(ring, buf, [
    ...reduceScatterSteps(rank, n, chunk, reduce, 1, codec !== null),
    ...allGatherSteps(rank, n, chunk, 1),
  ], codec);
}

/**
 * Reduce-scatter in place: afterwards chunk r of rank r's `buf` holds the reduction of every
 * rank's chunk r (chunks as {@linkcode evenSplit} cuts the buffer); the rest is scratch.
 *
 * @param ring the connected ring
 * @param buf the buffer, the same length on every rank
 * @param reduce sum, avg, max or min
 * @returns bytes this rank sent
 */
export async function ringReduceScatter(
  ring: Ring,
  buf: Float32Array,
  reduce: ReduceOp,
): Promise<number> {
  const chunk = chunking(buf.length, ring.size);
  return await runRingSchedule(
    ring,
    buf,
    reduceScatterSteps(ring.rank, ring.size, chunk, reduce, 0),
  );
}

/**
 * All-gather in place: every rank contributes its chunk r of `buf`; afterwards every rank's
 * `buf` holds every rank's chunk.
 *
 * @param ring the connected ring
 * @param buf the buffer, the same length on every rank
 * @returns bytes this rank sent
 */
export async function ringAllGather(ring: Ring, buf: Float32Array): Promise<number> {
  const chunk = chunking(buf.length, ring.size);
  return await runRingSchedule(ring, buf, allGatherSteps(ring.rank, ring.size, chunk, 0));
}
