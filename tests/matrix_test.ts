import assert from "node:assert/strict";
import { join } from "node:path";
import {
  buildMatrix,
  type MatrixEntry,
  type Recommendation,
  type VerdictRecord,
  verdictsOf,
} from "../analysis/matrix.ts";
import { renderMatrixMarkdown } from "../reports/matrix_markdown.ts";
import { renderMarkdown } from "../reports/markdown.ts";
import { renderHtml } from "../reports/html.ts";
import { stepTimeChart } from "../reports/_charts.ts";
import { countCodeLines, measureComplexity } from "../analysis/complexity.ts";
import { ASPECTS } from "../analysis/matrix.ts";
import { validateResults } from "../analysis/validate_results.ts";
import { writeReports } from "../reports/write_reports.ts";
import { ALLREDUCE_FIXTURE, FULL_SHAPES, makeResults, type RunShape } from "./_results_fixture.ts";

const recommendations = (m: MatrixEntry[]) =>
  m.filter((e): e is Recommendation => e.aspect === "recommendation");
const cell = (m: MatrixEntry[], aspect: string, strategy: string) => {
  const row = m.find((e) => e.aspect === aspect);
  assert.ok(row && "cells" in row, `no ${aspect} row`);
  return row.cells.find((c) => c.strategy === strategy)!;
};

Deno.test("the matrix has the article's five rows for single, dp and ddp, then one recommendation per workload", () => {
  const results = makeResults(FULL_SHAPES);
  const matrix = buildMatrix(results);
  assert.deepEqual(matrix.slice(0, 5).map((e) => e.aspect), [...ASPECTS]);
  for (const row of matrix.slice(0, 5)) {
    assert.ok("cells" in row);
    assert.deepEqual(row.cells.map((c) => c.strategy), ["single", "dp", "ddp"]);
  }
  assert.deepEqual(
    recommendations(matrix).map((r) => [r.workload, r.strategy, r.worldSize, r.rule]),
    [["mnist-cnn", "ddp", 4, "fastest"], ["iris-logreg", "single", 1, "keep-single"]],
  );
  results.matrix = matrix;
  validateResults(JSON.parse(JSON.stringify(results)), "the matrix test");
});

Deno.test("the scalability row says which transports DDP was run over", () => {
  const results = makeResults(FULL_SHAPES);
  for (const run of results.runs) if (run.strategy === "ddp") run.transport = "tcp";
  assert.match(cell(buildMatrix(results), "scalability", "ddp").text, /N run: 2, 4; tcp, 1 host/);
  results.runs.find((r) => r.strategy === "ddp")!.transport = "unix";
  assert.match(cell(buildMatrix(results), "scalability", "ddp").text, /; unix\+tcp, 1 host/);
});

Deno.test("the cells carry the measured figures at fixed precision", () => {
  const matrix = buildMatrix(makeResults(FULL_SHAPES));
  assert.match(cell(matrix, "parallelEfficiency", "ddp").text, /N=2: 0\.40x–1\.80x/);
  assert.match(cell(matrix, "parallelEfficiency", "ddp").text, /N=4: .*of ceiling/);
  assert.match(cell(matrix, "memoryPerDevice", "dp").text, /main 1\.13–2\.00x replicas/);
  assert.match(cell(matrix, "memoryPerDevice", "ddp").text, /max\/mean 1\.00/);
  assert.match(cell(matrix, "useCase", "ddp").text, /chosen for mnist-cnn/);
  assert.match(cell(matrix, "useCase", "single").text, /iris-logreg/);
  assert.match(cell(matrix, "scalability", "ddp").text, /Unix sockets.*N run: 2, 4; unix, 1 host/);
  assert.match(cell(matrix, "implementationComplexity", "ddp").text, /\d+ lines, \d+ files/);
  const rec = recommendations(matrix);
  assert.match(
    rec[0].text,
    /for mnist-cnn, against the best single process \(single\): DP-2 reached 1\.30x.*DDP-4 reached 2\.90x; choose DDP/,
  );
  assert.match(rec[1].text, /no run.s interval reaches 1\.10x: keep single/);
});

Deno.test("a strategy absent from the results says not measured", () => {
  const results = makeResults(FULL_SHAPES.filter((s) => s.strategy !== "dp"));
  const matrix = buildMatrix(results);
  for (const aspect of ["useCase", "memoryPerDevice", "parallelEfficiency"]) {
    const c = cell(matrix, aspect, "dp");
    assert.equal(c.measured, false);
    assert.equal(c.text, "not measured");
  }
  assert.match(cell(matrix, "scalability", "dp").text, /one process.*not measured/);
});

Deno.test("verdicts: overlapping intervals go to balanced memory, separated ones to the faster", () => {
  const tie: RunShape[] = [
    { workload: "w", strategy: "single" },
    { workload: "w", strategy: "dp", speedup: 1.85, interval: [1.6, 2.0], peaksMiB: [30, 18, 18] },
    { workload: "w", strategy: "ddp", speedup: 1.8, interval: [1.5, 1.9] },
  ];
  const [tied] = recommendations(buildMatrix(makeResults(tie)));
  assert.equal(tied.strategy, "ddp");
  assert.equal(tied.rule, "tie-balanced-memory");
  assert.equal(tied.verdict, "choose");

  const apart: RunShape[] = [
    { workload: "w", strategy: "single" },
    { workload: "w", strategy: "dp", speedup: 2.2, interval: [2.1, 2.3], peaksMiB: [30, 18, 18] },
    { workload: "w", strategy: "ddp", speedup: 1.5, interval: [1.4, 1.6] },
  ];
  const [faster] = recommendations(buildMatrix(makeResults(apart)));
  assert.deepEqual([faster.strategy, faster.rule, faster.verdict], ["dp", "fastest", "choose"]);
  assert.match(faster.text, /DP-2 reached 2\.20x \[2\.10–2\.30\]/);
});

Deno.test("verdicts: an interval straddling 1.10x is inconclusive and says how many repeats", () => {
  const [unsure] = recommendations(buildMatrix(makeResults([
    { workload: "w", strategy: "single" },
    { workload: "w", strategy: "ddp", speedup: 1.2, interval: [0.9, 1.4] },
  ])));
  assert.equal(unsure.verdict, "inconclusive");
  assert.equal(unsure.strategy, "ddp");
  // half-width 0.25 over distance 0.1 from the threshold, 3 repeats: 3 · 2.5² ≈ 19.
  assert.equal(unsure.repeatsSuggested, 19);
  assert.match(unsure.text, /straddles 1\.10x: inconclusive on this machine — about 19 repeats/);

  const [below] = recommendations(buildMatrix(makeResults([
    { workload: "w", strategy: "single" },
    { workload: "w", strategy: "ddp", speedup: 1.05, interval: [0.95, 1.09] },
  ])));
  assert.deepEqual([below.verdict, below.strategy, below.rule], [
    "keep-single",
    "single",
    "keep-single",
  ]);
});

Deno.test("verdicts compare with the best single process, not the one-worker single", () => {
  // 1.5x over one worker, but only 0.9x over the two-thread single process.
  const [kept] = recommendations(buildMatrix(makeResults([
    { workload: "w", strategy: "single" },
    { workload: "w", strategy: "ddp", speedup: 1.5, vsBest: 0.9, interval: [0.85, 0.95] },
  ])));
  assert.equal(kept.verdict, "keep-single");
  assert.match(kept.text, /against the best single process \(single-2t\): DDP-2 reached 0\.90x/);
  const results = makeResults([
    { workload: "w", strategy: "single" },
    { workload: "w", strategy: "ddp", speedup: 1.5, vsBest: 0.9, interval: [0.85, 0.95] },
  ]);
  results.matrix = buildMatrix(results);
  results.verdicts = verdictsOf(results.matrix as MatrixEntry[]);
  assert.deepEqual(
    (results.verdicts as VerdictRecord[]).map((v) => [v.workload, v.verdict, v.strategy]),
    [["w", "keep-single", "single"]],
  );
  validateResults(JSON.parse(JSON.stringify(results)), "the verdict test");
});

Deno.test("verdicts: diverging runs are not eligible; single alone has nothing to choose", () => {
  const diverged: RunShape[] = [
    { workload: "w", strategy: "single" },
    { workload: "w", strategy: "dp", speedup: 1.3 },
    { workload: "w", strategy: "ddp", speedup: 2, paramDiff: 1e-2 },
  ];
  const [chosen] = recommendations(buildMatrix(makeResults(diverged)));
  assert.equal(chosen.strategy, "dp");
  assert.match(chosen.text, /DDP-2 reached 2\.00x but its parameters differ .*not eligible/);

  const [alone] = recommendations(
    buildMatrix(makeResults([{ workload: "w", strategy: "single" }])),
  );
  assert.equal(alone.rule, "only-single");
});

Deno.test("complexity counts the code lines each strategy's run reaches beyond the shared core", async () => {
  assert.equal(
    countCodeLines(
      "/**\n * doc\n */\nconst a = 1; // note\n\n// only a comment\n/* x */ const b = 2;\n/* y */\n",
    ),
    2,
  );
  const root = await Deno.makeTempDir();
  await Deno.mkdir(join(root, "strategies"));
  await Deno.mkdir(join(root, "core"));
  const files: Record<string, string> = {
    "core/loop.ts": "export const loop = 1;\n",
    "strategies/_run.ts": 'import "../core/loop.ts";\nexport const run = 1;\n',
    "strategies/single.ts": '/** single */\nimport "./_run.ts";\n',
    "strategies/dp.ts":
      '/** dp */\nimport "./_run.ts";\nimport { g } from "./_dp_gather.ts";\nnew Worker(new URL("./_dp_worker.ts", import.meta.url));\n',
    "strategies/_dp_gather.ts": "a();\nb();\n\n",
    "strategies/_dp_worker.ts": "// a worker\nw();\n",
    "strategies/_dp_unused.ts": "not reached();\n",
  };
  for (const [path, text] of Object.entries(files)) {
    await Deno.writeTextFile(join(root, path), text);
  }
  assert.deepEqual(measureComplexity("dp", root), {
    lines: 6,
    files: ["strategies/_dp_gather.ts", "strategies/_dp_worker.ts", "strategies/dp.ts"],
  });
  assert.deepEqual(measureComplexity("single", root), {
    lines: 3,
    files: ["strategies/_run.ts", "strategies/single.ts"],
  });
  assert.equal(measureComplexity("ddp", root).lines, null);
  const matrix = buildMatrix(makeResults(FULL_SHAPES), { root });
  assert.match(cell(matrix, "implementationComplexity", "ddp").text, /^not implemented/);
  assert.match(
    cell(matrix, "implementationComplexity", "dp").text,
    /^6 lines, 3 files \(strategies\/ 3\)$/,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("renderMatrixMarkdown uses the article's Chinese headers with --lang zh", () => {
  const results = makeResults(FULL_SHAPES);
  assert.equal(renderMatrixMarkdown(results, "zh"), "");
  results.matrix = buildMatrix(results);
  const zh = renderMatrixMarkdown(results, "zh");
  for (
    const word of ["特性", "适用场景", "显存占用", "并行效率", "实现复杂度", "扩展性", "选择建议"]
  ) {
    assert.ok(zh.includes(word), `missing ${word}`);
  }
  const en = renderMatrixMarkdown(results, "en");
  assert.match(en, /\| use case +\|/);
  assert.match(en, /### Recommendations/);
  assert.match(en, /Rules, in order:\n\n1\. Eligible runs/);
  assert.equal(renderMatrixMarkdown(results, "en"), en);
});

Deno.test("report.md holds the matrix and, with allreduce.json beside it, the all-reduce table", async () => {
  const dir = await Deno.makeTempDir();
  const results = makeResults(FULL_SHAPES);
  results.matrix = buildMatrix(results);
  await Deno.writeTextFile(join(dir, "allreduce.json"), JSON.stringify(ALLREDUCE_FIXTURE));
  await writeReports(results, dir);
  const md = await Deno.readTextFile(join(dir, "report.md"));
  assert.match(md, /## Selection matrix, measured on this machine/);
  assert.match(md, /## All-reduce/);
  assert.match(md, /\| unix +\| +2 \| +64\.0 MiB \|/);
  assert.match(md, /max \\\|Δparam\\\| vs single/, "a | in a cell is escaped");
  await Deno.writeTextFile(join(dir, "allreduce.json"), '{"schema": "paratrain/allreduce@1"');
  await assert.rejects(writeReports(results, dir), /Cannot parse .*allreduce\.json/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the report leads with the answer: one row per workload, verdicts before the matrix", async () => {
  const results = makeResults([
    ...FULL_SHAPES,
    { workload: "w", strategy: "single" },
    { workload: "w", strategy: "ddp", speedup: 1.2, interval: [0.9, 1.4] },
  ]);
  results.matrix = buildMatrix(results);
  results.verdicts = verdictsOf(results.matrix as MatrixEntry[]);
  const md = renderMarkdown(results);
  const headings = md.split("\n").filter((l) => l.startsWith("## "));
  assert.equal(headings[0], "## The answer");
  assert.ok(md.indexOf("## The answer") < md.indexOf("## Selection matrix"));
  // The fixture ran on wasm: every verdict is provisional (tests/provisional_test.ts).
  assert.match(md, /\| mnist-cnn +\| choose \(provisional\) +\| ddp-4 +\|/);
  assert.match(md, /\| iris-logreg +\| keep single \(provisional\) +\| single +\|/);
  assert.match(
    md,
    /\| w +\| inconclusive \(provisional\) +\| ddp-2\? +\| +ddp-2 1\.20x \[0\.90–1\.40\] \|.*straddles 1\.10x; ~19 repeats/,
  );
  const html = await renderHtml(results);
  assert.ok(html.indexOf('<table class="answer">') < html.indexOf('<table class="matrix">'));
  assert.ok(html.indexOf('<table class="answer">') < html.indexOf("chart-throughput"));
  assert.equal(
    renderMarkdown(results, { lang: "zh" }).split("\n").find((l) => l.startsWith("## ")),
    "## 结论",
  );
  // Every matrix cell is a few words and numbers, not a paragraph.
  for (const entry of results.matrix as MatrixEntry[]) {
    if ("cells" in entry) { for (const c of entry.cells) assert.ok(c.text.length <= 100, c.text); }
  }
});

Deno.test("with step samples the HTML report draws the step-time distribution; without, it does not", async () => {
  const results = makeResults(FULL_SHAPES);
  results.matrix = buildMatrix(results);
  assert.equal(stepTimeChart(results), null);
  assert.ok(!(await renderHtml(results)).includes("chart-step-time"));
  results.runs.forEach((r, i) => r.stepSamplesMs = [[10 + i, 11 + i], [12 + i, 9 + i]]);
  validateResults(JSON.parse(JSON.stringify(results)), "step samples");
  const spec = stepTimeChart(results)!;
  assert.equal(
    (spec as { data: { values: unknown[] } }).data.values.length,
    4 * results.runs.length,
  );
  const html = await renderHtml(results);
  assert.match(html, /<svg[^>]*id="chart-step-time"/);
});
