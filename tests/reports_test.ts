import { assertRerendersIdentically } from "./_rerender.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { runBench } from "../bench/run_bench.ts";
import { buildResults } from "../analysis/build_results.ts";
import type { Results } from "../analysis/results.ts";
import { readResults, validateResults } from "../analysis/validate_results.ts";
import { writeReports } from "../reports/write_reports.ts";
import { UsageError } from "../core/errors.ts";

let cached: Results | undefined;
async function quickResults(): Promise<Results> {
  cached ??= buildResults(
    await runBench({
      workloads: ["iris-logreg", "synthetic-mlp"],
      strategies: ["single"],
      worldSizes: [2],
      quick: true,
    }),
  );
  return structuredClone(cached);
}

Deno.test("a quick bench produces schema-valid results with one run per workload", async () => {
  const results = await quickResults();
  validateResults(JSON.parse(JSON.stringify(results)), "test");
  assert.deepEqual(results.runs.map((r) => r.workload), ["iris-logreg", "synthetic-mlp"]);
  for (const run of results.runs) {
    assert.ok(run.samplesPerSec > 0);
    assert.ok(Number.isFinite(run.finalLoss));
    assert.ok(run.accuracy >= 0 && run.accuracy <= 1);
    assert.ok(run.memory.workers[0].peakBytes > 0);
    assert.equal(run.speedup, 1);
    assert.equal(run.paramMaxAbsDiffVsSingle, 0);
    assert.ok(run.compute.peakGflops > 0);
  }
  assert.equal(results.env.backend, "wasm");
  assert.ok(results.env.logicalCpus >= 1);
});

Deno.test("report re-renders results.json, report.md and report.html byte for byte", async () => {
  const dir = await Deno.makeTempDir();
  await writeReports(await quickResults(), dir);
  await assertRerendersIdentically(dir);
  const report = await Deno.readTextFile(join(dir, "report.md"));
  assert.match(report, /## iris-logreg/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("schema validation rejects malformed results, naming the problem", async () => {
  const good = await quickResults();
  const cases: [string, (r: Record<string, unknown>) => void, RegExp][] = [
    ["wrong schema version", (r) => r.schema = "paratrain/results@2", /\/schema/],
    ["missing runs", (r) => delete r.runs, /runs/],
    [
      "negative throughput",
      (r) => (r.runs as Record<string, unknown>[])[0].samplesPerSec = -1,
      /samplesPerSec/,
    ],
    [
      "accuracy above 1",
      (r) => (r.runs as Record<string, unknown>[])[0].accuracy = 1.5,
      /accuracy/,
    ],
    ["unknown role", (r) => {
      const run = (r.runs as { memory: { workers: { role: string }[] } }[])[0];
      run.memory.workers[0].role = "boss";
    }, /role/],
  ];
  for (const [name, mutate, message] of cases) {
    const bad = JSON.parse(JSON.stringify(good));
    mutate(bad);
    assert.throws(() => validateResults(bad, "bad.json"), (e: Error) => {
      assert.ok(e instanceof UsageError, name);
      assert.match(e.message, message, name);
      return true;
    });
  }
});

Deno.test("a truncated results.json is refused with a one-line error", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "results.json");
  await Deno.writeTextFile(path, JSON.stringify(await quickResults()).slice(0, 200));
  await assert.rejects(readResults(path), /Cannot parse .*not valid JSON/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writing invalid results leaves the existing reports untouched", async () => {
  const dir = await Deno.makeTempDir();
  const good = await quickResults();
  await writeReports(good, dir);
  const before = await Deno.readTextFile(join(dir, "report.md"));
  const bad = { ...good, runs: [{ ...good.runs[0], accuracy: 7 }] };
  await assert.rejects(writeReports(bad, dir), /Invalid results/);
  assert.equal(await Deno.readTextFile(join(dir, "report.md")), before);
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
    "report.html",
    "report.md",
    "results.json",
  ]);
  await Deno.remove(dir, { recursive: true });
});
