/**
 * `results.json`'s types, the equivalence bound, and its run records: repeats merged by their
 * median, speedup and efficiency against the single-device reference of the same workload in
 * the same run, and the parameter difference from that reference (the equivalence check).
 *
 * @module
 */
import type {
  BatchNormMode,
  GradCompression,
  RunMeasurement,
  RunModelReport,
  RunSpec,
  Scaling,
  StrategyName,
  WorkerMemory,
} from "../core/run_types.ts";
import { PHASES, type StepPhases } from "../core/phases.ts";
import {
  type Interval,
  median,
  medianInterval,
  type Percentiles,
  summarize,
} from "../core/stats.ts";
import type { Environment } from "../bench/environment.ts";
import type { BenchConfigRecord } from "../bench/run_bench.ts";
import { runKey } from "./_runs.ts";
import type { CrossoverEntry } from "./crossover.ts";
import { DEFAULT_BUCKET_BYTES } from "../core/run_types.ts";
import { evenSample } from "../core/even_sample.ts";

/** The results schema identifier, written into every `results.json`. */
export const RESULTS_SCHEMA = "paratrain/results@1";
/**
 * Step samples kept per repeat with `bench --step-samples` (`stepSamplesMs`): a run with more
 * timed steps keeps the first and last {@linkcode STEP_SAMPLES_EDGE} and an even sample between,
 * as traces keep their steps, so results and reports stay bounded however long the run.
 */
export const MAX_STEP_SAMPLES = 10_000;
/** Step samples kept whole at each end of a longer run. */
export const STEP_SAMPLES_EDGE = 10;
/** Largest max |param − single's param| a parallel run may show (absolute, not relative). */
export const EQUIVALENCE_BOUND = 1e-4;

/**
 * The bound for runs whose gradients travel in 16 bits (`--grad-compression`): the cast
 * changes each gradient by up to 2⁻¹¹ (fp16) or 2⁻⁸ (bf16) of its size, and Adam turns a small
 * change of a near-zero gradient into up to a learning-rate-sized change of the update; over
 * the 20 steps of the check the parameters move apart by that much, not by float rounding.
 */
export const COMPRESSED_EQUIVALENCE_BOUND = { fp16: 1e-2, bf16: 3e-2 } as const;

/**
 * The equivalence bound a run is held to: {@linkcode EQUIVALENCE_BOUND}, or the compressed
 * one with `--grad-compression`; null where the check does not apply: weak scaling trains on
 * a larger batch than single, so its parameters are not single's; BatchNorm with local
 * statistics normalises each replica's slice by its own mean and variance, so it computes
 * another gradient than single by design (its difference is still measured and shown).
 *
 * @param run its compression, scaling and BatchNorm mode
 * @returns the bound, or null
 * @example
 * ```ts
 * equivalenceBound({ strategy: "ddp", gradCompression: "fp16" }); // 1e-2
 * equivalenceBound({ strategy: "dp", batchNorm: "local" }); // null
 * ```
 */
export function equivalenceBound(
  run: Pick<RunRecord, "gradCompression" | "scaling" | "strategy" | "batchNorm">,
): number | null {
  if (run.scaling === "weak" && run.strategy !== "single") return null;
  if (run.batchNorm === "local") return null;
  const c = run.gradCompression ?? "none";
  return c === "none" ? EQUIVALENCE_BOUND : COMPRESSED_EQUIVALENCE_BOUND[c];
}

/**
 * The batch a run set is built around: the global batch, or with weak scaling each worker's
 * (a parallel run's global batch is then N times it). A run and its single reference share it.
 *
 * @param spec the run's strategy, world size, global batch and scaling
 * @returns the set's batch
 * @example
 * ```ts
 * setBatch({ strategy: "ddp", worldSize: 2, globalBatch: 512, scaling: "weak" }); // 256
 * ```
 */
export function setBatch(
  spec: { strategy: StrategyName; worldSize: number; globalBatch: number; scaling?: Scaling },
): number {
  return spec.scaling === "weak" && spec.strategy !== "single"
    ? spec.globalBatch / spec.worldSize
    : spec.globalBatch;
}

/** One entry of `runs` in `results.json`. */
export interface RunRecord {
  workload: string;
  strategy: StrategyName;
  worldSize: number;
  backend: string;
  fastKernels: boolean;
  /** Compute threads per worker (absent in files written before `--threads`: 1). */
  threads?: number;
  /**
   * DDP runs: the ring's links as rank 0 saw them, `tcp` when either of its links was TCP (so
   * always across hosts), else `unix` (absent in older files and for other strategies).
   */
  transport?: "unix" | "tcp";
  /** DDP runs: the hosts the ranks ran on (`bench --nnodes`; absent in older files: 1). */
  hosts?: number;
  /** Global batch of one micro-step (an optimizer step covers `accumulate` of them). */
  globalBatch: number;
  /** Micro-batches per optimizer step (`--accumulate`; absent in older files: 1). */
  accumulate?: number;
  /** How gradients travel (`--grad-compression`; absent in older files: none). */
  gradCompression?: GradCompression;
  /** DDP: the gradient bucket cap, bytes (`--bucket-mb`); null for other strategies. */
  bucketBytes?: number | null;
  /** DDP: whether buckets were all-reduced during the backward; null for other strategies. */
  overlap?: boolean | null;
  /** Strong or weak scaling (`--scaling`; absent in older files: strong). */
  scaling?: Scaling;
  /**
   * How BatchNorm normalised (`--batchnorm`): `local` or `sync` for DP and DDP runs of a
   * model with BatchNorm, null otherwise; absent in older files.
   */
  batchNorm?: BatchNormMode | null;
  /** Trainable parameters (absent in older files). */
  params?: number;
  /** Bytes of float32 gradient all-reduced per step before compression (absent in older files). */
  gradientBytes?: number;
  /**
   * FLOPs of one optimizer step over the global batch; null where some layer of a model
   * brought from outside could not be counted (`model.flopsNotCounted`); absent in older files.
   */
  flopsPerStep?: number | null;
  /**
   * A model brought from outside (a TensorFlow.js Layers model): where it came from, its loss,
   * its data, the layers whose FLOPs were not counted, how its training differs from its own
   * `fit`. Absent for the built-in workloads.
   */
  model?: RunModelReport;
  steps: number;
  warmup: number;
  repeats: number;
  /** Over every timed step of every repeat, ms. */
  stepMs: Percentiles;
  /** Median over repeats of globalBatch / step p50. */
  samplesPerSec: number;
  samplesPerSecRepeats: number[];
  /** Median over repeats of samples/s ÷ single's in the same repeat. */
  speedup: number;
  /** speedup / world size. */
  efficiency: number;
  /** Median over repeats of the ceiling's samples/s ÷ single's in the same repeat. */
  ceiling: { speedup: number } | null;
  /** Median over repeats of samples/s ÷ the ceiling's in the same repeat. */
  efficiencyVsCeiling: number | null;
  /**
   * Where the median speedup lies, from the repeats' within-repeat ratios (`INTERVAL_METHOD`
   * in core/stats.ts); null for single. Absent in files written before intervals.
   */
  speedupInterval?: Interval | null;
  /** The same for `efficiencyVsCeiling`; null where there is no ceiling. */
  efficiencyVsCeilingInterval?: Interval | null;
  /**
   * Median over repeats of samples/s ÷ the best single process's in the same repeat: the
   * `single` run (of any thread count) with the highest median samples/s. Verdicts use it;
   * `speedup` and `efficiency` stay against the one-worker `single` (scaling). Null for single
   * runs; absent in older files.
   */
  speedupVsBestSingle?: number | null;
  /** The interval of `speedupVsBestSingle`. */
  speedupVsBestSingleInterval?: Interval | null;
  /** Threads of the best single process `speedupVsBestSingle` compares with. */
  bestSingleThreads?: number | null;
  /**
   * With `bench --step-samples`: every timed step's wall time, ms, one array per repeat
   * (absent otherwise, to keep files small); at most {@linkcode MAX_STEP_SAMPLES} per repeat —
   * beyond, the first and last {@linkcode STEP_SAMPLES_EDGE} and an even sample between.
   */
  stepSamplesMs?: number[][];
  /**
   * Mean ms per step by phase (median over repeats): the fields of `StepPhases`. Read it
   * with {@linkcode phasesOf}, which also reads files written before the phases were typed.
   */
  phaseMs: Record<string, number>;
  memory: { workers: WorkerMemory[]; imbalance: number };
  comm: {
    bytesPerStep: number;
    msPerStep: number;
    waitMsPerStep: number;
    transferMsPerStep: number;
    share: number;
    /**
     * Of `msPerStep`, what the step waited for: communication not hidden behind compute
     * (DDP's overlapped buckets); equal to `msPerStep` where nothing overlaps. Absent in
     * older files.
     */
    exposedMsPerStep?: number;
    /** Collective calls (DDP) or worker messages (DP) per optimizer step; absent in older files. */
    messagesPerStep?: number;
    /** What the all-reduce table beside the results predicts for this run, ms; else null. */
    predictedMsPerStep?: number | null;
  };
  /**
   * Why the run is as fast as it is (`analysis/bound.ts`): compute, communication, latency or
   * machine; null for single; absent in older files.
   */
  bound?: "compute" | "communication" | "latency" | "machine" | null;
  /**
   * Achieved GFLOP/s of all workers together; peak = world size × one worker's GEMM. Where the
   * FLOPs of a step are unknown (`flopsPerStep` null), `gflops` and `fractionOfPeak` are null
   * and `reason` says why.
   */
  compute: {
    gflops: number | null;
    peakGflops: number;
    fractionOfPeak: number | null;
    reason?: string;
  };
  finalLoss: number;
  accuracy: number;
  loadMs: number;
  /**
   * Max |param − single's param| after `equivalenceSteps` steps (repeat 0 of single); null
   * where single trained on other batches (weak scaling).
   */
  paramMaxAbsDiffVsSingle: number | null;
  /** The bound that difference is held to ({@linkcode equivalenceBound}); absent in older files. */
  equivalenceBoundUsed?: number | null;
  equivalenceSteps: number;
}

/** The whole `results.json`. */
export interface Results {
  schema: typeof RESULTS_SCHEMA;
  env: Environment;
  config: BenchConfigRecord;
  runs: RunRecord[];
  matrix: unknown[];
  /** One verdict per workload (`analysis/matrix.ts`'s `VerdictRecord`); absent in older files. */
  verdicts?: unknown[];
  /**
   * Where parallel starts to pay (`analysis/crossover.ts`'s `CrossoverEntry`): present when a
   * family was measured at two configurations or more.
   */
  crossover?: CrossoverEntry[];
}

/** DDP's all-reduce phase as files written before typed phases named it. */
const LEGACY_ALL_REDUCE = "comm";

/**
 * A run's mean phases, every field present (0 where the strategy has no such phase). Files
 * written before the phases were typed named DDP's all-reduce `comm` and mixed in the
 * communication breakdown (`commWait`, `commTransfer`, now in `comm`): both are read.
 *
 * @param run a run record
 * @returns its phases
 * @example
 * ```ts
 * declare const run: RunRecord;
 * phasesOf(run).allReduce;
 * ```
 */
export function phasesOf(run: Pick<RunRecord, "phaseMs">): StepPhases {
  const stored = run.phaseMs;
  const phases = Object.fromEntries(
    PHASES.map((p) => [p, stored[p] ?? 0]),
  ) as unknown as StepPhases;
  if (stored.allReduce === undefined && stored[LEGACY_ALL_REDUCE] !== undefined) {
    phases.allReduce = stored[LEGACY_ALL_REDUCE];
  }
  return phases;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Each worker's peak over the repeats (worker rows line up by position), and arrival lag. */
function peakPerWorker(repeats: RunMeasurement[]): WorkerMemory[] {
  const maxOf = (values: (number | null)[]) =>
    values.some((v) => v === null) ? null : Math.max(...(values as number[]));
  return repeats[0].workers.map((w, i) => {
    const lags = repeats.map((r) => r.workers[i].arrivalLagMs);
    return {
      ...w,
      peakBytes: Math.max(...repeats.map((r) => r.workers[i].peakBytes)),
      peakRssBytes: maxOf(repeats.map((r) => r.workers[i].peakRssBytes)),
      // Arrival lag: the median repeat's p50 and the worst repeat's p95.
      ...(lags.every((l) => l !== undefined)
        ? {
          arrivalLagMs: {
            p50: median(lags.map((l) => l!.p50)),
            p95: Math.max(...lags.map((l) => l!.p95)),
          },
        }
        : {}),
    };
  });
}

function groupRuns<T extends Pick<RunMeasurement, "spec">>(measurements: T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const m of measurements) {
    const key = runKey(m.spec);
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  return groups;
}

/** `a[r].samplesPerSec / b[r].samplesPerSec` for every repeat r (repeats in run order). */
function ratios(a: { samplesPerSec: number }[], b: { samplesPerSec: number }[]): number[] {
  if (a.length !== b.length) throw new Error(`Cannot pair ${a.length} repeats with ${b.length}`);
  return a.map((m, r) => m.samplesPerSec / b[r].samplesPerSec);
}

/** Median over repeats of the within-repeat ratio of `a` to `b`. */
function medianRatio(a: { samplesPerSec: number }[], b: { samplesPerSec: number }[]): number {
  return median(ratios(a, b));
}

const medianOf = (xs: RunMeasurement[], f: (m: RunMeasurement) => number) => median(xs.map(f));

/**
 * Why a run has no GFLOP/s: the layers whose FLOPs were not counted, fvcore-style (a class,
 * how many calls, why).
 *
 * @param m the run's measurement (its model report)
 * @returns the reason, one line
 * @example
 * ```ts
 * uncountedReason({
 *   model: {
 *     source: "s", loss: "l", lossName: "mean-squared-error", data: "d", notes: [],
 *     flopsNotCounted: [{ layer: "Conv3D", count: 1, reason: "no FLOP rule for this layer class" }],
 *   },
 * }); // "FLOPs not counted for Conv3D ×1 (no FLOP rule for this layer class): …"
 * ```
 */
export function uncountedReason(m: Pick<RunMeasurement, "model">): string {
  const layers = m.model?.flopsNotCounted ?? [];
  return `FLOPs not counted for ${
    layers.map((l) => `${l.layer} ×${l.count} (${l.reason})`).join(", ") || "some layers"
  }: the FLOPs of a step are unknown, so GFLOP/s and % of GEMM peak are not given`;
}

/**
 * Merge the repeats of each (workload, strategy, world size) into one run record.
 *
 * @param measurements every repeat of every run, single included
 * @param ceilingRuns every repeat of the parallel runs' ceilings
 * @returns the run records, in the order first seen
 */
export function buildRunRecords(
  measurements: RunMeasurement[],
  ceilingRuns: Pick<RunMeasurement, "spec" | "samplesPerSec">[] = [],
  options: { stepSamples?: boolean } = {},
): RunRecord[] {
  const groups = groupRuns(measurements);
  const ceilings = groupRuns(ceilingRuns);
  // The reference is the single run with the bench's own threads per worker (the first
  // single measured) of the same workload and batch; the best single process is whichever
  // of those single runs was fastest.
  const singles = (spec: RunSpec) =>
    [...groups.values()].filter((g) =>
      g[0].spec.workload === spec.workload && g[0].spec.strategy === "single" &&
      setBatch(g[0].spec) === setBatch(spec)
    );
  const reference = (spec: RunSpec) =>
    singles(spec)[0] ??
      (() => {
        throw new Error(
          `No single-device reference for ${spec.workload} at batch ${setBatch(spec)}`,
        );
      })();
  const bestSingle = (spec: RunSpec) =>
    singles(spec).reduce((best, g) =>
      median(g.map((m) => m.samplesPerSec)) > median(best.map((m) => m.samplesPerSec)) ? g : best
    );
  return [...groups.values()].map((repeats) => {
    const { spec } = repeats[0];
    const single = reference(spec);
    const best = bestSingle(spec);
    const parallel = spec.strategy !== "single";
    const samplesPerSecRepeats = repeats.map((m) => m.samplesPerSec);
    const samplesPerSec = median(samplesPerSecRepeats);
    // Ratios are taken within a repeat — the run, its single reference and its ceiling ran
    // back to back, on the same machine state — then the median over repeats is quoted.
    // This machine's speed drifts by tens of percent over minutes; ratios of medians taken
    // minutes apart would carry that drift, per-repeat ratios mostly cancel it.
    const speedup = medianRatio(repeats, single);
    const ceilingRepeats = ceilings.get(runKey(spec));
    const ceiling = ceilingRepeats ? { speedup: medianRatio(ceilingRepeats, single) } : null;
    const efficiencyVsCeiling = ceilingRepeats ? medianRatio(repeats, ceilingRepeats) : null;
    const vsBest = parallel ? ratios(repeats, best) : null;
    const pooled = summarize(repeats.flatMap((m) => m.stepSamples));
    const workers = peakPerWorker(repeats);
    const meanBytes = workers.reduce((s, w) => s + w.peakBytes, 0) / workers.length;
    // The peak of N workers is N times one worker's plain GEMM (measured in the run's own
    // process): what the achieved aggregate GFLOP/s would be with perfect use of every worker.
    const peakGflops = spec.worldSize * medianOf(repeats, (m) => m.peakGflops);
    const samplesPerStep = spec.globalBatch * (spec.accumulate ?? 1);
    const flopsPerStep = repeats[0].flopsPerStep;
    const gflops = flopsPerStep === null
      ? null
      : samplesPerSec * (flopsPerStep / samplesPerStep) / 1e9;
    const settings = {
      accumulate: spec.accumulate ?? 1,
      gradCompression: spec.gradCompression ?? "none",
      bucketBytes: spec.strategy === "ddp" ? spec.bucketBytes ?? DEFAULT_BUCKET_BYTES : null,
      overlap: spec.strategy === "ddp" ? spec.overlap ?? true : null,
      scaling: spec.scaling ?? "strong",
    } as const;
    const batchNorm = repeats[0].batchNorm ?? null;
    const bound = equivalenceBound({ ...settings, strategy: spec.strategy, batchNorm });
    return {
      workload: spec.workload,
      strategy: spec.strategy,
      worldSize: spec.worldSize,
      backend: spec.backend,
      fastKernels: spec.fastKernels,
      threads: spec.threads ?? 1,
      ...(spec.strategy === "ddp"
        ? {
          transport: repeats[0].transport ?? spec.transport ?? "unix",
          hosts: spec.nodes?.nnodes ?? 1,
        }
        : {}),
      globalBatch: spec.globalBatch,
      ...settings,
      batchNorm,
      params: repeats[0].params,
      gradientBytes: repeats[0].gradientBytes,
      flopsPerStep,
      ...(repeats[0].model ? { model: repeats[0].model } : {}),
      steps: spec.steps,
      warmup: spec.warmup,
      repeats: repeats.length,
      stepMs: pooled,
      samplesPerSec,
      samplesPerSecRepeats,
      speedup,
      efficiency: speedup / spec.worldSize,
      ceiling,
      efficiencyVsCeiling,
      speedupInterval: parallel ? medianInterval(ratios(repeats, single)) : null,
      efficiencyVsCeilingInterval: ceilingRepeats
        ? medianInterval(ratios(repeats, ceilingRepeats))
        : null,
      speedupVsBestSingle: vsBest ? median(vsBest) : null,
      speedupVsBestSingleInterval: vsBest ? medianInterval(vsBest) : null,
      bestSingleThreads: parallel ? best[0].spec.threads ?? 1 : null,
      ...(options.stepSamples
        ? {
          stepSamplesMs: repeats.map((m) =>
            evenSample(m.stepSamples, MAX_STEP_SAMPLES, STEP_SAMPLES_EDGE).map((ms) =>
              Number(ms.toFixed(3))
            )
          ),
        }
        : {}),
      phaseMs: Object.fromEntries(PHASES.map((p) => [p, medianOf(repeats, (m) => m.phaseMs[p])])),
      memory: { workers, imbalance: Math.max(...workers.map((w) => w.peakBytes)) / meanBytes },
      comm: {
        bytesPerStep: medianOf(repeats, (m) => m.comm.bytesPerStep),
        msPerStep: medianOf(repeats, (m) => m.comm.msPerStep),
        waitMsPerStep: medianOf(repeats, (m) => m.comm.waitMsPerStep),
        transferMsPerStep: medianOf(repeats, (m) => m.comm.transferMsPerStep),
        share: medianOf(repeats, (m) => m.comm.share),
        exposedMsPerStep: medianOf(repeats, (m) => m.comm.exposedMsPerStep),
        messagesPerStep: medianOf(repeats, (m) => m.comm.messagesPerStep),
      },
      compute: gflops === null
        ? { gflops, peakGflops, fractionOfPeak: null, reason: uncountedReason(repeats[0]) }
        : { gflops, peakGflops, fractionOfPeak: gflops / peakGflops },
      finalLoss: medianOf(repeats, (m) => m.finalLoss),
      accuracy: medianOf(repeats, (m) => m.accuracy),
      loadMs: medianOf(repeats, (m) => m.loadMs),
      // Measured wherever single trained on the same batches (not with weak scaling), also
      // where no bound applies (local BatchNorm): the difference is shown.
      paramMaxAbsDiffVsSingle: settings.scaling === "weak" && parallel
        ? null
        : Math.max(...repeats.map((m) => maxAbsDiff(m.snapshot, single[0].snapshot))),
      equivalenceBoundUsed: bound,
      equivalenceSteps: Math.min(spec.snapshotStep, spec.warmup + spec.steps),
    };
  });
}
