/**
 * The body of every process a launcher starts (a DDP rank, an isolated bench run): it dies
 * with its launcher, and it fails in one line that the launcher can quote.
 *
 * - A thread watches the parent process; if the launcher dies (SIGKILL, a crash), the rank
 *   removes the job's rendezvous directory and exits at once, so nothing is left behind.
 * - An expected failure (a peer that stopped answering, a replica that failed, diverged
 *   parameters) is written to `error-<rank>.json` in the rendezvous directory, with the rank it
 *   blames, and printed as one line without a stack trace; the process exits 1.
 *
 * @module
 */
import { join } from "node:path";
import { readEnvInteger } from "../core/env_integer.ts";
import { ExpectedError, UsageError } from "../core/errors.ts";
import { writeAtomic } from "../core/write_atomic.ts";
import { CommError } from "./_ring.ts";
import { ENV_NAMES, readRankEnv } from "./rank_env.ts";

/** What a failed rank reports to its launcher. */
export interface RankFailure {
  /** The rank that failed. */
  rank: number;
  /** One line: what went wrong. */
  message: string;
  /** The rank the failure points at (a peer that stopped answering), or this rank. */
  culprit: number;
  /**
   * A usage error (the job as asked cannot run: hosts that disagree on its settings, a rank
   * taken twice): the launcher then exits 2, as for any bad input. Absent in older reports.
   */
  usage?: boolean;
}

/**
 * Path of the failure report of `rank` in a rendezvous directory.
 *
 * @param dir the rendezvous directory
 * @param rank a rank
 * @returns `<dir>/error-<rank>.json`
 * @example
 * ```ts
 * failurePath("/tmp/paratrain-x", 1); // "/tmp/paratrain-x/error-1.json"
 * ```
 */
export function failurePath(dir: string, rank: number): string {
  return join(dir, `error-${rank}.json`);
}

/**
 * Runs `body` as a launched process: watching the launcher, reporting a failure in one line,
 * and exiting 0 when `body` resolves, 1 when it rejects.
 *
 * @param body the rank's work
 * @returns never: the process exits
 * @example
 * ```ts
 * import { initProcessGroupFromEnv } from "./init_process_group.ts";
 * await runRank(async () => {
 *   const pg = await initProcessGroupFromEnv();
 *   await pg.barrier();
 *   pg.close();
 * });
 * ```
 */
export async function runRank(body: () => Promise<void>): Promise<never> {
  const env = readRankEnv();
  const watch = new Worker(new URL("./_parent_watch_worker.ts", import.meta.url), {
    type: "module",
  });
  // The launcher's own pid where it gave one: a launcher that died while this rank was still
  // loading has already left it re-parented, and the watch must see that too.
  const launcher = readEnvInteger(Deno.env.toObject(), ENV_NAMES.launcherPid, { min: 1 });
  const parentPid = launcher ?? Deno.ppid;
  watch.postMessage({ parentPid, cleanupDir: env.rendezvousDir });
  try {
    await body();
  } catch (error) {
    const expected = error instanceof ExpectedError;
    const message = error instanceof Error ? error.message : String(error);
    const culprit = error instanceof CommError && error.peer !== null ? error.peer : env.rank;
    if (env.rendezvousDir) {
      const failure: RankFailure = {
        rank: env.rank,
        message,
        culprit,
        usage: error instanceof UsageError,
      };
      await writeAtomic(failurePath(env.rendezvousDir, env.rank), JSON.stringify(failure))
        .catch(() => {});
    }
    console.error(
      expected ? `paratrain: ${message}` : `paratrain: ${(error as Error)?.stack ?? message}`,
    );
    watch.terminate();
    Deno.exit(1);
  }
  watch.terminate();
  Deno.exit(0);
}
