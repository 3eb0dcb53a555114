/**
 * `bench`: run workloads × strategies × world sizes, build `results.json` from what was
 * measured, and write it with the reports.
 *
 * @module
 */
import { type DdpFlags, nodeOptions, resolveBenchNodes, transportOption } from "./_ddp_options.ts";
import type { Command } from "commander";
import { buildResults } from "../analysis/build_results.ts";
import { readAllreduce } from "../analysis/read_allreduce.ts";
import { provisionalNote } from "../analysis/provisional.ts";
import { checkBench, countSpanningRuns, followBench, runBench } from "../bench/run_bench.ts";
import {
  backendAvailability,
  type BackendName,
  BACKENDS,
  chooseBackend,
} from "../backends/backend.ts";
import {
  BATCH_NORM_MODES,
  type BatchNormMode,
  type GradCompression,
  type Scaling,
  STRATEGY_NAMES,
  type StrategyName,
} from "../core/run_types.ts";
import { renderMarkdown } from "../reports/markdown.ts";
import { RENDERERS, writeReports } from "../reports/write_reports.ts";
import { STRATEGIES } from "../strategies/registry.ts";
import { WORKLOAD_FAMILIES, WORKLOADS } from "../workloads/registry.ts";
import { DATA_SOURCES } from "../workloads/layers_workload.ts";
import { LOSS_NAMES } from "../core/losses.ts";
import {
  announceBackend,
  arg,
  DEFAULT_OUT,
  runOptions,
  WORKLOAD_CHOICES,
  WORKLOAD_NAMES,
  workloadList,
} from "./_options.ts";
import { bucketMbList, ensureWritableDir, intList, nameList, positiveInt } from "./_parsers.ts";
import { createProgress, progressMode } from "./progress.ts";

interface BenchFlags extends DdpFlags {
  list?: boolean;
  workloads?: string[];
  strategies?: StrategyName[];
  worldSizes: number[];
  steps?: number;
  warmup?: number;
  repeats?: number;
  backend?: BackendName;
  threads: number;
  fastKernels: boolean;
  quiet?: boolean;
  jsonProgress?: boolean;
  stepSamples?: boolean;
  trace?: string;
  seed: number;
  out: string;
  quick?: boolean;
  accumulate: number;
  gradCompression: GradCompression;
  bucketMb?: number[];
  overlap: boolean;
  scaling: Scaling;
  batches?: number[];
  batchnorm?: BatchNormMode[];
  data?: string;
  loss?: string;
}

function printList(): void {
  const section = (title: string, rows: [string, string][]) => {
    console.log(title);
    const width = Math.max(...rows.map(([name]) => name.length));
    for (const [name, text] of rows) console.log(`  ${name.padEnd(width)}  ${text}`);
  };
  section(
    "Workloads (the default bench runs these):",
    WORKLOADS.map((w) => [w.name, w.description]),
  );
  for (const family of WORKLOAD_FAMILIES) {
    section(
      `${family.name} (--workloads ${family.name}:SIZE; the bare name is ${family.name}:${family.defaultSize}): ${family.description}`,
      Object.values(family.sizes).map((w) => [w.name, w.description]),
    );
  }
  section("Your own model (--workloads; README: Bring your own model):", [
    [
      "model:PATH/model.json",
      "a TensorFlow.js Layers model saved by model.save (its weights start)",
    ],
    [
      "MODULE#export",
      "a Workload, or a function returning a tf.LayersModel (its weights drawn from --seed)",
    ],
    [
      "--data",
      `${DATA_SOURCES.join(", ")} or MODULE#export; default synthetic, shaped to the model`,
    ],
    ["--loss", `${LOSS_NAMES.join(", ")}; default the model's compile configuration`],
  ]);
  section("Strategies:", STRATEGY_NAMES.map((s) => [s, STRATEGIES[s].description]));
  section(
    "Backends:",
    (Object.entries(BACKENDS) as [BackendName, string][]).map(([name, text]) => {
      const why = backendAvailability(name);
      return [name, `${text} — ${why === null ? "available here" : `not available here: ${why}`}`];
    }),
  );
}

async function bench(flags: BenchFlags): Promise<void> {
  if (flags.list) return printList();
  const { backend, why } = chooseBackend(flags.backend, flags.threads);
  const mode = progressMode(flags);
  const options = {
    workloads: flags.workloads ?? WORKLOAD_NAMES,
    strategies: flags.strategies ?? [...STRATEGY_NAMES],
    worldSizes: flags.worldSizes,
    steps: flags.steps,
    warmup: flags.warmup,
    repeats: flags.repeats,
    backend,
    threads: flags.threads,
    fastKernels: flags.fastKernels,
    seed: flags.seed,
    quick: flags.quick,
    stepSamples: flags.stepSamples,
    traceDir: flags.trace,
    accumulate: flags.accumulate,
    gradCompression: flags.gradCompression,
    bucketBytes: flags.bucketMb,
    overlap: flags.overlap,
    scaling: flags.scaling,
    transport: flags.transport,
    nodes: await resolveBenchNodes(flags, flags.strategies ?? STRATEGY_NAMES) ?? undefined,
    batches: flags.batches,
    batchNorm: flags.batchnorm,
    data: flags.data,
    loss: flags.loss,
  };
  if (options.nodes && options.nodes.nodeRank > 0) return await follow(options, flags, mode);
  const runs = await checkBench(options);
  await ensureWritableDir(flags.out, "--out", Object.keys(RENDERERS));
  if (flags.trace) await ensureWritableDir(flags.trace, "--trace");
  // An all-reduce table already in --out (from `allreduce --out` the same folder) predicts each
  // DDP run's communication; read now, so that a malformed one fails before any run.
  const allreduce = await readAllreduce(flags.out);
  // On a fallback backend the answer will be provisional: say so first, with how to get native.
  const note = provisionalNote({
    backend,
    nativeUnavailable: backend === "native" ? undefined : backendAvailability("native"),
  });
  announceBackend(mode, {
    backend,
    why,
    ...(note ? { provisional: note.replaceAll("**", "") } : {}),
  });
  const progress = createProgress(runs, mode);
  let measured;
  try {
    measured = await runBench(options, progress);
  } finally {
    progress.stop();
  }
  const results = buildResults(measured, allreduce);
  const written = await writeReports(results, flags.out);
  console.log(renderMarkdown(results));
  console.log(`Wrote ${written.join(", ")}`);
}

/** A host other than node 0: its ranks of every DDP run, then one line; node 0 writes. */
async function follow(
  options: Parameters<typeof followBench>[0],
  flags: BenchFlags,
  mode: ReturnType<typeof progressMode>,
): Promise<void> {
  await checkBench(options);
  announceBackend(mode, chooseBackend(flags.backend, flags.threads));
  const progress = createProgress(await countSpanningRuns(options), mode);
  let done;
  try {
    done = await followBench(options, progress);
  } finally {
    progress.stop();
  }
  const zero = done.hosts[0];
  console.log(
    `Node ${options.nodes!.nodeRank} of ${options.nodes!.nnodes}: ran its ranks of ${done.runs} ` +
      `DDP runs; node 0 (${zero?.host ?? options.nodes!.masterAddr}) wrote the results`,
  );
}

/**
 * Adds `bench` to the program.
 *
 * @param program the command line
 * @example
 * ```ts
 * import { Command } from "commander";
 * addBench(new Command("paratrain"));
 * ```
 */
export function addBench(program: Command): void {
  nodeOptions(transportOption(runOptions(
    program.command("bench")
      .description("run workloads × strategies × world sizes; write results.json and the reports")
      .option("--list", "print workloads, strategies and backends, then exit")
      .option(
        "--workloads <a,b>",
        `comma-separated (default: ${WORKLOAD_NAMES.join(", ")}): ${WORKLOAD_CHOICES}`,
        (v: string) => workloadList("--workloads", v),
      )
      .option(
        "--strategies <a,b>",
        `comma-separated (default: all): ${STRATEGY_NAMES.join(", ")}`,
        (v: string) => nameList("--strategies", v, STRATEGY_NAMES, "strategy"),
      )
      .option(
        "--world-sizes <n,m>",
        "replicas (dp) or ranks (ddp); single always runs",
        arg("--world-sizes", intList),
        [2],
      )
      .option(
        "--steps <n>",
        "timed steps per run (default: per workload)",
        arg("--steps", positiveInt),
      )
      .option(
        "--batches <a,b>",
        "global batches to run each workload at, one run set each (default: each workload's own)",
        arg("--batches", intList),
      )
      .option(
        "--batchnorm <modes>",
        `dp/ddp on workloads with BatchNorm: ${
          BATCH_NORM_MODES.join(", ")
        } (default local: each replica's statistics, buffers from rank 0; sync: SyncBatchNorm); a list runs both`,
        (v: string) => nameList("--batchnorm", v, BATCH_NORM_MODES, "BatchNorm mode"),
      )
      .option(
        "--repeats <n>",
        "repeats of every run (default 3); reports quote medians and their intervals",
        arg("--repeats", positiveInt),
      )
      .option(
        "--bucket-mb <x,y>",
        "ddp: gradient bucket caps in MiB (default 25, as PyTorch); a list sweeps them",
        arg("--bucket-mb", bucketMbList),
      )
      .option("--out <dir>", "output folder", DEFAULT_OUT)
      .option(
        "--trace <dir>",
        "write one Chrome trace-event file per run (Perfetto, chrome://tracing) into dir",
      )
      .option(
        "--step-samples",
        "keep every timed step's wall time in results.json (stepSamplesMs; at most 10000 per repeat, beyond that the first and last 10 and an even sample between); the HTML report draws their distribution",
      )
      .option("--quick", "small preset: 10 steps, 2 warm-up, 1 repeat"),
  ))).action(bench);
}
