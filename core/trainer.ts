/**
 * The training core shared by every strategy: a model's parameters as a flat master buffer
 * mirrored in tf variables, one flat optimizer, and the flat-buffer seam (get/set parameters, compute gradients, apply a flat
 * gradient) that the strategies move between workers.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { createLayout, type FlatLayout, unflatten } from "./flat_layout.ts";
import { backendSeam } from "./backend_seam.ts";
import { createFlatOptimizer, type FlatOptimizer } from "./flat_optimizer.ts";
import { lossTargets, lossValue, predictedClasses } from "./losses.ts";
import { softmaxCrossEntropy } from "./nn_ops.ts";
import { createRng } from "./rng.ts";
import type {
  CrossReplicaSum,
  Dataset,
  ForwardContext,
  ModelDef,
  OptimizerSpec,
} from "./workload.ts";

/** Samples per forward pass when evaluating accuracy. */
const EVAL_BATCH = 512;
/** Labels per forward pass when evaluating at most (a sequence's samples carry one per position). */
const EVAL_LABELS = 8192;

/** Loss and flat gradient for one batch. */
export interface GradientResult {
  /** Mean loss over the batch (softmax cross-entropy, or the model's own). */
  loss: number;
  /** Gradient of the mean loss, laid out as {@linkcode Trainer.layout}. */
  grads: Float32Array;
}

/**
 * A batch in flat arrays: `size` samples of `featureShape`, labels as class indices (one per
 * sample, or `labelsPerSample` per sample, sample after sample).
 */
export interface Batch {
  x: Float32Array;
  y: Int32Array;
  size: number;
}

/**
 * Initial parameters of `model` for `seed`, as one flat buffer: identical on every backend,
 * process and worker.
 *
 * @param model the model definition
 * @param seed initialisation seed
 * @returns the flat initial parameters
 * @example
 * ```ts
 * import { dense, denseParams } from "./layers.ts";
 * const model = {
 *   params: denseParams("out", 4, 2),
 *   forward: (p: Parameters<typeof dense>[0], x: Parameters<typeof dense>[2]) => dense(p, "out", x),
 *   trainFlopsPerSample: 0,
 * };
 * const p0 = initialParams(model, 0);
 * ```
 */
export function initialParams(model: ModelDef, seed: number): Float32Array {
  const rng = createRng(seed);
  const layout = createLayout(model.params);
  const flat = new Float32Array(layout.totalSize);
  model.params.forEach((p, i) => flat.set(p.init(rng, p.shape), layout.entries[i].offset));
  return flat;
}

/**
 * The first element of `values` that is NaN or ±Infinity.
 *
 * @param values flat parameters (or gradients)
 * @returns its index, or −1 when every element is finite
 * @example
 * ```ts
 * firstNonFinite(new Float32Array([1, NaN])); // 1
 * ```
 */
export function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    // x − x is 0 for finite x and NaN for NaN and ±Infinity: one test, no branches.
    if (values[i] - values[i] !== 0) return i;
  }
  return -1;
}

/** A tensor's values, as the active backend reads them (a heap view where it can). */
function values(t: tf.Tensor): Float32Array {
  return backendSeam().read(t);
}

/** Samples per evaluation forward: {@linkcode EVAL_BATCH}, fewer where each has many labels. */
function evalBatch(split: Batch): number {
  const labels = split.y.length / split.size;
  return Math.max(1, Math.min(EVAL_BATCH, Math.floor(EVAL_LABELS / labels)));
}

/** How many of `predicted` match the labels of `split` from sample `start` on. */
function countCorrect(predicted: ArrayLike<number>, split: Batch, start: number): number {
  const offset = start * (split.y.length / split.size);
  let correct = 0;
  for (let i = 0; i < predicted.length; i++) if (predicted[i] === split.y[offset + i]) correct++;
  return correct;
}

/**
 * The size-weighted mean of micro-batches' gradients, Σ nₖ gₖ / Σ nₖ, built in `acc`: every
 * micro-batch but the last is added whole; the last one finishes the mean range by range (as
 * each parameter's gradient becomes final). With one micro-batch its gradient is copied as it
 * is, to the bit.
 */
class MicroBatchSum {
  readonly acc: Float32Array;
  readonly #size: number;
  readonly #single: boolean;
  #lossSum = 0;
  #lastLoss = 0;

  constructor(batches: Batch[], acc: Float32Array) {
    if (batches.length === 0) throw new Error("Cannot compute a gradient of no batches");
    this.acc = acc;
    this.#size = batches.reduce((sum, b) => sum + b.size, 0);
    this.#single = batches.length === 1;
  }

  /** Adds micro-batch `k`'s whole gradient, weighted by its size (the first one starts the sum). */
  add(k: number, grads: Float32Array, weight: number): void {
    const acc = this.acc;
    if (k === 0) acc.fill(0);
    for (let j = 0; j < acc.length; j++) acc[j] += weight * grads[j];
  }

  /** The last micro-batch's gradient for `acc[offset …]`: that range of the mean is final. */
  finish(offset: number, values: Float32Array, weight: number): void {
    const dst = this.acc.subarray(offset, offset + values.length);
    if (this.#single) return dst.set(values);
    for (let j = 0; j < dst.length; j++) dst[j] = (dst[j] + weight * values[j]) / this.#size;
  }

  addLoss(loss: number, weight: number): void {
    this.#lossSum += weight * loss;
    this.#lastLoss = loss;
  }

  result(): GradientResult & { size: number } {
    const loss = this.#single ? this.#lastLoss : this.#lossSum / this.#size;
    return { loss, grads: this.acc, size: this.#size };
  }
}

/** Options for {@linkcode Trainer}. */
export interface TrainerOptions {
  /** Initialisation seed (default 0); ignored when `params` is given. */
  seed?: number;
  /** Start from these flat parameters instead of a fresh initialisation. */
  params?: Float32Array;
}

/** One model replica with its optimizer, driven through flat buffers. */
export class Trainer {
  /** Where each parameter (and its gradient) sits in the flat buffers. */
  readonly layout: FlatLayout;
  /** Where each buffer (non-trainable state, `ModelDef.buffers`) sits in the flat buffers. */
  readonly bufferLayout: FlatLayout;
  readonly #model: ModelDef;
  readonly #featureShape: number[];
  readonly #numClasses: number;
  readonly #variables: tf.Variable[];
  readonly #optimizer: FlatOptimizer;
  /** The master copy of the parameters; the variables mirror it. */
  readonly #params: Float32Array;
  /** The buffers, flat; the forward updates them in place through `#bufferViews`. */
  readonly #buffers: Float32Array;
  readonly #bufferViews: Record<string, Float32Array>;
  #crossReplica: CrossReplicaSum | undefined;

  /**
   * Build the variables and optimizer on the active backend.
   *
   * @param model the model definition
   * @param data shapes of one sample and the class count
   * @param optimizer optimizer choice
   * @param options see {@linkcode TrainerOptions}
   */
  constructor(
    model: ModelDef,
    data: Pick<Dataset, "featureShape" | "numClasses">,
    optimizer: OptimizerSpec,
    options: TrainerOptions = {},
  ) {
    const { seed = 0, params = initialParams(model, seed) } = options;
    this.#model = model;
    this.#featureShape = data.featureShape;
    this.#numClasses = data.numClasses;
    this.layout = createLayout(model.params);
    this.#checkLength(params, "parameters");
    // Where the backend has its own Adam update (native: WebAssembly SIMD), it runs that one,
    // and the master parameters live where it updates them.
    this.#optimizer = createFlatOptimizer(optimizer, this.layout.totalSize, {
      adam: backendSeam().createAdam,
    });
    this.#params = this.#optimizer.params ?? new Float32Array(this.layout.totalSize);
    this.#params.set(params);
    const buffers = model.buffers ?? [];
    this.bufferLayout = createLayout(buffers);
    this.#buffers = new Float32Array(this.bufferLayout.totalSize);
    buffers.forEach((b, i) =>
      this.#buffers.set(b.init(b.shape), this.bufferLayout.entries[i].offset)
    );
    this.#bufferViews = unflatten(this.bufferLayout, this.#buffers);
    // Made inside a tidy, so each variable owns its memory alone (the initial tensor is
    // disposed) and `#syncVariables` may write parameters into it in place.
    this.#variables = this.layout.entries.map((e) =>
      tf.tidy(() => tf.variable(this.#entryTensor(e), true, `${e.name}#${crypto.randomUUID()}`))
    );
  }

  /** @returns a copy of the current parameters, flat */
  getParams(): Float32Array {
    return this.#params.slice();
  }

  /** @param flat parameters to load, laid out as {@linkcode Trainer.layout} */
  setParams(flat: Float32Array): void {
    this.#checkLength(flat, "parameters");
    this.#params.set(flat);
    this.#syncVariables();
  }

  /** @returns a copy of the buffers (non-trainable state), flat; empty when the model has none */
  getBuffers(): Float32Array {
    return this.#buffers.slice();
  }

  /** @param flat buffers to load, laid out as {@linkcode Trainer.bufferLayout} */
  setBuffers(flat: Float32Array): void {
    if (flat.length !== this.bufferLayout.totalSize) {
      throw new Error(
        `Cannot set buffers: expected ${this.bufferLayout.totalSize} floats, got ${flat.length}`,
      );
    }
    this.#buffers.set(flat);
  }

  /**
   * Sum the statistics a training forward needs over the global batch (SyncBatchNorm) across
   * replicas through `sum` from now on; undefined: each replica's own batch.
   *
   * @param sum the cross-replica sum, or undefined
   */
  synchronizeStatistics(sum: CrossReplicaSum | undefined): void {
    this.#crossReplica = sum;
  }

  /**
   * Forward and backward on one batch.
   *
   * @param batch inputs and labels
   * @param onGrad called during the backward, as soon as parameter `entry`'s gradient is
   *   complete (layers run backward, so the last layer's come first), with its values (valid
   *   only during the call); the returned `grads` holds them all too
   * @returns mean loss and the flat gradient of the mean loss
   */
  computeGradients(
    batch: Batch,
    onGrad?: (entry: number, values: Float32Array) => void,
  ): GradientResult {
    const grads = new Float32Array(this.layout.totalSize);
    const loss = tf.tidy(() => {
      const x = tf.tensor(batch.x, [batch.size, ...this.#featureShape]);
      const y = this.#targets(batch);
      const params = onGrad ? this.#marked(onGrad) : this.#named();
      const { value, grads: named } = tf.variableGrads(
        () => this.#loss(params, x, y) as tf.Scalar,
        this.#variables,
      );
      this.#variables.forEach((v, i) =>
        grads.set(values(named[v.name]), this.layout.entries[i].offset)
      );
      return values(value)[0];
    });
    return { loss, grads };
  }

  /**
   * The gradient of an optimizer step made of micro-batches: each one's forward and backward
   * in turn, their gradients accumulated here (nothing leaves the replica in between), and
   * the mean weighted by size, Σ nₖ gₖ / Σ nₖ — the plain mean when sizes are equal. With one
   * batch this is {@linkcode Trainer.computeGradients}, to the bit.
   *
   * @param batches the micro-batches, at least one
   * @param options `out`: where the gradient goes (default: a new buffer; e.g. memory another
   *   thread reads); `onReady(entry)`: called during the last micro-batch's backward as soon
   *   as parameter `entry`'s accumulated gradient is final in `out`
   * @returns the weighted mean loss, the gradient (`out`), and the samples it covers
   * @example
   * ```ts
   * import type { Batch } from "./trainer.ts";
   * declare const trainer: Trainer, a: Batch, b: Batch;
   * const { loss, grads, size } = trainer.accumulateGradients([a, b]);
   * ```
   */
  accumulateGradients(
    batches: Batch[],
    options: { out?: Float32Array; onReady?: (entry: number) => void } = {},
  ): GradientResult & { size: number } {
    const { out, onReady } = options;
    if (batches.length === 1 && !out && !onReady) {
      return { ...this.computeGradients(batches[0]), size: batches[0].size };
    }
    const sum = new MicroBatchSum(batches, out ?? new Float32Array(this.layout.totalSize));
    this.#checkLength(sum.acc, "gradients");
    for (const [k, batch] of batches.entries()) {
      const last = k === batches.length - 1;
      const finish = (entry: number, values: Float32Array) => {
        sum.finish(this.layout.entries[entry].offset, values, batch.size);
        onReady?.(entry);
      };
      const { loss, grads } = this.computeGradients(batch, last ? finish : undefined);
      if (!last) sum.add(k, grads, batch.size);
      sum.addLoss(loss, batch.size);
    }
    return sum.result();
  }

  /**
   * {@linkcode Trainer.accumulateGradients} on any backend: the same call where the backend
   * reads tensors synchronously (every one but `webgpu`), else the same arithmetic with each
   * gradient read asynchronously after its backward. There `onReady` is called for every
   * parameter (last layer first) once the last backward is read, not during it: nothing
   * overlaps the backward on webgpu.
   *
   * @param batches the micro-batches, at least one
   * @param options as {@linkcode Trainer.accumulateGradients}'s
   * @returns as {@linkcode Trainer.accumulateGradients}
   * @example
   * ```ts
   * import type { Batch } from "./trainer.ts";
   * declare const trainer: Trainer, a: Batch;
   * const { loss, grads } = await trainer.accumulateGradientsAsync([a]);
   * ```
   */
  async accumulateGradientsAsync(
    batches: Batch[],
    options: { out?: Float32Array; onReady?: (entry: number) => void } = {},
  ): Promise<GradientResult & { size: number }> {
    if (backendSeam().readsSync) return this.accumulateGradients(batches, options);
    const { out, onReady } = options;
    const sum = new MicroBatchSum(batches, out ?? new Float32Array(this.layout.totalSize));
    this.#checkLength(sum.acc, "gradients");
    for (const [k, batch] of batches.entries()) {
      const { loss, grads } = await this.#gradientsAsync(batch);
      if (k < batches.length - 1) sum.add(k, grads, batch.size);
      else sum.finish(0, grads, batch.size);
      sum.addLoss(loss, batch.size);
    }
    if (onReady) { for (let i = this.layout.entries.length - 1; i >= 0; i--) onReady(i); }
    return sum.result();
  }

  /**
   * {@linkcode Trainer.evaluate} on any backend (predictions read asynchronously on `webgpu`).
   *
   * @param split samples and labels
   * @returns accuracy in [0, 1]
   */
  async evaluateAsync(split: Batch): Promise<number> {
    if (backendSeam().readsSync) return this.evaluate(split);
    let correct = 0;
    for (let start = 0; start < split.size; start += evalBatch(split)) {
      const predicted = this.#predict(split, start);
      correct += countCorrect(await predicted.data(), split, start);
      predicted.dispose();
    }
    return correct / split.y.length;
  }

  /** Forward and backward on one batch, the results read asynchronously. */
  async #gradientsAsync(batch: Batch): Promise<GradientResult> {
    const [x, y] = tf.tidy(() => [
      tf.tensor(batch.x, [batch.size, ...this.#featureShape]),
      this.#targets(batch),
    ]);
    const { value, grads: named } = tf.variableGrads(
      () => this.#loss(this.#named(), x, y) as tf.Scalar,
      this.#variables,
    );
    x.dispose();
    y.dispose();
    try {
      const grads = new Float32Array(this.layout.totalSize);
      const read = await Promise.all(this.#variables.map((v) => named[v.name].data()));
      read.forEach((g, i) => grads.set(g as Float32Array, this.layout.entries[i].offset));
      return { loss: (await value.data())[0], grads };
    } finally {
      value.dispose();
      for (const g of Object.values(named)) g.dispose();
    }
  }

  /**
   * One optimizer step with a flat gradient (e.g. the all-reduced average).
   *
   * @param flat gradient laid out as {@linkcode Trainer.layout}
   */
  applyGradients(flat: Float32Array): void {
    this.#checkLength(flat, "gradients");
    this.#optimizer.step(this.#params, flat);
    this.#syncVariables();
  }

  /** @returns the index of the first parameter that is NaN or infinite, or −1 when all are finite */
  firstNonFinite(): number {
    return firstNonFinite(this.#params);
  }

  /**
   * Fraction of `split`'s labels predicted correctly (per sample, or per position where a
   * sample has several labels).
   *
   * @param split samples and labels
   * @returns accuracy in [0, 1]
   */
  evaluate(split: Batch): number {
    let correct = 0;
    for (let start = 0; start < split.size; start += evalBatch(split)) {
      const predicted = this.#predict(split, start);
      correct += countCorrect(predicted.dataSync(), split, start);
      predicted.dispose();
    }
    return correct / split.y.length;
  }

  /** The predicted classes of up to {@linkcode evalBatch} samples of `split` from `start`. */
  #predict(split: Batch, start: number): tf.Tensor {
    const width = split.x.length / split.size;
    const n = Math.min(evalBatch(split), split.size - start);
    return tf.tidy(() => {
      const x = tf.tensor(split.x.subarray(start * width, (start + n) * width), [
        n,
        ...this.#featureShape,
      ]);
      const context = { training: false, buffers: this.#bufferViews };
      const output = this.#model.forward(this.#named(), x, context);
      const loss = this.#model.loss;
      return loss ? predictedClasses(loss, output) : tf.argMax(output, -1);
    });
  }

  /** Release the variables. */
  dispose(): void {
    this.#variables.forEach((v) => v.dispose());
  }

  /** A new tensor holding a copy of one entry of the master parameters. */
  #entryTensor(e: FlatLayout["entries"][number]): tf.Tensor {
    // A copy: on cpu, tf.tensor would otherwise share memory with the master buffer.
    return tf.tensor(this.#params.slice(e.offset, e.offset + e.size), e.shape);
  }

  #syncVariables(): void {
    // Where the backend lets the variables' memory be written in place (native, while no
    // XNNPACK kernel that keeps packed weights has run), no tensor is made; elsewhere a new
    // tensor replaces each variable's, so that such a kernel packs the new values.
    const seam = backendSeam();
    this.#variables.forEach((v, i) => {
      const e = this.layout.entries[i];
      const entry = this.#params.subarray(e.offset, e.offset + e.size);
      if (!seam.writeInPlace(v, entry)) tf.tidy(() => v.assign(this.#entryTensor(e)));
    });
  }

  #named(): Record<string, tf.Tensor> {
    const named: Record<string, tf.Tensor> = {};
    this.#variables.forEach((v, i) => named[this.layout.entries[i].name] = v);
    return named;
  }

  /**
   * The parameters by name, each passed through an identity whose gradient reports the
   * parameter's complete gradient to `onGrad`. Each identity is made when the forward first
   * reads the parameter, so it sits on the tape just before the layer that uses it, and the
   * backward (which walks the tape in reverse) reaches it right after that layer's gradient.
   */
  #marked(onGrad: (entry: number, values: Float32Array) => void): Record<string, tf.Tensor> {
    const named: Record<string, tf.Tensor> = {};
    this.#variables.forEach((v, i) => {
      let marked: tf.Tensor | undefined;
      Object.defineProperty(named, this.layout.entries[i].name, {
        enumerable: true,
        get: () =>
          marked ??= tf.customGrad((p) => ({
            value: tf.clone(p as tf.Tensor),
            gradFunc: (dy: tf.Tensor) => {
              onGrad(i, values(dy));
              return dy;
            },
          }))(v),
      });
    });
    return named;
  }

  /**
   * The labels as the loss takes them: class indices for the fused loss, the model's own
   * loss's targets where it declares one, else one-hot.
   */
  #targets(batch: Batch): tf.Tensor {
    const labels = tf.tensor1d(batch.y, "int32");
    if (this.#model.loss) return lossTargets(this.#model.loss, labels);
    return this.#model.fusedLoss ? labels : tf.oneHot(labels, this.#numClasses);
  }

  /**
   * Mean loss over every label of the batch — softmax cross-entropy on logits, or the model's
   * own loss where it declares one: outputs with a position axis (`[batch, T, classes]`) are
   * flattened to one row per label first.
   */
  #loss(params: Record<string, tf.Tensor>, x: tf.Tensor, targets: tf.Tensor): tf.Tensor {
    const context: ForwardContext = {
      training: true,
      buffers: this.#bufferViews,
      crossReplica: this.#crossReplica,
    };
    let logits = this.#model.forward(params, x, context);
    const loss = this.#model.loss;
    if (loss) {
      const rows = logits.rank > 2 ? tf.reshape(logits, [-1, loss.units]) : logits;
      return lossValue(loss, rows, targets);
    }
    if (logits.rank > 2) logits = tf.reshape(logits, [-1, this.#numClasses]);
    if (this.#model.fusedLoss) return softmaxCrossEntropy(logits, targets);
    return tf.neg(tf.mean(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), 1)));
  }

  #checkLength(flat: Float32Array, what: string): void {
    if (flat.length !== this.layout.totalSize) {
      throw new Error(
        `Cannot apply ${what}: expected ${this.layout.totalSize} floats, got ${flat.length}`,
      );
    }
  }
}
