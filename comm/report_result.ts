/**
 * Rank side of result collection: each rank hands one JSON value back to {@linkcode launch}.
 *
 * @module
 */
import { writeAtomic } from "../core/write_atomic.ts";
import { join } from "node:path";
import { readRankEnv, type ReadRankEnvOptions } from "./rank_env.ts";

/** Options for {@linkcode reportResult}. */
export type ReportResultOptions = ReadRankEnvOptions;

/**
 * Path of the result file of `rank` in a rendezvous directory.
 *
 * @param dir The rendezvous directory.
 * @param rank A rank.
 * @returns `<dir>/result-<rank>.json`.
 * @example
 * ```ts
 * resultPath("/tmp/paratrain-x", 1); // "/tmp/paratrain-x/result-1.json"
 * ```
 */
export function resultPath(dir: string, rank: number): string {
  return join(dir, `result-${rank}.json`);
}

/**
 * Hands this rank's result to the launcher: writes it as JSON to the rendezvous directory,
 * atomically (a temporary file renamed into place), so the launcher never reads half a file.
 * A single process (not started by the launcher) has nowhere to report: this returns false.
 *
 * @param value Any JSON-serialisable value.
 * @param options `env`: the environment to read the rank from (default: this process's).
 * @returns True when written, false for a single process.
 * @example
 * ```ts
 * import { initProcessGroupFromEnv } from "./init_process_group.ts";
 * const pg = await initProcessGroupFromEnv();
 * await reportResult({ rank: pg.rank, loss: 0.25 });
 * ```
 */
export async function reportResult(
  value: unknown,
  options: ReportResultOptions = {},
): Promise<boolean> {
  const { rank, rendezvousDir } = readRankEnv(options);
  if (rendezvousDir === null) return false;
  const path = resultPath(rendezvousDir, rank);
  await writeAtomic(path, JSON.stringify(value));
  return true;
}
