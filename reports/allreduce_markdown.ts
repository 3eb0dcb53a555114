/**
 * `allreduce.md` and `allreduce.json`: the all-reduce benchmark on its own, with the same table
 * and text as the all-reduce section of `report.md`.
 *
 * @module
 */
import type { AllreduceResult } from "../bench/allreduce.ts";
import { writeFileSet } from "../core/write_atomic.ts";
import { allreduceLines, allreduceTable } from "./_tables.ts";
import { markdownSafe, markdownTableText } from "./_markdown.ts";

/** The files `allreduce` writes into its `--out`: the table as JSON, then as Markdown. */
export const ALLREDUCE_FILES = ["allreduce.json", "allreduce.md"] as const;

/**
 * Renders the result as Markdown: the raw ceiling, then one table row per world size and
 * buffer size, with bus bandwidth as a fraction of the raw throughput.
 *
 * @param result what `runAllreduceBench` returned
 * @returns a Markdown document
 * @example
 * ```ts
 * import { runAllreduceBench } from "../bench/allreduce.ts";
 * const result = await runAllreduceBench({ worldSizes: [2], quick: true });
 * await Deno.writeTextFile("allreduce.md", renderAllreduceMarkdown(result));
 * ```
 */
export function renderAllreduceMarkdown(given: AllreduceResult): string {
  const result = markdownSafe(given);
  const table = allreduceTable(result);
  const { env } = result;
  return [
    "# All-reduce (ring, in place, float32 sum)",
    "",
    ...allreduceLines(result).flatMap((line) => [line, ""]),
    markdownTableText(table.rows, table.align),
    "",
    `Deno ${env.deno}, ${env.os}/${env.arch}, ${env.logicalCpus} logical CPUs` +
    `${env.quick ? ", quick preset" : ""}, started ${env.startedAt}.`,
    "",
  ].join("\n");
}

/**
 * Writes `allreduce.json` and `allreduce.md` into `outDir` (created if needed) as one set.
 *
 * @param result what `runAllreduceBench` returned
 * @param outDir the output directory
 * @returns the paths written
 * @example
 * ```ts
 * import { runAllreduceBench } from "../bench/allreduce.ts";
 * await writeAllreduceReport(await runAllreduceBench({ quick: true }), "results/latest");
 * ```
 */
export async function writeAllreduceReport(
  result: AllreduceResult,
  outDir: string,
): Promise<{ json: string; markdown: string }> {
  await Deno.mkdir(outDir, { recursive: true });
  const [json, markdown] = await writeFileSet(outDir, [
    [ALLREDUCE_FILES[0], JSON.stringify(result, null, 2) + "\n"],
    [ALLREDUCE_FILES[1], renderAllreduceMarkdown(result)],
  ]);
  return { json, markdown };
}
