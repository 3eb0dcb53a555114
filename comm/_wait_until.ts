/**
 * Blocking on a shared counter from a thread that cannot return to its event loop (a DDP
 * rank's main thread inside a synchronous forward, waiting for its communication thread).
 *
 * @module
 */

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
 * @param beforeWait runs after each check, before the thread sleeps: the window another
 *   thread's store can land in (tests land one there)
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
  beforeWait?: () => void,
): boolean {
  const t0 = performance.now();
  let seen = Atomics.load(flag, index);
  while (seen < target) {
    const left = timeoutMs - (performance.now() - t0);
    if (left <= 0) return false;
    beforeWait?.();
    Atomics.wait(flag, index, seen, left);
    seen = Atomics.load(flag, index);
  }
  return true;
}
