import assert from "node:assert/strict";
import { join } from "node:path";
import { gate } from "../analysis/gate.ts";
import { measureNoise } from "../analysis/noise.ts";
import { renderGateTable } from "../reports/gate_table.ts";
import { compareResults } from "../analysis/compare.ts";
import { renderCompareMarkdown } from "../reports/compare_markdown.ts";
import type { Results } from "../analysis/results.ts";
import { UsageError } from "../core/errors.ts";
import { readResults } from "../analysis/validate_results.ts";
import { FULL_SHAPES, makeResults, type RunShape } from "./_results_fixture.ts";

/** FULL_SHAPES with `change` applied to the run of (workload, strategy, worldSize). */
function variant(
  workload: string,
  strategy: string,
  worldSize: number,
  change: Partial<RunShape>,
): Results {
  return makeResults(
    FULL_SHAPES.map((s) =>
      s.workload === workload && s.strategy === strategy && (s.worldSize ?? 2) === worldSize
        ? { ...s, ...change }
        : s
    ),
  );
}

Deno.test("gate: an equal pair passes and says what it checked", () => {
  const result = gate(makeResults(FULL_SHAPES), makeResults(FULL_SHAPES));
  assert.deepEqual(result.regressions, []);
  // 8 parallel runs × (speedup, efficiency, efficiencyVsCeiling, equivalence).
  assert.equal(result.checked, 32);
  assert.match(
    renderGateTable(result),
    /^Gate passed: 32 checks, no regression \(tolerance 10%\)\./,
  );
  assert.match(renderGateTable(result), /\| ddp-4 +\| mnist-cnn +\| efficiencyVsCeiling +\|/);
});

Deno.test("gate: a 30% speedup drop fails, naming the run and by how much", () => {
  const current = variant("mnist-cnn", "ddp", 2, { speedup: 1.8 * 0.7 });
  const result = gate(makeResults(FULL_SHAPES), current);
  const names = result.regressions.map((c) =>
    `${c.workload} ${c.strategy}-${c.worldSize} ${c.metric}`
  );
  assert.deepEqual(names, [
    "mnist-cnn ddp-2 speedup",
    "mnist-cnn ddp-2 efficiency",
    "mnist-cnn ddp-2 efficiencyVsCeiling",
  ]);
  assert.match(renderGateTable(result), /^Gate failed: 3 of 32 checks regressed/);
  assert.match(
    renderGateTable(result),
    /- ddp-2 on mnist-cnn: speedup 1\.800x → 1\.260x \(−30\.0%, allowed −10\.0%\)/,
  );
  assert.match(renderGateTable(result), /REGRESSED/);
});

Deno.test("gate: drops within the tolerance pass; the tolerance is adjustable", () => {
  const current = variant("mnist-cnn", "ddp", 2, { speedup: 1.8 * 0.95 });
  assert.equal(gate(makeResults(FULL_SHAPES), current).regressions.length, 0);
  assert.equal(gate(makeResults(FULL_SHAPES), current, { tolerance: 0.01 }).regressions.length, 3);
  assert.throws(() => gate(makeResults(FULL_SHAPES), current, { tolerance: 1.5 }), UsageError);
});

Deno.test("gate: the equivalence diff is held to an absolute bound, not the baseline", () => {
  const baseline = variant("iris-logreg", "dp", 2, { paramDiff: 1e-9 });
  const current = variant("iris-logreg", "dp", 2, { paramDiff: 5e-5 });
  assert.equal(gate(baseline, current).regressions.length, 0, "50000x larger but under 1e-4");
  const diverged = variant("iris-logreg", "dp", 2, { paramDiff: 3e-3 });
  const [regression] = gate(baseline, diverged).regressions;
  assert.equal(regression.metric, "paramMaxAbsDiffVsSingle");
  assert.match(
    renderGateTable(gate(baseline, diverged)),
    /dp-2 on iris-logreg: .* 3\.0e-3 exceeds the bound 1\.0e-4/,
  );
});

Deno.test("gate: a different machine is noted, not failed (ratios survive the move)", () => {
  const current = makeResults(FULL_SHAPES);
  current.env.cpuModel = "Other CPU";
  current.runs = current.runs.map((r) => ({ ...r, samplesPerSec: r.samplesPerSec * 3 }));
  const result = gate(makeResults(FULL_SHAPES), current);
  assert.equal(result.regressions.length, 0);
  assert.match(renderGateTable(result), /> Baseline ran on Test CPU.*current on Other CPU/);
});

Deno.test("gate: a baseline of another backend is not comparable (exit 2), not a regression", () => {
  const current = makeResults(FULL_SHAPES);
  current.env.backend = "native";
  assert.throws(
    () => gate(makeResults(FULL_SHAPES), current),
    (e) =>
      e instanceof UsageError &&
      /Not comparable: the baseline ran on backend wasm, the current on native/.test(e.message),
  );
});

Deno.test("gate: results of other DDP knobs are not comparable, naming the flag", () => {
  const cases = [
    ["accumulate", 4, /ran with --accumulate 1, the current with 4/],
    ["scaling", "weak", /ran with --scaling strong, the current with weak/],
    ["gradCompression", "fp16", /ran with --grad-compression none, the current with fp16/],
  ] as const;
  for (const [key, value, message] of cases) {
    const current = makeResults(FULL_SHAPES);
    (current.config as unknown as Record<string, unknown>)[key] = value;
    assert.throws(
      () => gate(makeResults(FULL_SHAPES), current),
      (e) => e instanceof UsageError && message.test(e.message),
    );
  }
});

Deno.test("gate: a compressed run is held to its own equivalence bound", () => {
  const base = makeResults(FULL_SHAPES);
  const current = makeResults(FULL_SHAPES);
  for (const results of [base, current]) {
    for (const r of results.runs.filter((r) => r.strategy !== "single")) {
      r.paramMaxAbsDiffVsSingle = 4e-3;
      r.equivalenceBoundUsed = 1e-2;
    }
  }
  const result = gate(base, current);
  const equivalence = result.checks.filter((c) => c.metric === "paramMaxAbsDiffVsSingle");
  assert.ok(equivalence.length > 0 && equivalence.every((c) => !c.regressed && c.limit === 1e-2));
});

Deno.test("gate: incompatible inputs are usage errors naming the problem", async () => {
  const other = makeResults(FULL_SHAPES);
  (other as { schema: string }).schema = "paratrain/results@2";
  assert.throws(
    () => gate(makeResults(FULL_SHAPES), other),
    (e) =>
      e instanceof UsageError && /current results: schema "paratrain\/results@2"/.test(e.message),
  );
  const elsewhere = makeResults(FULL_SHAPES.map((s) => ({ ...s, workload: `${s.workload}-x` })));
  assert.throws(
    () => gate(makeResults(FULL_SHAPES), elsewhere),
    (e) => e instanceof UsageError && /No common runs between the baseline/.test(e.message),
  );
  const singles = makeResults(FULL_SHAPES.filter((s) => s.strategy === "single"));
  assert.throws(() => gate(singles, makeResults(FULL_SHAPES)), /share only single's runs/);

  const dir = await Deno.makeTempDir();
  const text = JSON.stringify(makeResults(FULL_SHAPES));
  await Deno.writeTextFile(join(dir, "truncated.json"), text.slice(0, text.length / 2));
  await assert.rejects(readResults(join(dir, "truncated.json")), UsageError);
  await Deno.writeTextFile(join(dir, "v2.json"), JSON.stringify(other));
  await assert.rejects(
    readResults(join(dir, "v2.json")),
    /Invalid results in .*v2\.json: \/schema/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("compare: shared runs with both files' figures and B/A", () => {
  const b = variant("mnist-cnn", "ddp", 2, { speedup: 0.9 });
  b.runs = b.runs.filter((r) => r.workload === "mnist-cnn");
  const rows = compareResults(makeResults(FULL_SHAPES), b);
  assert.deepEqual(rows.map((r) => `${r.strategy}-${r.worldSize}`), [
    "single-1",
    "dp-2",
    "dp-4",
    "ddp-2",
    "ddp-4",
  ]);
  const ddp2 = rows[3];
  assert.equal(ddp2.a.speedup, 1.8);
  assert.equal(ddp2.ratio.speedup, 0.5);
  assert.equal(rows[0].ratio.efficiencyVsCeiling, null);
  const md = renderCompareMarkdown(rows, { labels: ["main", "branch"] });
  assert.match(
    md,
    /\| workload +\| run +\| samples\/s main \| samples\/s branch \| branch\/main \|/,
  );
  assert.match(md, /\| mnist-cnn +\| ddp-2 +\| +720 \| +360 \| +0\.50 \| +1\.80x \| +0\.90x \|/);
  assert.throws(
    () =>
      compareResults(
        makeResults(FULL_SHAPES),
        makeResults([{ workload: "z", strategy: "single" }]),
      ),
    /No common runs/,
  );
});

Deno.test("gate: a run missing from the current results fails, naming it", () => {
  const current = makeResults(FULL_SHAPES);
  current.runs = current.runs.filter((r) => !(r.workload === "mnist-cnn" && r.strategy === "dp"));
  const result = gate(makeResults(FULL_SHAPES), current);
  const missing = result.regressions.filter((c) => c.missing).map((c) =>
    `${c.workload} ${c.strategy}-${c.worldSize} ${c.metric}`
  );
  assert.deepEqual(missing, ["mnist-cnn dp-2 run", "mnist-cnn dp-4 run"]);
  assert.match(renderGateTable(result), /^Gate failed: 2 of \d+ checks regressed or are missing/);
  assert.match(
    renderGateTable(result),
    /- dp-2 on mnist-cnn: the run is missing from the current results/,
  );
  const allowed = gate(makeResults(FULL_SHAPES), current, { allowMissing: true });
  assert.deepEqual(allowed.regressions, []);
  assert.match(
    renderGateTable(allowed),
    /> Missing from the current results \(allowed by --allow-missing\): dp-2 on mnist-cnn; dp-4 on mnist-cnn\./,
  );
});

Deno.test("gate: a gated figure that became null fails, naming the figure", () => {
  const current = makeResults(FULL_SHAPES);
  const run = current.runs.find((r) => r.workload === "iris-logreg" && r.strategy === "ddp")!;
  run.ceiling = null;
  run.efficiencyVsCeiling = null;
  (run as { paramMaxAbsDiffVsSingle: number | null }).paramMaxAbsDiffVsSingle = null;
  const result = gate(makeResults(FULL_SHAPES), current);
  assert.deepEqual(
    result.regressions.map((c) => `${c.strategy}-${c.worldSize} ${c.metric}`),
    ["ddp-2 efficiencyVsCeiling", "ddp-2 paramMaxAbsDiffVsSingle"],
  );
  assert.match(
    renderGateTable(result),
    /- ddp-2 on iris-logreg: efficiencyVsCeiling is missing from the current results \(baseline/,
  );
});

Deno.test("gate: with intervals over repeats, only a current interval wholly below the baseline's regresses", () => {
  const withInterval = (speedup: number, interval: [number, number]) =>
    makeResults([
      { workload: "mnist-cnn", strategy: "single" },
      { workload: "mnist-cnn", strategy: "ddp", speedup, interval, ceiling: null },
    ]);
  const baseline = withInterval(1.5, [1.4, 1.6]);
  // The median fell by a third, but the intervals still overlap the allowed range: noise.
  const noisy = gate(baseline, withInterval(1.0, [0.9, 1.45]), { tolerance: 0.1 });
  const speedup = noisy.checks.find((c) => c.metric === "speedup")!;
  assert.equal(speedup.by, "interval");
  assert.equal(noisy.regressions.length, 0);
  // A whole interval below 1.4 · 0.9 = 1.26 is a regression, and the table says why.
  const worse = gate(baseline, withInterval(1.0, [0.8, 1.1]), { tolerance: 0.1 });
  assert.deepEqual(worse.regressions.map((c) => c.metric), ["speedup", "efficiency"]);
  assert.match(
    renderGateTable(worse),
    /ddp-2 on mnist-cnn: speedup \[1\.400x–1\.600x\] → \[0\.800x–1\.100x\]: the whole current interval lies below 1\.260x/,
  );
  // Files without intervals (one repeat, or older files) are compared by their medians.
  const plain = gate(makeResults(FULL_SHAPES), makeResults(FULL_SHAPES));
  assert.ok(plain.checks.filter((c) => c.by).every((c) => c.by === "median"));
});

Deno.test("noise reports the worst interval drop when every file carries intervals", () => {
  const run = (interval: [number, number]) =>
    makeResults([
      { workload: "w", strategy: "single" },
      { workload: "w", strategy: "ddp", speedup: (interval[0] + interval[1]) / 2, interval },
    ]);
  const rows = measureNoise([run([1.0, 1.2]), run([0.9, 1.1]), run([1.1, 1.3])]);
  const speedup = rows.find((r) => r.metric === "speedup")!;
  // Every interval reaches the others' low ends: no tolerance is needed (1 − 1.1 / 1.1 = 0).
  assert.ok(Math.abs(speedup.worstIntervalDrop! - 0) < 1e-12, String(speedup.worstIntervalDrop));
  const apart = measureNoise([run([1.0, 1.1]), run([0.7, 0.8])]);
  assert.ok(Math.abs(apart[0].worstIntervalDrop! - 0.2) < 1e-12);
});
