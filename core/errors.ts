/**
 * The failures paratrain expects and explains in one line. Anything derived from
 * {@linkcode ExpectedError} is printed as its message alone, without a stack trace; any
 * other error is a bug and keeps its stack.
 *
 * @module
 */

/** A failure with a complete one-line explanation (bad input, a dead peer, a diverged run). */
export class ExpectedError extends Error {
  override name = "ExpectedError";
}

/** An error in what the user asked for: the CLI prints its message and exits 2. */
export class UsageError extends ExpectedError {
  override name = "UsageError";
}

/** A run stopped by a signal (SIGINT, SIGTERM): the CLI exits 128 + the signal's number. */
export class InterruptedError extends ExpectedError {
  override name = "InterruptedError";
  /** The signal that stopped the run. */
  readonly signal: Deno.Signal;

  /**
   * @param signal the signal received
   * @param what what it stopped, for the message
   */
  constructor(signal: Deno.Signal, what: string) {
    super(`${what} interrupted by ${signal}`);
    this.signal = signal;
  }
}

/** Exit status of a process stopped by each signal paratrain handles (128 + number). */
export const SIGNAL_EXIT_CODES: Partial<Record<Deno.Signal, number>> = {
  SIGHUP: 129,
  SIGINT: 130,
  SIGQUIT: 131,
  SIGUSR1: 138,
  SIGUSR2: 140,
  SIGALRM: 142,
  SIGTERM: 143,
};

/**
 * The signals that end a process by default and that it can catch (SIGKILL and SIGSTOP
 * cannot be): where paratrain holds something to clean up — ranks to stop, a rendezvous or
 * socket directory, a set of reports half written — it catches every one of them, cleans up,
 * and exits as the signal would have (128 + its number).
 */
export const STOP_SIGNALS: Deno.Signal[] = [
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGALRM",
  "SIGTERM",
];

/** Longest sequence of characters of one user-supplied value quoted in a message. */
const QUOTE_LIMIT = 80;

/**
 * A user-supplied value as an error message quotes it: control characters escaped (no raw
 * escape sequences reach a terminal) and long values cut to {@linkcode QUOTE_LIMIT}
 * characters.
 *
 * @param value what the user typed
 * @returns a printable, bounded form of it, in double quotes
 * @example
 * ```ts
 * quote("nope"); // "\"nope\""
 * quote("\u001b[31mred"); // "\"\\u001b[31mred\""
 * ```
 */
export function quote(value: string): string {
  const cut = value.length > QUOTE_LIMIT
    ? `${value.slice(0, QUOTE_LIMIT)}… (${value.length} characters)`
    : value;
  return `"${printable(cut)}"`;
}

/**
 * Escapes control characters (C0, DEL, C1) as `\uXXXX`, so that a message never moves the
 * cursor, changes colours or clears a terminal.
 *
 * @param text any text
 * @returns the text with control characters other than newline escaped
 * @example
 * ```ts
 * printable("a\u0007b"); // "a\\u0007b"
 * ```
 */
export function printable(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Matches ANSI escape sequences (colours, cursor moves). */
// deno-lint-ignore no-control-regex
const ANSI_PATTERN = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b[@-Z\\-_]/g;

/**
 * Removes ANSI escape sequences, for output that is not going to a terminal.
 *
 * @param text a line that may carry colour codes
 * @returns the same line without them
 * @example
 * ```ts
 * stripAnsi("\u001b[31merror\u001b[0m"); // "error"
 * ```
 */
export function stripAnsi(text: string): string {
  return text.replace(ANSI_PATTERN, "");
}
