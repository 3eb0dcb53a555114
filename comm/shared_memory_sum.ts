/**
 * A blocking sum across the threads of one process (DP's main thread and its Web Workers),
 * through one SharedArrayBuffer: what SyncBatchNorm needs in the middle of a synchronous
 * forward, where no message can be received.
 *
 * ```
 *   call k:  every party writes its values into its slot of set k mod 2
 *            arrives at the barrier (Atomics.add; the last one bumps the generation and
 *            notifies, the others Atomics.wait for it)
 *            reads every party's slot, in party order, and sums: the same floats, the same
 *            order, so every party ends with bit-identical sums
 * ```
 *
 * Two sets of slots, alternating: a party may write call k+1's values while a slower one still
 * reads call k's, and no party can reach call k+2 (the same set as k) before every party has
 * arrived at call k+1, that is, has finished reading call k.
 *
 * @module
 */
import { ExpectedError } from "../core/errors.ts";

/** Control words at the start of the buffer: arrivals at the barrier, and its generation. */
const ARRIVED = 0;
const GENERATION = 1;
const CONTROL_BYTES = 8;

/** A party waited longer than its timeout for the others. */
export class SharedSumTimeoutError extends ExpectedError {
  override name = "SharedSumTimeoutError";
}

/**
 * The shared memory of a {@linkcode SharedMemorySum} for `parties` threads summing at most
 * `maxFloats` floats per call: create it once, hand it to every party.
 *
 * @param parties threads taking part
 * @param maxFloats the longest sum
 * @returns the buffer
 * @example
 * ```ts
 * const buffer = createSharedSumBuffer(2, 64);
 * ```
 */
export function createSharedSumBuffer(parties: number, maxFloats: number): SharedArrayBuffer {
  return new SharedArrayBuffer(CONTROL_BYTES + 2 * parties * maxFloats * 4);
}

/** One party's handle on a shared sum. */
export class SharedMemorySum {
  readonly #control: Int32Array;
  readonly #slots: Float32Array;
  readonly #parties: number;
  readonly #party: number;
  readonly #maxFloats: number;
  readonly #timeoutMs: number;
  #calls = 0;

  /**
   * @param buffer from {@linkcode createSharedSumBuffer}, the same for every party
   * @param parties threads taking part
   * @param party this one, 0 ≤ party < parties
   * @param timeoutMs how long a call waits for the others before it throws
   */
  constructor(buffer: SharedArrayBuffer, parties: number, party: number, timeoutMs: number) {
    this.#control = new Int32Array(buffer, 0, 2);
    this.#slots = new Float32Array(buffer, CONTROL_BYTES);
    this.#parties = parties;
    this.#party = party;
    this.#maxFloats = this.#slots.length / (2 * parties);
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Replace `values` by their element-wise sum over every party, blocking until all have
   * contributed. Every party calls it the same number of times with the same length.
   *
   * @param values this party's values; the sums on return
   * @throws SharedSumTimeoutError when the others do not arrive within the timeout
   */
  sum(values: Float32Array): void {
    const n = values.length;
    if (n > this.#maxFloats) {
      throw new RangeError(`Cannot sum ${n} floats: the shared buffer holds ${this.#maxFloats}`);
    }
    const set = (this.#calls++ % 2) * this.#parties;
    const slot = (party: number) =>
      this.#slots.subarray((set + party) * this.#maxFloats, (set + party) * this.#maxFloats + n);
    slot(this.#party).set(values);
    this.#barrier();
    values.set(slot(0));
    for (let party = 1; party < this.#parties; party++) {
      const theirs = slot(party);
      for (let i = 0; i < n; i++) values[i] += theirs[i];
    }
  }

  /** Returns once every party has arrived (the generation has moved past this one's). */
  #barrier(): void {
    const c = this.#control;
    const generation = Atomics.load(c, GENERATION);
    if (Atomics.add(c, ARRIVED, 1) === this.#parties - 1) {
      Atomics.store(c, ARRIVED, 0);
      Atomics.add(c, GENERATION, 1);
      Atomics.notify(c, GENERATION);
      return;
    }
    const t0 = performance.now();
    while (Atomics.load(c, GENERATION) === generation) {
      const left = this.#timeoutMs - (performance.now() - t0);
      if (left <= 0) {
        throw new SharedSumTimeoutError(
          `Replica ${this.#party} waited ${
            Math.round(this.#timeoutMs / 1000)
          } s for the other replicas' batch statistics`,
        );
      }
      Atomics.wait(c, GENERATION, generation, left);
    }
  }
}
