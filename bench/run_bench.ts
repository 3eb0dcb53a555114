/**
 * `bench`: every workload × strategy × world size × repeat, interleaved so that every
 * strategy sees the same machine. This module measures; `analysis/results.ts` turns what it
 * measured into `results.json`.
 *
 * @module
 */
import type { BackendName } from "../backends/backend.ts";
import {
  DEFAULT_BUCKET_BYTES,
  type GradCompression,
  runLabel,
  type RunMeasurement,
  type RunSpec,
  type Scaling,
  type StrategyName,
} from "../core/run_types.ts";
import { resolveWorkload } from "../workloads/resolve_workload.ts";
import { checkRun, STRATEGIES } from "../strategies/registry.ts";
import { runIsolated } from "./run_isolated.ts";
import { describeEnvironment, type Environment } from "./environment.ts";
import { writeTrace } from "./trace_files.ts";

/** Steps after which parameters are compared with single's (`paramMaxAbsDiffVsSingle`). */
export const EQUIVALENCE_STEPS = 20;
/** Untimed warm-up steps per run by default. */
export const DEFAULT_WARMUP = 3;
/** Repeats of every run by default; the report quotes medians. */
export const DEFAULT_REPEATS = 3;
/** The `--quick` preset: timed steps, warm-up and repeats. */
export const QUICK = { steps: 10, warmup: 2, repeats: 1 } as const;

/** Options for {@linkcode runBench}. */
export interface BenchOptions {
  workloads: string[];
  strategies: StrategyName[];
  /** Replicas (dp) or ranks (ddp); single always runs as the reference. */
  worldSizes: number[];
  /** Timed steps per run; default: each workload's own. */
  steps?: number;
  warmup?: number;
  repeats?: number;
  backend?: BackendName;
  /** Compute threads per worker (default 1; more needs `native`). */
  threads?: number;
  /** DDP's links: `unix` (default) or `tcp` (every link over TCP on loopback). */
  transport?: "unix" | "tcp";
  /** Keep every timed step's wall time in the results (`stepSamplesMs`). */
  stepSamples?: boolean;
  /** Write one trace-event file per run here (`--trace`). */
  traceDir?: string;
  fastKernels?: boolean;
  seed?: number;
  quick?: boolean;
  /** Micro-batches per optimizer step (default 1). */
  accumulate?: number;
  /** DP and DDP: how gradients travel (default `none`). */
  gradCompression?: GradCompression;
  /** DDP: bucket caps to run, bytes; more than one sweeps them (default: 25 MiB). */
  bucketBytes?: number[];
  /** DDP: all-reduce buckets during the backward (default true). */
  overlap?: boolean;
  /** Strong (default) or weak scaling. */
  scaling?: Scaling;
}

/**
 * {@linkcode BenchOptions} with every default filled in; `steps` 0 means per workload;
 * `bestSingleThreads` is the threads of the extra `single` run, or null for none.
 */
type BenchConfig = Required<BenchOptions> & { bestSingleThreads: number | null };

/**
 * The threads of the best single process: every logical CPU, on a backend that can use them
 * (`native`: OpenBLAS threads), when that is more than the runs' own threads per worker.
 */
function bestSingleThreads(backend: BackendName, threads: number): number | null {
  const cpus = navigator.hardwareConcurrency;
  return backend === "native" && cpus > threads ? cpus : null;
}

function resolveConfig(options: BenchOptions): BenchConfig {
  const { quick = false, backend = "wasm", threads = 1, fastKernels = true, seed = 0 } = options;
  return {
    ...options,
    stepSamples: options.stepSamples ?? false,
    transport: options.transport ?? "unix",
    traceDir: options.traceDir ?? "",
    quick,
    backend,
    threads,
    bestSingleThreads: bestSingleThreads(backend, threads),
    fastKernels,
    seed,
    accumulate: options.accumulate ?? 1,
    gradCompression: options.gradCompression ?? "none",
    bucketBytes: options.bucketBytes ?? [DEFAULT_BUCKET_BYTES],
    overlap: options.overlap ?? true,
    scaling: options.scaling ?? "strong",
    steps: options.steps ?? (quick ? QUICK.steps : 0),
    warmup: options.warmup ?? (quick ? QUICK.warmup : DEFAULT_WARMUP),
    repeats: options.repeats ?? (quick ? QUICK.repeats : DEFAULT_REPEATS),
  };
}

/**
 * The runs a bench will do, one per (workload, strategy, world size) and repeat, each
 * parallel run followed at once by its ceiling so both see the same machine.
 */
async function planRuns(config: BenchConfig): Promise<RunSpec[]> {
  const specs: RunSpec[] = [];
  for (let repeat = 0; repeat < config.repeats; repeat++) {
    for (const name of config.workloads) {
      const workload = await resolveWorkload(name);
      const base: RunSpec = {
        workload: name,
        strategy: "single",
        worldSize: 1,
        backend: config.backend,
        threads: config.threads,
        fastKernels: config.fastKernels,
        ...(config.traceDir ? { trace: true } : {}),
        seed: config.seed,
        steps: config.steps || workload.defaults.steps,
        warmup: config.warmup,
        globalBatch: workload.defaults.batchSize,
        snapshotStep: workload.defaults.equivalenceSteps ?? EQUIVALENCE_STEPS,
        accumulate: config.accumulate,
        scaling: config.scaling,
      };
      specs.push(base);
      if (config.bestSingleThreads !== null) {
        specs.push({ ...base, threads: config.bestSingleThreads });
      }
      for (const strategy of config.strategies.filter((s) => s !== "single")) {
        for (const worldSize of config.worldSizes) {
          // Weak scaling keeps each worker's batch: N workers train on N × the batch.
          const globalBatch = base.globalBatch * (config.scaling === "weak" ? worldSize : 1);
          const spec: RunSpec = {
            ...base,
            strategy,
            worldSize,
            globalBatch,
            ...(strategy === "ddp" ? { transport: config.transport } : {}),
          };
          checkRun(spec);
          // Compressed runs go beside uncompressed ones, so the report can show what the
          // cast costs in accuracy and buys in bytes; each DDP bucket cap is a run of its own.
          const compressions = config.gradCompression === "none"
            ? ["none" as const]
            : ["none" as const, config.gradCompression];
          const variants = compressions.flatMap((gradCompression) =>
            strategy === "ddp"
              ? config.bucketBytes.map((bucketBytes): RunSpec => ({
                ...spec,
                gradCompression,
                bucketBytes,
                overlap: config.overlap,
              }))
              : [{ ...spec, gradCompression }]
          );
          for (const variant of variants) {
            specs.push(variant);
            if (STRATEGIES[strategy].hasCeiling) specs.push({ ...variant, ceiling: true });
          }
        }
      }
    }
  }
  return specs;
}

/**
 * Check a bench can run as asked (names, world sizes against batch sizes and the machine)
 * without running it.
 *
 * @param options see {@linkcode BenchOptions}
 * @returns how many runs it will do
 * @throws UsageError naming the problem
 */
export async function checkBench(options: BenchOptions): Promise<number> {
  return (await planRuns(resolveConfig(options))).length;
}

/** Reports a bench's progress, run by run (the command line draws it). */
export interface BenchProgress {
  /** A run starts: `label` names it, `total` counts its steps (warm-up included). */
  startRun(label: string, total: number): void;
  /** `done` steps of the current run are finished. */
  step(done: number): void;
  /** The current run ended, with a one-line summary. */
  endRun(summary: string): void;
}

/** The settings a bench ran with, as `results.json` records them. */
export interface BenchConfigRecord {
  workloads: string[];
  strategies: StrategyName[];
  worldSizes: number[];
  /** Timed steps per run, or null for each workload's own. */
  steps: number | null;
  warmup: number;
  repeats: number;
  seed: number;
  quick: boolean;
  /** Threads of the extra `single` run (the best single process), or null for none. */
  bestSingleThreads?: number | null;
  /** Whether runs keep every timed step's wall time (`bench --step-samples`). */
  stepSamples?: boolean;
  /** Micro-batches per optimizer step (absent in older files: 1). */
  accumulate?: number;
  /** How DP's and DDP's gradients travelled (absent in older files: none). */
  gradCompression?: GradCompression;
  /** DDP bucket caps run, bytes (absent in older files: 25 MiB). */
  bucketBytes?: number[];
  /** DDP: whether buckets were all-reduced during the backward. */
  overlap?: boolean;
  /** Strong or weak scaling (absent in older files: strong). */
  scaling?: Scaling;
}

/** Everything a bench measured, in run order: plain data, with the environment. */
export interface BenchMeasurement {
  env: Environment;
  config: BenchConfigRecord;
  /** Every repeat of every run (single included). */
  runs: RunMeasurement[];
  /** Every repeat of every ceiling run. */
  ceilings: RunMeasurement[];
}

/**
 * Run the bench.
 *
 * @param options see {@linkcode BenchOptions}
 * @param progress where progress goes (default: nowhere)
 * @returns what was measured, for `buildResults`
 * @example
 * ```ts
 * const measured = await runBench({
 *   workloads: ["iris-logreg"], strategies: ["single"], worldSizes: [2], quick: true,
 * });
 * console.log(measured.runs[0].samplesPerSec);
 * ```
 */
export async function runBench(
  options: BenchOptions,
  progress?: BenchProgress,
): Promise<BenchMeasurement> {
  const config = resolveConfig(options);
  const env = await describeEnvironment(config.backend, config.fastKernels, config.threads);
  const plan = await planRuns(config);
  const runs: RunMeasurement[] = [];
  const ceilings: RunMeasurement[] = [];
  const repeatOf = new Map<string, number>();
  for (const spec of plan) {
    const name = `${spec.workload} ${runLabel(spec)}${spec.ceiling ? " ceiling" : ""}`;
    progress?.startRun(name, spec.warmup + spec.steps);
    const m = await runIsolated(spec, (done) => progress?.step(done));
    if (config.traceDir) {
      const repeat = repeatOf.get(name) ?? 0;
      repeatOf.set(name, repeat + 1);
      await writeTrace(config.traceDir, m, repeat);
      delete m.trace;
    }
    if (spec.ceiling) {
      ceilings.push(m);
      progress?.endRun(`${name}: ${m.samplesPerSec.toFixed(0)} samples/s`);
      continue;
    }
    runs.push(m);
    progress?.endRun(
      `${name}: ${m.samplesPerSec.toFixed(0)} samples/s, step p50 ${
        m.stepMs.p50.toFixed(1)
      } ms, loss ${m.finalLoss.toFixed(3)}, accuracy ${m.accuracy.toFixed(3)}`,
    );
  }
  return {
    env,
    config: {
      workloads: config.workloads,
      strategies: config.strategies,
      worldSizes: config.worldSizes,
      steps: config.steps || null,
      warmup: config.warmup,
      repeats: config.repeats,
      seed: config.seed,
      quick: config.quick,
      bestSingleThreads: config.bestSingleThreads,
      ...(config.stepSamples ? { stepSamples: true } : {}),
      accumulate: config.accumulate,
      gradCompression: config.gradCompression,
      bucketBytes: config.bucketBytes,
      overlap: config.overlap,
      scaling: config.scaling,
    },
    runs,
    ceilings,
  };
}
