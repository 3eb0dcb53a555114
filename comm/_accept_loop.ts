/**
 * The accept loop every paratrain server runs (the TCP rendezvous, a rank's ring listeners):
 * it keeps accepting through errors that pass (out of file descriptors under a connection
 * flood, a connection reset before it was accepted), stopping only when its listener is
 * closed; and it caps the handshakes in progress, dropping the oldest when a new connection
 * would pass the cap, so that a flood of silent clients holds a bounded number of descriptors
 * and cannot keep a real peer waiting behind it.
 *
 * @module
 */

/** First pause after an accept error; doubled on each error in a row. */
const RETRY_FIRST_MS = 10;
/** Longest pause between attempts after errors. */
const RETRY_MAX_MS = 500;

/** A listener's `accept` (a `Deno.Listener`, or a stand-in in tests). */
export interface Acceptor {
  accept(): Promise<Deno.Conn>;
}

/** Options for {@linkcode acceptLoop}. */
export interface AcceptLoopOptions {
  /** Handshakes in progress at most; a connection beyond it drops the oldest one. */
  maxPending: number;
  /**
   * Runs one connection's handshake; resolves when it is over, whatever the outcome (the
   * connection then belongs to the caller, or was closed).
   */
  handshake: (conn: Deno.Conn) => Promise<void>;
  /** Whether the server is done: the loop stops, closing what it accepts meanwhile. */
  stopped: () => boolean;
  /** Told once of the first accept error that passes, for a warning. */
  onError?: (error: unknown) => void;
}

/**
 * Accepts connections from `listener` until it is closed or `stopped()`, running each one's
 * handshake on its own (see the module doc).
 *
 * @param listener where connections arrive
 * @param options the cap, the handshake, when to stop
 * @returns resolves with the error that closed the listener (or null once stopped)
 * @example
 * ```ts
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * let done = false;
 * acceptLoop(listener, {
 *   maxPending: 64,
 *   handshake: async (conn) => conn.close(),
 *   stopped: () => done,
 * });
 * ```
 */
export async function acceptLoop(
  listener: Acceptor,
  options: AcceptLoopOptions,
): Promise<unknown> {
  const { maxPending, handshake, stopped, onError } = options;
  const pending = new Set<Deno.Conn>();
  let retryMs = RETRY_FIRST_MS;
  let warned = false;
  while (!stopped()) {
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch (error) {
      if (stopped()) return null;
      if (closedListener(error)) return error;
      // Out of descriptors, or a connection that died in the queue: it passes. Wait a little
      // (handshakes in progress end and free descriptors) and accept again.
      if (!warned) onError?.(error);
      warned = true;
      await new Promise((resolve) => setTimeout(resolve, retryMs));
      retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
      continue;
    }
    retryMs = RETRY_FIRST_MS;
    if (stopped()) {
      closeQuietly(conn);
      return null;
    }
    if (pending.size >= maxPending) {
      const oldest = pending.values().next().value!;
      pending.delete(oldest);
      closeQuietly(oldest);
    }
    pending.add(conn);
    handshake(conn).catch(() => closeQuietly(conn)).finally(() => pending.delete(conn));
  }
  return null;
}

/** Whether an accept error means the listener itself is gone. */
function closedListener(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted;
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}
