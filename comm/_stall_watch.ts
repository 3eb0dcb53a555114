/**
 * Whether this thread itself stopped running for a while: a tick every
 * {@linkcode STALL_TICK_MS}, and any gap between ticks much longer than that is a stall — the
 * process was paused (SIGSTOP, a suspended VM) or the thread was blocked in a long synchronous
 * call. When a collective fails, the ring asks: a rank that was itself frozen while its peers
 * waited is the one to blame, not the peer that gave up on it.
 *
 * @module
 */

/** How often the watch ticks. */
export const STALL_TICK_MS = 200;
/** A gap between ticks longer than this (beyond the tick itself) is recorded as a stall. */
const STALL_MIN_MS = 1_000;
/** Stalls remembered (the latest). */
const STALLS_KEPT = 8;

/** A period this thread did not run, `performance.now()` ms. */
interface Stall {
  start: number;
  end: number;
}

/** Watches this thread's event loop for stalls; call `stop()` when done. */
export class StallWatch {
  #last = performance.now();
  #stalls: Stall[] = [];
  #timer: ReturnType<typeof setInterval>;

  /** Starts ticking (the timer does not keep the process alive). */
  constructor() {
    this.#timer = setInterval(() => this.#tick(performance.now()), STALL_TICK_MS);
    const timer = this.#timer as unknown;
    if (typeof timer === "number") Deno.unrefTimer(timer);
    else (timer as { unref(): void }).unref();
  }

  #tick(now: number): void {
    if (now - this.#last - STALL_TICK_MS >= STALL_MIN_MS) {
      this.#stalls.push({ start: this.#last, end: now });
      if (this.#stalls.length > STALLS_KEPT) this.#stalls.shift();
    }
    this.#last = now;
  }

  /**
   * The longest time this thread did not run that ended after `since`, counting the gap up to
   * now when the thread has just resumed and not ticked yet.
   *
   * @param since `performance.now()` ms
   * @returns ms (0 when none)
   */
  longestSince(since: number): number {
    const now = performance.now();
    const current = now - this.#last - STALL_TICK_MS >= STALL_MIN_MS ? now - this.#last : 0;
    const past = this.#stalls.filter((s) => s.end >= since).map((s) => s.end - s.start);
    return Math.max(current, ...past, 0);
  }

  /** Stops ticking. */
  stop(): void {
    clearInterval(this.#timer);
  }
}
