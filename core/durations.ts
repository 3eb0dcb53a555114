/**
 * Durations that become timers: JavaScript timers hold at most 2³¹ − 1 ms (about 24.8 days);
 * a longer delay fires after 1 ms. Every duration a user can set is checked against this
 * before anything starts.
 *
 * @module
 */
import { UsageError } from "./errors.ts";

/** The longest delay `setTimeout` honours, in ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Checks that `ms` is a delay a timer can hold.
 *
 * @param ms the delay
 * @param what what it is, for the message (e.g. `--collective-timeout`)
 * @returns `ms`
 * @throws UsageError when it is not a positive finite number of at most {@linkcode MAX_TIMER_MS}
 * @example
 * ```ts
 * timerMs(60_000, "--collective-timeout"); // 60000
 * ```
 */
export function timerMs(ms: number, what: string): number {
  if (!(ms > 0 && ms <= MAX_TIMER_MS)) {
    throw new UsageError(
      `Invalid ${what}: ${ms} ms is not a delay a timer can hold (1 ms to ${MAX_TIMER_MS} ms, about 24.8 days)`,
    );
  }
  return ms;
}

/**
 * Formats milliseconds as seconds for messages: 2000 → "2 s", 1500 → "1.5 s".
 *
 * @param ms Duration in milliseconds.
 * @returns The duration in seconds with a unit.
 * @example
 * ```ts
 * formatSeconds(1500); // "1.5 s"
 * ```
 */
export function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}
