/**
 * Ring broadcast, in place: the root's buffer flows around the ring as a pipeline.
 *
 * ```
 *   root ──▶ root+1 ──▶ root+2 ──▶ ... ──▶ root−1   (the last rank does not forward)
 * ```
 *
 * A relaying rank forwards each piece as soon as it has arrived, so for large buffers the
 * time is about K / bandwidth, not N·K / bandwidth.
 *
 * @module
 */
import type { Ring } from "./_ring.ts";
import { runRingSchedule, type Step } from "./_ring_schedule.ts";

/**
 * Copies the root's `buf` into every other rank's `buf`.
 *
 * @param ring This rank's ring, with at least two ranks.
 * @param buf The root's data, or where the others receive it; same length everywhere.
 * @param root The rank whose buffer is broadcast.
 * @returns Payload bytes this rank sent.
 */
export async function ringBroadcast(ring: Ring, buf: Float32Array, root: number): Promise<number> {
  const whole = { offset: 0, length: buf.length };
  const receive: Step = { send: null, recv: whole, reduce: null, divideBy: 1 };
  const forward: Step = { send: whole, recv: null, reduce: null, divideBy: 1 };
  let steps: Step[];
  if (ring.rank === root) steps = [forward];
  else if (ring.sendTo === root) steps = [receive];
  else steps = [receive, forward];
  return await runRingSchedule(ring, buf, steps);
}
