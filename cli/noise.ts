/**
 * `noise`: the run-to-run spread of the gate's ratios over several results of one preset.
 *
 * @module
 */
import type { Command } from "commander";
import { measureNoise } from "../analysis/noise.ts";
import { readResults } from "../analysis/validate_results.ts";
import { renderNoiseMarkdown } from "../reports/noise_markdown.ts";

/**
 * Adds `noise` to the program.
 *
 * @param program the command line
 * @example
 * ```ts
 * import { Command } from "commander";
 * addNoise(new Command("paratrain"));
 * ```
 */
export function addNoise(program: Command): void {
  program.command("noise")
    .description("run-to-run spread of the gate's ratios over several results of one preset")
    .argument("<files...>", "results.json files (at least two)")
    .action(async (files: string[]) => {
      const all = await Promise.all(files.map((f) => readResults(f)));
      console.log(renderNoiseMarkdown(measureNoise(all)));
    });
}
