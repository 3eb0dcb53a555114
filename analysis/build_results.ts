/**
 * A bench's measurements as `results.json`: the run records, then the selection matrix built
 * from them.
 *
 * @module
 */
import type { BenchMeasurement } from "../bench/run_bench.ts";
import type { AllreduceResult } from "../bench/allreduce.ts";
import { labelBounds } from "./bound.ts";
import { buildMatrix, verdictsOf } from "./matrix.ts";
import { buildCrossover } from "./crossover.ts";
import { buildRunRecords, type Results, RESULTS_SCHEMA } from "./results.ts";

/**
 * A bench's measurements as `results.json`: the run records, then the matrix built from them.
 *
 * @param bench what `runBench` measured
 * @param allreduce an all-reduce table measured on this machine (`allreduce.json`), for the
 *   predicted communication time and the bound labels; null without one
 * @returns the results (not yet written)
 * @example
 * ```ts
 * import { runBench } from "../bench/run_bench.ts";
 * const results = buildResults(await runBench({
 *   workloads: ["iris-logreg"], strategies: ["single"], worldSizes: [2], quick: true,
 * }));
 * ```
 */
export function buildResults(
  bench: BenchMeasurement,
  allreduce: AllreduceResult | null = null,
): Results {
  const results: Results = {
    schema: RESULTS_SCHEMA,
    env: bench.env,
    config: bench.config,
    runs: buildRunRecords(bench.runs, bench.ceilings, { stepSamples: bench.config.stepSamples }),
    matrix: [],
  };
  labelBounds(results.runs, allreduce);
  const crossover = buildCrossover(results.runs);
  const matrix = buildMatrix(results, { crossover });
  results.matrix = matrix;
  results.verdicts = verdictsOf(matrix);
  if (crossover.length > 0) results.crossover = crossover;
  return results;
}
