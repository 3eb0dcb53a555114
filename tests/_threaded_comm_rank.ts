/**
 * Rank module for the threaded process group's launched tests: joins the job from the
 * environment through {@linkcode startThreadedProcessGroup} and runs one scenario (JSON in
 * the first argument).
 *
 * - `cases`: all-reduces each case's input, once in the shared region and once as a plain
 *   buffer, and reports both results' digests (and any difference from the reference).
 * - `exit-mid-collective`: one all-reduce, then a large one; once its data is moving, the
 *   process exits with code 3 (the test's other ranks see a peer die mid-collective).
 *
 * @module
 */
import { startThreadedProcessGroup } from "../comm/threaded_process_group.ts";
import { reportResult } from "../comm/report_result.ts";
import { runRank } from "../comm/rank_main.ts";
import type { ReduceOp } from "../comm/process_group.ts";
import { compareBuffers, digest, inputBuffer, naiveAllReduce } from "./_comm_helpers.ts";

/** What this module is asked to do. */
export type ThreadedScenario =
  | { kind: "cases"; cases: { length: number; seed: number; op: ReduceOp }[] }
  | { kind: "exit-mid-collective"; length: number };

/** What a rank reports for `cases`. */
export interface ThreadedCasesReport {
  rank: number;
  errors: string[];
  /** Per case, the digests of the shared and the plain result. */
  digests: [number, number][];
}

/** How long the victim waits for its all-reduce to change its buffer before exiting anyway. */
const MOVING_DEADLINE_MS = 10_000;

/** True once the communication thread has reduced some of `buf` (all ones before, the peer's not). */
function moving(buf: Float32Array): boolean {
  for (let i = 0; i < buf.length; i += 1024) if (buf[i] !== 1) return true;
  return false;
}

if (import.meta.main) {
  const scenario = JSON.parse(Deno.args[0]) as ThreadedScenario;
  await runRank(async () => {
    const pg = await startThreadedProcessGroup();
    try {
      if (scenario.kind === "cases") {
        const report: ThreadedCasesReport = { rank: pg.rank, errors: [], digests: [] };
        for (const [index, c] of scenario.cases.entries()) {
          const expected = naiveAllReduce(c.seed, pg.worldSize, c.length, c.op);
          const shared = pg.sharedFloats(c.length + 3).subarray(3);
          shared.set(inputBuffer(c.seed, pg.rank, c.length));
          const plain = inputBuffer(c.seed, pg.rank, c.length);
          await Promise.all([
            pg.allReduce(shared, { op: c.op }),
            pg.allReduce(plain, { op: c.op }),
          ]);
          for (const [what, buf] of [["shared", shared], ["plain", plain]] as const) {
            const problem = compareBuffers(`case ${index} ${what}, rank ${pg.rank}`, buf, expected);
            if (problem) report.errors.push(problem);
          }
          report.digests.push([digest(shared), digest(plain)]);
        }
        await reportResult(report);
      } else {
        // The victim: once the data of a large all-reduce is moving, exit.
        const buf = pg.sharedFloats(scenario.length);
        await pg.allReduce(buf);
        buf.fill(1);
        void pg.allReduce(buf).catch(() => {});
        const deadline = performance.now() + MOVING_DEADLINE_MS;
        while (!moving(buf) && performance.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
        Deno.exit(3);
      }
    } finally {
      pg.close();
    }
  });
}
