/**
 * Runs a ring collective's schedule: a list of steps, each sending one chunk of the flat
 * buffer to the right neighbour and/or receiving one from the left.
 *
 * Sending and receiving run at the same time, as two loops over the schedule: a rank that
 * wrote a whole chunk before reading would deadlock as soon as a chunk outgrew the socket
 * buffers. In every ring collective, what step s + 1 sends is what step s received (it is
 * forwarded), so the sending loop sends each piece of it as soon as the receiving loop has it,
 * rather than waiting for the whole step: neither direction idles at step boundaries.
 *
 * Each non-empty chunk travels as one frame; empty chunks are skipped on both sides.
 *
 * @module
 */
import type { Range } from "../core/even_split.ts";
import { type Combine, type Ring, subChunks } from "./_ring.ts";
import { CODEC_BYTES_PER_ELEMENT, type WireCodec } from "./wire_codec.ts";

/** One step of a schedule. */
export interface Step {
  /** The chunk sent right; for every step but the first, the previous step's `recv`. */
  send: Range | null;
  /** The chunk received from the left. */
  recv: Range | null;
  /** Combine the received chunk with the buffer's (sum, max or min), or null to overwrite it. */
  reduce: Combine | null;
  /** Divide the received chunk by this once it has arrived (averaging); 1 for none. */
  divideBy: number;
  /**
   * With a codec: round the received (now complete) chunk to what the wire carries, so this
   * rank keeps exactly what it will send its peers and every rank ends bit-identical.
   */
  round?: boolean;
}

/**
 * Runs `steps` on this rank.
 *
 * @param ring This rank's ring.
 * @param buf The flat buffer the chunks are ranges of.
 * @param steps The schedule; identical in shape on every rank.
 * @param codec Send 16-bit values (`--grad-compression`), reducing in float32; null for float32.
 * @returns Payload bytes this rank sent.
 */
export async function runRingSchedule(
  ring: Ring,
  buf: Float32Array,
  steps: Step[],
  codec: WireCodec | null = null,
): Promise<number> {
  const bytesPerElement = codec ? CODEC_BYTES_PER_ELEMENT : Float32Array.BYTES_PER_ELEMENT;
  const arrived = new Progress();
  const receiving = async () => {
    for (const [step, { recv, reduce, divideBy, round }] of steps.entries()) {
      if (recv === null || recv.length === 0) continue;
      await ring.recvHeader(recv.length * bytesPerElement);
      for (const [index, piece] of [...subChunks(recv)].entries()) {
        if (reduce) await ring.recvElementsAndReduce(buf, piece, reduce, codec);
        else await ring.recvElements(buf, piece, codec);
        // With a codec, the owner's average is divided and rounded in one pass.
        if (round && codec) ring.round(buf, piece, codec, divideBy);
        else if (divideBy !== 1) divide(buf, piece, divideBy);
        arrived.mark(step, index);
      }
    }
  };
  const sending = async () => {
    let bytesSent = 0;
    for (const [step, { send }] of steps.entries()) {
      if (send === null || send.length === 0) continue;
      if (step > 0) assertForwarded(send, steps[step - 1].recv);
      await ring.sendHeader(send.length * bytesPerElement);
      for (const [index, piece] of [...subChunks(send)].entries()) {
        if (step > 0) await arrived.reached(step - 1, index);
        await ring.sendElements(buf, piece, codec);
      }
      bytesSent += send.length * bytesPerElement;
    }
    return bytesSent;
  };
  try {
    const [bytesSent] = await Promise.all([sending(), receiving()]);
    return bytesSent;
  } catch (error) {
    arrived.fail(error);
    throw error;
  }
}

function assertForwarded(send: Range, received: Range | null): void {
  if (received?.offset !== send.offset || received.length !== send.length) {
    throw new Error("Invalid ring schedule: a step must send what the step before received");
  }
}

function divide(buf: Float32Array, range: Range, divisor: number): void {
  for (let i = range.offset; i < range.offset + range.length; i++) buf[i] /= divisor;
}

/** How far the receiving loop has got, in (step, piece) order; the sending loop waits on it. */
class Progress {
  #step = -1;
  #index = -1;
  #waiter:
    | { step: number; index: number; resolve: () => void; reject: (e: unknown) => void }
    | null = null;

  /** Records that piece `index` of `step` has arrived. */
  mark(step: number, index: number): void {
    this.#step = step;
    this.#index = index;
    const waiter = this.#waiter;
    if (waiter && this.#hasReached(waiter.step, waiter.index)) {
      this.#waiter = null;
      waiter.resolve();
    }
  }

  /** Resolves once piece `index` of `step` has arrived. */
  reached(step: number, index: number): Promise<void> {
    if (this.#hasReached(step, index)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiter = { step, index, resolve, reject };
    });
  }

  /** Releases a waiting sender when the receiving side failed. */
  fail(error: unknown): void {
    this.#waiter?.reject(error);
    this.#waiter = null;
  }

  #hasReached(step: number, index: number): boolean {
    return this.#step > step || (this.#step === step && this.#index >= index);
  }
}
