import assert from "node:assert/strict";
import { initProcessGroup } from "../comm/init_process_group.ts";
import { CallMismatchError } from "../comm/_ring.ts";
import type { ReduceOp } from "../comm/process_group.ts";
import { compareBuffers, inputBuffer, withGroups } from "./_comm_helpers.ts";

/** A broadcast length spanning several sub-chunks, with a ragged end. */
const MULTI_FRAME_LENGTH = 700_001;

Deno.test("broadcast copies the root's buffer to every rank, from every root", async () => {
  await withGroups(3, async (groups) => {
    for (const length of [0, 1, 5, MULTI_FRAME_LENGTH]) {
      for (let root = 0; root < 3; root++) {
        const bufs = groups.map((group) => inputBuffer(length + root, group.rank, length));
        await Promise.all(groups.map((group, rank) => group.broadcast(bufs[rank], { root })));
        const expected = inputBuffer(length + root, root, length);
        for (const [rank, buf] of bufs.entries()) {
          assert.equal(compareBuffers(`root ${root}, rank ${rank}`, buf, expected), null);
        }
      }
    }
  });
});

Deno.test("barrier waits for the slowest rank and reports it as waitMs", async () => {
  const lateMs = 200;
  await withGroups(3, async (groups) => {
    const started = performance.now();
    const stats = await Promise.all(groups.map(async (group) => {
      if (group.rank === 2) await new Promise((resolve) => setTimeout(resolve, lateMs));
      return await group.barrier();
    }));
    assert.ok(performance.now() - started >= lateMs);
    assert.ok(stats[0].waitMs >= lateMs * 0.9, `rank 0 waited ${stats[0].waitMs} ms`);
    assert.equal(stats[0].bytes, 0);
    assert.ok(stats[0].transferMs < 5);
  });
});

Deno.test("allReduce stats count 2K(N-1)/N bytes and the totals add up", async () => {
  await withGroups(4, async (groups) => {
    const length = 4_000;
    for (let call = 0; call < 3; call++) {
      const stats = await Promise.all(
        groups.map((group) => group.allReduce(new Float32Array(length))),
      );
      for (const s of stats) {
        assert.equal(s.op, "all-reduce");
        assert.equal(s.bytes, (2 * 3 * length * 4) / 4);
        assert.ok(s.waitMs >= 0 && s.transferMs >= 0);
      }
    }
    const totals = groups[0].totals;
    assert.equal(totals.calls, 3);
    assert.equal(totals.bytes, 3 * (2 * 3 * length * 4) / 4);
  });
});

Deno.test("calls made without awaiting run one after another in call order", async () => {
  await withGroups(2, async (groups) => {
    const results = await Promise.all(groups.map((group) => {
      const a = new Float32Array([group.rank + 1]);
      const b = new Float32Array([10 * (group.rank + 1)]);
      return Promise.all([group.allReduce(a), group.allReduce(b), group.barrier()]).then(
        () => [a[0], b[0]],
      );
    }));
    assert.deepEqual(results, [[3, 30], [3, 30]]);
  });
});

Deno.test("a length mismatch is reported on every rank before data moves, and the group survives", async () => {
  await withGroups(3, async (groups) => {
    const outcomes = await Promise.allSettled(
      groups.map((group) => group.allReduce(new Float32Array(group.rank === 1 ? 11 : 10))),
    );
    for (const outcome of outcomes) {
      assert.equal(outcome.status, "rejected");
      const error = (outcome as PromiseRejectedResult).reason;
      assert.ok(error instanceof CallMismatchError);
      assert.match(
        error.message,
        /Length mismatch in all-reduce: rank 0 has 10 elements and rank 1 has 11/,
      );
    }
    const bufs = groups.map(() => new Float32Array([1, 2]));
    await Promise.all(groups.map((group, rank) => group.allReduce(bufs[rank])));
    assert.deepEqual([...bufs[2]], [3, 6]);
  });
});

Deno.test("different collectives on different ranks are reported as a mismatch", async () => {
  await withGroups(2, async (groups) => {
    const outcomes = await Promise.allSettled([
      groups[0].allReduce(new Float32Array(4)),
      groups[1].broadcast(new Float32Array(4)),
    ]);
    for (const outcome of outcomes) {
      assert.equal(outcome.status, "rejected");
      assert.match(
        (outcome as PromiseRejectedResult).reason.message,
        /Collective mismatch: rank 0 called all-reduce \(call #0\) while rank 1 called broadcast/,
      );
    }
  });
});

Deno.test("a world of one needs no rendezvous and every collective is a no-op", async () => {
  const group = await initProcessGroup({ rank: 0, worldSize: 1 });
  const buf = new Float32Array([1, 2, 3]);
  const stats = await group.allReduce(buf, { op: "avg" });
  await group.broadcast(buf);
  await group.barrier();
  assert.deepEqual([...buf], [1, 2, 3]);
  const { startUs, endUs, ...costs } = stats;
  assert.deepEqual(costs, { op: "all-reduce", bytes: 0, waitMs: 0, transferMs: 0 });
  assert.equal(startUs, endUs);
  group.close();
});

Deno.test("invalid arguments are rejected with messages naming them", async () => {
  await assert.rejects(
    initProcessGroup({ rank: 2, worldSize: 2 }),
    /Invalid rank 2: expected an integer from 0 to 1/,
  );
  await assert.rejects(
    initProcessGroup({ rank: 0, worldSize: 2 }),
    /rendezvous directory \(or MASTER_ADDR\) and token are required/,
  );
  await assert.rejects(
    initProcessGroup({ rank: 0, worldSize: 2, rendezvousDir: "/nonexistent", token: "abc" }),
    /Invalid job token: expected at least 16 characters/,
  );
  await withGroups(2, async (groups) => {
    await assert.rejects(
      groups[0].allReduce(new Float32Array(1), { op: "prod" as unknown as ReduceOp }),
      /Unknown reduce op "prod": expected sum, avg, max, min/,
    );
    await assert.rejects(
      groups[0].broadcast(new Float32Array(1), { root: 5 }),
      /Invalid broadcast root 5/,
    );
  });
});
