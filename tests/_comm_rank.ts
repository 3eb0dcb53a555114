/**
 * Rank module for the launcher-based comm tests: runs one {@linkcode Scenario} (given as a
 * JSON argument) as one rank of a launched job.
 *
 * @module
 */
import { initProcessGroupFromEnv } from "../comm/init_process_group.ts";
import { launch } from "../comm/launcher.ts";
import { readRankEnv } from "../comm/rank_env.ts";
import { reportResult } from "../comm/report_result.ts";
import { runRank } from "../comm/rank_main.ts";
import type { ProcessGroup } from "../comm/process_group.ts";
import {
  type Case,
  type CasesReport,
  compareBuffers,
  digest,
  inputBuffer,
  naiveAllReduce,
  type Scenario,
} from "./_comm_helpers.ts";

/** Elements all-reduced per iteration by the fault scenarios. */
const FAULT_LENGTH = 100_000;
/** How long a stalled rank sleeps: far beyond any test's collective timeout. */
const STALL_MS = 10 * 60_000;

const scenario = JSON.parse(Deno.args[0]) as Scenario;
if (scenario.kind === "launch") {
  // Not a rank: the launcher itself, for the tests that signal it.
  await launch(new URL(import.meta.url), {
    worldSize: scenario.worldSize,
    args: [JSON.stringify(scenario.inner)],
  });
} else {
  await runRank(async () => {
    console.log(`pid ${Deno.pid} dir ${readRankEnv().rendezvousDir}`);
    const pg = await initProcessGroupFromEnv();
    if (scenario.kind === "cases") await reportResult(await runCases(pg, scenario.cases));
    else if (scenario.kind === "die") await allReduceUntilDeath(pg, scenario);
    else if (scenario.kind === "stall") {
      if (pg.rank === scenario.victim) {
        await new Promise((resolve) => setTimeout(resolve, STALL_MS));
      }
      await pg.allReduce(new Float32Array(FAULT_LENGTH));
    }
    pg.close();
  });
}

async function runCases(pg: ProcessGroup, cases: Case[]): Promise<CasesReport> {
  const { rendezvousDir } = readRankEnv();
  const report: CasesReport = {
    rank: pg.rank,
    worldSize: pg.worldSize,
    dir: rendezvousDir ?? "",
    dirMode: rendezvousDir ? (Deno.statSync(rendezvousDir).mode ?? 0) & 0o777 : 0,
    errors: [],
    digests: [],
  };
  for (const [index, c] of cases.entries()) {
    const label = `case ${index} (${c.collective}, length ${c.length}, rank ${pg.rank})`;
    const buf = inputBuffer(c.seed, pg.rank, c.length);
    let expected = buf;
    if (c.collective === "all-reduce") {
      await pg.allReduce(buf, { op: c.op });
      expected = naiveAllReduce(c.seed, pg.worldSize, c.length, c.op ?? "sum");
    } else if (c.collective === "broadcast") {
      await pg.broadcast(buf, { root: c.root });
      expected = inputBuffer(c.seed, c.root ?? 0, c.length);
    } else {
      await pg.barrier();
    }
    const problem = compareBuffers(label, buf, expected);
    if (problem) report.errors.push(problem);
    report.digests.push(digest(buf));
  }
  return report;
}

async function allReduceUntilDeath(
  pg: ProcessGroup,
  plan: Extract<Scenario, { kind: "die" }>,
): Promise<never> {
  const buf = new Float32Array(FAULT_LENGTH);
  for (let iteration = 1;; iteration++) {
    await pg.allReduce(buf);
    if (pg.rank === plan.victim && iteration === plan.afterIterations) {
      if (plan.how === "exit") Deno.exit(3);
      console.log("ready to be killed");
    }
  }
}
