/**
 * Which samples each replica sees, as PyTorch's `DistributedSampler` does it: one seeded
 * permutation per epoch shared by all replicas, padded to a multiple of the replica count,
 * and dealt out round-robin.
 *
 * @module
 */

import { createRng, permutation } from "../core/rng.ts";

/** Options for {@linkcode DistributedSampler}. */
export interface DistributedSamplerOptions {
  /** Number of replicas (ranks) sharing the dataset (default 1). */
  numReplicas?: number;
  /** This replica, 0 ≤ rank < numReplicas (default 0). */
  rank?: number;
  /** Shuffle every epoch (default true); false keeps dataset order. */
  shuffle?: boolean;
  /** Base seed; epoch e shuffles with seed + e (default 0). Must be the same on every rank. */
  seed?: number;
  /**
   * Drop the tail so every replica gets ⌊size / numReplicas⌋ samples (default false: pad by
   * repeating samples from the start so every replica gets ⌈size / numReplicas⌉).
   */
  dropLast?: boolean;
}

/**
 * Splits a dataset of `datasetSize` samples into equal, disjoint shards, one per replica, in a
 * fresh seeded order each epoch. Shard k is every N-th index of the epoch's order, starting at
 * k. All replicas must use the same seed so they agree on the order.
 *
 * @example
 * ```ts
 * const sampler = new DistributedSampler(60_000, { numReplicas: 4, rank: 1, seed: 42 });
 * sampler.setEpoch(3);
 * const mine = sampler.indices(); // 15 000 indices, disjoint from the other ranks'
 * ```
 */
export class DistributedSampler {
  /** Samples in the dataset. */
  readonly datasetSize: number;
  /** Replicas sharing the dataset. */
  readonly numReplicas: number;
  /** This replica. */
  readonly rank: number;
  /** Whether each epoch is shuffled. */
  readonly shuffle: boolean;
  /** Base seed of the shuffles. */
  readonly seed: number;
  /** Whether the tail is dropped rather than padded. */
  readonly dropLast: boolean;
  /** Samples per replica per epoch. */
  readonly numSamples: number;
  /** Samples over all replicas per epoch (numSamples × numReplicas). */
  readonly totalSize: number;
  #epoch = 0;

  /**
   * Creates a sampler for one replica.
   *
   * @param datasetSize Samples in the dataset (a non-negative integer).
   * @param options Replicas, rank, shuffling, seed and tail handling.
   */
  constructor(datasetSize: number, options: DistributedSamplerOptions = {}) {
    const { numReplicas = 1, rank = 0, shuffle = true, seed = 0, dropLast = false } = options;
    if (!Number.isInteger(datasetSize) || datasetSize < 0) {
      throw new RangeError(`Invalid dataset size ${datasetSize}: expected a non-negative integer`);
    }
    if (!Number.isInteger(numReplicas) || numReplicas < 1) {
      throw new RangeError(`Invalid numReplicas ${numReplicas}: expected a positive integer`);
    }
    if (!Number.isInteger(rank) || rank < 0 || rank >= numReplicas) {
      throw new RangeError(
        `Invalid rank ${rank}: expected an integer from 0 to ${numReplicas - 1}`,
      );
    }
    if (!Number.isInteger(seed)) throw new RangeError(`Invalid seed ${seed}: expected an integer`);
    this.datasetSize = datasetSize;
    this.numReplicas = numReplicas;
    this.rank = rank;
    this.shuffle = shuffle;
    this.seed = seed;
    this.dropLast = dropLast;
    this.numSamples = dropLast
      ? Math.floor(datasetSize / numReplicas)
      : Math.ceil(datasetSize / numReplicas);
    this.totalSize = this.numSamples * numReplicas;
  }

  /**
   * Chooses the epoch whose order {@linkcode indices} returns; call it at the start of every
   * epoch, on every rank, or every epoch sees the same order.
   *
   * @param epoch The epoch number (a non-negative integer).
   */
  setEpoch(epoch: number): void {
    if (!Number.isInteger(epoch) || epoch < 0) {
      throw new RangeError(`Invalid epoch ${epoch}: expected a non-negative integer`);
    }
    this.#epoch = epoch;
  }

  /**
   * This replica's sample indices for the current epoch.
   *
   * @returns {@linkcode numSamples} indices into the dataset.
   */
  indices(): Int32Array {
    const order = this.#epochOrder();
    const shard = new Int32Array(this.numSamples);
    for (let i = 0; i < this.numSamples; i++) {
      // Positions past the dataset wrap to its start: padding repeats the first samples.
      shard[i] = order[(this.rank + i * this.numReplicas) % this.datasetSize];
    }
    return shard;
  }

  /** The whole dataset's order this epoch: a seeded permutation, or 0..size−1. */
  #epochOrder(): Int32Array {
    if (!this.shuffle) return Int32Array.from({ length: this.datasetSize }, (_, i) => i);
    return permutation(this.datasetSize, createRng(this.seed + this.#epoch));
  }
}
