/**
 * The paratrain command line: `bench`, `train`, `report` (and, as they land, `allreduce`
 * and `gate`). Run through the tasks in deno.json, e.g. `deno task bench --quick`.
 *
 * Exit codes: 0 success · 1 a run failed · 2 usage or input error (one line on stderr).
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { renderAllreduceMarkdown, runAllreduceBench } from "./allreduce.ts";
import { readCheckpoint } from "../core/checkpoint.ts";
import { createLayout } from "../core/flat_layout.ts";
import { Command, CommanderError, Option } from "commander";
import { type BackendName, BACKENDS, parseBackend } from "../core/backend.ts";
import { InterruptedError, printable, SIGNAL_EXIT_CODES, UsageError } from "../core/errors.ts";
import { LaunchError } from "../comm/launcher.ts";
import type { StrategyName } from "../core/run_types.ts";
import { checkRun, STRATEGIES, STRATEGY_NAMES } from "../strategies/registry.ts";
import { WORKLOADS } from "../workloads/registry.ts";
import { resolveWorkload } from "../workloads/resolve_workload.ts";
import { readResults } from "../reports/validate_results.ts";
import { writeReports } from "../reports/write_reports.ts";
import { readAllreduce } from "../reports/read_allreduce.ts";
import { type Lang, LANGS } from "../reports/_labels.ts";
import { DEFAULT_TOLERANCE, gate, parseTolerance } from "./gate.ts";
import { compareResults, renderCompareMarkdown } from "./compare.ts";
import { measureNoise, renderNoiseMarkdown } from "./noise.ts";
import {
  ensureWritableDir,
  integer,
  intList,
  nameList,
  nonNegativeInt,
  positiveInt,
  seconds,
} from "./cli_parsers.ts";
import { checkBench, EQUIVALENCE_STEPS, runBench, selectStrategies } from "./run_bench.ts";
import { createProgress } from "./progress.ts";
import { renderMarkdown } from "../reports/markdown.ts";
import { renderTrainSummary } from "../reports/train_summary.ts";

/** Default output folder of `bench`. */
const DEFAULT_OUT = "results/latest";

const WORKLOAD_NAMES = WORKLOADS.map((w) => w.name);

/** Wrap a parser so commander reports its message. */
function arg<T>(flag: string, parse: (flag: string, value: string) => T) {
  return (value: string) => parse(flag, value);
}

function printList(): void {
  const section = (title: string, rows: [string, string][]) => {
    console.log(title);
    const width = Math.max(...rows.map(([name]) => name.length));
    for (const [name, text] of rows) console.log(`  ${name.padEnd(width)}  ${text}`);
  };
  section("Workloads:", WORKLOADS.map((w) => [w.name, w.description]));
  section("Strategies:", STRATEGY_NAMES.map((s) => [s, STRATEGIES[s].description]));
  section("Backends:", Object.entries(BACKENDS) as [string, string][]);
}

function commonRunOptions(command: Command): Command {
  return command
    .addOption(
      new Option("--backend <name>", `wasm, cpu, webgpu or tensorflow`).default("wasm")
        .argParser((v: string) => parseBackend(v)),
    )
    .option("--no-fast-kernels", "use stock tfjs kernels on wasm (to measure the overrides)")
    .option(
      "--seed <n>",
      "seed for data shuffles and initial parameters",
      arg("--seed", integer),
      0,
    )
    .option("--warmup <n>", "untimed warm-up steps per run", arg("--warmup", nonNegativeInt));
}

interface BenchFlags {
  list?: boolean;
  workloads?: string[];
  strategies?: StrategyName[];
  worldSizes: number[];
  steps?: number;
  warmup?: number;
  repeats?: number;
  backend: BackendName;
  fastKernels: boolean;
  seed: number;
  out: string;
  quick?: boolean;
}

async function bench(flags: BenchFlags): Promise<void> {
  if (flags.list) return printList();
  const { run, skipped } = selectStrategies(
    flags.strategies ?? STRATEGY_NAMES,
    flags.strategies !== undefined,
  );
  const options = {
    workloads: flags.workloads ?? WORKLOAD_NAMES,
    strategies: run,
    worldSizes: flags.worldSizes,
    steps: flags.steps,
    warmup: flags.warmup,
    repeats: flags.repeats,
    backend: flags.backend,
    fastKernels: flags.fastKernels,
    seed: flags.seed,
    quick: flags.quick,
  };
  await checkBench(options);
  await ensureWritableDir(flags.out, "--out");
  for (const s of skipped) console.error(`Skipping ${s.strategy}: ${s.reason}`);
  const results = await runBench(options, skipped);
  const written = await writeReports(results, flags.out);
  console.log(renderMarkdown(results));
  console.log(`Wrote ${written.join(", ")}`);
}

interface TrainFlags {
  workload: string;
  strategy: StrategyName;
  worldSize: number;
  steps?: number;
  warmup?: number;
  batch?: number;
  backend: BackendName;
  fastKernels: boolean;
  seed: number;
  checkpoint?: string;
  resume?: string;
  /** ms (parsed from seconds). */
  collectiveTimeout?: number;
  /** ms (parsed from seconds). */
  jobTimeout?: number;
}

async function train(flags: TrainFlags): Promise<void> {
  const entry = STRATEGIES[flags.strategy];
  if (!entry.run) {
    throw new UsageError(`Strategy "${flags.strategy}" is not implemented yet: choose from single`);
  }
  const workload = await resolveWorkload(flags.workload);
  const spec = {
    workload: flags.workload,
    strategy: flags.strategy,
    worldSize: flags.strategy === "single" ? 1 : flags.worldSize,
    backend: flags.backend,
    fastKernels: flags.fastKernels,
    seed: flags.seed,
    steps: flags.steps ?? workload.defaults.steps,
    warmup: flags.warmup ?? 0,
    globalBatch: flags.batch ?? workload.defaults.batchSize,
    snapshotStep: EQUIVALENCE_STEPS,
    resumePath: flags.resume && resolve(flags.resume),
    checkpointPath: flags.checkpoint && resolve(flags.checkpoint),
    collectiveTimeoutMs: flags.collectiveTimeout,
    jobTimeoutMs: flags.jobTimeout,
  };
  // Everything is checked before any process, worker or file is made.
  checkRun(spec);
  const layout = createLayout(workload.createModel().params);
  if (flags.resume) await readCheckpoint(flags.resume, { workload: flags.workload, layout });
  if (flags.checkpoint) await ensureWritableDir(dirname(resolve(flags.checkpoint)), "--checkpoint");
  const progress = createProgress(1);
  const label = spec.strategy === "single" ? "single" : `${spec.strategy}-${spec.worldSize}`;
  progress.startRun(`${spec.workload} ${label}`, spec.warmup + spec.steps);
  const m = await entry.run(spec, (done) => progress.step(done));
  progress.endRun(
    `done in ${(m.stepSamples.reduce((a, b) => a + b, 0) / 1000).toFixed(1)} s of timed steps`,
  );
  console.log(renderTrainSummary(m));
}

async function allreduce(flags: { worldSizes: number[]; quick?: boolean; out: string }) {
  const small = flags.worldSizes.find((n) => n < 2);
  if (small !== undefined) {
    throw new UsageError(`Invalid --world-sizes ${small}: an all-reduce needs at least 2 ranks`);
  }
  await ensureWritableDir(flags.out, "--out");
  const result = await runAllreduceBench({
    worldSizes: flags.worldSizes,
    quick: flags.quick,
    outDir: flags.out,
    onProgress: (p) => console.error(p.message),
  });
  console.log(renderAllreduceMarkdown(result));
  console.log(`Wrote ${join(flags.out, "allreduce.json")}, ${join(flags.out, "allreduce.md")}`);
}

interface ReportFlags {
  in: string;
  out?: string;
  lang: Lang;
  screenshot?: boolean;
}

async function report(flags: ReportFlags): Promise<void> {
  const results = await readResults(flags.in);
  const out = flags.out ?? dirname(flags.in);
  await ensureWritableDir(out, "--out");
  const allreduce = await readAllreduce(dirname(flags.in));
  const written = await writeReports(results, out, { lang: flags.lang, allreduce });
  if (flags.screenshot) {
    const { screenshotReport } = await import("../reports/screenshot_report.ts");
    const png = join(out, "report.png");
    const check = await screenshotReport(join(out, "report.html"), png);
    for (const e of check.consoleErrors) console.error(`report.html: console error: ${e}`);
    for (const u of check.externalRequests) console.error(`report.html: blocked request: ${u}`);
    written.push(png);
  }
  console.log(`Wrote ${written.join(", ")}`);
}

async function gateCommand(
  flags: { baseline: string; current: string; tolerance: number; allowMissing?: boolean },
): Promise<void> {
  const result = gate(await readResults(flags.baseline), await readResults(flags.current), {
    tolerance: flags.tolerance,
    allowMissing: flags.allowMissing,
  });
  console.log(result.table);
  if (result.regressions.length > 0) {
    const missing = result.regressions.filter((c) => c.missing).length;
    throw new Error(
      `Gate failed: ${result.regressions.length} of ${result.checked} checks regressed` +
        (missing > 0 ? ` (${missing} missing from the current results)` : ""),
    );
  }
}

async function compare(a: string, b: string): Promise<void> {
  const rows = compareResults(await readResults(a), await readResults(b));
  console.log(renderCompareMarkdown(rows, { labels: ["A", "B"] }));
}

function buildProgram(): Command {
  const program = new Command("paratrain")
    .description("Single device, DataParallel or DistributedDataParallel: measured side by side")
    .exitOverride()
    .configureOutput({ outputError: () => {} });

  commonRunOptions(
    program.command("bench")
      .description("run workloads × strategies × world sizes; write results.json and report.md")
      .option("--list", "print workloads, strategies and backends, then exit")
      .option(
        "--workloads <a,b>",
        `comma-separated (default: all): ${WORKLOAD_NAMES.join(", ")}`,
        (v: string) => nameList("--workloads", v, WORKLOAD_NAMES, "workload"),
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
        "--repeats <n>",
        "repeats of every run; reports quote medians",
        arg("--repeats", positiveInt),
      )
      .option("--out <dir>", "output folder", DEFAULT_OUT)
      .option("--quick", "small preset: 10 steps, 2 warm-up, 1 repeat"),
  ).action(bench);

  commonRunOptions(
    program.command("train")
      .description(
        "train one workload under one strategy with live progress, then print the summary",
      )
      .option(
        "--workload <name>",
        `one of: ${WORKLOAD_NAMES.join(", ")}`,
        (v: string) => nameList("--workload", v, WORKLOAD_NAMES, "workload")[0],
        "mnist-mlp",
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
        "--checkpoint <file>",
        "after training, rank 0 / the main replica writes the parameters here",
      )
      .option("--resume <file>", "start from a checkpoint's parameters (written by any strategy)")
      .option(
        "--collective-timeout <s>",
        "dp/ddp: seconds a collective (or a DP replica) may stay silent before the run fails (default 60)",
        arg("--collective-timeout", seconds),
      )
      .option(
        "--job-timeout <s>",
        "ddp: stop the whole job after this many seconds (default: no limit)",
        arg("--job-timeout", seconds),
      ),
  ).action(train);

  program.command("allreduce")
    .description(
      "all-reduce benchmark in the style of nccl-tests all_reduce_perf, with raw socket throughput",
    )
    .option("--world-sizes <n,m>", "ranks per job (at least 2)", arg("--world-sizes", intList), [
      2,
      4,
    ])
    .option("--quick", "fewer sizes and iterations")
    .option("--out <dir>", "output folder for allreduce.json and allreduce.md", DEFAULT_OUT)
    .action(allreduce);

  program.command("report")
    .description("re-render the reports from a results.json")
    .requiredOption("--in <file>", "a results.json written by bench")
    .option("--out <dir>", "output folder (default: the folder of --in)")
    .addOption(
      new Option("--lang <lang>", "language of the selection matrix headers (zh: the article's)")
        .choices(LANGS).default("en"),
    )
    .option("--screenshot", "also save report.png, rendered by headless Chromium")
    .action(report);

  program.command("gate")
    .description(
      "regression gate on machine-independent ratios: exit 0 pass, 1 regression, 2 bad input",
    )
    .requiredOption("--baseline <file>", "the accepted results.json")
    .requiredOption("--current <file>", "the results.json under test")
    .option(
      "--tolerance <f>",
      "allowed relative drop of a ratio, in [0, 1)",
      arg("--tolerance", parseTolerance),
      DEFAULT_TOLERANCE,
    )
    .option(
      "--allow-missing",
      "a run or figure in the baseline but not in the current results warns instead of failing",
    )
    .action(gateCommand);

  program.command("noise")
    .description("run-to-run spread of the gate's ratios over several results of one preset")
    .argument("<files...>", "results.json files (at least two)")
    .action(async (files: string[]) => {
      const all = await Promise.all(files.map((f) => readResults(f)));
      console.log(renderNoiseMarkdown(measureNoise(all)));
    });

  program.command("compare")
    .description("two results.json side by side: the runs both hold, and B/A")
    .argument("<a>", "first results.json")
    .argument("<b>", "second results.json")
    .action(compare);
  return program;
}

/**
 * Run the CLI with `args`; returns the exit code instead of exiting.
 *
 * @param args command-line arguments (without the program)
 * @returns 0, 1 or 2
 * @example
 * ```ts
 * Deno.exit(await main(Deno.args));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(args, { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return 0; // --help, --version
      const cause = (error as CommanderError & { cause?: unknown }).cause;
      const message = cause instanceof Error
        ? cause.message
        : error.message.replace(/^error: /, "");
      printError(message);
      return 2;
    }
    printError((error as Error).message ?? String(error));
    if (error instanceof UsageError) return 2;
    const signal = error instanceof InterruptedError
      ? error.signal
      : error instanceof LaunchError && error.rank === null
      ? error.signal as Deno.Signal | null
      : null;
    return (signal && SIGNAL_EXIT_CODES[signal]) || 1;
  }
}

/** Longest line of an error message printed whole; longer ones are cut. */
const ERROR_LINE_LIMIT = 1000;

/** One `paratrain: …` message on stderr: control characters escaped, overlong lines cut. */
function printError(message: string): void {
  const lines = printable(message).split("\n").map((line) =>
    line.length > ERROR_LINE_LIMIT
      ? `${line.slice(0, ERROR_LINE_LIMIT)}… (${line.length} characters)`
      : line
  );
  console.error(`paratrain: ${lines.join("\n")}`);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
