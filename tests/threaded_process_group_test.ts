import assert from "node:assert/strict";
import { createRendezvous } from "../comm/rendezvous.ts";
import { initProcessGroup } from "../comm/init_process_group.ts";
import { launch } from "../comm/launcher.ts";
import { ENV_NAMES } from "../comm/rank_env.ts";
import { CallMismatchError, CommError } from "../comm/_ring.ts";
import type { ProcessGroup, ReduceOp } from "../comm/process_group.ts";
import {
  startThreadedProcessGroup,
  type ThreadedCollectiveStats,
  type ThreadedProcessGroup,
} from "../comm/threaded_process_group.ts";
import { compareBuffers, inputBuffer, withGroups } from "./_comm_helpers.ts";
import type { ThreadedCasesReport, ThreadedScenario } from "./_threaded_comm_rank.ts";

/** Rank module of the launched tests. */
const THREADED_RANK_MODULE = new URL("./_threaded_comm_rank.ts", import.meta.url);
/** A communication thread that dies when it is asked for a barrier. */
const DYING_THREAD_MODULE = new URL("./_dying_comm_thread.ts", import.meta.url);
/** A program that ends after closing its groups (or leaving them open). */
const CLOSE_SCRIPT = new URL("./_threaded_close_script.ts", import.meta.url);
/** How long a program may take to end after closing its groups (start-up included). */
const EXIT_LIMIT_MS = 30_000;
/** How long the control program (groups left open) must stay running after its main module ends. */
const LEFT_OPEN_WAIT_MS = 2_000;
/** Lengths: empty, tiny, ragged, and several sub-chunks per ring chunk with a ragged end. */
const LENGTHS = [0, 1, 5, 300_001];
/** Floats in the overlap test's all-reduce: 4 MiB. */
const OVERLAP_LENGTH = 1 << 20;
/** How long the overlap test keeps the main thread busy. */
const BUSY_MS = 300;

/** Rank `rank`'s input for a seed: non-integers, so that the order of additions shows. */
function roughInput(seed: number, rank: number, length: number): Float32Array {
  return Float32Array.from(
    { length },
    (_, i) => Math.sin(seed * 1000 + rank * 7.31 + i * 0.37) * 3,
  );
}

/** Runs `body` with `worldSize` threaded groups of this process joined over real sockets. */
async function withThreadedGroups<T>(
  worldSize: number,
  body: (groups: ThreadedProcessGroup[]) => Promise<T>,
  options: { timeoutMs?: number; workerModule?: (rank: number) => URL | undefined } = {},
): Promise<T> {
  const { dir, token } = await createRendezvous();
  const started = await Promise.allSettled(
    Array.from({ length: worldSize }, (_, rank) =>
      startThreadedProcessGroup({
        init: { rank, worldSize, rendezvousDir: dir, token, timeoutMs: options.timeoutMs },
        workerModule: options.workerModule?.(rank),
      })),
  );
  const groups = started.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
  try {
    for (const s of started) if (s.status === "rejected") throw s.reason;
    return await body(groups);
  } finally {
    for (const group of groups) group.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The reference: the same collective with the main-thread ProcessGroup. */
async function reference(
  worldSize: number,
  inputs: Float32Array[],
  call: (group: ProcessGroup, buf: Float32Array) => Promise<unknown>,
): Promise<Float32Array[]> {
  const bufs = inputs.map((input) => input.slice());
  await withGroups(worldSize, (groups) => Promise.all(groups.map((g, r) => call(g, bufs[r]))));
  return bufs;
}

/** A view of `length` floats at an offset inside a fresh shared region, holding `input`. */
function sharedCopy(group: ThreadedProcessGroup, input: Float32Array): Float32Array {
  const view = group.sharedFloats(input.length + 7).subarray(7);
  view.set(input);
  return view;
}

function assertSameBits(label: string, actual: Float32Array[], expected: Float32Array[]): void {
  for (const [rank, buf] of actual.entries()) {
    assert.equal(compareBuffers(`${label}, rank ${rank}`, buf, expected[rank]), null);
  }
}

for (const worldSize of [2, 3]) {
  Deno.test(`threaded collectives of shared views and plain buffers equal ProcessGroup's bit for bit (${worldSize} ranks)`, async () => {
    const cases: {
      label: string;
      call: (g: ThreadedProcessGroup | ProcessGroup, buf: Float32Array) => Promise<unknown>;
    }[] = [];
    for (const op of ["sum", "avg"] as ReduceOp[]) {
      cases.push({ label: `all-reduce ${op}`, call: (g, buf) => g.allReduce(buf, { op }) });
    }
    cases.push({ label: "reduce-scatter", call: (g, buf) => g.reduceScatter(buf, { op: "sum" }) });
    cases.push({ label: "all-gather", call: (g, buf) => g.allGather(buf) });
    const expectations: { label: string; inputs: Float32Array[]; expected: Float32Array[] }[] = [];
    for (const [index, c] of cases.entries()) {
      for (const length of LENGTHS) {
        const inputs = Array.from(
          { length: worldSize },
          (_, r) => roughInput(index + length, r, length),
        );
        expectations.push({
          label: `${c.label}, length ${length}`,
          inputs,
          expected: await reference(worldSize, inputs, c.call),
        });
      }
    }
    await withThreadedGroups(worldSize, async (groups) => {
      let e = 0;
      for (const c of cases) {
        for (const _ of LENGTHS) {
          const { label, inputs, expected } = expectations[e++];
          const shared = groups.map((g, r) => sharedCopy(g, inputs[r]));
          const plain = inputs.map((input) => input.slice());
          const stats = await Promise.all(
            groups.flatMap((g, r) => [c.call(g, shared[r]), c.call(g, plain[r])]),
          ) as ThreadedCollectiveStats[];
          assertSameBits(`${label}, shared`, shared, expected);
          assertSameBits(`${label}, plain`, plain, expected);
          for (const s of stats) assert.ok(s.finishedAt > 0 && s.transferMs >= 0);
        }
      }
      const totals = groups[0].totals;
      assert.equal(totals.calls, 2 * cases.length * LENGTHS.length);
    });
  });
}

Deno.test("threaded all-reduce stats count the same bytes as ProcessGroup's", async () => {
  const length = 4_000;
  const expected = await withGroups(
    3,
    (groups) => Promise.all(groups.map((g) => g.allReduce(new Float32Array(length)))),
  );
  await withThreadedGroups(3, async (groups) => {
    const stats = await Promise.all(groups.map((g) => g.allReduce(g.sharedFloats(length))));
    for (const [rank, s] of stats.entries()) {
      assert.equal(s.op, expected[rank].op);
      assert.equal(s.bytes, expected[rank].bytes);
    }
    assert.equal(groups[1].totals.bytes, expected[1].bytes);
  });
});

Deno.test("buckets posted back-to-back complete in call order with the right sums", async () => {
  const buckets = [1, 300_000, 7, 65_537, 0, 4_096];
  const total = buckets.reduce((a, b) => a + b, 0);
  await withThreadedGroups(3, async (groups) => {
    const order: number[][] = groups.map(() => []);
    const regions = groups.map((g) => g.sharedFloats(total));
    const plains = groups.map(() => buckets.map((n) => new Float32Array(n)));
    for (const [rank, region] of regions.entries()) region.set(inputBuffer(1, rank, total));
    for (const [rank, plain] of plains.entries()) {
      for (const [b, buf] of plain.entries()) buf.set(inputBuffer(b + 2, rank, buf.length));
    }
    const calls = groups.map((g, rank) => {
      let offset = 0;
      return Promise.all(buckets.flatMap((n, b) => {
        const view = regions[rank].subarray(offset, offset + n);
        offset += n;
        return [
          g.allReduce(view).then((s) => (order[rank].push(2 * b), s)),
          g.allReduce(plains[rank][b], { op: "avg" }).then((s) => (order[rank].push(2 * b + 1), s)),
        ];
      }));
    });
    const stats = await Promise.all(calls);
    const expectedOrder = Array.from({ length: 2 * buckets.length }, (_, i) => i);
    for (const [rank, s] of stats.entries()) {
      assert.deepEqual(order[rank], expectedOrder);
      for (let i = 1; i < s.length; i++) assert.ok(s[i].finishedAt >= s[i - 1].finishedAt);
    }
    const inputs = [0, 1, 2].map((rank) => inputBuffer(1, rank, total));
    const sum = inputs[0].map((v, i) => v + inputs[1][i] + inputs[2][i]);
    for (const region of regions) assert.equal(compareBuffers("region", region, sum), null);
    for (const [b, n] of buckets.entries()) {
      const [x, y, z] = [0, 1, 2].map((rank) => inputBuffer(b + 2, rank, n));
      const avg = x.map((v, i) => Math.fround((v + y[i] + z[i]) / 3));
      for (const plain of plains) assert.equal(compareBuffers(`bucket ${b}`, plain[b], avg), null);
    }
  });
});

Deno.test("a view over a SharedArrayBuffer of the caller's own is reduced in place too", async () => {
  await withThreadedGroups(2, async (groups) => {
    const views = groups.map((g) => {
      const view = new Float32Array(new SharedArrayBuffer(4 * 100), 4 * 10, 50);
      view.set(inputBuffer(9, g.rank, 50));
      return view;
    });
    await Promise.all(groups.map((g, r) => g.allReduce(views[r], { op: "avg" })));
    const [a, b] = [0, 1].map((rank) => inputBuffer(9, rank, 50));
    const expected = a.map((v, i) => Math.fround((v + b[i]) / 2));
    for (const view of views) assert.equal(compareBuffers("own shared", view, expected), null);
  });
});

Deno.test("threaded broadcast copies the root's buffer from every root; barrier waits for all", async () => {
  await withThreadedGroups(3, async (groups) => {
    for (const length of LENGTHS) {
      for (let root = 0; root < 3; root++) {
        const shared = groups.map((g) => sharedCopy(g, inputBuffer(length + root, g.rank, length)));
        const plain = groups.map((g) => inputBuffer(length + root + 1, g.rank, length));
        await Promise.all(
          groups.flatMap((
            g,
            r,
          ) => [g.broadcast(shared[r], { root }), g.broadcast(plain[r], { root })]),
        );
        const expectedShared = inputBuffer(length + root, root, length);
        const expectedPlain = inputBuffer(length + root + 1, root, length);
        for (let r = 0; r < 3; r++) {
          assert.equal(compareBuffers(`shared root ${root}`, shared[r], expectedShared), null);
          assert.equal(compareBuffers(`plain root ${root}`, plain[r], expectedPlain), null);
        }
      }
    }
    const lateMs = 150;
    const stats = await Promise.all(groups.map(async (g) => {
      if (g.rank === 2) await new Promise((resolve) => setTimeout(resolve, lateMs));
      return await g.barrier();
    }));
    assert.equal(stats[0].op, "barrier");
    assert.ok(stats[0].waitMs >= lateMs * 0.9, `rank 0 waited ${stats[0].waitMs} ms`);
  });
});

Deno.test("an all-reduce posted before synchronous work completes during it", async () => {
  await withThreadedGroups(2, async (groups) => {
    const regions = groups.map((g) => g.sharedFloats(OVERLAP_LENGTH).fill(g.rank + 1));
    // Both ranks post, then this thread computes for BUSY_MS without ever yielding: only the
    // communication threads can move the data meanwhile.
    const calls = groups.map((g, r) => g.allReduce(regions[r]));
    const busyEnd = performance.now() + BUSY_MS;
    let spins = 0;
    while (performance.now() < busyEnd) spins++;
    const loopEndedAt = performance.timeOrigin + performance.now();
    // Read before the first await: the result is already there.
    const doneDuringLoop = regions.map((region) => region.every((v) => v === 3));
    const stats = await Promise.all(calls);
    assert.deepEqual(doneDuringLoop, [true, true]);
    for (const s of stats) {
      assert.ok(
        s.finishedAt < loopEndedAt,
        `finished ${(s.finishedAt - loopEndedAt).toFixed(1)} ms after the busy loop`,
      );
    }
    assert.ok(spins > 0);
  });
});

Deno.test("errors keep their class: a call mismatch is a CallMismatchError and the group survives", async () => {
  await withThreadedGroups(3, async (groups) => {
    const outcomes = await Promise.allSettled(
      groups.map((g) => g.allReduce(new Float32Array(g.rank === 1 ? 11 : 10))),
    );
    const expected = await withGroups(
      3,
      (plain) =>
        Promise.allSettled(plain.map((g) => g.allReduce(new Float32Array(g.rank === 1 ? 11 : 10)))),
    );
    for (const [rank, outcome] of outcomes.entries()) {
      assert.equal(outcome.status, "rejected");
      const error = (outcome as PromiseRejectedResult).reason;
      const reference = (expected[rank] as PromiseRejectedResult).reason;
      assert.ok(error instanceof CallMismatchError, String(error));
      assert.ok(error instanceof CommError);
      assert.equal(error.name, "CallMismatchError");
      assert.equal(error.message, reference.message);
      assert.equal(error.peer, reference.peer);
    }
    const bufs = groups.map((g) => new Float32Array([g.rank]));
    await Promise.all(groups.map((g, r) => g.allReduce(bufs[r])));
    assert.deepEqual(bufs.map((b) => b[0]), [3, 3, 3]);
    // An invalid argument rejects with the class and message ProcessGroup gives it.
    await assert.rejects(
      groups[0].broadcast(new Float32Array(1), { root: 3 }),
      (error: Error) =>
        error instanceof RangeError && /Invalid broadcast root 3/.test(error.message),
    );
  });
});

Deno.test("a blocking all-reduce that fails throws the communication thread's own error, class and message", async () => {
  await withThreadedGroups(2, async (groups) => {
    // Rank 1 is posted first: its thread runs while this thread blocks for rank 0.
    const other = groups[1].allReduce(new Float32Array(11));
    other.catch(() => {});
    const region = groups[0].sharedFloats(10);
    assert.throws(
      () => groups[0].allReduceBlocking(region, { op: "sum" }, 30_000),
      (error: Error) =>
        error instanceof CallMismatchError &&
        /Length mismatch in all-reduce: rank 0 has 10 elements and rank 1 has 11/.test(
          error.message,
        ) && error.peer === 1,
    );
    await assert.rejects(other, CallMismatchError);
    // The group survives a mismatch, and a blocking call then sums in place.
    const theirs = groups[1].allReduce(new Float32Array([2]));
    const ours = groups[0].sharedFloats(1).fill(1);
    groups[0].allReduceBlocking(ours, { op: "sum" }, 30_000);
    await theirs;
    assert.equal(ours[0], 3);
  });
});

Deno.test("thousands of blocking all-reduces in a row each wake their caller (no lost notify)", async () => {
  await withThreadedGroups(2, async (groups) => {
    const ours = groups[0].sharedFloats(1);
    // A wake lost between the check and the wait would sleep until this timeout and throw.
    for (let i = 0; i < 3000; i++) {
      const theirs = groups[1].allReduce(new Float32Array([i]));
      ours[0] = 1;
      groups[0].allReduceBlocking(ours, { op: "sum" }, 5_000);
      await theirs;
      assert.equal(ours[0], i + 1);
    }
  });
});

Deno.test("joining fails as initProcessGroup does, and leaves no thread behind", async () => {
  const options = { rank: 0, worldSize: 2 };
  const expected = await initProcessGroup(options).then(() => null, (error) => error);
  assert.ok(expected instanceof Error);
  await assert.rejects(startThreadedProcessGroup({ init: options }), (error: Error) => {
    assert.equal(error.message, expected.message);
    return true;
  });
  await assert.rejects(
    startThreadedProcessGroup({ init: { rank: 2, worldSize: 2 } }),
    (error: Error) => error instanceof RangeError && /Invalid rank 2/.test(error.message),
  );
});

Deno.test("a peer process that exits mid-collective fails the call with a CommError naming it", async () => {
  const timeoutMs = 20_000;
  const { dir, token } = await createRendezvous();
  const scenario: ThreadedScenario = { kind: "exit-mid-collective", length: 8 << 20 };
  const victim = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", THREADED_RANK_MODULE.pathname, JSON.stringify(scenario)],
    env: {
      [ENV_NAMES.rank]: "1",
      [ENV_NAMES.worldSize]: "2",
      [ENV_NAMES.rendezvousDir]: dir,
      [ENV_NAMES.token]: token,
      [ENV_NAMES.collectiveTimeoutMs]: String(timeoutMs),
    },
    stdout: "null",
    stderr: "null",
  }).spawn();
  let pg: ThreadedProcessGroup | null = null;
  try {
    pg = await startThreadedProcessGroup({
      init: { rank: 0, worldSize: 2, rendezvousDir: dir, token, timeoutMs },
    });
    const buf = pg.sharedFloats(scenario.length);
    await pg.allReduce(buf);
    buf.fill(2); // the victim (all ones) exits once its values change
    const started = performance.now();
    const error = await pg.allReduce(buf).then(() => null, (error) => error);
    const elapsedMs = performance.now() - started;
    assert.ok(error instanceof CommError, `expected a CommError, got ${error}`);
    assert.equal(error.name, "CommError");
    assert.equal(error.peer, 1);
    assert.match(error.message, /^Rank 1 closed its connection during all-reduce$/);
    assert.ok(elapsedMs < timeoutMs, `took ${elapsedMs} ms`);
    // The ring is unusable afterwards, as ProcessGroup's is.
    await assert.rejects(pg.barrier(), /Cannot run barrier: the process group failed earlier/);
    assert.equal((await victim.status).code, 3);
  } finally {
    pg?.close();
    try {
      victim.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await victim.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("launched ranks with threaded groups all-reduce shared and plain buffers alike", async () => {
  const scenario: ThreadedScenario = {
    kind: "cases",
    cases: [
      { length: 1, seed: 1, op: "sum" },
      { length: 300_001, seed: 2, op: "avg" },
      { length: 5, seed: 3, op: "max" },
    ],
  };
  const { results } = await launch<ThreadedCasesReport>(THREADED_RANK_MODULE, {
    worldSize: 3,
    args: [JSON.stringify(scenario)],
  });
  for (const report of results) {
    assert.ok(report);
    assert.deepEqual(report.errors, []);
    assert.deepEqual(report.digests, results[0]!.digests);
    for (const [shared, plain] of report.digests) assert.equal(shared, plain);
  }
});

Deno.test("a communication thread that dies rejects pending and later calls with one error naming it", async () => {
  await withThreadedGroups(2, async (groups) => {
    const [dying, peer] = groups;
    const pending = dying.allReduce(dying.sharedFloats(10)); // waits for rank 1
    const trigger = dying.barrier(); // the thread dies on this
    const errors = await Promise.all([pending, trigger].map((p) => p.then(() => null, (e) => e)));
    const later = await dying.allReduce(new Float32Array(3)).then(() => null, (e) => e);
    for (const error of [...errors, later]) {
      assert.ok(error instanceof CommError, String(error));
      assert.equal(error.peer, 0);
      assert.match(error.message, /^The communication thread of rank 0 died: .*injected failure/);
    }
    assert.equal(errors[0], errors[1]);
    assert.equal(later, errors[0]);
    // Its sockets went with it: the peer sees rank 0 close its connection.
    await assert.rejects(
      peer.allReduce(new Float32Array(10)),
      (error: Error) => error instanceof CommError && error.peer === 0,
    );
  }, { workerModule: (rank) => rank === 0 ? DYING_THREAD_MODULE : undefined });
});

Deno.test("close() stops the thread: pending and later calls reject, the peer sees the close, nothing leaks", async () => {
  await withThreadedGroups(2, async (groups) => {
    const [closing, peer] = groups;
    const region = closing.sharedFloats(1000);
    await Promise.all(
      groups.map((g) => g.allReduce(g === closing ? region : new Float32Array(1000))),
    );
    const pending = closing.allReduce(region); // rank 1 never joins this one
    closing.close();
    closing.close(); // twice is fine
    await assert.rejects(
      pending,
      (error: Error) =>
        error instanceof CommError &&
        error.message === "Cannot run all-reduce: the process group is closed",
    );
    await assert.rejects(
      closing.barrier(),
      /^CommError: Cannot run barrier: the process group is closed/,
    );
    await assert.rejects(
      peer.allReduce(new Float32Array(1000)),
      (error: Error) =>
        error instanceof CommError && error.peer === 0 &&
        error.message === "Rank 0 closed its connection during all-reduce",
    );
  });
  // The test's op and resource sanitizers check that no thread or socket is left.
});

Deno.test("a program ends by itself once its groups are closed; an open one keeps it running", async () => {
  const run = (mode: string) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", CLOSE_SCRIPT.pathname, mode],
      stdout: "piped",
      stderr: "null",
    }).spawn();
  const closed = run("close");
  const closedOutcome = await Promise.race([
    closed.output(),
    new Promise<null>((resolve) => setTimeout(resolve, EXIT_LIMIT_MS, null)),
  ]);
  if (closedOutcome === null) closed.kill("SIGKILL");
  assert.ok(closedOutcome, `still running ${EXIT_LIMIT_MS} ms after close()`);
  assert.equal(closedOutcome.code, 0);
  assert.match(new TextDecoder().decode(closedOutcome.stdout), /main module done/);
  // The control: the same program without close() does not end (a live thread holds it).
  const open = run("leave-open");
  const reader = open.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("main module done")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const openOutcome = await Promise.race([
    open.status,
    new Promise<null>((resolve) => setTimeout(resolve, LEFT_OPEN_WAIT_MS, null)),
  ]);
  open.kill("SIGKILL");
  await open.status;
  await reader.cancel();
  assert.match(text, /main module done/);
  assert.equal(openOutcome, null, "exited although its groups were left open");
});
