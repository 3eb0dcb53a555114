/**
 * Blocking on a shared counter (core/wait_until.ts), as a DDP rank waits for its
 * communication thread inside SyncBatchNorm's forward: a store and notify that lands between
 * the check and the wait must wake the waiter at once.
 */
import assert from "node:assert/strict";
import { waitUntilReached } from "../core/wait_until.ts";

/** Longer than a wake-up can take; a waiter that slept through a notify takes this long. */
const TIMEOUT_MS = 3_000;

Deno.test("a store and notify landing between the check and the wait wakes the waiter at once", () => {
  const flag = new Int32Array(new SharedArrayBuffer(8));
  const t0 = performance.now();
  const reached = waitUntilReached(flag, 1, 1, TIMEOUT_MS, {
    beforeWait: () => {
      // What the communication thread does when the collective completes, in the window.
      Atomics.store(flag, 1, 1);
      Atomics.notify(flag, 1);
    },
  });
  const ms = performance.now() - t0;
  assert.equal(reached, true);
  assert.ok(ms < TIMEOUT_MS / 2, `the waiter slept ${ms.toFixed(0)} ms through the notify`);
});

Deno.test("a counter already past the target returns at once; one never stored times out", () => {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  Atomics.store(flag, 0, 5);
  assert.equal(
    waitUntilReached(flag, 0, 3, TIMEOUT_MS, { beforeWait: () => assert.fail("waited") }),
    true,
  );
  const t0 = performance.now();
  assert.equal(waitUntilReached(flag, 0, 6, 50), false);
  assert.ok(performance.now() - t0 >= 45);
});

Deno.test("a store from another thread wakes a waiter blocked on the counter", () => {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const source = `self.onmessage = (e) => { const f = new Int32Array(e.data);
    setTimeout(() => { Atomics.store(f, 0, 2); Atomics.notify(f, 0); }, 100); };`;
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  try {
    worker.postMessage(flag.buffer);
    const t0 = performance.now();
    assert.equal(waitUntilReached(flag, 0, 2, TIMEOUT_MS), true);
    assert.ok(performance.now() - t0 < TIMEOUT_MS / 2);
  } finally {
    worker.terminate();
    URL.revokeObjectURL(url);
  }
});

Deno.test("spinning first: a counter already reached returns at once; one never stored times out", () => {
  const flag = new Int32Array(new SharedArrayBuffer(8));
  Atomics.store(flag, 0, 1);
  assert.equal(
    waitUntilReached(flag, 0, 1, TIMEOUT_MS, {
      spinMs: 2,
      beforeWait: () => assert.fail("waited"),
    }),
    true,
  );
  const t0 = performance.now();
  assert.equal(waitUntilReached(flag, 1, 1, 20, { spinMs: 2 }), false);
  assert.ok(performance.now() - t0 >= 18);
});
