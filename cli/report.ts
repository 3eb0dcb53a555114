/**
 * `report`: re-render the reports from a `results.json` (byte for byte), optionally with a
 * screenshot of the HTML page.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { type Command, Option } from "commander";
import { readAllreduce } from "../analysis/read_allreduce.ts";
import { readResults } from "../analysis/validate_results.ts";
import { readPrediction } from "../analysis/validate_prediction.ts";
import { type Lang, LANGS } from "../reports/_labels.ts";
import { writeReports } from "../reports/write_reports.ts";
import { ensureWritableDir } from "./_parsers.ts";

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
  const prediction = await readPrediction(dirname(flags.in));
  const written = await writeReports(results, out, { lang: flags.lang, allreduce, prediction });
  if (flags.screenshot) {
    // Loaded on first use: `report` without --screenshot should not pay for a browser driver.
    const { screenshotReport } = await import("../reports/screenshot_report.ts");
    const png = join(out, "report.png");
    const first = join(out, "report-first-screen.png");
    const check = await screenshotReport(join(out, "report.html"), png, {
      firstScreenPath: first,
    });
    for (const e of check.consoleErrors) console.error(`report.html: console error: ${e}`);
    for (const u of check.externalRequests) console.error(`report.html: blocked request: ${u}`);
    written.push(png, first);
  }
  console.log(`Wrote ${written.join(", ")}`);
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
    .description("re-render the reports from a results.json")
    .requiredOption("--in <file>", "a results.json written by bench")
    .option("--out <dir>", "output folder (default: the folder of --in)")
    .addOption(
      new Option("--lang <lang>", "language of the selection matrix headers (zh: the article's)")
        .choices(LANGS).default("en"),
    )
    .option(
      "--screenshot",
      "also save report.png (the whole page) and report-first-screen.png (1280×900), rendered by headless Chromium",
    )
    .action(report);
}
