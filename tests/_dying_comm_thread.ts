/**
 * A communication thread that dies: the real one ({@linkcode ../comm/_comm_thread_worker.ts}),
 * except that asking it for a barrier throws an uncaught error in the thread.
 *
 * @module
 */
import "../comm/_comm_thread_worker.ts";

interface Scope {
  onmessage: ((event: MessageEvent<{ kind: string; method?: string }>) => void) | null;
}

const scope = self as unknown as Scope;
const real = scope.onmessage!;
scope.onmessage = (event) => {
  if (event.data.kind === "call" && event.data.method === "barrier") {
    setTimeout(() => {
      throw new Error("injected failure");
    }, 0);
    return;
  }
  real(event);
};
