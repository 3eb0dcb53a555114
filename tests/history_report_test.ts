/**
 * A history over commits (`report --history DIR`): points ordered by the commit's date (older
 * files by when their bench started, said so), samples/s and speedup with intervals per
 * workload and run, the gate's regressions between neighbours marked; an offline page with a
 * chart per workload, and Markdown.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { buildHistory, regressionsAt } from "../analysis/history.ts";
import type { Results } from "../analysis/results.ts";
import {
  historyChart,
  renderHistoryHtml,
  renderHistoryMarkdown,
} from "../reports/history_report.ts";
import { chromiumPath, screenshotReport } from "../reports/screenshot_report.ts";
import { makeMachineResults, type RunShape } from "./_results_fixture.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

/** mnist-cnn's single and ddp-2 at one commit, ddp-2's speedup and interval as given. */
function commit(
  sha: string,
  date: string | undefined,
  startedAt: string,
  ddp: [number, number, number],
): Results {
  const shapes: RunShape[] = [
    { workload: "mnist-cnn", strategy: "single" },
    {
      workload: "mnist-cnn",
      strategy: "ddp",
      speedup: ddp[0],
      interval: [ddp[1], ddp[2]],
      ceiling: 1.9,
    },
  ];
  const results = makeMachineResults("native", shapes);
  results.runs[0].samplesPerSecRepeats = [380, 400, 430];
  results.env.gitCommit = sha.padEnd(40, "0");
  if (date) results.env.gitCommitDate = date;
  results.env.startedAt = startedAt;
  return results;
}

/** Three commits, given out of order; the newest drops ddp-2 well below the one before. */
function threeCommits() {
  return [
    {
      source: "c.json",
      results: commit("ccccccc", "2026-03-03T10:00:00+00:00", "2026-03-09T00:00:00Z", [
        1.2,
        1.1,
        1.3,
      ]),
    },
    {
      source: "a.json",
      results: commit("aaaaaaa", "2026-03-01T10:00:00+00:00", "2026-03-08T00:00:00Z", [
        1.8,
        1.7,
        1.9,
      ]),
    },
    {
      source: "b.json",
      results: commit("bbbbbbb", "2026-03-02T10:00:00+00:00", "2026-03-07T00:00:00Z", [
        1.85,
        1.75,
        1.95,
      ]),
    },
  ];
}

Deno.test("points are ordered by their commit's date, not by when their bench ran", () => {
  const history = buildHistory(threeCommits());
  assert.deepEqual(history.points.map((p) => p.id), ["aaaaaaa", "bbbbbbb", "ccccccc"]);
  assert.ok(history.points.every((p) => p.dateFrom === "commit"));
  assert.deepEqual(history.notes, ["Points are ordered by their commit's date (committer date)."]);
});

Deno.test("older files without a commit date are placed by bench start, and the report says so", () => {
  const set = threeCommits();
  delete set[2].results.env.gitCommitDate; // bbbbbbb, started 2026-03-07
  const history = buildHistory(set);
  assert.deepEqual(history.points.map((p) => p.id), ["aaaaaaa", "ccccccc", "bbbbbbb"]);
  assert.equal(history.points[2].dateFrom, "bench start");
  assert.match(
    history.notes[0],
    /bbbbbbb record none \(written before `gitCommitDate`\) and are placed by when their bench started/,
  );
  // A file of a commit another file dates is dated by it.
  const again = threeCommits();
  delete again[2].results.env.gitCommitDate;
  again.push({
    source: "b2.json",
    results: commit("bbbbbbb", "2026-03-02T10:00:00+00:00", "2026-03-10T00:00:00Z", [
      1.8,
      1.7,
      1.9,
    ]),
  });
  const dated = buildHistory(again);
  assert.deepEqual(dated.points.map((p) => p.id), ["aaaaaaa", "bbbbbbb", "bbbbbbb (2)", "ccccccc"]);
  assert.ok(dated.points.every((p) => p.dateFrom === "commit"));
});

Deno.test("the gate runs between neighbours: the drop is a regression, the steady step is not", () => {
  const history = buildHistory(threeCommits());
  assert.equal(history.steps[0], null);
  assert.equal(history.steps[1]!.gate!.regressions.length, 0);
  const regressed = regressionsAt(history, { point: 2, workload: "mnist-cnn", run: "ddp-2" });
  assert.deepEqual([...new Set(regressed.map((c) => c.metric))].sort(), [
    "efficiency",
    "efficiencyVsCeiling",
    "speedup",
  ]);
  // Speedup and efficiency carry intervals: compared by them; the ceiling ratio by its median.
  assert.deepEqual(regressed.map((c) => c.by), ["interval", "interval", "median"]);
  // A laxer tolerance lets the same drop pass.
  assert.equal(
    buildHistory(threeCommits(), { tolerance: 0.5 }).steps[2]!.gate!.regressions.length,
    0,
  );
});

Deno.test("a point on another backend is not compared with its neighbour, and the report names it", () => {
  const set = threeCommits();
  set[0].results.env.backend = "wasm"; // ccccccc, the newest
  const history = buildHistory(set);
  assert.equal(history.steps[2]!.gate, null);
  assert.match(
    history.steps[2]!.notCompared!,
    /the baseline ran on backend native, the current on wasm/,
  );
  const md = renderHistoryMarkdown(history);
  assert.match(
    md,
    /- bbbbbbb → ccccccc: not compared — Not comparable: the baseline ran on backend native/,
  );
  assert.match(md, /The points ran on 2 machines or backends/);
});

Deno.test("the history report: regressions first, a row per commit with samples/s and speedup intervals", async () => {
  const history = buildHistory(threeCommits());
  const md = renderHistoryMarkdown(history);
  const headings = md.split("\n").filter((l) => l.startsWith("## "));
  assert.deepEqual(headings, ["## Regressions", "## Points", "## mnist-cnn"]);
  assert.match(
    md,
    /- bbbbbbb → ccccccc: ▼ ddp-2 on mnist-cnn: speedup \[1\.750x–1\.950x\] → \[1\.100x–1\.300x\]/,
  );
  assert.match(
    md,
    /\| point +\| date +\| single samples\/s \| ddp-2 samples\/s \| +ddp-2 speedup \| gate vs the point before +\|/,
  );
  assert.match(
    md,
    /\| \*\*aaaaaaa\*\* \| 2026-03-01 \| +400 \[380–430\] \| +720 \| +1\.80x \[1\.70–1\.90\] \| first point +\|/,
  );
  assert.match(
    md,
    /\| \*\*bbbbbbb\*\* \| 2026-03-02 \|.*\| +1\.85x \[1\.75–1\.95\] \| pass \(4 checks\) +\|/,
  );
  assert.match(
    md,
    /\| \*\*ccccccc\*\* \| 2026-03-03 \|.*\| 1\.20x \[1\.10–1\.30\] ▼ \| ▼ ddp-2 speedup, ddp-2 efficiency, ddp-2 efficiencyVsCeiling \|/,
  );
  const html = await renderHistoryHtml(history);
  assert.equal(
    [...html.matchAll(/<svg id="chart-history-\d+"/g)].length,
    1,
    "a chart per workload",
  );
  assert.match(html, /<td class="r regressed">1\.20x \[1\.10–1\.30\] ▼<\/td>/);
  assert.doesNotMatch(html, /<script|<link|<img|https?:\/\//);
  const spec = historyChart(history, "mnist-cnn") as unknown as {
    data: { values: { point: string; measure: string; regressed: boolean }[] };
  };
  assert.deepEqual(
    spec.data.values.filter((v) => v.regressed).map((v) => `${v.point} ${v.measure}`),
    ["ccccccc speedup over single (×)"],
  );
});

async function cli(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("report --history DIR writes the trend page and its Markdown; bad input writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  const history = join(dir, "history");
  await Deno.mkdir(history);
  for (const { source, results } of threeCommits()) {
    await Deno.mkdir(join(history, source.replace(".json", "")));
    await Deno.writeTextFile(
      join(history, source.replace(".json", ""), "results.json"),
      JSON.stringify(results),
    );
  }
  const out = join(dir, "out");
  const r = await cli("report", "--history", history, "--out", out, "--tolerance", "0.1");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Wrote .*report\.md, .*report\.html$/m);
  assert.match(
    await Deno.readTextFile(join(out, "report.md")),
    /# paratrain: history over commits/,
  );
  assert.match(await Deno.readTextFile(join(out, "report.html")), /<svg id="chart-history-1"/);
  const nothing = join(dir, "nothing");
  for (
    const [args, message] of [
      [["--history", join(dir, "missing")], /^paratrain: Cannot read .*missing: No such file/],
      [["--history", out], /^paratrain: No results in /],
      [["--history", history, "--tolerance", "1.5"], /^paratrain: Invalid --tolerance "1\.5"/],
    ] as [string[], RegExp][]
  ) {
    const bad = await cli("report", ...args, "--out", nothing);
    assert.equal(bad.code, 2, bad.stderr);
    assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    assert.match(bad.stderr, message);
    assert.ok(!existsSync(nothing));
  }
  await Deno.remove(dir, { recursive: true });
});

const skipBrowser = !existsSync(chromiumPath());
if (skipBrowser) console.error(`skipped the history page in Chromium: no ${chromiumPath()}`);

Deno.test({
  name: "the history page opens offline in Chromium with a chart per workload drawn",
  ignore: skipBrowser,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await Deno.writeTextFile(
      join(dir, "report.html"),
      await renderHistoryHtml(buildHistory(threeCommits())),
    );
    const check = await screenshotReport(join(dir, "report.html"), join(dir, "report.png"));
    assert.deepEqual(check.consoleErrors, []);
    assert.deepEqual(check.externalRequests, []);
    assert.deepEqual(check.charts.map((c) => c.id), ["chart-history-1"]);
    assert.ok(check.charts[0].marks > 0);
    await Deno.remove(dir, { recursive: true });
  },
});
