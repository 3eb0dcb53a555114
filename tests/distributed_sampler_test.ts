import assert from "node:assert/strict";
import fc from "fast-check";
import { DistributedSampler } from "../strategies/distributed_sampler.ts";

/** All shards of one epoch. */
function shards(
  size: number,
  numReplicas: number,
  options: { epoch?: number; dropLast?: boolean; shuffle?: boolean; seed?: number } = {},
): Int32Array[] {
  const { epoch = 0, ...rest } = options;
  return Array.from({ length: numReplicas }, (_, rank) => {
    const sampler = new DistributedSampler(size, { numReplicas, rank, ...rest });
    sampler.setEpoch(epoch);
    return sampler.indices();
  });
}

Deno.test("shards are equal in length and together cover the dataset, disjoint before padding", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 500 }),
      fc.integer({ min: 1, max: 8 }),
      fc.nat(),
      (size, n, seed) => {
        const all = shards(size, n, { seed });
        const perShard = Math.ceil(size / n);
        for (const shard of all) assert.equal(shard.length, perShard);
        // Deal positions back in order: the first `size` are a permutation of the dataset.
        const dealt: number[] = [];
        for (let i = 0; i < perShard; i++) for (const shard of all) dealt.push(shard[i]);
        assert.deepEqual(
          [...dealt.slice(0, size)].sort((a, b) => a - b),
          Array.from({ length: size }, (_, i) => i),
        );
        // Padding repeats samples from the start of the order, as PyTorch does.
        assert.deepEqual(dealt.slice(size), dealt.slice(0, dealt.length - size));
      },
    ),
  );
});

Deno.test("dropLast trims to equal disjoint shards of floor(size / n)", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 1, max: 8 }), (size, n) => {
      const all = shards(size, n, { dropLast: true, seed: 3 });
      const seen = new Set<number>();
      for (const shard of all) {
        assert.equal(shard.length, Math.floor(size / n));
        for (const index of shard) {
          assert.ok(!seen.has(index), `index ${index} in two shards`);
          assert.ok(index >= 0 && index < size);
          seen.add(index);
        }
      }
    }),
  );
});

Deno.test("the order is deterministic per epoch and seed, and changes between epochs", () => {
  assert.deepEqual(shards(1000, 4, { epoch: 3, seed: 7 }), shards(1000, 4, { epoch: 3, seed: 7 }));
  assert.notDeepEqual(
    shards(1000, 4, { epoch: 3, seed: 7 }),
    shards(1000, 4, { epoch: 4, seed: 7 }),
  );
  assert.notDeepEqual(
    shards(1000, 4, { epoch: 3, seed: 7 }),
    shards(1000, 4, { epoch: 3, seed: 8 }),
  );
});

Deno.test("without shuffling, shard k is every n-th index from k, padded from the start", () => {
  assert.deepEqual(shards(10, 4, { shuffle: false }).map((s) => [...s]), [
    [0, 4, 8],
    [1, 5, 9],
    [2, 6, 0],
    [3, 7, 1],
  ]);
  assert.deepEqual(shards(2, 4, { shuffle: false }).map((s) => [...s]), [[0], [1], [0], [1]]);
});

Deno.test("a single replica sees the whole permutation", () => {
  const sampler = new DistributedSampler(100, { seed: 1 });
  assert.deepEqual(
    [...sampler.indices()].sort((a, b) => a - b),
    Array.from({ length: 100 }, (_, i) => i),
  );
});

Deno.test("invalid arguments are named", () => {
  assert.throws(() => new DistributedSampler(-1), /Invalid dataset size -1/);
  assert.throws(
    () => new DistributedSampler(10, { numReplicas: 2, rank: 2 }),
    /Invalid rank 2: expected an integer from 0 to 1/,
  );
  assert.throws(() => new DistributedSampler(10).setEpoch(1.5), /Invalid epoch 1.5/);
});
