/**
 * `train`: one workload under one strategy, with live progress, then its summary — like the
 * classic training scripts. Everything is checked before any process, worker or file is made.
 *
 * @module
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { EQUIVALENCE_STEPS } from "../bench/run_bench.ts";
import { writeTrace } from "../bench/trace_files.ts";
import { type BackendName, chooseBackend } from "../backends/backend.ts";
import { readCheckpoint } from "../core/checkpoint.ts";
import { createLayout } from "../core/flat_layout.ts";
import {
  BATCH_NORM_MODES,
  type BatchNormMode,
  type GradCompression,
  runLabel,
  type RunSpec,
  type Scaling,
  STRATEGY_NAMES,
  type StrategyName,
} from "../core/run_types.ts";
import { UsageError } from "../core/errors.ts";
import { renderTrainSummary } from "../reports/train_summary.ts";
import { checkRun, STRATEGIES } from "../strategies/registry.ts";
import { resolveWorkload } from "../workloads/resolve_workload.ts";
import { announceBackend, arg, runOptions, WORKLOAD_CHOICES, workloadList } from "./_options.ts";
import { type DdpFlags, nodeOptions, placeDdp, transportOption } from "./_ddp_options.ts";
import { runDdpAsThisRank } from "../strategies/ddp_rank.ts";
import { trialStep } from "../strategies/trial_step.ts";
import {
  bucketMbList,
  ensureWritableDir,
  ensureWritableFile,
  nameList,
  oneName,
  positiveInt,
  seconds,
} from "./_parsers.ts";
import { createProgress, progressMode } from "./progress.ts";

interface TrainFlags extends DdpFlags {
  workload: string;
  strategy: StrategyName;
  worldSize: number;
  steps?: number;
  warmup?: number;
  batch?: number;
  backend?: BackendName;
  threads: number;
  fastKernels: boolean;
  quiet?: boolean;
  jsonProgress?: boolean;
  trace?: string;
  seed: number;
  checkpoint?: string;
  resume?: string;
  /** ms (parsed from seconds). */
  collectiveTimeout?: number;
  /** ms (parsed from seconds). */
  jobTimeout?: number;
  accumulate: number;
  gradCompression: GradCompression;
  bucketMb?: number[];
  overlap: boolean;
  scaling: Scaling;
  batchnorm?: BatchNormMode;
  data?: string;
  loss?: string;
}

async function train(flags: TrainFlags): Promise<void> {
  const layersOptions = { data: flags.data, loss: flags.loss };
  const workload = await resolveWorkload(flags.workload, layersOptions);
  const { backend, why } = chooseBackend(flags.backend, flags.threads);
  checkKnobs(flags);
  const model = workload.createModel();
  checkLayersFlags(flags, model.report !== undefined, (model.buffers?.length ?? 0) > 0);
  const batchNorm = (model.buffers?.length ?? 0) > 0;
  if (flags.batchnorm && !batchNorm) {
    throw new UsageError(
      `--batchnorm applies to workloads with BatchNorm (resnet-cnn), not ${flags.workload}`,
    );
  }
  if (batchNorm && backend === "webgpu") {
    throw new UsageError(
      `Cannot run ${flags.workload} on webgpu: BatchNorm reads its batch statistics synchronously, which webgpu cannot under Deno`,
    );
  }
  const ddp = await placeDdp(flags, flags.strategy, flags.worldSize);
  const mode = ddp.asRank && ddp.asRank.rank !== 0 ? "quiet" : progressMode(flags);
  const worldSize = flags.strategy === "single"
    ? 1
    : flags.strategy === "ddp"
    ? ddp.spec.worldSize ?? flags.worldSize
    : flags.worldSize;
  const batch = flags.batch ?? workload.defaults.batchSize;
  const spec: RunSpec = {
    workload: flags.workload,
    ...(flags.data ? { data: flags.data } : {}),
    ...(flags.loss ? { loss: flags.loss } : {}),
    strategy: flags.strategy,
    worldSize,
    backend,
    threads: flags.threads,
    fastKernels: flags.fastKernels,
    seed: flags.seed,
    steps: flags.steps ?? workload.defaults.steps,
    warmup: flags.warmup ?? 0,
    // Weak scaling: --batch is each worker's, so N workers train on N × it.
    globalBatch: flags.scaling === "weak" ? batch * worldSize : batch,
    accumulate: flags.accumulate,
    scaling: flags.scaling,
    ...(flags.strategy === "single" ? {} : { gradCompression: flags.gradCompression }),
    ...(flags.strategy !== "single" && batchNorm ? { batchNorm: flags.batchnorm ?? "local" } : {}),
    ...(flags.strategy === "ddp"
      ? { bucketBytes: flags.bucketMb?.[0], overlap: flags.overlap }
      : {}),
    snapshotStep: EQUIVALENCE_STEPS,
    resumePath: flags.resume && resolve(flags.resume),
    checkpointPath: flags.checkpoint && resolve(flags.checkpoint),
    collectiveTimeoutMs: flags.collectiveTimeout,
    jobTimeoutMs: flags.jobTimeout,
    ...(flags.trace ? { trace: true } : {}),
    ...(flags.strategy === "ddp" ? ddp.spec : {}),
  };
  checkRun(ddp.asRank ? { ...spec, ranksHere: ddp.asRank.localWorldSize } : spec);
  await trialStep(spec);
  const layout = createLayout(workload.createModel().params);
  if (flags.resume) await readCheckpoint(flags.resume, { workload: flags.workload, layout });
  if (flags.checkpoint) await ensureWritableFile(resolve(flags.checkpoint), "--checkpoint");
  if (flags.trace) await ensureWritableDir(flags.trace, "--trace");
  announceBackend(mode, { backend, why });
  const progress = createProgress(1, mode);
  progress.startRun(`${spec.workload} ${runLabel(spec)}`, spec.warmup + spec.steps);
  const onStep = (done: number) => progress.step(done);
  const m = ddp.asRank
    ? await runDdpAsThisRank(spec, onStep)
    : await STRATEGIES[spec.strategy].run(spec, onStep);
  progress.endRun(
    `done in ${(m.stepSamples.reduce((a, b) => a + b, 0) / 1000).toFixed(1)} s of timed steps`,
  );
  if (flags.trace) console.error(`Wrote ${await writeTrace(flags.trace, m)}`);
  console.log(renderTrainSummary(m));
}

/**
 * `--data` and `--loss` are a Layers model's; SyncBatchNorm is not (tfjs-layers'
 * BatchNormalization keeps each replica's statistics).
 */
function checkLayersFlags(flags: TrainFlags, layers: boolean, batchNorm: boolean): void {
  for (const [flag, given] of [["--data", flags.data], ["--loss", flags.loss]] as const) {
    if (given && !layers) {
      throw new UsageError(
        `${flag} applies to TensorFlow.js Layers models (model:PATH/model.json, MODULE#function), not ${flags.workload}`,
      );
    }
  }
  if (layers && batchNorm && flags.batchnorm === "sync") {
    throw new UsageError(
      `--batchnorm sync cannot run ${flags.workload}: tfjs-layers' BatchNormalization computes each replica's own statistics (SyncBatchNorm is resnet-cnn's); use --batchnorm local`,
    );
  }
}

/** The DDP knobs a strategy cannot take are refused, rather than silently ignored. */
function checkKnobs(flags: TrainFlags): void {
  if (flags.bucketMb && flags.bucketMb.length > 1) {
    throw new UsageError(
      `Invalid --bucket-mb ${
        flags.bucketMb.map((b) => b / 2 ** 20).join(",")
      }: train runs one bucket size (bench sweeps a list)`,
    );
  }
  const ddpOnly = [
    ["--bucket-mb", flags.bucketMb !== undefined],
    ["--no-overlap", !flags.overlap],
  ] as const;
  for (const [flag, given] of ddpOnly) {
    if (given && flags.strategy !== "ddp") {
      throw new UsageError(`${flag} applies to --strategy ddp, not ${flags.strategy}`);
    }
  }
  if (flags.gradCompression !== "none" && flags.strategy === "single") {
    throw new UsageError(
      `--grad-compression applies to dp and ddp: single moves no gradients`,
    );
  }
  if (flags.batchnorm && flags.strategy === "single") {
    throw new UsageError(
      "--batchnorm applies to dp and ddp: single has one replica, whose statistics are the batch's",
    );
  }
}

/**
 * Adds `train` to the program.
 *
 * @param program the command line
 * @example
 * ```ts
 * import { Command } from "commander";
 * addTrain(new Command("paratrain"));
 * ```
 */
export function addTrain(program: Command): void {
  nodeOptions(transportOption(runOptions(
    program.command("train")
      .description(
        "train one workload under one strategy with live progress, then print the summary",
      )
      .option(
        "--workload <name>",
        `one of: ${WORKLOAD_CHOICES}`,
        (v: string) => {
          const names = workloadList("--workload", v);
          if (names.length > 1) throw new UsageError(`Invalid --workload "${v}": expected one`);
          return names[0];
        },
        "mnist-mlp",
      )
      .option(
        "--batchnorm <mode>",
        `dp/ddp on a workload with BatchNorm: ${
          BATCH_NORM_MODES.join(" or ")
        } (default local: each replica's statistics, buffers broadcast from rank 0; sync: SyncBatchNorm)`,
        (v: string) => oneName("--batchnorm", v, BATCH_NORM_MODES, "BatchNorm mode"),
      )
      .option(
        "--strategy <name>",
        `one of: ${STRATEGY_NAMES.join(", ")}`,
        (v: string) => nameList("--strategy", v, STRATEGY_NAMES, "strategy")[0],
        "single",
      )
      .option(
        "--world-size <n>",
        "replicas (dp) or ranks (ddp)",
        arg("--world-size", positiveInt),
        2,
      )
      .option(
        "--steps <n>",
        "training steps (default: the workload's)",
        arg("--steps", positiveInt),
      )
      .option(
        "--batch <n>",
        "global batch size (default: the workload's)",
        arg("--batch", positiveInt),
      )
      .option(
        "--bucket-mb <x>",
        "ddp: gradient bucket cap in MiB (default 25, as PyTorch)",
        arg("--bucket-mb", bucketMbList),
      )
      .option(
        "--checkpoint <file>",
        "after training, rank 0 / the main replica writes the parameters here (checked before training: not a directory, its folder writable)",
      )
      .option(
        "--resume <file>",
        "start from a checkpoint's parameters (written by any strategy; a regular file of at most twice this model's checkpoint size + 1 MiB)",
      )
      .option(
        "--collective-timeout <s>",
        "dp/ddp: seconds a collective (or a DP replica) may stay silent before the run fails (default 60)",
        arg("--collective-timeout", seconds),
      )
      .option(
        "--trace <dir>",
        "write the run's Chrome trace-event file (Perfetto, chrome://tracing) into dir",
      )
      .option(
        "--job-timeout <s>",
        "ddp: stop the whole job after this many seconds (default: no limit)",
        arg("--job-timeout", seconds),
      ),
  ))).action(train);
}
