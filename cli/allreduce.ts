/**
 * `allreduce`: the collective benchmark in the style of nccl-tests `all_reduce_perf`, beside
 * the raw socket throughput, written as `allreduce.json` and `allreduce.md`.
 *
 * @module
 */
import type { Command } from "commander";
import {
  type AllreduceBenchOptions,
  checkAllreduceFits,
  followAllreduceBench,
  runAllreduceBench,
} from "../bench/allreduce.ts";
import { UsageError } from "../core/errors.ts";
import {
  ALLREDUCE_FILES,
  renderAllreduceMarkdown,
  writeAllreduceReport,
} from "../reports/allreduce_markdown.ts";
import { arg, DEFAULT_OUT } from "./_options.ts";
import {
  byteSize,
  ensureWritableDir,
  intList,
  nameList,
  nonNegativeInt,
  positiveInt,
} from "./_parsers.ts";
import { type Collective, COLLECTIVES } from "../bench/_allreduce_rank.ts";
import { REDUCE_OPS, type ReduceOp } from "../comm/process_group.ts";
import { TRANSPORTS } from "../comm/rank_env.ts";
import { type DdpFlags, nodeOptions, resolveBenchNodes } from "./_ddp_options.ts";

interface AllreduceFlags extends Omit<DdpFlags, "transport"> {
  worldSizes: number[];
  quick?: boolean;
  out: string;
  minBytes?: number;
  maxBytes?: number;
  stepFactor?: number;
  iters?: number;
  warmupIters?: number;
  check?: number;
  op: ReduceOp;
  collective: Collective;
  transport?: ("unix" | "tcp")[];
}

async function allreduce(flags: AllreduceFlags) {
  const small = flags.worldSizes.find((n) => n < 2);
  if (small !== undefined) {
    throw new UsageError(`Invalid --world-sizes ${small}: an all-reduce needs at least 2 ranks`);
  }
  if (
    flags.minBytes !== undefined && flags.maxBytes !== undefined && flags.minBytes > flags.maxBytes
  ) {
    throw new UsageError(
      `Invalid -b/-e: the smallest size (${flags.minBytes} bytes) is above the largest (${flags.maxBytes} bytes)`,
    );
  }
  if (flags.stepFactor !== undefined && flags.stepFactor < 2) {
    throw new UsageError(`Invalid -f/--step-factor ${flags.stepFactor}: expected 2 or more`);
  }
  if (flags.check !== undefined && flags.check > 1) {
    throw new UsageError(`Invalid -c/--check ${flags.check}: expected 0 or 1`);
  }
  const largest = Math.max(flags.minBytes ?? 0, flags.maxBytes ?? 0);
  for (const n of flags.worldSizes) {
    checkAllreduceFits(largest, n, { collective: flags.collective });
  }
  const nodes = await resolveBenchNodes({ ...flags, transport: undefined }, ["ddp"]);
  if (nodes) {
    const bad = flags.worldSizes.find((n) =>
      n % nodes.nprocPerNode !== 0 || n / nodes.nprocPerNode > nodes.nnodes
    );
    if (bad !== undefined) {
      throw new UsageError(
        `Invalid --world-sizes ${bad}: across ${nodes.nnodes} hosts with --nproc-per-node ` +
          `${nodes.nprocPerNode}, a world size must be a multiple of ${nodes.nprocPerNode} up to ` +
          `${nodes.nnodes * nodes.nprocPerNode}`,
      );
    }
    if (flags.transport?.includes("tcp") && flags.transport.length > 1) {
      throw new UsageError(
        `Invalid --transport ${flags.transport.join(",")}: across hosts the links between hosts ` +
          `are TCP; give one transport for the links within a host`,
      );
    }
  }
  const options: AllreduceBenchOptions = {
    worldSizes: flags.worldSizes,
    quick: flags.quick,
    onProgress: (p: { message: string }) => console.error(p.message),
    minBytes: flags.minBytes,
    maxBytes: flags.maxBytes,
    stepFactor: flags.stepFactor,
    iterations: flags.iters,
    warmupIterations: flags.warmupIters,
    check: flags.check === 1,
    op: flags.op,
    collective: flags.collective,
    transports: flags.transport ?? ["unix"],
    nodes: nodes ?? undefined,
  };
  if (nodes && nodes.nodeRank > 0) {
    const ran = await followAllreduceBench(options);
    console.log(
      `Node ${nodes.nodeRank} of ${nodes.nnodes}: ran its ranks of ${ran} jobs; node 0 wrote the results`,
    );
    return;
  }
  await ensureWritableDir(flags.out, "--out", [...ALLREDUCE_FILES]);
  const result = await runAllreduceBench(options);
  const { json, markdown } = await writeAllreduceReport(result, flags.out);
  console.log(renderAllreduceMarkdown(result));
  console.log(`Wrote ${json}, ${markdown}`);
}

/**
 * Adds `allreduce` to the program.
 *
 * @param program the command line
 * @example
 * ```ts
 * import { Command } from "commander";
 * addAllreduce(new Command("paratrain"));
 * ```
 */
export function addAllreduce(program: Command): void {
  const command = program.command("allreduce")
    .description(
      "collective benchmark in the style of nccl-tests (all_reduce_perf and friends), with raw socket throughput",
    )
    .option("--world-sizes <n,m>", "ranks per job (at least 2)", arg("--world-sizes", intList), [
      2,
      4,
    ])
    .option("--quick", "fewer sizes and iterations")
    .option("-b, --min-bytes <size>", "smallest buffer (e.g. 1K; default 4K)", arg("-b", byteSize))
    .option("-e, --max-bytes <size>", "largest buffer (e.g. 64M; default 64M)", arg("-e", byteSize))
    .option(
      "-f, --step-factor <n>",
      "size multiplier between rows (default 2)",
      arg("-f", positiveInt),
    )
    .option(
      "-n, --iters <n>",
      "timed iterations per size (default: about 1 GiB, 5-100)",
      arg("-n", positiveInt),
    )
    .option(
      "-w, --warmup-iters <n>",
      "untimed iterations per size (default 5)",
      arg("-w", nonNegativeInt),
    )
    .option(
      "-c, --check <0|1>",
      "check each size on known values; report #wrong",
      arg("-c", nonNegativeInt),
    )
    .option(
      "--op <op>",
      `reduce op: ${REDUCE_OPS.join(", ")}`,
      (v: string) => nameList("--op", v, REDUCE_OPS, "reduce op")[0],
      "sum",
    )
    .option(
      "--collective <name>",
      `one of: ${COLLECTIVES.join(", ")}`,
      (v: string) => nameList("--collective", v, COLLECTIVES, "collective")[0],
      "all-reduce",
    )
    .option(
      "--transport <a,b>",
      "unix, tcp (loopback) or both, each with its own raw socket throughput measured in the same run (default: unix)",
      (v: string) => nameList("--transport", v, TRANSPORTS, "transport"),
    )
    .option("--out <dir>", "output folder for allreduce.json and allreduce.md", DEFAULT_OUT);
  nodeOptions(command).action(allreduce);
}
