/**
 * The paratrain command line: `bench`, `train`, `allreduce`, `predict`, `report`, `gate`,
 * `compare` and `noise`, one file each beside this one. Run through the tasks in deno.json, e.g.
 * `deno task bench --quick`.
 *
 * Exit codes: 0 success · 1 a run failed or the gate found a regression · 2 usage or input
 * error (one line on stderr) · 128 + n when stopped by signal n (130 for Ctrl-C).
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import { LaunchError } from "../comm/launcher.ts";
import { InterruptedError, printable, SIGNAL_EXIT_CODES, UsageError } from "../core/errors.ts";
import { addAllreduce } from "./allreduce.ts";
import { addBench } from "./bench.ts";
import { addCompare } from "./compare.ts";
import { addGate } from "./gate.ts";
import { addNoise } from "./noise.ts";
import { addPredict } from "./predict.ts";
import { addPredictionCheck } from "./prediction_check.ts";
import { addReport } from "./report.ts";
import { addTrain } from "./train.ts";

/** The commands, in `--help` order. */
const COMMANDS = [
  addBench,
  addTrain,
  addAllreduce,
  addPredict,
  addReport,
  addGate,
  addNoise,
  addCompare,
  addPredictionCheck,
];

function buildProgram(): Command {
  const program = new Command("paratrain")
    .description("Single device, DataParallel or DistributedDataParallel: measured side by side")
    .exitOverride()
    .configureOutput({ outputError: () => {} });
  for (const add of COMMANDS) add(program);
  return program;
}

/**
 * Run the CLI with `args`; returns the exit code instead of exiting.
 *
 * @param args command-line arguments (without the program)
 * @returns 0, 1 or 2
 * @example
 * ```ts
 * const code = await main(["bench", "--list"]);
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
    if (error instanceof UsageError || (error instanceof LaunchError && error.usage)) return 2;
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
