import { assertRerendersIdentically } from "./_rerender.ts";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { renderHtml } from "../reports/html.ts";
import { buildMatrix } from "../analysis/matrix.ts";
import {
  CHROMIUM_ENV,
  CHROMIUM_INSTALL,
  chromiumPath,
  screenshotReport,
} from "../reports/screenshot_report.ts";
import { writeReports } from "../reports/write_reports.ts";
import { ALLREDUCE_FIXTURE, FULL_SHAPES, makeResults } from "./_results_fixture.ts";

/** The first bytes of every PNG file. */
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47];

function fullResults() {
  const results = makeResults(FULL_SHAPES);
  results.matrix = buildMatrix(results);
  return results;
}

Deno.test("report.html is self-contained: inline SVG charts, no script, no external URL", async () => {
  const html = await renderHtml(fullResults(), { allreduce: ALLREDUCE_FIXTURE });
  assert.match(html, /^<!doctype html>\n<html lang="en">/);
  assert.deepEqual(
    [...html.matchAll(/<svg id="(chart-[a-z]+)"/g)].map((m) => m[1]),
    ["chart-throughput", "chart-efficiency", "chart-memory", "chart-phases", "chart-allreduce"],
  );
  assert.doesNotMatch(html, /https?:\/\//, "no URL of any kind, namespaces included");
  assert.doesNotMatch(html, /<script|<link|<img|<iframe|\ssrc=/i);
  assert.match(html, /<table class="matrix">/);
  assert.match(html, /<h2>All-reduce/);
  const ids = [...html.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]);
  assert.equal(new Set(ids).size, ids.length, "ids are unique across the charts");
});

Deno.test("report.html renders identically twice, and in Chinese with --lang zh", async () => {
  const results = fullResults();
  const once = await renderHtml(results, { allreduce: ALLREDUCE_FIXTURE });
  assert.equal(await renderHtml(results, { allreduce: ALLREDUCE_FIXTURE }), once);
  const zh = await renderHtml(results, { lang: "zh" });
  assert.match(zh, /<html lang="zh">/);
  for (const word of ["适用场景", "显存占用", "并行效率", "实现复杂度", "扩展性", "选择建议"]) {
    assert.ok(zh.includes(word), `missing ${word}`);
  }
  assert.doesNotMatch(zh, /chart-allreduce/, "no all-reduce chart without its data");
});

Deno.test("report re-renders report.html from results.json byte for byte", async () => {
  const dir = await Deno.makeTempDir();
  await writeReports(fullResults(), dir);
  await assertRerendersIdentically(dir);
  await Deno.remove(dir, { recursive: true });
});

/** Set to 1 (as CI does) to make a missing Chromium a failure instead of a skip. */
const REQUIRE_CHROMIUM_ENV = "PARATRAIN_REQUIRE_CHROMIUM";
const BROWSER_TEST = "headless Chromium opens report.html offline: charts drawn, no console error";
const chromium = chromiumPath();
const skipBrowser = !existsSync(chromium) && Deno.env.get(REQUIRE_CHROMIUM_ENV) !== "1";
if (skipBrowser) {
  console.error(
    `skipped "${BROWSER_TEST}": Chromium not found at ${chromium}; to run it, ` +
      `\`${CHROMIUM_INSTALL}\` or set ${CHROMIUM_ENV} to a Chromium binary`,
  );
}

Deno.test({ name: BROWSER_TEST, ignore: skipBrowser }, async () => {
  assert.ok(
    existsSync(chromium),
    `Chromium is not installed at ${chromium}: this test needs it (${REQUIRE_CHROMIUM_ENV}=1); ` +
      `install it with \`${CHROMIUM_INSTALL}\` or set ${CHROMIUM_ENV}`,
  );
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "allreduce.json"), JSON.stringify(ALLREDUCE_FIXTURE));
  await writeReports(fullResults(), dir);
  const png = join(dir, "report.png");
  const first = join(dir, "report-first-screen.png");
  const check = await screenshotReport(join(dir, "report.html"), png, { firstScreenPath: first });
  assert.deepEqual(check.consoleErrors, []);
  assert.deepEqual(check.externalRequests, []);
  assert.deepEqual(check.charts.map((c) => c.id), [
    "chart-throughput",
    "chart-efficiency",
    "chart-memory",
    "chart-phases",
    "chart-allreduce",
  ]);
  for (const chart of check.charts) {
    assert.ok(chart.width > 100 && chart.height > 100, `${chart.id} has no size`);
    assert.ok(chart.marks > 0, `${chart.id} drew no marks`);
  }
  // Memory: one bar per worker of every run (1 + 3 + 5 + 2 + 4 per workload).
  assert.equal(check.charts[2].marks, 30);
  const bytes = await Deno.readFile(png);
  assert.deepEqual([...bytes.slice(0, 4)], PNG_SIGNATURE);
  assert.ok(bytes.length > 50_000, `screenshot is only ${bytes.length} bytes`);
  const firstBytes = await Deno.readFile(first);
  assert.deepEqual([...firstBytes.slice(0, 4)], PNG_SIGNATURE);
  assert.ok(firstBytes.length < bytes.length, "the first screen is a part of the page");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("screenshotReport names the install command when Chromium is missing", async () => {
  await assert.rejects(
    screenshotReport("report.html", "report.png", { executablePath: "/nonexistent/chromium" }),
    new RegExp(
      `Chromium not found at /nonexistent/chromium; install it with .${
        CHROMIUM_INSTALL.replaceAll(/[.*+?^${}()|[\]\\]/g, "\\$&")
      }`,
    ),
  );
});
