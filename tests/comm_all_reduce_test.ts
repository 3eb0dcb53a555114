import assert from "node:assert/strict";
import fc from "fast-check";
import { launch } from "../comm/launcher.ts";
import { evenSplit as splitIntoChunks } from "../core/even_split.ts";
import {
  type Case,
  type CasesReport,
  compareBuffers,
  inputBuffer,
  naiveAllReduce,
  RANK_MODULE,
  withGroups,
} from "./_comm_helpers.ts";

/** Elements in a buffer bigger than a sub-chunk per ring chunk and than the socket buffers. */
const LARGE_LENGTH = 1_048_583;
/** Random cases per world size in the launched property test. */
const LAUNCHED_CASES = 25;
/** Runs of the in-process property test. */
const IN_PROCESS_RUNS = 60;

/** Lengths worth trying for a world of n: empty, one, fewer than n, primes, random. */
function lengthFor(n: number): fc.Arbitrary<number> {
  return fc.oneof(
    fc.constantFrom(0, 1, Math.max(0, n - 1), n, n + 1, 2, 3, 5, 7, 13, 97, 8191, 65_537),
    fc.integer({ min: 0, max: 5_000 }),
  );
}

/** A world of 1-4 in-process ranks, a buffer length worth trying for it, a reduce op, a seed. */
function groupCases() {
  return fc.integer({ min: 1, max: 4 }).chain((n) =>
    fc.record({
      n: fc.constant(n),
      length: lengthFor(n),
      op: fc.constantFrom("sum" as const, "avg" as const, "max" as const, "min" as const),
      seed: fc.nat(),
    })
  );
}

Deno.test("splitIntoChunks covers the buffer with chunks differing by at most one", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 10_000 }),
      fc.integer({ min: 1, max: 16 }),
      (length, n) => {
        const chunks = splitIntoChunks(length, n);
        assert.deepEqual(chunks.length, n);
        let next = 0;
        for (const chunk of chunks) {
          assert.deepEqual(chunk.offset, next);
          next += chunk.length;
        }
        assert.deepEqual(next, length);
        const sizes = chunks.map((chunk) => chunk.length);
        assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
      },
    ),
  );
});

Deno.test("allReduce matches a naive sum for any length and 1-4 in-process ranks", async () => {
  await fc.assert(
    fc.asyncProperty(groupCases(), async ({ n, length, op, seed }) => {
      await withGroups(n, async (groups) => {
        const bufs = groups.map((group) => inputBuffer(seed, group.rank, length));
        await Promise.all(groups.map((group, rank) => group.allReduce(bufs[rank], { op })));
        const expected = naiveAllReduce(seed, n, length, op);
        for (const [rank, buf] of bufs.entries()) {
          assert.deepEqual(compareBuffers(`rank ${rank}`, buf, expected), null);
        }
      });
    }),
    { numRuns: IN_PROCESS_RUNS },
  );
});

Deno.test("reduceScatter leaves each rank its chunk of the reduction; allGather assembles every chunk", async () => {
  await fc.assert(
    fc.asyncProperty(groupCases(), async ({ n, length, op, seed }) => {
      await withGroups(n, async (groups) => {
        const chunks = splitIntoChunks(length, n);
        const bufs = groups.map((group) => inputBuffer(seed, group.rank, length));
        await Promise.all(groups.map((group, rank) => group.reduceScatter(bufs[rank], { op })));
        const reduced = naiveAllReduce(seed, n, length, op);
        for (const [rank, buf] of bufs.entries()) {
          const { offset, length: size } = chunks[rank];
          const mine = buf.subarray(offset, offset + size);
          assert.deepEqual(
            compareBuffers(`rank ${rank}`, mine, reduced.subarray(offset, offset + size)),
            null,
          );
        }
        // All-gather: each rank contributes its own chunk of its own input.
        const inputs = groups.map((group) => inputBuffer(seed, group.rank, length));
        const expected = new Float32Array(length);
        for (const [rank, { offset, length: size }] of chunks.entries()) {
          expected.set(inputs[rank].subarray(offset, offset + size), offset);
        }
        await Promise.all(groups.map((group, rank) => group.allGather(inputs[rank])));
        for (const [rank, buf] of inputs.entries()) {
          assert.deepEqual(compareBuffers(`rank ${rank}`, buf, expected), null);
        }
      });
    }),
    { numRuns: IN_PROCESS_RUNS },
  );
});

Deno.test("allReduce of a buffer larger than the socket buffers does not deadlock", async () => {
  await withGroups(3, async (groups) => {
    const bufs = groups.map((group) => inputBuffer(7, group.rank, LARGE_LENGTH));
    const stats = await Promise.all(groups.map((group, rank) => group.allReduce(bufs[rank])));
    const expected = naiveAllReduce(7, 3, LARGE_LENGTH, "sum");
    for (const [rank, buf] of bufs.entries()) {
      assert.deepEqual(compareBuffers(`rank ${rank}`, buf, expected), null);
    }
    // Each rank sends 2(N−1)/N of the buffer: 2K(N−1)/N bytes.
    const total = stats.reduce((sum, s) => sum + s.bytes, 0);
    assert.deepEqual(total, 2 * (3 - 1) * LARGE_LENGTH * Float32Array.BYTES_PER_ELEMENT);
  });
});

Deno.test("allReduce, broadcast and barrier match the reference in launched ranks (1-4)", async () => {
  for (let worldSize = 1; worldSize <= 4; worldSize++) {
    const fixed: Case[] = [
      { collective: "all-reduce", length: 0, seed: 1 },
      { collective: "all-reduce", length: 1, seed: 2, op: "avg" },
      { collective: "all-reduce", length: Math.max(0, worldSize - 1), seed: 3 },
      { collective: "all-reduce", length: LARGE_LENGTH, seed: 4, op: "avg" },
      { collective: "broadcast", length: 0, seed: 5, root: worldSize - 1 },
      { collective: "broadcast", length: 300_007, seed: 6, root: worldSize - 1 },
      { collective: "barrier", length: 0, seed: 0 },
    ];
    const random = fc.sample(
      fc.record({
        collective: fc.constantFrom(
          "all-reduce" as const,
          "all-reduce" as const,
          "broadcast" as const,
        ),
        length: lengthFor(worldSize),
        seed: fc.nat(),
        op: fc.constantFrom("sum" as const, "avg" as const),
        root: fc.integer({ min: 0, max: worldSize - 1 }),
      }),
      { numRuns: LAUNCHED_CASES, seed: 1000 + worldSize },
    );
    const cases = [...fixed, ...random];
    const { results } = await launch<CasesReport>(RANK_MODULE, {
      worldSize,
      args: [JSON.stringify({ kind: "cases", cases })],
      onLine: () => {},
      timeoutMs: 60_000,
    });
    for (const report of results) {
      assert.ok(report !== null, `rank reported no result (world ${worldSize})`);
      assert.deepEqual(report.errors, [], `world ${worldSize}`);
      assert.deepEqual(report.digests.length, cases.length);
      // Every rank ends with bit-identical buffers.
      assert.deepEqual(report.digests, results[0]!.digests, `world ${worldSize}`);
    }
  }
});
