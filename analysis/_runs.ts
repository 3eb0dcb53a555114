/**
 * Pairing the runs of two results files by (workload, strategy, world size), for `gate` and
 * `compare`, with the checks that make two files comparable at all.
 *
 * @module
 */
import { UsageError } from "../core/errors.ts";
import { DEFAULT_BUCKET_BYTES } from "../core/run_types.ts";
import { type Results, RESULTS_SCHEMA, type RunRecord } from "./results.ts";

/** The same run in both files. */
export interface RunPair {
  a: RunRecord;
  b: RunRecord;
}

/**
 * The identity of a run across results files.
 *
 * @param r a run
 * @returns `workload|strategy|worldSize`, then `|t<threads>` beyond one thread and
 *   `|b<bytes>` for a DDP bucket other than the default, `|fp16` for compressed gradients
 */
export const runKey = (
  r: Pick<RunRecord, "workload" | "strategy" | "worldSize"> & {
    threads?: number;
    bucketBytes?: number | null;
    gradCompression?: string;
  },
): string =>
  `${r.workload}|${r.strategy}|${r.worldSize}${(r.threads ?? 1) > 1 ? `|t${r.threads}` : ""}${
    r.strategy === "ddp" && r.bucketBytes != null && r.bucketBytes !== DEFAULT_BUCKET_BYTES
      ? `|b${r.bucketBytes}`
      : ""
  }${r.gradCompression && r.gradCompression !== "none" ? `|${r.gradCompression}` : ""}`;
const key = runKey;

/**
 * The runs `a` and `b` share, in `a`'s order.
 *
 * @param a the first (baseline) results
 * @param b the second (current) results
 * @param names how the two are called in messages, e.g. `["baseline", "current"]`
 * @returns the pairs
 * @throws UsageError when a schema differs from the one this version reads, or no run is shared
 */
export function pairRuns(a: Results, b: Results, names: [string, string]): RunPair[] {
  for (const [results, name] of [[a, names[0]], [b, names[1]]] as const) {
    if (results.schema !== RESULTS_SCHEMA) {
      throw new UsageError(
        `Cannot compare the ${name} results: schema "${results.schema}" is not "${RESULTS_SCHEMA}"`,
      );
    }
  }
  const byKey = new Map(b.runs.map((r) => [key(r), r]));
  const pairs = a.runs.flatMap((run) => {
    const other = byKey.get(key(run));
    return other ? [{ a: run, b: other }] : [];
  });
  if (pairs.length === 0) {
    const list = (r: Results) => [...new Set(r.runs.map(key))].join(", ").replaceAll("|", " ");
    throw new UsageError(
      `No common runs between the ${names[0]} (${list(a) || "none"}) and the ${names[1]} (${
        list(b) || "none"
      }) results`,
    );
  }
  return pairs;
}
