import assert from "node:assert/strict";
import { join } from "node:path";
import { runBench } from "../bench/run_bench.ts";
import { boundSteps, TRACE_MAX_STEPS, type TraceEvent, TRACKS } from "../core/trace.ts";

interface TraceFile {
  traceEvents: TraceEvent[];
  metadata: Record<string, unknown>;
}

/** Every span of a worker lies inside that worker's span of the same step. */
function assertNested(file: TraceFile): void {
  const spans = file.traceEvents.filter((e) => e.ph === "X");
  const steps = spans.filter((e) => e.cat === "step");
  for (const e of spans.filter((e) => e.cat !== "step")) {
    const step = steps.find((s) => s.pid === e.pid && s.args?.step === e.args?.step);
    assert.ok(step, `no step ${e.args?.step} for worker ${e.pid}`);
    // 1 µs of slack for rounding the host clock.
    assert.ok(
      e.ts! >= step.ts! - 1 && e.ts! + e.dur! <= step.ts! + step.dur! + 1,
      `${e.cat} of worker ${e.pid} at step ${e.args?.step} is outside its step`,
    );
  }
}

Deno.test("--trace writes a file per run with a process per worker and phases nested in steps", async () => {
  const dir = await Deno.makeTempDir();
  await runBench({
    workloads: ["synthetic-mlp"],
    strategies: ["single", "dp", "ddp"],
    worldSizes: [2],
    quick: true,
    backend: "wasm",
    traceDir: dir,
  });
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.deepEqual(names, [
    "synthetic-mlp-ddp-2-ceiling-repeat1.json",
    "synthetic-mlp-ddp-2-repeat1.json",
    "synthetic-mlp-dp-2-ceiling-repeat1.json",
    "synthetic-mlp-dp-2-repeat1.json",
    "synthetic-mlp-single-repeat1.json",
  ]);
  const read = (name: string): TraceFile => JSON.parse(Deno.readTextFileSync(join(dir, name)));
  const ddp = read("synthetic-mlp-ddp-2-repeat1.json");
  const processes = ddp.traceEvents.filter((e) => e.name === "process_name").map((e) =>
    e.args!.name
  );
  assert.deepEqual(processes, ["rank 0", "rank 1"]);
  const tracks = ddp.traceEvents.filter((e) => e.name === "thread_name" && e.pid === 0)
    .map((e) => e.args!.name);
  assert.deepEqual(tracks, [...TRACKS]);
  const spans = ddp.traceEvents.filter((e) => e.ph === "X");
  const steps = 12; // --quick: 2 warm-up + 10 timed
  for (const pid of [0, 1]) {
    for (const cat of ["step", "compute", "allReduce", "wait", "update"]) {
      assert.ok(spans.some((e) => e.pid === pid && e.cat === cat), `rank ${pid} has no ${cat}`);
    }
    assert.equal(spans.filter((e) => e.pid === pid && e.cat === "step").length, steps);
    // One span for the all-reduce phase and one per bucket inside it.
    assert.ok(spans.some((e) => e.pid === pid && e.name === "bucket 0" && e.args?.bytes));
  }
  assertNested(ddp);
  assert.equal(ddp.metadata.keptSteps, "all");
  assert.match(String(ddp.metadata.clock), /host's clock/);

  const dp = read("synthetic-mlp-dp-2-repeat1.json");
  const dpSpans = dp.traceEvents.filter((e) => e.ph === "X");
  for (const cat of ["replicate", "scatter", "compute", "gather", "update"]) {
    assert.ok(dpSpans.some((e) => e.pid === 0 && e.cat === cat), `main has no ${cat}`);
  }
  // The worker replica's compute, as its Web Worker timed it, on its own process.
  assert.equal(dpSpans.filter((e) => e.pid === 1 && e.cat === "compute").length, steps);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("long traces keep the first and last steps and an even sample, at most the cap", () => {
  const events: TraceEvent[] = Array.from({ length: 1000 }, (_, i) => ({
    name: `step ${i + 1}`,
    ph: "X",
    ts: i,
    dur: 1,
    pid: 0,
    tid: 0,
    cat: "step",
    args: { step: i + 1 },
  }));
  const { events: kept, kept: steps } = boundSteps(events, 1000);
  assert.equal(steps.length, TRACE_MAX_STEPS);
  assert.deepEqual(steps.slice(0, 3), [1, 2, 3]);
  assert.deepEqual(steps.slice(-2), [999, 1000]);
  assert.equal(kept.length, TRACE_MAX_STEPS);
  assert.equal(boundSteps(events.slice(0, 50), 50).kept.length, 50);
});
