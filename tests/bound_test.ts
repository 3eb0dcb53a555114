import assert from "node:assert/strict";
import { boundOf, labelBounds, predictComm } from "../analysis/bound.ts";
import { phaseTable, stragglerLines } from "../reports/_tables.ts";
import { ALLREDUCE_FIXTURE, makeRun } from "./_results_fixture.ts";

/** A ddp-2 run whose all-reduce moves `bufferBytes` and takes `share` of a step. */
function ddp(bufferBytes: number, share: number, ceiling = 1.8) {
  const run = makeRun({ workload: "w", strategy: "ddp", speedup: 1.2, ceiling });
  run.comm.bytesPerStep = bufferBytes; // 2(N−1)/N = 1 for two ranks
  run.comm.share = share;
  return run;
}

Deno.test("bound: communication share first, then the ceiling, else compute", () => {
  assert.equal(boundOf(makeRun({ workload: "w", strategy: "single" }), null), null);
  // Without a table the buffer size decides latency against bandwidth.
  assert.equal(boundOf(ddp(4 << 10, 0.5), null), "latency");
  assert.equal(boundOf(ddp(8 << 20, 0.5), null), "communication");
  // Little communication, but two workers with no communication reach only 1.2x of one.
  assert.equal(boundOf(ddp(8 << 20, 0.1, 1.2), null), "machine");
  assert.equal(boundOf(ddp(8 << 20, 0.1, 1.8), null), "compute");
  // With a table: the fixed cost against the predicted time decides.
  const small = predictComm(ALLREDUCE_FIXTURE, ddp(4 << 10, 0.5))!;
  assert.equal(small.totalMs, small.latencyMs);
  assert.equal(boundOf(ddp(4 << 10, 0.5), small), "latency");
  const large = predictComm(ALLREDUCE_FIXTURE, ddp(16 << 20, 0.5))!;
  assert.ok(large.latencyMs < 0.5 * large.totalMs);
  assert.equal(boundOf(ddp(16 << 20, 0.5), large), "communication");
});

Deno.test("predicted communication: the table's time at the run's buffer, interpolated in log size", () => {
  const rows = ALLREDUCE_FIXTURE.rows.filter((r) => r.worldSize === 2);
  // Exactly a row's size: that row's time.
  assert.ok(
    Math.abs(predictComm(ALLREDUCE_FIXTURE, ddp(1 << 20, 0.5))!.totalMs - rows[2].usPerOp / 1000) <
      1e-9,
  );
  // Halfway in log size between 1 MiB and 16 MiB (4 MiB): halfway in time.
  const between = predictComm(ALLREDUCE_FIXTURE, ddp(4 << 20, 0.5))!.totalMs;
  assert.ok(Math.abs(between - (rows[2].usPerOp + rows[3].usPerOp) / 2000) < 1e-9);
  // DP's communication is not an all-reduce: no prediction.
  assert.equal(predictComm(ALLREDUCE_FIXTURE, makeRun({ workload: "w", strategy: "dp" })), null);
});

Deno.test("the phase table shows the bound and the predicted communication beside the measured", () => {
  const runs = [makeRun({ workload: "w", strategy: "single" }), ddp(4 << 20, 0.5)];
  labelBounds(runs, ALLREDUCE_FIXTURE);
  const { rows } = phaseTable(runs);
  const header = rows[0];
  assert.ok(header.includes("comm predicted ms") && header.includes("bound"));
  assert.equal(rows[2][header.indexOf("bound")], "communication");
  assert.equal(rows[1][header.indexOf("bound")], "–");
  assert.notEqual(rows[2][header.indexOf("comm predicted ms")], "–");
});

Deno.test("the report names the slowest rank and how much of communication waits for it", () => {
  const run = ddp(4 << 20, 0.5);
  run.memory.workers[0].arrivalLagMs = { p50: 0.1, p95: 0.4 };
  run.memory.workers[1].arrivalLagMs = { p50: 1.5, p95: 3 };
  run.comm.msPerStep = 4;
  run.comm.waitMsPerStep = 1;
  assert.deepEqual(stragglerLines([run]), [
    "ddp-2: rank 1 arrives last at the collective (lag behind the first: p50 1.50 ms, p95 3.00 ms); waiting for the slowest rank is 25% of its communication (1.00 of 4.00 ms per step).",
  ]);
  assert.deepEqual(stragglerLines([makeRun({ workload: "w", strategy: "single" })]), []);
});
