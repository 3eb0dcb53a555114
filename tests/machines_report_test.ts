/**
 * Machines side by side (`report --in A --in B …`): machines labelled from their environment,
 * each machine's verdict and best single process per workload, a line per machine in the
 * chart, what does not overlap named; bad input exits 2 and writes nothing.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { compareMachines, shortCpu } from "../analysis/machines.ts";
import type { Results } from "../analysis/results.ts";
import {
  machinesChart,
  renderMachinesHtml,
  renderMachinesMarkdown,
} from "../reports/machines_report.ts";
import { chromiumPath, screenshotReport } from "../reports/screenshot_report.ts";
import { FULL_SHAPES, makeMachineResults } from "./_results_fixture.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

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

/** A 64-core native machine and this 8-CPU wasm one, the wasm one with a workload of its own. */
function twoMachines(): [Results, Results] {
  const native = makeMachineResults("native");
  const wasm = makeMachineResults("wasm", [
    ...FULL_SHAPES,
    { workload: "tiny", strategy: "single" },
    { workload: "tiny", strategy: "ddp", speedup: 0.5 },
  ]);
  wasm.config.quick = true;
  wasm.config.repeats = 1;
  return [native, wasm];
}

const sourced = (pair: Results[]) => pair.map((results, i) => ({ source: `m${i}.json`, results }));

Deno.test("machines are labelled from their environment; what differs and what does not overlap is named", () => {
  const comparison = compareMachines(sourced(twoMachines()));
  const [a, b] = comparison.machines;
  assert.equal(a.label, "A: Intel Xeon Platinum 8375C @ 2.90GHz, 64 CPUs, native");
  assert.equal(b.label, "B: Test, 8 CPUs, wasm");
  assert.match(
    a.compute,
    /^native: OpenBLAS 0\.3\.21 \(pthread, Cooperlake kernels\), 1 thread per worker$/,
  );
  assert.equal(a.provisional, null);
  assert.match(b.provisional!, /^wasm: compute several times slower/);
  assert.deepEqual(comparison.shared, ["mnist-cnn", "iris-logreg"]);
  assert.deepEqual(comparison.unshared, [{ workload: "tiny", machine: "B" }]);
  assert.deepEqual(comparison.differences, ["preset: A default, B --quick", "repeats: A 3, B 1"]);
  assert.equal(shortCpu("AMD Ryzen 9 7950X 16-Core Processor"), "AMD Ryzen 9 7950X");
});

Deno.test("the side-by-side report: each machine's verdict and best single process, runs side by side", () => {
  const md = renderMachinesMarkdown(compareMachines(sourced(twoMachines())));
  assert.ok(
    md.startsWith("# paratrain: machines side by side\n\n> **Provisional verdicts on B** — wasm:"),
  );
  assert.match(
    md,
    /\| mnist-cnn +\| \*\*A\*\* +\| choose +\| ddp-4 +\| +ddp-4 2\.90x \| single, 160\.0 ms\/step/,
  );
  assert.match(md, /\| mnist-cnn +\| \*\*B\*\* +\| choose \(provisional\) +\| ddp-4 /);
  assert.match(md, /\| iris-logreg +\| \*\*A\*\* +\| keep single +\| single +\|/);
  assert.match(md, /- Settings that differ .*: preset: A default, B --quick; repeats: A 3, B 1\./);
  assert.match(md, /- tiny: run on B only, so not set side by side/);
  assert.doesNotMatch(md, /## tiny/, "a workload of one machine is named, not compared");
  assert.match(
    md,
    /\| run +\| A samples\/s \| A vs its best single \| B samples\/s \| B vs its best single \|/,
  );
  assert.match(md, /\| ddp-2 +\| +720 \| +1\.80x \| +720 \| +1\.80x \|/);
  // Every machine's row: CPU, cores, compute; the provisional one says so.
  assert.match(
    md,
    /\| \*\*B\*\* +\| Test +\| +8 \| linux x86_64 \| wasm: XNNPACK \+ SIMD, 1 thread per worker \(verdicts provisional\)/,
  );
});

Deno.test("the chart draws a line per machine and strategy, from N=1, with intervals", async () => {
  const [native, wasm] = twoMachines();
  wasm.runs.filter((r) => r.workload === "mnist-cnn" && r.strategy === "ddp" && r.worldSize === 2)
    .forEach((r) => {
      r.speedupVsBestSingle = 1.5;
      r.speedupVsBestSingleInterval = { low: 1.3, high: 1.7, level: 0.75 };
    });
  const comparison = compareMachines(sourced([native, wasm]));
  const spec = machinesChart(comparison) as unknown as {
    data: {
      values: {
        machine: string;
        series: string;
        worldSize: number;
        speedup: number;
        low: number;
        high: number;
        workload: string;
      }[];
    };
  };
  const values = spec.data.values;
  const series = new Set(values.map((v) => v.series));
  assert.deepEqual([...series].sort(), ["A ddp", "A dp", "B ddp", "B dp"]);
  assert.deepEqual(
    [...new Set(values.map((v) => v.machine))],
    comparison.machines.map((m) => m.label),
  );
  const b2 = values.find((v) =>
    v.series === "B ddp" && v.worldSize === 2 && v.workload === "mnist-cnn"
  )!;
  assert.deepEqual([b2.speedup, b2.low, b2.high], [1.5, 1.3, 1.7]);
  assert.ok(values.some((v) => v.worldSize === 1 && v.speedup === 1), "lines start at single");
  const html = await renderMachinesHtml(comparison);
  assert.match(html, /<svg id="chart-machines"/);
  assert.doesNotMatch(html, /<script|<link|<img|https?:\/\//);
});

Deno.test("report --in A --in B writes the side-by-side report; --in DIR reads a folder of results", async () => {
  const dir = await Deno.makeTempDir();
  const [native, wasm] = twoMachines();
  await Deno.mkdir(join(dir, "in", "box-a"), { recursive: true });
  await Deno.mkdir(join(dir, "in", "box-b"), { recursive: true });
  await Deno.writeTextFile(join(dir, "in", "box-a", "results.json"), JSON.stringify(native));
  await Deno.writeTextFile(join(dir, "in", "box-b", "results.json"), JSON.stringify(wasm));
  // bench's own companion file beside results is skipped, not an error.
  await Deno.writeTextFile(
    join(dir, "in", "box-a", "allreduce.json"),
    JSON.stringify({ schema: "paratrain/allreduce@1" }),
  );
  const a = join(dir, "in", "box-a", "results.json");
  const b = join(dir, "in", "box-b", "results.json");
  const files = await cli("report", "--in", a, "--in", b, "--out", join(dir, "files"));
  assert.equal(files.code, 0, files.stderr);
  const md = await Deno.readTextFile(join(dir, "files", "report.md"));
  assert.match(md, /# paratrain: machines side by side/);
  assert.ok(md.includes(`A: \`${a}\``));
  assert.ok(existsSync(join(dir, "files", "report.html")));
  assert.ok(!existsSync(join(dir, "files", "results.json")), "no results file of its own");
  const folder = await cli("report", "--in", join(dir, "in"), "--out", join(dir, "folder"));
  assert.equal(folder.code, 0, folder.stderr);
  assert.equal(await Deno.readTextFile(join(dir, "folder", "report.md")), md);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bad input to report exits 2 with one line and writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  const good = join(dir, "good.json");
  await Deno.writeTextFile(good, JSON.stringify(makeMachineResults("native")));
  await Deno.mkdir(join(dir, "empty"));
  await Deno.mkdir(join(dir, "broken"));
  await Deno.writeTextFile(join(dir, "broken", "a.json"), '{"schema": "paratrain/res');
  await Deno.mkdir(join(dir, "mixed"));
  await Deno.writeTextFile(
    join(dir, "mixed", "a.json"),
    JSON.stringify(makeMachineResults("wasm")),
  );
  await Deno.writeTextFile(
    join(dir, "mixed", "b.json"),
    JSON.stringify({ ...makeMachineResults("wasm"), schema: "paratrain/results@2" }),
  );
  const out = join(dir, "out");
  const cases: [string[], RegExp][] = [
    [
      ["--in", good, "--in", join(dir, "missing.json")],
      /^paratrain: Cannot read .*missing\.json: No such file/,
    ],
    [
      ["--in", good, "--in", join(dir, "empty")],
      /^paratrain: No results in .*empty: no \*\.json or \*\/results\.json/,
    ],
    [
      ["--in", good, "--in", join(dir, "broken")],
      /^paratrain: Cannot parse .*a\.json: not valid JSON/,
    ],
    [
      ["--in", join(dir, "mixed")],
      /^paratrain: Cannot mix results schemas: .*b\.json is paratrain\/results@2/,
    ],
    [["--in", good, "--in", good], /^paratrain: .*good\.json is given twice/],
    [
      ["--history", join(dir, "mixed"), "--in", good],
      /^paratrain: --history and --in are two reports/,
    ],
    [[], /^paratrain: report needs --in/],
    [
      ["--in", good, "--in", join(dir, "mixed", "a.json"), "--tolerance", "0.2"],
      /--tolerance applies to --history/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await cli("report", ...args, "--out", out);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, message);
    assert.ok(!existsSync(out), `${args.join(" ")} wrote ${out}`);
  }
  await Deno.remove(dir, { recursive: true });
});

const skipBrowser = !existsSync(chromiumPath());
if (skipBrowser) console.error(`skipped the side-by-side page in Chromium: no ${chromiumPath()}`);

Deno.test({
  name: "the side-by-side page opens offline in Chromium with its chart drawn",
  ignore: skipBrowser,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await Deno.writeTextFile(
      join(dir, "report.html"),
      await renderMachinesHtml(compareMachines(sourced(twoMachines()))),
    );
    const check = await screenshotReport(join(dir, "report.html"), join(dir, "report.png"));
    assert.deepEqual(check.consoleErrors, []);
    assert.deepEqual(check.externalRequests, []);
    assert.deepEqual(check.charts.map((c) => c.id), ["chart-machines"]);
    assert.ok(check.charts[0].marks > 0 && check.charts[0].width > 300);
    await Deno.remove(dir, { recursive: true });
  },
});
