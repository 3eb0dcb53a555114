/**
 * User-provided names cannot break a Markdown report: a workload named with `|`, `<script>`,
 * a link, emphasis or a line break stays text in every heading, cell and bullet of every
 * Markdown paratrain writes (report.md with its matrix, allreduce.md, gate, compare, noise,
 * machines side by side, the history),
 * and ordinary names read exactly as before.
 */
import assert from "node:assert/strict";
import { compareResults } from "../analysis/compare.ts";
import { gate } from "../analysis/gate.ts";
import { buildMatrix } from "../analysis/matrix.ts";
import { measureNoise } from "../analysis/noise.ts";
import type { Results } from "../analysis/results.ts";
import { renderAllreduceMarkdown } from "../reports/allreduce_markdown.ts";
import { renderCompareMarkdown } from "../reports/compare_markdown.ts";
import { renderGateTable } from "../reports/gate_table.ts";
import { renderMarkdown } from "../reports/markdown.ts";
import { renderNoiseMarkdown } from "../reports/noise_markdown.ts";
import { compareMachines } from "../analysis/machines.ts";
import { buildHistory } from "../analysis/history.ts";
import { renderMachinesMarkdown } from "../reports/machines_report.ts";
import { renderHistoryMarkdown } from "../reports/history_report.ts";
import { escapeMarkdown, escapeMarkdownText } from "../reports/_markdown.ts";
import { ALLREDUCE_FIXTURE, FULL_SHAPES, makeResults } from "./_results_fixture.ts";

/** Everything a name could try: a cell break, raw HTML, a link, emphasis, code, a new line. */
const HOSTILE = "evil|name <script>alert(1)</script> [x](http://e) **b** _c_ `d` ~e~ $f$ #\n# h";

function hostileResults(): Results {
  const results = makeResults(
    FULL_SHAPES.map((s) => ({ ...s, workload: s.workload === "mnist-cnn" ? HOSTILE : s.workload })),
  );
  results.env.cpuModel = "CPU <img src=x onerror=alert(1)> | 8 cores";
  results.matrix = buildMatrix(results);
  return results;
}

/** Pipes that split cells: not preceded by an odd number of backslashes. */
function cellBreaks(line: string): number {
  return [...line.matchAll(/(?<!\\)(?:\\\\)*\|/g)].length;
}

/** Every table (runs of lines starting with `|`) has the same number of cells on every line. */
function assertTablesIntact(markdown: string) {
  const lines = markdown.split("\n");
  let table: string[] = [];
  const check = () => {
    if (table.length > 0) {
      const counts = table.map(cellBreaks);
      assert.ok(
        counts.every((c) => c === counts[0]),
        `a row has extra cells:\n${table.join("\n")}`,
      );
    }
    table = [];
  };
  for (const line of lines) {
    if (line.startsWith("|")) table.push(line);
    else check();
  }
  check();
}

/** Nothing the hostile name carried is live Markdown or HTML. */
function assertInert(markdown: string) {
  assertTablesIntact(markdown);
  for (const raw of ["<script>", "**b**", "_c_", "`d`", "~e~", "$f$"]) {
    assert.ok(!markdown.includes(raw), `raw ${raw} in:\n${markdown}`);
  }
  for (const live of [/(^|[^\\])<img/m, /(^|[^\\])\]\(http/m]) {
    assert.doesNotMatch(markdown, live);
  }
  // The line break inside the name made no new heading or line of its own.
  assert.ok(!/^# h/m.test(markdown), "the name started a heading of its own");
}

Deno.test("escaping leaves ordinary text as it is and makes special characters literal", () => {
  for (
    const plain of ["mnist-mlp", "my_model_v2", "x86_64", "Intel(R) Xeon(R) 2.20GHz", "[0.9–1.1]"]
  ) {
    assert.equal(escapeMarkdown(plain), plain);
  }
  assert.equal(escapeMarkdown("a|b"), "a\\|b");
  assert.equal(escapeMarkdown("<b>&"), "\\<b\\>\\&");
  assert.equal(escapeMarkdown("[x](y)"), "[x\\](y)");
  assert.equal(escapeMarkdown("_x_ a_b"), "\\_x\\_ a_b");
  assert.equal(escapeMarkdown("a\nb\u0007"), "a b\\\\u0007");
  assert.equal(escapeMarkdownText("use `--quick` on <b>"), "use `--quick` on \\<b\\>");
  assert.equal(escapeMarkdownText("a`b"), "a\\`b");
  assert.equal(escapeMarkdown("`d`"), "\\`d\\`");
});

Deno.test("report.md: a hostile workload name stays text in headings, cells and bullets", () => {
  const markdown = renderMarkdown(hostileResults(), { allreduce: ALLREDUCE_FIXTURE });
  assertInert(markdown);
  assert.match(markdown, /^## evil\\\|name \\<script\\>alert\(1\)\\<\/script\\> /m);
  assert.match(markdown, /Machine: CPU \\<img src=x onerror=alert\(1\)\\> \\\| 8 cores/);
  // Its cells are there, escaped, in the answer table and the matrix's recommendations.
  assert.match(markdown, /^\| evil\\\|name /m);
  assert.match(markdown, /^- .*evil\\\|name/m);
});

Deno.test("gate, compare and noise tables keep a hostile workload name in its cell", () => {
  const a = hostileResults();
  const b = hostileResults();
  b.runs.forEach((r) => r.samplesPerSec *= 0.5);
  b.env.cpuModel = "Other <img src=y> CPU";
  b.config.quick = true;
  for (
    const markdown of [
      renderGateTable(gate(a, b)),
      renderCompareMarkdown(compareResults(a, b), { labels: ["A|<x>", "B"] }),
      renderNoiseMarkdown(measureNoise([a, b])),
    ]
  ) {
    assertInert(markdown);
    assert.match(markdown, /evil\\\|name/);
  }
  // The gate's own notes keep their code spans around the escaped names.
  const notes = renderGateTable(gate(a, b));
  assert.match(notes, /current on Other \\<img src=y\\> CPU/);
  assert.match(notes, /used the `--quick` preset/);
});

Deno.test("machines side by side and the history keep a hostile workload name in its cell", () => {
  const a = hostileResults();
  const b = hostileResults();
  b.env.cpuModel = "Other <img src=y> CPU";
  b.env.startedAt = new Date(Date.parse(a.env.startedAt) + 60_000).toISOString();
  const set = [{ source: "a.json", results: a }, { source: "b.json", results: b }];
  for (
    const markdown of [
      renderMachinesMarkdown(compareMachines(set)),
      renderHistoryMarkdown(buildHistory(set)),
    ]
  ) {
    assertInert(markdown);
    assert.match(markdown, /evil\\\|name/);
  }
});

Deno.test("allreduce.md keeps a transport read from a hand-edited file in its cell", () => {
  const result = structuredClone(ALLREDUCE_FIXTURE);
  (result.raw as { transport: string }).transport = "tcp|<b>x</b>";
  result.rows.forEach((r) => (r as { transport: string }).transport = "tcp|<b>x</b>");
  const markdown = renderAllreduceMarkdown(result);
  assertTablesIntact(markdown);
  assert.ok(!markdown.includes("<b>"), markdown);
  assert.match(markdown, /Raw tcp\\\|\\<b\\>x\\<\/b\\> socket/);
});
