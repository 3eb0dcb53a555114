/**
 * Child-process entry of `runIsolated` and `measureCeilingIsolated`: run one in-process
 * strategy (single, dp), or its ceiling, in this fresh process and report the measurement.
 *
 * @module
 */
import { reportResult } from "../comm/report_result.ts";
import { runRank } from "../comm/rank_main.ts";
import type { IsolatedTask } from "./run_isolated.ts";
import { STRATEGIES } from "../strategies/registry.ts";
import { printProgress, toWire } from "../strategies/_wire.ts";

const { spec, ceiling } = JSON.parse(Deno.args[0]) as IsolatedTask;
const entry = STRATEGIES[spec.strategy];
await runRank(async () => {
  await reportResult(
    ceiling ? await entry.ceiling!(spec) : toWire(await entry.run!(spec, printProgress)),
  );
});
