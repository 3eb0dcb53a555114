/**
 * Child-process entry of `runIsolated`: run one in-process strategy (single, dp) or its
 * ceiling in this fresh process and report the measurement.
 *
 * @module
 */
import { reportResult } from "../comm/report_result.ts";
import { runRank } from "../comm/rank_main.ts";
import type { RunSpec } from "../core/run_types.ts";
import { STRATEGIES } from "../strategies/registry.ts";
import { printProgress, toWire } from "../strategies/_wire.ts";

const spec = JSON.parse(Deno.args[0]) as RunSpec;
await runRank(async () => {
  await reportResult(toWire(await STRATEGIES[spec.strategy].run(spec, printProgress)));
});
