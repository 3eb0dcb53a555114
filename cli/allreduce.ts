/**
 * `allreduce`: the collective benchmark in the style of nccl-tests `all_reduce_perf`, beside
 * the raw socket throughput, written as `allreduce.json` and `allreduce.md`.
 *
 * @module
 */
import type { Command } from "commander";
import { runAllreduceBench } from "../bench/allreduce.ts";
import { UsageError } from "../core/errors.ts";
import { renderAllreduceMarkdown, writeAllreduceReport } from "../reports/allreduce_markdown.ts";
import { arg, DEFAULT_OUT } from "./_options.ts";
import { ensureWritableDir, intList } from "./_parsers.ts";

async function allreduce(flags: { worldSizes: number[]; quick?: boolean; out: string }) {
  const small = flags.worldSizes.find((n) => n < 2);
  if (small !== undefined) {
    throw new UsageError(`Invalid --world-sizes ${small}: an all-reduce needs at least 2 ranks`);
  }
  await ensureWritableDir(flags.out, "--out");
  const result = await runAllreduceBench({
    worldSizes: flags.worldSizes,
    quick: flags.quick,
    onProgress: (p) => console.error(p.message),
  });
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
}
