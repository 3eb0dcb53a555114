/**
 * `compare`: two `results.json` side by side, the runs both hold and B/A.
 *
 * @module
 */
import type { Command } from "commander";
import { compareResults } from "../analysis/compare.ts";
import { readResults } from "../analysis/validate_results.ts";
import { renderCompareMarkdown } from "../reports/compare_markdown.ts";

/**
 * Adds `compare` to the program.
 *
 * @param program the command line
 * @example
 * ```ts
 * import { Command } from "commander";
 * addCompare(new Command("paratrain"));
 * ```
 */
export function addCompare(program: Command): void {
  program.command("compare")
    .description("two results.json side by side: the runs both hold, and B/A")
    .argument("<a>", "first results.json")
    .argument("<b>", "second results.json")
    .action(async (a: string, b: string) => {
      const rows = compareResults(await readResults(a), await readResults(b));
      console.log(renderCompareMarkdown(rows, { labels: ["A", "B"] }));
    });
}
