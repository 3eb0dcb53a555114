/**
 * `bench`: every workload × strategy × world size × repeat, interleaved so that every
 * strategy sees the same machine. This module measures; `analysis/results.ts` turns what it
 * measured into `results.json`.
 *
 * @module
 */
import { type BackendName, maxThreads } from "../backends/backend.ts";
import { followNodes, leadNodes, type NodeHost, type NodeLeader } from "../comm/node_group.ts";
import { ENV_NAMES } from "../comm/rank_env.ts";
import { UsageError } from "../core/errors.ts";
import type { Workload } from "../core/workload.ts";
import {
  type BatchNormMode,
  DEFAULT_BUCKET_BYTES,
  EQUIVALENCE_STEPS,
  type GradCompression,
  type NodeSpec,
  runLabel,
  type RunMeasurement,
  type RunSpec,
  type Scaling,
  type StrategyName,
} from "../core/run_types.ts";
import { resolveWorkload } from "../workloads/resolve_workload.ts";
import { checkRun, STRATEGIES } from "../strategies/registry.ts";
import { trialStep } from "../strategies/trial_step.ts";
import { runIsolated } from "./run_isolated.ts";
import { describeEnvironment, type Environment } from "./environment.ts";
import { writeTrace } from "./trace_files.ts";

export { EQUIVALENCE_STEPS };
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
  /**
   * Across hosts (torchrun's flags): every host runs the same bench; DDP runs span the hosts
   * with `nnodes · nprocPerNode` ranks, node 0 runs everything else and writes the results.
   * Node 0's control connection takes `masterPort`, each DDP run's rendezvous the port above.
   */
  nodes?: NodeSpec;
  /**
   * Global batches to run each workload at, one run set each (`--batches`); default: each
   * workload's own.
   */
  batches?: number[];
  /**
   * DP and DDP on workloads with BatchNorm: the modes to run, side by side (`--batchnorm`);
   * default `local`. Given explicitly, some workload must have BatchNorm and some strategy be
   * parallel.
   */
  batchNorm?: BatchNormMode[];
  /** Layers models: what they train on (`--data`; default synthetic, shaped to the model). */
  data?: string;
  /** Layers models: their loss (`--loss`; default their compile configuration's). */
  loss?: string;
}

/**
 * {@linkcode BenchOptions} with every default filled in; `steps` 0 means per workload;
 * `bestSingleThreads` is the threads of the extra `single` run, or null for none.
 */
type BenchConfig =
  & Required<Omit<BenchOptions, "nodes" | "batches" | "batchNorm" | "data" | "loss">>
  & Pick<BenchOptions, "batches" | "batchNorm" | "data" | "loss">
  & { bestSingleThreads: number | null; nodes: NodeSpec | null };

/**
 * The threads of the best single process: every logical CPU (at most 64), on a
 * backend that can use them (`native`: its compute threads), when that is more than the runs' own
 * threads per worker.
 */
function bestSingleThreads(backend: BackendName, threads: number): number | null {
  const cpus = maxThreads();
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
    nodes: options.nodes && options.nodes.nnodes > 1 ? options.nodes : null,
    batches: options.batches,
    batchNorm: options.batchNorm,
    steps: options.steps ?? (quick ? QUICK.steps : 0),
    warmup: options.warmup ?? (quick ? QUICK.warmup : DEFAULT_WARMUP),
    repeats: options.repeats ?? (quick ? QUICK.repeats : DEFAULT_REPEATS),
  };
}

/** Whether a workload's model keeps BatchNorm statistics (buffers the forward updates). */
function hasBatchNorm(workload: Workload): boolean {
  return (workload.createModel().buffers?.length ?? 0) > 0;
}

/** A workload of the bench, with its `--data` and `--loss` (which only Layers models take). */
function resolveIn(config: BenchConfig, name: string): Promise<Workload> {
  return resolveWorkload(name, { data: config.data, loss: config.loss });
}

/**
 * Models brought from outside: `--data` and `--loss` need one, SyncBatchNorm is not theirs,
 * and each trains a trial step on the bench's backend before any run.
 */
async function checkLayersModels(config: BenchConfig): Promise<void> {
  const layers: string[] = [];
  for (const name of config.workloads) {
    const model = (await resolveIn(config, name)).createModel();
    if (!model.report) continue;
    layers.push(name);
    if ((model.buffers?.length ?? 0) > 0 && config.batchNorm?.includes("sync")) {
      throw new UsageError(
        `--batchnorm sync cannot run ${name}: tfjs-layers' BatchNormalization computes each replica's own statistics (SyncBatchNorm is resnet-cnn's); run it with --batchnorm local`,
      );
    }
    await trialStep({ ...config, workload: name, threads: config.threads });
  }
  for (const [flag, given] of [["--data", config.data], ["--loss", config.loss]] as const) {
    if (given && layers.length === 0) {
      throw new UsageError(
        `${flag} applies to TensorFlow.js Layers models (model:PATH/model.json, MODULE#function); none of ${
          config.workloads.join(", ")
        } is one`,
      );
    }
  }
}

/** `--batchnorm` needs a workload with BatchNorm and a parallel strategy; webgpu none. */
async function checkBatchNorm(config: BenchConfig): Promise<Set<string>> {
  const withBn = new Set<string>();
  for (const name of config.workloads) {
    if (hasBatchNorm(await resolveIn(config, name))) withBn.add(name);
  }
  if (withBn.size > 0 && config.backend === "webgpu") {
    throw new UsageError(
      `Cannot run ${
        [...withBn].join(", ")
      } on webgpu: BatchNorm reads its batch statistics synchronously, which webgpu cannot under Deno`,
    );
  }
  if (!config.batchNorm) return withBn;
  if (withBn.size === 0) {
    throw new UsageError(
      `--batchnorm applies to workloads with BatchNorm (resnet-cnn); none of ${
        config.workloads.join(", ")
      } has any`,
    );
  }
  if (!config.strategies.some((s) => s !== "single")) {
    throw new UsageError(
      "--batchnorm applies to dp and ddp: single has one replica, whose statistics are the batch's",
    );
  }
  return withBn;
}

/**
 * The runs a bench will do, one per (workload, global batch, strategy, world size) and
 * repeat, each parallel run followed at once by its ceiling so both see the same machine.
 */
async function planRuns(config: BenchConfig): Promise<RunSpec[]> {
  const specs: RunSpec[] = [];
  const withBn = await checkBatchNorm(config);
  for (let repeat = 0; repeat < config.repeats; repeat++) {
    for (const name of config.workloads) {
      const workload = await resolveIn(config, name);
      for (const globalBatch of config.batches ?? [workload.defaults.batchSize]) {
        planWorkload(config, specs, name, workload, globalBatch, withBn.has(name));
      }
    }
  }
  return specs;
}

/** The runs of one workload at one global batch: single (and the best single), then the rest. */
function planWorkload(
  config: BenchConfig,
  specs: RunSpec[],
  name: string,
  workload: Workload,
  batch: number,
  batchNorm: boolean,
): void {
  const base: RunSpec = {
    workload: name,
    ...(config.data && workload.createModel().report ? { data: config.data } : {}),
    ...(config.loss && workload.createModel().report ? { loss: config.loss } : {}),
    strategy: "single",
    worldSize: 1,
    backend: config.backend,
    threads: config.threads,
    fastKernels: config.fastKernels,
    ...(config.traceDir ? { trace: true } : {}),
    seed: config.seed,
    steps: config.steps || workload.defaults.steps,
    warmup: config.warmup,
    globalBatch: batch,
    snapshotStep: workload.defaults.equivalenceSteps ?? EQUIVALENCE_STEPS,
    accumulate: config.accumulate,
    scaling: config.scaling,
  };
  specs.push(base);
  if (config.bestSingleThreads !== null) {
    specs.push({ ...base, threads: config.bestSingleThreads });
  }
  for (const strategy of config.strategies.filter((s) => s !== "single")) {
    // Across hosts, DDP runs span them all: nnodes × nproc-per-node ranks.
    const acrossHosts = strategy === "ddp" ? config.nodes : null;
    const worldSizes = acrossHosts
      ? [acrossHosts.nnodes * acrossHosts.nprocPerNode]
      : config.worldSizes;
    for (const worldSize of worldSizes) {
      // Weak scaling keeps each worker's batch: N workers train on N × the batch.
      const globalBatch = base.globalBatch * (config.scaling === "weak" ? worldSize : 1);
      const spec: RunSpec = {
        ...base,
        strategy,
        worldSize,
        globalBatch,
        ...(strategy === "ddp" ? { transport: config.transport } : {}),
        ...(acrossHosts
          ? { nodes: { ...acrossHosts, masterPort: acrossHosts.masterPort + 1 } }
          : {}),
      };
      checkRun(spec);
      // Compressed runs go beside uncompressed ones, so the report can show what the cast
      // costs in accuracy and buys in bytes; each DDP bucket cap is a run of its own, and so
      // is each BatchNorm mode (`ddp-2` beside `ddp-2-syncbn`).
      const compressions = config.gradCompression === "none"
        ? ["none" as const]
        : ["none" as const, config.gradCompression];
      const modes = batchNorm ? config.batchNorm ?? ["local" as const] : [undefined];
      const variants = compressions.flatMap((gradCompression) =>
        strategy === "ddp"
          ? config.bucketBytes.map((bucketBytes): RunSpec => ({
            ...spec,
            gradCompression,
            bucketBytes,
            overlap: config.overlap,
          }))
          : [{ ...spec, gradCompression }]
      ).flatMap((variant) =>
        modes.map((mode): RunSpec => mode ? { ...variant, batchNorm: mode } : variant)
      );
      for (const variant of variants) {
        specs.push(variant);
        if (STRATEGIES[strategy].hasCeiling) specs.push({ ...variant, ceiling: true });
      }
    }
  }
}

/**
 * Check a bench can run as asked (names, world sizes against batch sizes and the machine)
 * without running it; a model brought from outside trains one trial step on the bench's
 * backend in this process (`strategies/trial_step.ts`).
 *
 * @param options see {@linkcode BenchOptions}
 * @returns how many runs it will do
 * @throws UsageError naming the problem
 */
export async function checkBench(options: BenchOptions): Promise<number> {
  const config = resolveConfig(options);
  await checkLayersModels(config);
  return (await planRuns(config)).length;
}

/**
 * How many runs span the hosts (those a host other than node 0 takes part in).
 *
 * @param options see {@linkcode BenchOptions}
 * @returns the count (0 on one host)
 */
export async function countSpanningRuns(options: BenchOptions): Promise<number> {
  return (await planRuns(resolveConfig(options))).filter((spec) => spec.nodes).length;
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
  /** Across hosts: the hosts DDP's runs spanned (absent on one host). */
  nodes?: BenchNodes;
}

/** The hosts of a bench across hosts, as `results.json` records them. */
export interface BenchNodes {
  /** Hosts. */
  nnodes: number;
  /** DDP ranks on each. */
  nprocPerNode: number;
  /** Every host, by node rank: its name and the address node 0 saw. */
  hosts: NodeHost[];
  /** The global batches swept (`--batches`; absent: each workload's own). */
  batches?: number[];
  /** The BatchNorm modes run (`--batchnorm`; absent: local). */
  batchNorm?: BatchNormMode[];
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
  if (config.nodes && config.nodes.nodeRank !== 0) {
    throw new Error("runBench runs on node 0; the other hosts follow it (followBench)");
  }
  const env = await describeEnvironment(config.backend, config.fastKernels, config.threads);
  const plan = await planRuns(config);
  const group = config.nodes ? await leadNodes(await groupOptions(config.nodes, plan)) : null;
  try {
    const measured = await runPlan(config, plan, group, progress);
    await group?.close();
    return {
      env,
      config: {
        ...configRecord(config),
        ...(group && config.nodes
          ? {
            nodes: {
              nnodes: config.nodes.nnodes,
              nprocPerNode: config.nodes.nprocPerNode,
              hosts: group.hosts,
            },
          }
          : {}),
      },
      ...measured,
    };
  } catch (error) {
    await group?.close((error as Error).message);
    throw error;
  }
}

/** What a host other than node 0 sends back after a run: its ranks' memory rows. */
interface NodeReport {
  workers: RunMeasurement["workers"];
}

/** Every run of the plan, in order; DDP runs across hosts through node 0's group. */
async function runPlan(
  config: BenchConfig,
  plan: RunSpec[],
  group: NodeLeader | null,
  progress?: BenchProgress,
): Promise<{ runs: RunMeasurement[]; ceilings: RunMeasurement[] }> {
  const runs: RunMeasurement[] = [];
  const ceilings: RunMeasurement[] = [];
  const repeatOf = new Map<string, number>();
  let spanning = 0;
  for (const spec of plan) {
    const name = runName(spec, config);
    progress?.startRun(name, spec.warmup + spec.steps);
    const here = () => runIsolated(spec, (done) => progress?.step(done));
    let m: RunMeasurement;
    if (group && spec.nodes) {
      const { local, remote } = await group.run(spanning++, here);
      // Every host's ranks' memory rows; arrival lags stay those of node 0's ranks (other
      // hosts' clocks are not this one's).
      m = {
        ...local,
        workers: [...local.workers, ...remote.flatMap((r) => (r as NodeReport).workers)],
      };
    } else m = await here();
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
  return { runs, ceilings };
}

/** How progress names a run: workload, label, hosts spanned, ceiling. */
function runName(spec: RunSpec, config: Pick<BenchConfig, "batches">): string {
  const batch = config.batches ? ` batch ${spec.globalBatch}` : "";
  const hosts = spec.nodes ? ` across ${spec.nodes.nnodes} hosts` : "";
  return `${spec.workload}${batch} ${runLabel(spec)}${hosts}${spec.ceiling ? " ceiling" : ""}`;
}

/** The node group's settings: the control port, the secret, the digest of the plan. */
async function groupOptions(nodes: NodeSpec, plan: RunSpec[]) {
  const token = Deno.env.get(ENV_NAMES.token);
  if (!token) throw new Error(`A bench across hosts needs ${ENV_NAMES.token}`);
  // The runs that span the hosts, as every host plans them (its own node rank left out).
  const spanning = plan.filter((spec) => spec.nodes).map((spec) => ({
    ...spec,
    nodes: { ...spec.nodes, nodeRank: 0, bind: undefined },
  }));
  const bytes = new TextEncoder().encode(JSON.stringify(spanning));
  const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return { ...nodes, token, digest };
}

/**
 * A bench on a host other than node 0 (`--node-rank` ≥ 1): joins node 0, runs this host's ranks
 * of each DDP run that node 0 starts, and returns when node 0 has finished; node 0 writes the
 * results.
 *
 * @param options the same options as node 0's, with this host's `nodes.nodeRank`
 * @param progress where progress goes (default: nowhere)
 * @returns the hosts of the bench and how many runs this host took part in
 * @example
 * ```ts
 * await followBench({
 *   workloads: ["mnist-mlp"], strategies: ["single", "ddp"], worldSizes: [2],
 *   nodes: { nnodes: 2, nodeRank: 1, nprocPerNode: 1, masterAddr: "10.0.0.1", masterPort: 29500 },
 * });
 * ```
 */
export async function followBench(
  options: BenchOptions,
  progress?: BenchProgress,
): Promise<{ hosts: NodeHost[]; runs: number }> {
  const config = resolveConfig(options);
  if (!config.nodes || config.nodes.nodeRank === 0) {
    throw new Error("followBench runs on the hosts other than node 0");
  }
  const plan = await planRuns(config);
  const spanning = plan.filter((spec) => spec.nodes);
  let hosts: NodeHost[] = [];
  let runs = 0;
  await followNodes(await groupOptions(config.nodes, plan), async (index) => {
    const spec = spanning[index];
    if (!spec) throw new Error(`Node 0 asked for run ${index}, which this host did not plan`);
    const name = runName(spec, config);
    progress?.startRun(name, spec.warmup + spec.steps);
    const m = await runIsolated(spec, (done) => progress?.step(done));
    runs++;
    progress?.endRun(`${name}: done on this host`);
    const report: NodeReport = {
      workers: m.workers.map(({ arrivals: _, arrivalLagMs: __, ...w }) => w),
    };
    return report;
  }, (all) => hosts = all);
  return { hosts, runs };
}

/** The settings as `results.json` records them. */
function configRecord(config: BenchConfig): BenchConfigRecord {
  return {
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
    ...(config.batches ? { batches: config.batches } : {}),
    ...(config.batchNorm ? { batchNorm: config.batchNorm } : {}),
  };
}
