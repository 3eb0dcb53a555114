/**
 * The one training loop. Strategies differ only in how they turn a batch into the averaged
 * gradient ({@linkcode GradientFn}); the loop times every step and its phases, adds up the
 * communication, samples memory, and applies the update.
 *
 * @module
 */
import { ExpectedError } from "./errors.ts";
import { PeakMemory } from "./memory.ts";
import {
  communicationMs,
  emptyTiming,
  PHASES,
  type StepPhases,
  type StepTiming,
  timed,
} from "./phases.ts";

import type { Batch, GradientResult, Trainer } from "./trainer.ts";
import { hostMicros, setActiveTrace, type TraceRecorder } from "./trace.ts";

/** Training diverged: a parameter became NaN or infinite. */
export class DivergedError extends ExpectedError {
  override name = "DivergedError";
}

/**
 * What a strategy contributes: the averaged gradient to apply for this optimizer step's
 * micro-batches (one unless accumulating), with the time of each phase it went through and
 * the bytes it moved recorded in `step`.
 */
export type GradientFn = (batches: Batch[], step: StepTiming) => Promise<GradientResult>;

/** Progress callback: step index (from 1), total steps, and whether it is warm-up. */
export type StepProgress = (step: number, total: number, warmup: boolean) => void;

/** Options for {@linkcode trainLoop}. */
export interface TrainLoopOptions {
  /** Untimed warm-up steps before the timed ones (default 0). */
  warmup?: number;
  onStep?: StepProgress;
  /** Copy the parameters after this many steps (warm-up included); default: the last step. */
  snapshotStep?: number;
  /** Record the steps and their phases into this recorder (`--trace`). */
  trace?: TraceRecorder;
  /** Micro-batches per optimizer step (default 1): `nextBatch` is called this often a step. */
  accumulate?: number;
}

/** Communication per timed step (means), as a run reports it. */
export interface LoopComm {
  bytesPerStep: number;
  /** The communication phases together. */
  msPerStep: number;
  /** Of that, waiting for the slowest worker to arrive. */
  waitMsPerStep: number;
  /** Of that, moving bytes: the rest. */
  transferMsPerStep: number;
  /** Of `msPerStep`, what the step waited for (the communication phases). */
  exposedMsPerStep: number;
  /** Collective calls or worker messages. */
  messagesPerStep: number;
}

/** What the loop measured. */
export interface TrainLoopResult {
  /** Wall time of each timed step, ms. */
  stepMs: number[];
  /** Mean ms per timed step in each phase. */
  phaseMs: StepPhases;
  /** Mean communication per timed step. */
  comm: LoopComm;
  /** Loss of each step, warm-up included. */
  losses: number[];
  peakBytes: number;
  peakRssBytes: number;
  /** Parameters after `snapshotStep` steps. */
  snapshot: Float32Array;
}

/**
 * Train `steps` timed optimizer steps (after `warmup` untimed ones): micro-batches → gradient
 * → update.
 *
 * @param trainer the replica that applies the update
 * @param nextBatch this replica's next batch
 * @param gradients the strategy's gradient step
 * @param steps timed steps
 * @param options see {@linkcode TrainLoopOptions}
 * @returns the measurements
 * @example
 * ```ts
 * import { timed } from "./phases.ts";
 * import type { Batch, Trainer } from "./trainer.ts";
 * declare const trainer: Trainer;
 * declare const nextBatch: () => Batch;
 * const loop = await trainLoop(trainer, nextBatch, (batches, step) =>
 *   timed(step.phases, "compute", () => trainer.accumulateGradients(batches)), 10);
 * console.log(loop.phaseMs.compute);
 * ```
 */
export async function trainLoop(
  trainer: Trainer,
  nextBatch: () => Batch,
  gradients: GradientFn,
  steps: number,
  options: TrainLoopOptions = {},
): Promise<TrainLoopResult> {
  const { warmup = 0, onStep, snapshotStep = warmup + steps, trace, accumulate = 1 } = options;
  setActiveTrace(trace ?? null);
  try {
    return await loop(trainer, nextBatch, gradients, steps, {
      warmup,
      onStep,
      snapshotStep,
      trace,
      accumulate,
    });
  } finally {
    setActiveTrace(null);
  }
}

async function loop(
  trainer: Trainer,
  nextBatch: () => Batch,
  gradients: GradientFn,
  steps: number,
  options: TrainLoopOptions & { warmup: number; snapshotStep: number; accumulate: number },
): Promise<TrainLoopResult> {
  const { warmup, onStep, snapshotStep, trace, accumulate } = options;
  const memory = new PeakMemory();
  const stepMs: number[] = [];
  const losses: number[] = [];
  const totals = emptyTiming();
  const total = warmup + steps;
  let snapshot: Float32Array | undefined;
  memory.sample();
  for (let i = 0; i < total; i++) {
    // Data loading is kept out of the step time.
    const batches = Array.from({ length: accumulate }, () => nextBatch());
    const step = emptyTiming();
    if (trace) trace.step = i + 1;
    const t0 = performance.now();
    const { loss, grads } = await gradients(batches, step);
    await timed(step.phases, "update", () => trainer.applyGradients(grads));
    const elapsed = performance.now() - t0;
    trace?.span("step", `step ${i + 1}`, hostMicros(t0), elapsed * 1000, {
      warmup: i < warmup,
    });
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
      for (const p of PHASES) totals.phases[p] += step.phases[p];
      totals.comm.bytes += step.comm.bytes;
      totals.comm.waitMs += step.comm.waitMs;
      totals.comm.hiddenMs += step.comm.hiddenMs;
      totals.comm.messages += step.comm.messages;
    }
    if (i + 1 === Math.min(snapshotStep, total)) snapshot = trainer.getParams();
    onStep?.(i + 1, total, i < warmup);
  }
  const mean = (ms: number) => ms / Math.max(1, steps);
  const phaseMs = { ...totals.phases };
  for (const p of PHASES) phaseMs[p] = mean(totals.phases[p]);
  const exposedMsPerStep = communicationMs(phaseMs);
  const msPerStep = exposedMsPerStep + mean(totals.comm.hiddenMs);
  const waitMsPerStep = mean(totals.comm.waitMs);
  return {
    stepMs,
    phaseMs,
    comm: {
      bytesPerStep: mean(totals.comm.bytes),
      msPerStep,
      waitMsPerStep,
      transferMsPerStep: msPerStep - waitMsPerStep,
      exposedMsPerStep,
      messagesPerStep: mean(totals.comm.messages),
    },
    losses,
    peakBytes: memory.bytes,
    peakRssBytes: memory.rssBytes,
    snapshot: snapshot ?? trainer.getParams(),
  };
}
