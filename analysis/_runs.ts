/**
 * Pairing the runs of two results files by (workload, strategy, world size), for `gate` and
 * `compare`, with the checks that make two files comparable at all.
 *
 * @module
 */
import { UsageError } from "../core/errors.ts";
import { DEFAULT_BUCKET_BYTES } from "../core/run_types.ts";
import { type Results, RESULTS_SCHEMA, type RunRecord, setBatch } from "./results.ts";

/** The same run in both files. */
export interface RunPair {
  a: RunRecord;
  b: RunRecord;
}

/**
 * The identity of a run across results files.
 *
 * @param r a run
 * @returns `workload|strategy|worldSize|B<global batch>`, then `|t<threads>` beyond one
 *   thread and `|b<bytes>` for a DDP bucket other than the default, `|fp16` for compressed
 *   gradients, `|syncbn` for SyncBatchNorm
 */
export const runKey = (
  r: Pick<RunRecord, "workload" | "strategy" | "worldSize" | "globalBatch"> & {
    threads?: number;
    bucketBytes?: number | null;
    gradCompression?: string;
    batchNorm?: string | null;
  },
): string =>
  `${r.workload}|${r.strategy}|${r.worldSize}|B${r.globalBatch}${
    (r.threads ?? 1) > 1 ? `|t${r.threads}` : ""
  }${
    r.strategy === "ddp" && r.bucketBytes != null && r.bucketBytes !== DEFAULT_BUCKET_BYTES
      ? `|b${r.bucketBytes}`
      : ""
  }${r.gradCompression && r.gradCompression !== "none" ? `|${r.gradCompression}` : ""}${
    r.strategy !== "single" && r.batchNorm === "sync" ? "|syncbn" : ""
  }`;
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

/** The runs of one workload at one batch: a single reference and the runs compared with it. */
export interface RunSet {
  workload: string;
  /** The set's batch where the results hold several for this workload (`--batches`), else null. */
  globalBatch: number | null;
  /** How tables and verdicts name it: the workload, with its batch where there are several. */
  label: string;
  runs: RunRecord[];
}

/**
 * The run sets of `results`, in first-seen order: one per workload, or one per workload and
 * batch where a bench swept batches (`--batches`). With weak scaling a parallel run belongs to
 * its per-worker batch, the one its single reference ran.
 *
 * @param results the results
 * @returns the sets
 * @example
 * ```ts
 * import type { Results } from "./results.ts";
 * declare const results: Results;
 * for (const set of runSets(results)) console.log(set.label, set.runs.length);
 * ```
 */
export function runSets(results: Pick<Results, "runs">): RunSet[] {
  const sets = new Map<string, RunRecord[]>();
  for (const run of results.runs) {
    const key = `${run.workload}|${setBatch(run)}`;
    sets.set(key, [...(sets.get(key) ?? []), run]);
  }
  const batchesOf = (workload: string) =>
    new Set(results.runs.filter((r) => r.workload === workload).map(setBatch)).size;
  return [...sets.values()].map((runs) => {
    const { workload } = runs[0];
    const swept = batchesOf(workload) > 1;
    const globalBatch = swept ? setBatch(runs[0]) : null;
    return {
      workload,
      globalBatch,
      label: swept ? `${workload}, batch ${globalBatch}` : workload,
      runs,
    };
  });
}
