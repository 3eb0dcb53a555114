/**
 * The main thread's handle on one DP worker replica: posts messages, awaits answers, and turns
 * every way a worker can fail (an error it reports, an uncaught error, an undecodable message,
 * silence past the timeout) into a {@linkcode ReplicaError} naming it. Never hangs.
 *
 * @module
 */
import type { FromReplica, ToReplica } from "./_dp_messages.ts";
import { ReplicaError } from "./_dp_replica_error.ts";

/** The worker module every replica runs. */
const WORKER_URL = new URL("./_dp_worker.ts", import.meta.url).href;

/** Worker replicas started and not yet terminated, in this process. */
let liveReplicas = 0;

interface Pending {
  resolve: (reply: FromReplica) => void;
  reject: (error: ReplicaError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** One worker replica, with at most one request in flight. */
export class WorkerReplica {
  /** Index of this replica (the main thread is replica 0 in DP). */
  readonly index: number;
  /** The worker's own peak memory (tensor bytes + wasm heap), as it last reported it. */
  peakBytes = 0;
  readonly #worker: Worker;
  #step = 0;
  #pending: Pending | undefined;
  #failure: ReplicaError | undefined;
  #terminated = false;

  /** @returns how many worker replicas are alive in this process (0 after every run) */
  static get live(): number {
    return liveReplicas;
  }

  /**
   * Start the worker (its module begins loading at once).
   *
   * @param index the replica's index, used in error messages
   */
  constructor(index: number) {
    this.index = index;
    this.#worker = new Worker(WORKER_URL, { type: "module" });
    liveReplicas++;
    this.#worker.onmessage = (event: MessageEvent<FromReplica>) => this.#onMessage(event.data);
    this.#worker.onerror = (event) => {
      event.preventDefault(); // handled here: do not let it take the main thread down
      this.#fail(event.message || "the worker died of an uncaught error");
    };
    this.#worker.onmessageerror = () => this.#fail("its message could not be deserialised");
  }

  /**
   * Send a message that is not answered.
   *
   * @param message the message
   * @param transfer buffers to move (they become unusable here)
   * @throws ReplicaError when the replica has already failed
   */
  post(message: ToReplica, transfer: Transferable[] = []): void {
    if (this.#failure) throw this.#failure;
    if ("step" in message) this.#step = message.step;
    this.#worker.postMessage(message, transfer);
  }

  /**
   * Send a message and wait for the answer.
   *
   * @param message the message
   * @param transfer buffers to move
   * @param timeoutMs fail the replica if no answer comes within this
   * @returns the answer; rejects with a {@linkcode ReplicaError} when the replica fails
   */
  request(message: ToReplica, transfer: Transferable[], timeoutMs: number): Promise<FromReplica> {
    const answer = new Promise<FromReplica>((resolve, reject) => {
      if (this.#pending) throw new Error(`Replica ${this.index} already has a request in flight`);
      this.post(message, transfer);
      const timer = setTimeout(
        () => this.#fail(`no answer after ${timeoutMs / 1000} s`),
        timeoutMs,
      );
      this.#pending = { resolve, reject, timer };
    });
    // Another replica may fail first and nobody awaits this one: that is not unhandled.
    answer.catch(() => {});
    return answer;
  }

  /** Stop the worker; idempotent. A request still in flight is rejected. */
  terminate(): void {
    if (this.#terminated) return;
    this.#fail("terminated");
    this.#terminated = true;
    this.#worker.terminate();
    liveReplicas--;
  }

  #onMessage(reply: FromReplica): void {
    if (reply.kind === "error") {
      if (reply.step > 0) this.#step = reply.step;
      return this.#fail(reply.message);
    }
    if ("peakBytes" in reply) this.peakBytes = Math.max(this.peakBytes, reply.peakBytes);
    const pending = this.#pending;
    if (!pending) return this.#fail(`sent "${reply.kind}" with no request in flight`);
    this.#pending = undefined;
    clearTimeout(pending.timer);
    pending.resolve(reply);
  }

  #fail(reason: string): void {
    if (this.#terminated) return;
    this.#failure ??= new ReplicaError(this.index, this.#step, reason);
    const pending = this.#pending;
    if (!pending) return;
    this.#pending = undefined;
    clearTimeout(pending.timer);
    pending.reject(this.#failure);
  }
}
