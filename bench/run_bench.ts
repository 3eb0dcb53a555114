/**
 * `bench`: every workload × strategy × world size × repeat, interleaved so that every
 * strategy sees the same machine, then merged into `results.json` and the reports.
 *
 * @module
 */
import { type BackendName } from "../core/backend.ts";
import { UsageError } from "../core/errors.ts";
import type { RunMeasurement, RunSpec, StrategyName } from "../core/run_types.ts";
import { resolveWorkload } from "../workloads/resolve_workload.ts";
import { checkRun, STRATEGIES } from "../strategies/registry.ts";
import { buildMatrix } from "../reports/matrix.ts";
import { measureCeilingIsolated, runIsolated } from "./run_isolated.ts";
import { describeEnvironment } from "./environment.ts";
import { createProgress } from "./progress.ts";
import {
  buildRunRecords,
  type CeilingMeasurement,
  type Results,
  RESULTS_SCHEMA,
  type Skipped,
} from "./results.ts";

/** Steps after which parameters are compared with single's (CONTRACT.md). */
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
  fastKernels?: boolean;
  seed?: number;
  quick?: boolean;
}

/** {@linkcode BenchOptions} with every default filled in; `steps` 0 means per workload. */
type BenchConfig = Required<BenchOptions>;

function resolveConfig(options: BenchOptions): BenchConfig {
  const { quick = false, backend = "wasm", fastKernels = true, seed = 0 } = options;
  return {
    ...options,
    quick,
    backend,
    fastKernels,
    seed,
    steps: options.steps ?? (quick ? QUICK.steps : 0),
    warmup: options.warmup ?? (quick ? QUICK.warmup : DEFAULT_WARMUP),
    repeats: options.repeats ?? (quick ? QUICK.repeats : DEFAULT_REPEATS),
  };
}

/** One planned run: the strategy itself, or its no-communication ceiling. */
interface PlannedRun {
  spec: RunSpec;
  ceiling: boolean;
}

/**
 * The runs a bench will do, one per (workload, strategy, world size) and repeat, each
 * parallel run followed at once by its ceiling so both see the same machine.
 */
async function planRuns(config: BenchConfig): Promise<PlannedRun[]> {
  const specs: PlannedRun[] = [];
  for (let repeat = 0; repeat < config.repeats; repeat++) {
    for (const name of config.workloads) {
      const workload = await resolveWorkload(name);
      const base: RunSpec = {
        workload: name,
        strategy: "single",
        worldSize: 1,
        backend: config.backend,
        fastKernels: config.fastKernels,
        seed: config.seed,
        steps: config.steps || workload.defaults.steps,
        warmup: config.warmup,
        globalBatch: workload.defaults.batchSize,
        snapshotStep: EQUIVALENCE_STEPS,
      };
      specs.push({ spec: base, ceiling: false });
      for (const strategy of config.strategies.filter((s) => s !== "single")) {
        for (const worldSize of config.worldSizes) {
          const spec = { ...base, strategy, worldSize };
          checkRun(spec);
          specs.push({ spec, ceiling: false });
          if (STRATEGIES[strategy].ceiling) specs.push({ spec, ceiling: true });
        }
      }
    }
  }
  return specs;
}

/**
 * Check a bench can run as asked (names, world sizes against batch sizes) without running it.
 *
 * @param options see {@linkcode BenchOptions}
 * @returns how many runs it will do
 * @throws UsageError naming the problem
 */
export async function checkBench(options: BenchOptions): Promise<number> {
  return (await planRuns(resolveConfig(options))).length;
}

/**
 * Split the requested strategies into runnable ones and skipped ones (with the reason).
 *
 * @param requested strategies asked for
 * @param explicit true when the user named them (then an unimplemented one is an error)
 * @returns runnable strategies and the skipped ones
 * @throws UsageError when an explicitly requested strategy is not implemented
 */
export function selectStrategies(
  requested: StrategyName[],
  explicit: boolean,
): { run: StrategyName[]; skipped: Skipped[] } {
  const skipped = requested
    .filter((s) => !STRATEGIES[s].run)
    .map((strategy) => ({ strategy, reason: "not implemented yet" }));
  if (explicit && skipped.length > 0) {
    const names = skipped.map((s) => `"${s.strategy}"`).join(", ");
    const ready = (Object.keys(STRATEGIES) as StrategyName[]).filter((s) => STRATEGIES[s].run);
    throw new UsageError(
      `Strategy ${names} is not implemented yet: choose from ${ready.join(", ")}`,
    );
  }
  return { run: requested.filter((s) => STRATEGIES[s].run), skipped };
}

/**
 * Run the bench and return the results (not yet written).
 *
 * @param options see {@linkcode BenchOptions}
 * @param skipped strategies left out, recorded in the results
 * @returns the results
 */
export async function runBench(options: BenchOptions, skipped: Skipped[] = []): Promise<Results> {
  const config = resolveConfig(options);
  const env = await describeEnvironment(config.backend, config.fastKernels);
  const plan = await planRuns(config);
  const progress = createProgress(plan.length);
  const measurements: RunMeasurement[] = [];
  const ceilings: CeilingMeasurement[] = [];
  try {
    for (const { spec, ceiling } of plan) {
      const name = (spec.strategy === "single" ? "single" : `${spec.strategy}-${spec.worldSize}`) +
        (ceiling ? " ceiling" : "");
      progress.startRun(`${spec.workload} ${name}`, spec.warmup + spec.steps);
      if (ceiling) {
        const { samplesPerSec } = await measureCeilingIsolated(spec);
        ceilings.push({ spec, samplesPerSec });
        progress.endRun(`${spec.workload} ${name}: ${samplesPerSec.toFixed(0)} samples/s`);
        continue;
      }
      const m = await runIsolated(spec, (done) => progress.step(done));
      measurements.push(m);
      progress.endRun(
        `${spec.workload} ${name}: ${m.samplesPerSec.toFixed(0)} samples/s, step p50 ${
          m.stepMs.p50.toFixed(1)
        } ms, loss ${m.finalLoss.toFixed(3)}, accuracy ${m.accuracy.toFixed(3)}`,
      );
    }
  } finally {
    progress.stop();
  }
  const results: Results = {
    schema: RESULTS_SCHEMA,
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
    },
    skipped,
    runs: buildRunRecords(measurements, ceilings),
    matrix: [],
  };
  results.matrix = buildMatrix(results);
  return results;
}
