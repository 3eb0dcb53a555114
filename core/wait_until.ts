/**
 * Blocking on a shared counter from a thread that cannot return to its event loop: a DDP
 * rank's main thread inside a synchronous forward, waiting for its communication thread; the
 * `native` backend's main thread waiting for its compute threads, and those waiting for a job.
 *
 * @module
 */

/** How to wait: spin first, and (for tests) what runs between a check and a sleep. */
export interface WaitOptions {
  /**
   * Poll the counter for this long before sleeping (default 0): where a wake-up from the
   * kernel costs tens of microseconds against work of about a hundred, polling a while first
   * pays, as OpenBLAS's own threads do.
   */
  spinMs?: number;
  /** Runs after each check, before the thread sleeps: the window another thread's store can land in. */
  beforeWait?: () => void;
}

/**
 * Blocks this thread (`Atomics.wait`) until `flag[index]` reaches `target`, or `timeoutMs`
 * passes. It waits on the value it last checked, never on a fresh read: a store and notify
 * landing between the check and the wait then wakes it at once, where waiting on a re-read
 * value would sleep through that notify until the timeout.
 *
 * @param flag the shared counter
 * @param index its slot
 * @param target the value (or more) to wait for
 * @param timeoutMs how long to wait at most
 * @param options see {@linkcode WaitOptions}
 * @returns whether the counter reached `target` in time
 * @example
 * ```ts
 * const flag = new Int32Array(new SharedArrayBuffer(4));
 * waitUntilReached(flag, 0, 1, 10); // false: nothing stored it
 * ```
 */
export function waitUntilReached(
  flag: Int32Array,
  index: number,
  target: number,
  timeoutMs: number,
  options: WaitOptions = {},
): boolean {
  const { spinMs = 0, beforeWait } = options;
  const t0 = performance.now();
  let seen = Atomics.load(flag, index);
  if (spinMs > 0) {
    const spinUntil = t0 + Math.min(spinMs, timeoutMs);
    // The clock is read every 64 polls: a poll costs nanoseconds, a clock read more.
    for (let i = 1; seen < target; i++) {
      if ((i & 63) === 0 && performance.now() >= spinUntil) break;
      seen = Atomics.load(flag, index);
    }
  }
  while (seen < target) {
    const left = timeoutMs - (performance.now() - t0);
    if (left <= 0) return false;
    beforeWait?.();
    Atomics.wait(flag, index, seen, left);
    seen = Atomics.load(flag, index);
  }
  return true;
}
