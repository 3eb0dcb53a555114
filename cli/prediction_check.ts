/**
 * `prediction-check`: the predictor against real links. Hosts made of network namespaces on
 * this machine (`bench/netns_hosts.ts`), joined by veth pairs whose rate is shaped with
 * `tc … tbf`; at each rate, `allreduce` across the hosts fits the link, then `bench` runs DDP
 * with 2, 3 and 4 ranks across as many hosts; `predict` (from a bench of the same workloads on
 * one host, and the same link's fit) is compared with each measured step. Writes the table,
 * the error per case and the MAPE to `docs/prediction.md` (or `--out`).
 *
 * The namespace hosts share this machine's CPUs, so their ranks compute as the same number of
 * ranks on one host do: predictions take their compute from the one-host bench's DDP run of
 * that many ranks (`predict --shared-machine`), and only the links differ.
 *
 * Needs root and iproute2; every child gets the job secret in its environment.
 *
 * @module
 */
import { join } from "node:path";
import type { Command } from "commander";
import { type LinkModel } from "../bench/link_model.ts";
import { measureCastNs } from "../bench/cast_cost.ts";
import { makeNetnsHosts, netnsUnavailable, SHAPE_BURST } from "../bench/netns_hosts.ts";
import { predict, type Prediction } from "../analysis/predict.ts";
import { readAllreduceFile } from "../analysis/read_allreduce.ts";
import type { Results, RunRecord } from "../analysis/results.ts";
import { readResults } from "../analysis/validate_results.ts";
import { UsageError } from "../core/errors.ts";
import {
  type CheckCase,
  type CheckReport,
  renderPredictionCheck,
} from "../reports/prediction_check_markdown.ts";
import { WORKLOAD_NAMES } from "./_options.ts";
import { arg } from "./_options.ts";
import { intList, nameList, positiveInt } from "./_parsers.ts";

/** The CLI entry point the children run. */
const MAIN = new URL("./main.ts", import.meta.url).pathname;
/** Control port of the benches across the namespace hosts (each job takes the port above). */
const PORT = 29_700;
/** Hosts made: one per rank of the largest world size. */
const MAX_WORLD_SIZE = 4;
/** Buffer sizes the link is fitted over: around the workloads' gradients (0.3–1 MiB). */
const FIT_SIZES = ["-b", "32K", "-e", "4M", "-f", "2"];
/** Timed and untimed all-reduces per size, and the quick preset's raw measurement. */
const FIT_ITERATIONS = ["-n", "10", "-w", "3", "--quick"];

interface CheckFlags {
  workloads: string[];
  rates: string[];
  worldSizes: number[];
  steps: number;
  repeats: number;
  compressionAt: string;
  out: string;
  keep?: string;
  from?: string;
}

/** Runs `args` of the CLI (under `prefix`, e.g. a namespace), output to `log`. */
async function cli(prefix: string[], args: string[], log: string): Promise<Deno.CommandStatus> {
  const command = [...prefix, Deno.execPath(), "run", "--allow-all", MAIN, ...args];
  const file = await Deno.open(log, { write: true, create: true, append: true });
  try {
    const child = new Deno.Command(command[0], {
      args: command.slice(1),
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await Promise.all([
      child.stdout.pipeTo(file.writable, { preventClose: true }),
      child.stderr.pipeTo(new WritableStream()),
    ]);
    return await child.status;
  } finally {
    file.close();
  }
}

/** The same CLI on hosts 0…n−1, each with its node rank; fails naming the first that failed. */
async function onHosts(
  n: number,
  exec: (i: number) => string[],
  args: (node: number) => string[],
  log: (node: number) => string,
  what: string,
): Promise<void> {
  const ends = await Promise.all(
    Array.from({ length: n }, (_, node) => cli(exec(node), args(node), log(node))),
  );
  const failed = ends.findIndex((s) => !s.success);
  if (failed >= 0) {
    const tail = (await Deno.readTextFile(log(failed))).trim().split("\n").slice(-3).join(" | ");
    throw new Error(`${what} failed on host ${failed} (exit ${ends[failed].code}): ${tail}`);
  }
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(", ");
  } catch {
    return "unknown";
  }
}

/** What a measurement left besides its results files (`check.json` in the work folder). */
interface Conditions {
  command: string;
  startedAt: string;
  minutes: number;
  loadBefore: string;
  loadAfter: string;
  castNsPerValue: number;
  workloads: string[];
  rates: string[];
  worldSizes: number[];
  compressionAt: string;
  steps: number;
  repeats: number;
}

async function check(flags: CheckFlags): Promise<void> {
  const work = flags.from ?? await measure(flags);
  const report = await analyse(work);
  await Deno.writeTextFile(flags.out, renderPredictionCheck(report));
  if (!flags.keep && !flags.from) await Deno.remove(work, { recursive: true });
  console.log(renderPredictionCheck(report));
  console.log(`Wrote ${flags.out}${flags.keep ? `; measurements kept in ${work}` : ""}`);
}

/** Measures everything into a work folder (`--keep`, else a temporary one); returns it. */
async function measure(flags: CheckFlags): Promise<string> {
  const why = netnsUnavailable();
  if (why) throw new UsageError(`prediction-check needs root and iproute2: ${why}`);
  if (flags.worldSizes.some((n) => n < 2 || n > MAX_WORLD_SIZE)) {
    throw new UsageError(`Invalid --world-sizes: expected 2 to ${MAX_WORLD_SIZE}`);
  }
  const work = flags.keep ?? await Deno.makeTempDir({ prefix: "paratrain-check-" });
  await Deno.mkdir(work, { recursive: true });
  Deno.env.set("PARATRAIN_TOKEN", crypto.randomUUID() + crypto.randomUUID());
  const started = new Date();
  const loadBefore = loadAverage();
  const say = (line: string) =>
    console.error(`[${((Date.now() - +started) / 1000).toFixed(0)} s] ${line}`);
  const common = (workload: string) => [
    "--workloads",
    workload,
    "--strategies",
    "single,ddp",
    "--steps",
    String(flags.steps),
    "--repeats",
    String(flags.repeats),
    "--scaling",
    "weak",
    "--quiet",
  ];
  // One host: each workload's compute with 2…4 ranks sharing this machine's cores (and
  // compression's cost over Unix sockets).
  for (const workload of flags.workloads) {
    say(`one host: bench ${workload}, world sizes ${flags.worldSizes.join(",")}`);
    const status = await cli(
      [],
      [
        "bench",
        ...common(workload),
        "--world-sizes",
        flags.worldSizes.join(","),
        "--grad-compression",
        "fp16",
        "--out",
        join(work, "local", workload),
      ],
      join(work, `local-${workload}.log`),
    );
    if (!status.success) throw new Error(`The one-host bench of ${workload} failed (see ${work})`);
  }
  const castNsPerValue = await measureCastNs("fp16");
  const hosts = makeNetnsHosts(Math.max(...flags.worldSizes));
  try {
    for (const rate of flags.rates) {
      hosts.shape(rate);
      const dir = join(work, rate);
      await Deno.mkdir(dir, { recursive: true });
      const most = Math.max(...flags.worldSizes);
      say(`${rate}: allreduce across ${most} hosts`);
      const nodeArgs = (n: number, node: number) => [
        "--nnodes",
        String(n),
        "--node-rank",
        String(node),
        "--nproc-per-node",
        "1",
        "--master-addr",
        hosts.addrs[0],
        "--master-port",
        String(PORT),
        "--bind",
        hosts.addrs[node],
      ];
      await onHosts(
        most,
        hosts.exec,
        (node) => [
          "allreduce",
          "--world-sizes",
          flags.worldSizes.join(","),
          ...FIT_SIZES,
          ...FIT_ITERATIONS,
          ...nodeArgs(most, node),
          ...(node === 0 ? ["--out", dir] : []),
        ],
        (node) => join(dir, `allreduce-${node}.log`),
        `allreduce at ${rate}`,
      );
      for (const workload of flags.workloads) {
        for (const n of flags.worldSizes) {
          const compressed = rate === flags.compressionAt && workload === flags.workloads[0];
          say(
            `${rate}: bench ${workload} DDP-${n} across ${n} hosts${
              compressed ? " (and fp16)" : ""
            }`,
          );
          await onHosts(
            n,
            hosts.exec,
            (node) => [
              "bench",
              ...common(workload),
              ...(compressed ? ["--grad-compression", "fp16"] : []),
              ...nodeArgs(n, node),
              ...(node === 0 ? ["--out", join(dir, `${workload}-${n}`)] : []),
            ],
            (node) => join(dir, `bench-${workload}-${n}-${node}.log`),
            `bench ${workload} DDP-${n} at ${rate}`,
          );
        }
      }
    }
  } finally {
    const left = hosts.cleanup();
    if (left.length) console.error(`Stopped ${left.length} processes left in the namespaces`);
  }
  const conditions: Conditions = {
    command: `deno task prediction-check ${Deno.args.slice(1).join(" ")}`.trim(),
    startedAt: started.toISOString(),
    minutes: (Date.now() - +started) / 60_000,
    loadBefore,
    loadAfter: loadAverage(),
    castNsPerValue,
    workloads: flags.workloads,
    rates: flags.rates,
    worldSizes: flags.worldSizes,
    compressionAt: flags.compressionAt,
    steps: flags.steps,
    repeats: flags.repeats,
  };
  await Deno.writeTextFile(join(work, "check.json"), JSON.stringify(conditions, null, 2) + "\n");
  return work;
}

/** Predicts every measured case from the one-host benches and each link's fit. */
async function analyse(work: string): Promise<CheckReport> {
  let conditions: Conditions;
  try {
    conditions = JSON.parse(await Deno.readTextFile(join(work, "check.json")));
  } catch (error) {
    throw new UsageError(
      `Cannot read ${join(work, "check.json")}: ${(error as Error).message.split("\n")[0]} ` +
        `(--from takes a folder a finished prediction-check --keep wrote)`,
    );
  }
  const local: Record<string, Results> = {};
  for (const workload of conditions.workloads) {
    local[workload] = await readResults(join(work, "local", workload, "results.json"));
  }
  const cases: CheckCase[] = [];
  const links: { rate: string; models: LinkModel[] }[] = [];
  for (const rate of conditions.rates) {
    const models = (await readAllreduceFile(join(work, rate, "allreduce.json"))).linkModel ?? [];
    links.push({ rate, models });
    for (const workload of conditions.workloads) {
      for (const n of conditions.worldSizes) {
        const measured = await readResults(join(work, rate, `${workload}-${n}`, "results.json"));
        // From the bench being predicted — its single process, measured in the same machine
        // state — with the one-host bench's slowdown of N ranks sharing the cores; never from
        // the DDP runs it is compared with.
        const predicted = await predict(measured, { models }, {
          worldSizes: [n],
          scaling: "weak",
          sharedMachine: true,
          castNsPerValue: { fp16: conditions.castNsPerValue },
          calibration: local[workload],
        });
        for (const run of measured.runs.filter((r) => r.strategy === "ddp")) {
          const p = predicted.find((x) => sameConfig(x, run));
          if (p) cases.push(caseOf(rate, run, p, measured));
        }
      }
    }
  }
  const first = local[conditions.workloads[0]];
  return {
    command: conditions.command,
    startedAt: conditions.startedAt,
    minutes: conditions.minutes,
    loadBefore: conditions.loadBefore,
    loadAfter: conditions.loadAfter,
    cpus: first.env.logicalCpus,
    cpuModel: first.env.cpuModel,
    backend: first.env.backend,
    burst: SHAPE_BURST,
    steps: conditions.steps,
    repeats: conditions.repeats,
    castNsPerValue: conditions.castNsPerValue,
    links,
    cases,
    unix: unixCompression(first),
  };
}

function sameConfig(p: Prediction, run: RunRecord): boolean {
  return p.workload === run.workload && p.gradCompression === (run.gradCompression ?? "none") &&
    p.bucketBytes === run.bucketBytes && p.overlap === (run.overlap ?? true);
}

function caseOf(rate: string, run: RunRecord, p: Prediction, measured: Results): CheckCase {
  return {
    rate,
    workload: run.workload,
    worldSize: run.worldSize,
    hosts: run.hosts ?? 1,
    gradCompression: run.gradCompression ?? "none",
    predictedStepMs: p.stepMs,
    measuredStepMs: run.stepMs.p50,
    predictedCommMs: p.commMs,
    measuredCommMs: run.comm.exposedMsPerStep ?? run.comm.msPerStep,
    interval: p.interval,
    speedup: run.speedupVsBestSingle ?? null,
    predictedSpeedup: p.speedupVsBestSingle,
    transport: run.transport ?? "unix",
    singleStepMs: measured.runs.find((r) => r.strategy === "single")?.stepMs.p50 ?? null,
  };
}

/** mnist-mlp's (the first workload's) DDP runs over Unix sockets: fp16 against float32. */
function unixCompression(results: Results): CheckReport["unix"] {
  return results.runs.filter((r) => r.strategy === "ddp").map((r) => ({
    workload: r.workload,
    worldSize: r.worldSize,
    gradCompression: r.gradCompression ?? "none",
    commMs: r.comm.msPerStep,
    exposedMs: r.comm.exposedMsPerStep ?? r.comm.msPerStep,
    stepMs: r.stepMs.p50,
  }));
}

/**
 * Adds `prediction-check` to the program.
 *
 * @param program the command line
 * @example
 * ```ts
 * import { Command } from "commander";
 * addPredictionCheck(new Command("paratrain"));
 * ```
 */
export function addPredictionCheck(program: Command): void {
  program.command("prediction-check")
    .description(
      "predict against real links: DDP across network-namespace hosts on tbf-shaped links, measured and predicted; writes docs/prediction.md (root and iproute2)",
    )
    .option(
      "--workloads <a,b>",
      "workloads (default mnist-mlp,mnist-cnn; the first also runs fp16 at --compression-at)",
      (v: string) => nameList("--workloads", v, WORKLOAD_NAMES, "workload"),
      ["mnist-mlp", "mnist-cnn"],
    )
    .option(
      "--rates <r,s>",
      "link rates as tc spells them (default 1gbit,200mbit)",
      (v: string) => v.split(",").map((r) => r.trim()),
      ["1gbit", "200mbit"],
    )
    .option(
      "--world-sizes <n,m>",
      "DDP ranks, one per namespace host (default 2,3,4)",
      arg("--world-sizes", intList),
      [2, 3, 4],
    )
    .option("--steps <n>", "timed steps per run (default 30)", arg("--steps", positiveInt), 30)
    .option("--repeats <n>", "repeats per run (default 2)", arg("--repeats", positiveInt), 2)
    .option("--compression-at <rate>", "the rate fp16 is measured at (default 200mbit)", "200mbit")
    .option(
      "--out <file>",
      "the Markdown written (default docs/prediction.md)",
      "docs/prediction.md",
    )
    .option("--keep <dir>", "keep every measurement (results, logs) in this folder")
    .option(
      "--from <dir>",
      "measure nothing: predict and compare again from what --keep kept in this folder",
    )
    .action(check);
}
