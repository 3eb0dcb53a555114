/**
 * Child-process entry of {@linkcode runIsolated}: run one in-process strategy (single, dp)
 * in this fresh process and report its measurement.
 *
 * @module
 */
import { reportResult } from "../comm/report_result.ts";
import type { RunSpec } from "../core/run_types.ts";
import { STRATEGIES } from "../strategies/registry.ts";
import { printProgress, toWire } from "../strategies/_wire.ts";

const spec = JSON.parse(Deno.args[0]) as RunSpec;
const m = await STRATEGIES[spec.strategy].run!(spec, printProgress);
await reportResult(toWire(m));
