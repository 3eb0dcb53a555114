/**
 * `gate`: the regression gate on machine-independent ratios (exit 0 pass, 1 regression or
 * missing figure, 2 bad input).
 *
 * @module
 */
import type { Command } from "commander";
import { DEFAULT_TOLERANCE, gate } from "../analysis/gate.ts";
import { readResults } from "../analysis/validate_results.ts";
import { renderGateTable } from "../reports/gate_table.ts";
import { arg } from "./_options.ts";
import { parseTolerance } from "./_parsers.ts";

interface GateFlags {
  baseline: string;
  current: string;
  tolerance: number;
  allowMissing?: boolean;
}

async function gateCommand(flags: GateFlags): Promise<void> {
  const result = gate(await readResults(flags.baseline), await readResults(flags.current), {
    tolerance: flags.tolerance,
    allowMissing: flags.allowMissing,
  });
  console.log(renderGateTable(result));
  if (result.regressions.length > 0) {
    const missing = result.regressions.filter((c) => c.missing).length;
    throw new Error(
      `Gate failed: ${result.regressions.length} of ${result.checked} checks regressed` +
        (missing > 0 ? ` (${missing} missing from the current results)` : ""),
    );
  }
}

/**
 * Adds `gate` to the program.
 *
 * @param program the command line
 * @example
 * ```ts
 * import { Command } from "commander";
 * addGate(new Command("paratrain"));
 * ```
 */
export function addGate(program: Command): void {
  program.command("gate")
    .description(
      "regression gate on machine-independent ratios: exit 0 pass, 1 regression, 2 bad input",
    )
    .requiredOption("--baseline <file>", "the accepted results.json")
    .requiredOption("--current <file>", "the results.json under test")
    .option(
      "--tolerance <f>",
      "allowed relative drop of a ratio, in [0, 1)",
      arg("--tolerance", parseTolerance),
      DEFAULT_TOLERANCE,
    )
    .option(
      "--allow-missing",
      "a run or figure in the baseline but not in the current results warns instead of failing",
    )
    .action(gateCommand);
}
