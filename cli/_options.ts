/**
 * What several commands share: the flags of a run, the default output folder, and how a
 * value parser is wired into commander.
 *
 * @module
 */
import { type Command, Option } from "commander";
import { parseBackend } from "../core/backend.ts";
import { WORKLOADS } from "../workloads/registry.ts";
import { integer, nonNegativeInt } from "./_parsers.ts";

/** Default output folder of `bench` and `allreduce`. */
export const DEFAULT_OUT = "results/latest";

/** The built-in workloads' names, for choices and help. */
export const WORKLOAD_NAMES = WORKLOADS.map((w) => w.name);

/**
 * Wraps a parser so commander reports its message.
 *
 * @param flag the flag, for the message
 * @param parse the parser
 * @returns commander's argument parser
 * @example
 * ```ts
 * import { positiveInt } from "./_parsers.ts";
 * arg("--steps", positiveInt)("20"); // 20
 * ```
 */
export function arg<T>(flag: string, parse: (flag: string, value: string) => T) {
  return (value: string) => parse(flag, value);
}

/**
 * Adds the flags every run takes (backend, fast kernels, seed, warm-up) to a command.
 *
 * @param command `bench` or `train`
 * @returns the command
 * @example
 * ```ts
 * import { Command } from "commander";
 * runOptions(new Command("train"));
 * ```
 */
export function runOptions(command: Command): Command {
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
