/**
 * Batches drawn from a sampler's shard, epoch after epoch: the data loader of every strategy.
 *
 * @module
 */
import type { Batch } from "./trainer.ts";
import type { Split } from "./workload.ts";

/** What a {@linkcode BatchStream} needs of a sampler (DistributedSampler fits). */
export interface IndexSampler {
  setEpoch(epoch: number): void;
  indices(): Int32Array;
}

/** Consecutive batches of `batchSize` from a sampler's indices; a short tail is dropped. */
export class BatchStream {
  readonly #split: Split;
  readonly #sampler: IndexSampler;
  readonly #batchSize: number;
  readonly #width: number;
  /** Labels per sample. */
  readonly #labels: number;
  #epoch = 0;
  #order: Int32Array;
  #cursor = 0;

  /**
   * @param split the samples to draw from
   * @param sampler yields this replica's indices per epoch
   * @param batchSize samples per batch
   */
  constructor(split: Split, sampler: IndexSampler, batchSize: number) {
    this.#split = split;
    this.#sampler = sampler;
    this.#batchSize = batchSize;
    this.#width = split.x.length / split.size;
    this.#labels = split.y.length / split.size;
    sampler.setEpoch(0);
    this.#order = sampler.indices();
    if (this.#order.length < batchSize) {
      throw new Error(
        `Cannot draw batches of ${batchSize}: this replica's shard has only ${this.#order.length} samples`,
      );
    }
  }

  /** @returns the next batch (a fresh copy of its samples) */
  next(): Batch {
    if (this.#cursor + this.#batchSize > this.#order.length) {
      this.#sampler.setEpoch(++this.#epoch);
      this.#order = this.#sampler.indices();
      this.#cursor = 0;
    }
    const n = this.#batchSize;
    const w = this.#width;
    const l = this.#labels;
    const x = new Float32Array(n * w);
    const y = new Int32Array(n * l);
    for (let i = 0; i < n; i++) {
      const src = this.#order[this.#cursor + i];
      x.set(this.#split.x.subarray(src * w, (src + 1) * w), i * w);
      if (l === 1) y[i] = this.#split.y[src];
      else y.set(this.#split.y.subarray(src * l, (src + 1) * l), i * l);
    }
    this.#cursor += n;
    return { x, y, size: n };
  }
}
