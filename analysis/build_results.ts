/**
 * A bench's measurements as `results.json`: the run records, then the selection matrix built
 * from them.
 *
 * @module
 */
import type { BenchMeasurement } from "../bench/run_bench.ts";
import { buildMatrix, verdictsOf } from "./matrix.ts";
import { buildRunRecords, type Results, RESULTS_SCHEMA } from "./results.ts";

/**
 * A bench's measurements as `results.json`: the run records, then the matrix built from them.
 *
 * @param bench what `runBench` measured
 * @returns the results (not yet written)
 * @example
 * ```ts
 * import { runBench } from "../bench/run_bench.ts";
 * const results = buildResults(await runBench({
 *   workloads: ["iris-logreg"], strategies: ["single"], worldSizes: [2], quick: true,
 * }));
 * ```
 */
export function buildResults(bench: BenchMeasurement): Results {
  const results: Results = {
    schema: RESULTS_SCHEMA,
    env: bench.env,
    config: bench.config,
    runs: buildRunRecords(bench.runs, bench.ceilings),
    matrix: [],
  };
  const matrix = buildMatrix(results);
  results.matrix = matrix;
  results.verdicts = verdictsOf(matrix);
  return results;
}
