/**
 * What several commands share: the flags of a run, the default output folder, and how a
 * value parser is wired into commander.
 *
 * @module
 */
import { type Command, Option } from "commander";
import { parseBackend } from "../backends/backend.ts";
import { getWorkload, WORKLOAD_FAMILIES, WORKLOADS } from "../workloads/registry.ts";
import { canonicalReference, isModuleOrModel } from "../workloads/resolve_workload.ts";
import { DATA_SOURCES } from "../workloads/layers_workload.ts";
import { LOSS_NAMES, lossByName } from "../core/losses.ts";
import { quote, UsageError } from "../core/errors.ts";
import { integer, nonNegativeInt, oneName, positiveInt } from "./_parsers.ts";
import { GRAD_COMPRESSIONS, SCALINGS } from "../core/run_types.ts";
import type { ProgressMode } from "./progress.ts";

/** Default output folder of `bench` and `allreduce`. */
export const DEFAULT_OUT = "results/latest";

/** The default bench's workloads, by name. */
export const WORKLOAD_NAMES = WORKLOADS.map((w) => w.name);

/**
 * Every workload form for help texts: the unsized built-ins, each family with its sizes, and a
 * model of your own.
 */
export const WORKLOAD_CHOICES = [
  ...WORKLOAD_NAMES,
  ...WORKLOAD_FAMILIES.map((f) => `${f.name}[:${Object.keys(f.sizes).join("|")}]`),
  "model:PATH/model.json (a saved TensorFlow.js Layers model)",
  "MODULE#export (a Workload, or a function returning a tf.LayersModel)",
].join(", ");

/**
 * A comma-separated list of built-in workloads, a family's size as `family:size` (the bare
 * family name is its default size), saved Layers models (`model:PATH/model.json`) and module
 * exports (`./my_model.ts#build`, `file:///…#build`), each named as its runs will record it
 * (a path made absolute, so that every process finds it). Whether a file or module holds
 * what it should is checked when it is resolved, before any run.
 *
 * @param flag the flag, for the message
 * @param value the text given, e.g. `mnist-mlp,transformer-lm:small`
 * @returns the workload names, canonical (`wide-mlp` → `wide-mlp:medium`,
 *   `model:m/model.json` → `model:/abs/m/model.json`), without repeats
 * @throws UsageError naming the unknown workload or size and the valid choices
 * @example
 * ```ts
 * workloadList("--workloads", "transformer-lm:tiny,wide-mlp");
 * ```
 */
export function workloadList(flag: string, value: string): string[] {
  const names = value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0) {
    throw new UsageError(`Invalid ${flag} ${quote(value)}: expected at least one name`);
  }
  const canonical = names.map((name) => {
    if (isModuleOrModel(name)) return canonicalReference(name);
    try {
      return getWorkload(name).name;
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      const cut = error.message.indexOf(": ");
      throw new UsageError(
        `${error.message.slice(0, cut)} in ${flag}: ${error.message.slice(cut + 2)}`,
      );
    }
  });
  return [...new Set(canonical)];
}

/**
 * `--data`: a built-in source or a module's export (its path made an absolute URL).
 *
 * @param flag the flag, for the message
 * @param value `synthetic`, `mnist`, `iris`, or `module#export`
 * @returns the source, canonical
 * @throws UsageError naming the choices
 * @example
 * ```ts
 * dataSource("--data", "mnist"); // "mnist"
 * ```
 */
export function dataSource(flag: string, value: string): string {
  if ((DATA_SOURCES as readonly string[]).includes(value)) return value;
  if (value.includes("#")) return canonicalReference(value);
  throw new UsageError(
    `Unknown ${flag} ${quote(value)}: choose from ${DATA_SOURCES.join(", ")}, or MODULE#export`,
  );
}

/**
 * `--loss`: one of the losses paratrain computes, by any usual spelling.
 *
 * @param flag the flag, for the message
 * @param value e.g. `categorical-crossentropy`, `categoricalCrossentropy`, `mse`
 * @returns its `--loss` name
 * @throws UsageError naming the choices
 * @example
 * ```ts
 * lossName("--loss", "mse"); // "mean-squared-error"
 * ```
 */
export function lossName(flag: string, value: string): string {
  const name = lossByName(value);
  if (!name) {
    throw new UsageError(`Unknown ${flag} ${quote(value)}: choose from ${LOSS_NAMES.join(", ")}`);
  }
  return name;
}

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
 * Adds the flags every run takes (backend, threads, fast kernels, seed, warm-up) to a command.
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
      new Option(
        "--backend <name>",
        "native, wasm, cpu, webgpu (a DDP rank takes its LOCAL_RANK's adapter) or tensorflow (tfjs-node-gpu, else tfjs-node: needs libtensorflow); default: native where OpenBLAS loads, else wasm; --list says which run here",
      ).argParser((v: string) => parseBackend(v)),
    )
    .option(
      "--threads <n>",
      "compute threads per worker (native only; at most the logical CPUs, and 64); N workers use N × this many cores",
      arg("--threads", positiveInt),
      1,
    )
    .option("--quiet", "no progress and no backend line on stderr (results and reports as usual)")
    .option(
      "--json-progress",
      "progress on stderr as one JSON object per line: backend, run-start, step, run-end",
    )
    .option(
      "--no-fast-kernels",
      "stock tfjs kernels where wasm has fast overrides, to measure them (native keeps its OpenBLAS and SIMD kernels)",
    )
    .option(
      "--seed <n>",
      "seed for data shuffles and initial parameters",
      arg("--seed", integer),
      0,
    )
    .option("--warmup <n>", "untimed warm-up steps per run", arg("--warmup", nonNegativeInt))
    .option(
      "--accumulate <k>",
      "micro-batches per optimizer step, gradients accumulated locally and communicated once (default 1)",
      arg("--accumulate", positiveInt),
      1,
    )
    .option(
      "--grad-compression <c>",
      `dp/ddp: gradients on the wire as ${
        GRAD_COMPRESSIONS.join(", ")
      } (cast to 16 bits, reduced in float32)`,
      (v: string) => oneName("--grad-compression", v, GRAD_COMPRESSIONS, "compression"),
      "none",
    )
    .option(
      "--scaling <s>",
      "strong: N workers share the batch; weak: each worker keeps the batch (N × the global batch)",
      (v: string) => oneName("--scaling", v, SCALINGS, "scaling"),
      "strong",
    )
    .option(
      "--no-overlap",
      "ddp: all-reduce the buckets after the backward instead of during it",
    )
    .option(
      "--data <source>",
      `Layers models (model:…, MODULE#function): what they train on — ${
        DATA_SOURCES.join(", ")
      } or MODULE#export (a function of the seed returning a Dataset, or a Workload); default synthetic: 2048 samples of the model's input shape, a Gaussian cluster per class of its output, from --seed`,
      arg("--data", dataSource),
    )
    .option(
      "--loss <name>",
      `Layers models: ${
        LOSS_NAMES.join(", ")
      } (default: the model's compile configuration; needed where it has none)`,
      arg("--loss", lossName),
    );
}

/**
 * Says which backend runs and why, as the progress mode asks: a line, a JSON event, or nothing;
 * with `provisional`, a second line (or the event's field) saying the verdicts will be
 * provisional and how to get `native`.
 *
 * @param mode the progress mode
 * @param chosen the backend and the line from `chooseBackend`, and the provisional note if any
 * @example
 * ```ts
 * import { chooseBackend } from "../backends/backend.ts";
 * announceBackend("text", chooseBackend(undefined, 1));
 * ```
 */
export function announceBackend(
  mode: ProgressMode,
  chosen: { backend: string; why: string; provisional?: string },
) {
  if (mode === "text") {
    console.error(chosen.why);
    if (chosen.provisional) console.error(chosen.provisional);
  }
  if (mode === "json") {
    console.error(JSON.stringify({
      event: "backend",
      backend: chosen.backend,
      why: chosen.why,
      ...(chosen.provisional ? { provisional: chosen.provisional } : {}),
    }));
  }
}
