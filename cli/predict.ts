/**
 * `predict`: DDP's step time, throughput and speedup over the best single process at world
 * sizes up to thousands of ranks and across hosts, from a bench's `results.json` and a link
 * model (a measured `allreduce.json`, or `--link RATE,LATENCY`); prints the table and writes
 * `prediction.json` (and `prediction.md`); where the results' own reports sit in `--out`, they
 * are re-rendered with the predicted curve.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { type Command, Option } from "commander";
import { markdownTable } from "markdown-table";
import { measureCastNs } from "../bench/cast_cost.ts";
import { readAllreduceFile } from "../analysis/read_allreduce.ts";
import {
  DEFAULT_PREDICT_WORLD_SIZES,
  type LinkSource,
  parseLink,
  predict,
  PREDICTION_SCHEMA,
  type PredictionFile,
} from "../analysis/predict.ts";
import { readResults } from "../analysis/validate_results.ts";
import { validatePrediction } from "../analysis/validate_prediction.ts";
import { UsageError } from "../core/errors.ts";
import { type Scaling, SCALINGS } from "../core/run_types.ts";
import { writeFileSet } from "../core/write_atomic.ts";
import {
  predictionGroups,
  predictionLines,
  predictionTable,
  renderPredictionMarkdown,
} from "../reports/prediction_markdown.ts";
import { writeReports } from "../reports/write_reports.ts";
import { arg } from "./_options.ts";
import { ensureWritableDir, intList, positiveInt } from "./_parsers.ts";

interface PredictFlags {
  in: string;
  allreduce?: string;
  link?: string;
  worldSizes: number[];
  nprocPerNode: number;
  scaling?: Scaling;
  sharedMachine?: boolean;
  out?: string;
}

async function runPredict(flags: PredictFlags): Promise<void> {
  if (flags.allreduce && flags.link) {
    throw new UsageError("Give --allreduce or --link, not both: one model of the link");
  }
  const results = await readResults(flags.in);
  const given = flags.link ? parseLink(flags.link) : null;
  // Without either, an allreduce.json beside the results is the link.
  const allreducePath = flags.allreduce ??
    (given ? null : join(dirname(flags.in), "allreduce.json"));
  let links: LinkSource = { given };
  if (allreducePath) {
    const allreduce = await readAllreduceFile(allreducePath).catch((error) => {
      if (flags.allreduce) throw error;
      throw new UsageError(
        `No link model: ${basename(allreducePath)} is not beside ${flags.in}; give --allreduce ` +
          `FILE (from \`deno task allreduce\`) or --link RATE,LATENCY (e.g. 10gbit,20us)`,
      );
    });
    if (!allreduce.linkModel?.length) {
      throw new UsageError(
        `${allreducePath} has no linkModel (written before link models, or not an all-reduce ` +
          `run): run \`deno task allreduce\` again`,
      );
    }
    links = { models: allreduce.linkModel };
  }
  const out = flags.out ?? dirname(flags.in);
  await ensureWritableDir(out, "--out");
  const compressions = [
    ...new Set(
      results.runs.flatMap((r) =>
        r.strategy === "ddp" && r.gradCompression && r.gradCompression !== "none"
          ? [r.gradCompression]
          : []
      ),
    ),
  ];
  const castNsPerValue = compressions.length
    ? Object.fromEntries(
      await Promise.all(compressions.map(async (c) => [c, await measureCastNs(c)] as const)),
    )
    : null;
  const predictions = await predict(results, links, {
    worldSizes: flags.worldSizes,
    nprocPerNode: flags.nprocPerNode,
    scaling: flags.scaling,
    sharedMachine: flags.sharedMachine ?? false,
    castNsPerValue: castNsPerValue ?? undefined,
  });
  const file: PredictionFile = validatePrediction(
    JSON.parse(JSON.stringify({
      schema: PREDICTION_SCHEMA,
      inputs: {
        results: flags.in,
        allreduce: allreducePath,
        link: flags.link ?? null,
        sharedMachine: flags.sharedMachine ?? false,
        castNsPerValue,
      },
      predictions,
    })),
    "the predictions being written",
  );
  const written = await writeFileSet(out, [
    ["prediction.json", JSON.stringify(file, null, 2) + "\n"],
    ["prediction.md", renderPredictionMarkdown(file)],
  ]);
  // The results' own folder: its reports gain the predicted curve.
  if (resolve(out) === resolve(dirname(flags.in))) {
    written.push(...await writeReports(results, out, { prediction: file }));
  }
  for (const line of predictionLines(file)) console.log(line);
  for (const [title, group] of predictionGroups(file)) {
    const table = predictionTable(group);
    console.log(`\n${title}\n${markdownTable(table.rows, { align: table.align })}`);
  }
  console.log(`\nWrote ${written.join(", ")}`);
}

/**
 * Adds `predict` to the program.
 *
 * @param program the command line
 * @example
 * ```ts
 * import { Command } from "commander";
 * addPredict(new Command("paratrain"));
 * ```
 */
export function addPredict(program: Command): void {
  program.command("predict")
    .description(
      "predict DDP's step time, samples/s and speedup over the best single process at world sizes up to thousands, across hosts, from a bench's results and a link model",
    )
    .requiredOption("--in <file>", "a results.json written by bench (its compute is scaled)")
    .option(
      "--allreduce <file>",
      "an allreduce.json whose linkModel gives the links (default: the one beside --in)",
    )
    .option(
      "--link <rate,latency>",
      "the links between hosts by hand, as tc spells them: e.g. 10gbit,20us or 200mbit,0.1ms",
    )
    .option(
      "--world-sizes <n,m>",
      `ranks to predict (default ${DEFAULT_PREDICT_WORLD_SIZES.join(",")})`,
      arg("--world-sizes", intList),
      DEFAULT_PREDICT_WORLD_SIZES,
    )
    .option(
      "--nproc-per-node <p>",
      "ranks per host (default 1): they share a host's cores, as the bench's DDP runs of p ranks did",
      arg("--nproc-per-node", positiveInt),
      1,
    )
    .addOption(
      new Option(
        "--scaling <s>",
        "only strong (the global batch split) or weak (each rank keeps it); default both",
      ).choices(SCALINGS),
    )
    .option(
      "--shared-machine",
      "the hosts share the measuring machine's CPUs (network namespaces, containers on one box): each rank computes as the bench's DDP run of as many ranks did",
    )
    .option(
      "--out <dir>",
      "where prediction.json and prediction.md go (default: the folder of --in)",
    )
    .action(runPredict);
}
