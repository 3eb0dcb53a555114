/**
 * `report`: re-render the reports from a `results.json` (byte for byte); with several `--in`
 * (or a folder of results), machines side by side; with `--history DIR`, a history over
 * commits. Optionally with a screenshot of the HTML page. Every input is read and checked
 * before anything is written.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { type Command, Option } from "commander";
import { DEFAULT_TOLERANCE } from "../analysis/gate.ts";
import { buildHistory } from "../analysis/history.ts";
import { compareMachines } from "../analysis/machines.ts";
import { readAllreduce } from "../analysis/read_allreduce.ts";
import { readResultsSet, type SourcedResults } from "../analysis/read_results_set.ts";
import { readResults } from "../analysis/validate_results.ts";
import { UsageError } from "../core/errors.ts";
import { readPrediction } from "../analysis/validate_prediction.ts";
import { type Lang, LANGS } from "../reports/_labels.ts";
import { renderHistoryHtml, renderHistoryMarkdown } from "../reports/history_report.ts";
import { renderMachinesHtml, renderMachinesMarkdown } from "../reports/machines_report.ts";
import { RENDERERS, writeRendered, writeReports } from "../reports/write_reports.ts";
import { arg } from "./_options.ts";
import { ensureWritableDir, parseTolerance } from "./_parsers.ts";

/** Default output folder of machines side by side (several `--in`). */
export const MACHINES_OUT = "results/machines";
/** Default output folder of `--history`. */
export const HISTORY_OUT = "results/history";

/** The screenshots `--screenshot` saves beside the reports. */
const SCREENSHOT = "report.png";
const FIRST_SCREEN = "report-first-screen.png";

interface ReportFlags {
  in: string[];
  history?: string;
  out?: string;
  lang: Lang;
  tolerance?: number;
  screenshot?: boolean;
}

/** `--in` may be given several times: each adds a file or folder. */
const collect = (value: string, previous: string[]) => [...previous, value];

async function report(flags: ReportFlags): Promise<void> {
  if (flags.history !== undefined && flags.in.length > 0) {
    throw new UsageError("--history and --in are two reports: give one of them");
  }
  if (flags.history === undefined && flags.in.length === 0) {
    throw new UsageError(
      "report needs --in results.json (one or several) or --history DIR",
    );
  }
  if (flags.tolerance !== undefined && flags.history === undefined) {
    throw new UsageError("--tolerance applies to --history (the gate between commits)");
  }
  let written: string[];
  let out: string;
  if (flags.history !== undefined) {
    const history = buildHistory(await readResultsSet([flags.history]), {
      tolerance: flags.tolerance ?? DEFAULT_TOLERANCE,
    });
    out = flags.out ?? HISTORY_OUT;
    await ensureWritableDir(out, "--out", pageFiles(flags));
    written = await writeRendered(out, {
      "report.md": () => renderHistoryMarkdown(history),
      "report.html": () => renderHistoryHtml(history),
    });
  } else if (flags.in.length === 1 && !(await isFolder(flags.in[0]))) {
    out = flags.out ?? dirname(flags.in[0]);
    written = await rerender(await readResults(flags.in[0]), flags.in[0], out, flags);
  } else {
    const set = await readResultsSet(flags.in);
    if (set.length === 1) {
      // A folder holding one results file: that file's own report, as with the file itself.
      out = flags.out ?? dirname(set[0].source);
      written = await rerender(set[0].results, set[0].source, out, flags);
    } else {
      const comparison = compareMachines(set);
      out = flags.out ?? MACHINES_OUT;
      await ensureWritableDir(out, "--out", pageFiles(flags));
      written = await writeRendered(out, {
        "report.md": () => renderMachinesMarkdown(comparison),
        "report.html": () => renderMachinesHtml(comparison),
      });
    }
  }
  if (flags.screenshot) written.push(...await screenshot(out));
  console.log(`Wrote ${written.join(", ")}`);
}

/** The screenshots `--screenshot` adds to a report's files. */
function screenshotFiles(flags: ReportFlags): string[] {
  return flags.screenshot ? [SCREENSHOT, FIRST_SCREEN] : [];
}

/** The files a machines or history page writes. */
function pageFiles(flags: ReportFlags): string[] {
  return ["report.md", "report.html", ...screenshotFiles(flags)];
}

async function isFolder(path: string): Promise<boolean> {
  return (await Deno.stat(path).catch(() => null))?.isDirectory ?? false;
}

/** One results file's own reports, as `bench` wrote them. */
async function rerender(
  results: SourcedResults["results"],
  source: string,
  out: string,
  flags: ReportFlags,
): Promise<string[]> {
  const lang = flags.lang;
  await ensureWritableDir(out, "--out", [...Object.keys(RENDERERS), ...screenshotFiles(flags)]);
  const allreduce = await readAllreduce(dirname(source));
  const prediction = await readPrediction(dirname(source));
  return await writeReports(results, out, { lang, allreduce, prediction });
}

/** report.png (the whole page) and report-first-screen.png, with what the browser saw. */
async function screenshot(out: string): Promise<string[]> {
  // Loaded on first use: `report` without --screenshot should not pay for a browser driver.
  const { screenshotReport } = await import("../reports/screenshot_report.ts");
  const png = join(out, SCREENSHOT);
  const first = join(out, FIRST_SCREEN);
  const check = await screenshotReport(join(out, "report.html"), png, {
    firstScreenPath: first,
  });
  for (const e of check.consoleErrors) console.error(`report.html: console error: ${e}`);
  for (const u of check.externalRequests) console.error(`report.html: blocked request: ${u}`);
  return [png, first];
}

/**
 * Adds `report` to the program.
 *
 * @param program the command line
 * @example
 * ```ts
 * import { Command } from "commander";
 * addReport(new Command("paratrain"));
 * ```
 */
export function addReport(program: Command): void {
  program.command("report")
    .description(
      "re-render the reports from a results.json; several --in: machines side by side; --history DIR: a history over commits",
    )
    .addOption(
      new Option(
        "--in <path>",
        "a results.json written by bench (a regular file, at most 256 MiB), or a folder of them (*.json, */results.json); give it again for machines side by side",
      ).argParser(collect).default([], "none"),
    )
    .option(
      "--history <dir>",
      "results of successive commits (*.json, */results.json): samples/s and speedup against the commit, ordered by commit date, the gate's regressions marked",
    )
    .option(
      "--out <dir>",
      `output folder (default: the folder of --in; ${MACHINES_OUT} for several; ${HISTORY_OUT} for --history)`,
    )
    .addOption(
      new Option("--lang <lang>", "language of the selection matrix headers (zh: the article's)")
        .choices(LANGS).default("en"),
    )
    .option(
      "--tolerance <f>",
      `--history: the gate's allowed relative drop of a ratio between commits, in [0, 1) (default ${DEFAULT_TOLERANCE})`,
      arg("--tolerance", parseTolerance),
    )
    .option(
      "--screenshot",
      "also save report.png (the whole page) and report-first-screen.png (1280×900), rendered by headless Chromium",
    )
    .action(report);
}
