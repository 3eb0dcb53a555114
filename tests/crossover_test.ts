/**
 * Where parallel starts to pay: `results.crossover` from constructed runs of a family at three
 * sizes (and one workload at two batches), the verdicts per run set, the report's section and
 * charts, the matrix's use-case row citing it, and the schema accepting all of it.
 */
import assert from "node:assert/strict";
import { buildCrossover } from "../analysis/crossover.ts";
import { buildMatrix, verdictsOf } from "../analysis/matrix.ts";
import type { Results, RunRecord } from "../analysis/results.ts";
import { runSets } from "../analysis/_runs.ts";
import { validateResults } from "../analysis/validate_results.ts";
import { renderHtml } from "../reports/html.ts";
import { renderMarkdown } from "../reports/markdown.ts";
import { makeResults, makeRun, type RunShape } from "./_results_fixture.ts";

/** A run of `workload` at `batch`, with the figures a crossover reads. */
function run(
  shape: RunShape,
  size: { params: number; flopsPerStep: number; batch?: number },
): RunRecord {
  return {
    ...makeRun(shape),
    params: size.params,
    gradientBytes: 4 * size.params,
    flopsPerStep: size.flopsPerStep,
    globalBatch: size.batch ?? 64,
  };
}

/** One configuration: single, DP-2 and DDP-2 with the given intervals over the best single. */
function configuration(
  workload: string,
  size: { params: number; flopsPerStep: number; batch?: number },
  dp: [number, number],
  ddp: [number, number],
  dpDiff = 1e-7,
): RunRecord[] {
  const parallel = (strategy: "dp" | "ddp", [low, high]: [number, number], paramDiff = 1e-7) =>
    run({
      workload,
      strategy,
      speedup: (low + high) / 2,
      interval: [low, high],
      paramDiff,
    }, size);
  return [
    run({ workload, strategy: "single" }, size),
    parallel("dp", dp, dpDiff),
    parallel("ddp", ddp),
  ];
}

function results(): Results {
  const base = makeResults([]);
  base.runs = [
    ...configuration("transformer-lm:small", { params: 2e6, flopsPerStep: 30e9 }, [0.9, 1.2], [
      1.15,
      1.3,
    ]),
    ...configuration("transformer-lm:tiny", { params: 2e5, flopsPerStep: 3e9 }, [0.5, 0.6], [
      0.8,
      0.9,
    ]),
    // DP is fast here but its parameters are off: not eligible, not a point.
    ...configuration(
      "transformer-lm:medium",
      { params: 1e7, flopsPerStep: 140e9 },
      [1.2, 1.4],
      [1.5, 1.7],
      1e-2,
    ),
    ...configuration("mnist-cnn", { params: 1e5, flopsPerStep: 1e9 }, [0.8, 0.9], [1.0, 1.1]),
    ...configuration("wide-mlp:tiny", { params: 6e5, flopsPerStep: 1e9, batch: 32 }, [0.3, 0.4], [
      0.5,
      0.6,
    ]),
    ...configuration("wide-mlp:tiny", { params: 6e5, flopsPerStep: 2e9, batch: 64 }, [0.4, 0.5], [
      0.7,
      0.8,
    ]),
  ];
  base.crossover = buildCrossover(base.runs);
  base.matrix = buildMatrix(base, { root: ".", crossover: base.crossover });
  base.verdicts = verdictsOf(base.matrix as ReturnType<typeof buildMatrix>);
  return base;
}

Deno.test("crossover: per family, strategy and world size; the smallest chosen configuration first", () => {
  const crossover = buildCrossover(results().runs);
  // mnist-cnn has one configuration: nothing to cross over.
  assert.deepEqual(
    crossover.map((c) => `${c.family} ${c.strategy}-${c.worldSize}`),
    ["transformer-lm dp-2", "transformer-lm ddp-2", "wide-mlp dp-2", "wide-mlp ddp-2"],
  );
  const [dp, ddp, wideDp] = crossover;
  assert.deepEqual(ddp.points.map((p) => p.workload), [
    "transformer-lm:tiny",
    "transformer-lm:small",
    "transformer-lm:medium",
  ]);
  assert.deepEqual(ddp.firstChoose, { workload: "transformer-lm:small", globalBatch: 64 });
  assert.deepEqual(ddp.points.map((p) => p.chosen), [false, true, true]);
  // DP's medium run is not eligible (1e-2 from single's parameters): no point, and DP's small
  // interval straddles 1.10x, so DP does not pay within the measured range.
  assert.deepEqual(dp.points.map((p) => p.workload), [
    "transformer-lm:tiny",
    "transformer-lm:small",
  ]);
  assert.equal(dp.firstChoose, null);
  assert.deepEqual(wideDp.points.map((p) => p.globalBatch), [32, 64]);
  assert.equal(ddp.points[1].gradientBytes, 8e6);
  assert.equal(ddp.points[1].run, "ddp-2");
});

Deno.test("run sets: a workload swept over batches is one set (and one verdict) per batch", () => {
  const r = results();
  const wide = runSets(r).filter((s) => s.workload === "wide-mlp:tiny");
  assert.deepEqual(wide.map((s) => s.label), [
    "wide-mlp:tiny, batch 32",
    "wide-mlp:tiny, batch 64",
  ]);
  assert.deepEqual(
    (r.verdicts as { workload: string; globalBatch?: number }[])
      .filter((v) => v.workload === "wide-mlp:tiny").map((v) => v.globalBatch),
    [32, 64],
  );
  // Unswept workloads keep their bare name and no globalBatch.
  assert.equal(runSets(r).find((s) => s.workload === "mnist-cnn")!.globalBatch, null);
});

Deno.test("results with crossover validate; the report has its section and charts; the matrix cites it", async () => {
  const r = results();
  validateResults(JSON.parse(JSON.stringify(r)), "the crossover test");
  const md = renderMarkdown(r);
  assert.match(md, /## Where parallel starts to pay/);
  assert.match(
    md,
    /\*\*transformer-lm\*\*: DP-2 does not pay within the measured range; DDP-2 pays from transformer-lm:small, batch 64\./,
  );
  assert.match(
    md,
    /\| transformer-lm:small +\| +64 \| +2\.00 M \| +30\.00 \| .* 1\.23x \[1\.15–1\.30\] choose \|/,
  );
  const useCase = (r.matrix as { aspect: string; cells?: { strategy: string; text: string }[] }[])
    .find((e) => e.aspect === "useCase")!.cells!.find((c) => c.strategy === "ddp")!;
  assert.match(
    useCase.text,
    /where parallel starts to pay: transformer-lm \(N=2\): pays from transformer-lm:small, batch 64/,
  );
  const html = await renderHtml(r);
  assert.match(html, /<h2 id="crossover">Where parallel starts to pay<\/h2>/);
  assert.match(html, /chart-crossover-flops/);
  assert.match(html, /chart-crossover-gradient/);
});

Deno.test("older results (no params or FLOPs on their runs) have no crossover and still render", async () => {
  const r = makeResults([
    { workload: "mnist-cnn", strategy: "single" },
    { workload: "mnist-cnn", strategy: "ddp", speedup: 1.2 },
  ]);
  assert.deepEqual(buildCrossover(r.runs), []);
  validateResults(JSON.parse(JSON.stringify(r)), "older results");
  assert.doesNotMatch(renderMarkdown(r), /Where parallel starts to pay/);
  assert.doesNotMatch(await renderHtml(r), /chart-crossover/);
});

Deno.test("a run's key and label carry its batch and SyncBatchNorm; weak scaling's set is the per-worker batch", async () => {
  const { runKey } = await import("../analysis/_runs.ts");
  const { setBatch } = await import("../analysis/results.ts");
  const { runLabel } = await import("../core/run_types.ts");
  const ddp = {
    workload: "resnet-cnn:tiny",
    strategy: "ddp" as const,
    worldSize: 2,
    globalBatch: 64,
  };
  assert.equal(runKey(ddp), "resnet-cnn:tiny|ddp|2|B64");
  assert.equal(runKey({ ...ddp, batchNorm: "sync" }), "resnet-cnn:tiny|ddp|2|B64|syncbn");
  assert.equal(runLabel({ ...ddp, batchNorm: "sync" }), "ddp-2-syncbn");
  assert.equal(runLabel({ ...ddp, batchNorm: "local" }), "ddp-2");
  assert.equal(setBatch({ ...ddp, globalBatch: 128, scaling: "weak" }), 64);
  assert.equal(setBatch({ ...ddp, strategy: "single", worldSize: 1, scaling: "weak" }), 64);
});
