/**
 * The one training loop. Strategies differ only in how they turn a batch into the averaged
 * gradient ({@linkcode GradientFn}); the loop times every step and its phases, samples
 * memory, and applies the update.
 *
 * @module
 */
import { ExpectedError } from "./errors.ts";
import { PeakMemory } from "./memory.ts";
import type { Batch, GradientResult, Trainer } from "./trainer.ts";

/** Milliseconds spent in each named phase of a step (compute, comm, replicate, ...). */
export type PhaseTimes = Record<string, number>;

/**
 * Run `fn` and add its wall time to `phases[name]`.
 *
 * @param phases accumulator
 * @param name phase name
 * @param fn the work
 * @returns what `fn` returned
 * @example
 * ```ts
 * const g = await timed(phases, "compute", () => trainer.computeGradients(batch));
 * ```
 */
export async function timed<T>(
  phases: PhaseTimes,
  name: string,
  fn: () => T | Promise<T>,
): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    phases[name] = (phases[name] ?? 0) + performance.now() - t0;
  }
}

/** Training diverged: a parameter became NaN or infinite. */
export class DivergedError extends ExpectedError {
  override name = "DivergedError";
}

/** What a strategy contributes: the gradient to apply for this step's batch. */
export type GradientFn = (batch: Batch, phases: PhaseTimes) => Promise<GradientResult>;

/** Progress callback: step index (from 1), total steps, and whether it is warm-up. */
export type StepProgress = (step: number, total: number, warmup: boolean) => void;

/** Options for {@linkcode trainLoop}. */
export interface TrainLoopOptions {
  /** Untimed warm-up steps before the timed ones (default 0). */
  warmup?: number;
  onStep?: StepProgress;
  /** Copy the parameters after this many steps (warm-up included); default: the last step. */
  snapshotStep?: number;
}

/** What the loop measured. */
export interface TrainLoopResult {
  /** Wall time of each timed step, ms. */
  stepMs: number[];
  /** Mean ms per timed step in each phase (plus `update`). */
  phaseMs: PhaseTimes;
  /** Loss of each step, warm-up included. */
  losses: number[];
  peakBytes: number;
  peakRssBytes: number;
  /** Parameters after `snapshotStep` steps. */
  snapshot: Float32Array;
}

/**
 * Train `steps` timed steps (after `warmup` untimed ones): batch → gradient → update.
 *
 * @param trainer the replica that applies the update
 * @param nextBatch this replica's next batch
 * @param gradients the strategy's gradient step
 * @param steps timed steps
 * @param options see {@linkcode TrainLoopOptions}
 * @returns the measurements
 */
export async function trainLoop(
  trainer: Trainer,
  nextBatch: () => Batch,
  gradients: GradientFn,
  steps: number,
  options: TrainLoopOptions = {},
): Promise<TrainLoopResult> {
  const { warmup = 0, onStep, snapshotStep = warmup + steps } = options;
  const memory = new PeakMemory();
  const stepMs: number[] = [];
  const losses: number[] = [];
  const totals: PhaseTimes = {};
  const total = warmup + steps;
  let snapshot: Float32Array | undefined;
  memory.sample();
  for (let i = 0; i < total; i++) {
    const batch = nextBatch(); // data loading is kept out of the step time
    const phases: PhaseTimes = {};
    const t0 = performance.now();
    const { loss, grads } = await gradients(batch, phases);
    await timed(phases, "update", () => trainer.applyGradients(grads));
    const elapsed = performance.now() - t0;
    // Outside the timed step: a run whose parameters stop being numbers fails here, naming
    // the step, rather than training on (and checkpointing) NaN.
    const bad = trainer.firstNonFinite();
    if (bad >= 0) {
      throw new DivergedError(
        `Parameters became non-finite at step ${
          i + 1
        } (parameter ${bad}; loss ${loss}): lower the learning rate or check the data`,
      );
    }
    memory.sample();
    losses.push(loss);
    if (i >= warmup) {
      stepMs.push(elapsed);
      for (const [name, ms] of Object.entries(phases)) totals[name] = (totals[name] ?? 0) + ms;
    }
    if (i + 1 === Math.min(snapshotStep, total)) snapshot = trainer.getParams();
    onStep?.(i + 1, total, i < warmup);
  }
  const phaseMs: PhaseTimes = {};
  for (const [name, ms] of Object.entries(totals)) phaseMs[name] = ms / Math.max(1, steps);
  return {
    stepMs,
    phaseMs,
    losses,
    peakBytes: memory.bytes,
    peakRssBytes: memory.rssBytes,
    snapshot: snapshot ?? trainer.getParams(),
  };
}
