/**
 * Link models and the scaling predictor: α and β recovered from all-reduce rows, `--link`
 * parsed, the exposed communication of buckets with and without overlap, predictions up to
 * 1024 ranks with intervals, and `predict` on the command line (prints, writes a valid
 * prediction.json, re-renders the report with the curve; bad input is one line, exit 2).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fitLinkModels, type LinkModel, ringAllReduceUs } from "../bench/link_model.ts";
import { exposedCommMs, parseLink, predict } from "../analysis/predict.ts";
import { validatePrediction } from "../analysis/validate_prediction.ts";
import { UsageError } from "../core/errors.ts";
import { ALLREDUCE_FIXTURE, makeResults } from "./_results_fixture.ts";
import { MAIN } from "./_multihost.ts";

const link = (alphaUs: number, betaGBps: number): LinkModel => ({
  transport: "given",
  worldSize: 0,
  alphaUs,
  betaGBps,
  residual: 0,
});

Deno.test("a ring's α and β are recovered from all-reduce rows, per transport and world size", () => {
  const truth = { 2: link(30, 0.02), 4: link(50, 0.1) } as Record<number, LinkModel>;
  const sizes = [32 << 10, 128 << 10, 1 << 20, 4 << 20];
  const rows = [2, 4].flatMap((n) =>
    sizes.map((bytes) => ({
      transport: "tcp",
      worldSize: n,
      bytes,
      usPerOp: ringAllReduceUs(truth[n], n, bytes),
    }))
  );
  rows.push({ transport: "unix", worldSize: 2, bytes: 4096, usPerOp: 10 }); // one size: no fit
  const models = fitLinkModels(rows);
  assert.equal(models.length, 2);
  for (const m of models) {
    const t = truth[m.worldSize];
    assert.equal(m.transport, "tcp");
    assert.ok(Math.abs(m.alphaUs - t.alphaUs) / t.alphaUs < 1e-6, JSON.stringify(m));
    assert.ok(Math.abs(m.betaGBps - t.betaGBps) / t.betaGBps < 1e-6, JSON.stringify(m));
    assert.ok(m.residual < 1e-9);
  }
  // Noise shows in the residual: every time 10% off, alternately up and down.
  const noisy = fitLinkModels(
    rows.filter((r) => r.worldSize === 2 && r.transport === "tcp")
      .map((r, i) => ({ ...r, usPerOp: r.usPerOp * (i % 2 ? 1.1 : 0.9) })),
  );
  assert.ok(noisy[0].residual > 0.05 && noisy[0].residual < 0.15, String(noisy[0].residual));
});

Deno.test("--link takes a rate as tc spells it and a latency per message", () => {
  assert.deepEqual(parseLink("10gbit,20us"), link(20, 1.25));
  assert.deepEqual(parseLink("200mbit, 0.1ms"), link(100, 0.025));
  for (const bad of ["10gbit", "fast,20us", "10gbps,20us", "0gbit,1us", "1gbit,1week"]) {
    assert.throws(
      () => parseLink(bad),
      (e) => e instanceof UsageError && /RATE,LATENCY/.test(e.message),
    );
  }
});

Deno.test("exposed communication: after compute without overlap, hidden behind the backward with it", () => {
  const slow = link(0, 0.001); // 1 MB/s: 1 ms per kB on the wire
  const step = { n: 2, link: slow, computeMs: 30, bytesPerValue: 4, castNs: 0 };
  // One bucket of 1000 floats over 2 ranks: 2(1)/2 · 4000 bytes at 1 MB/s = 4 ms.
  assert.equal(exposedCommMs({ ...step, buckets: [1000], overlap: false }), 4);
  assert.equal(exposedCommMs({ ...step, buckets: [1000], overlap: true }), 4);
  // Two buckets: the first is ready two thirds into compute and done long before it ends.
  assert.equal(exposedCommMs({ ...step, buckets: [500, 500], overlap: true }), 2);
  assert.equal(exposedCommMs({ ...step, buckets: [500, 500], overlap: false }), 4);
  // A compute tail after the last bucket hides that much of it.
  assert.equal(exposedCommMs({ ...step, buckets: [1000], overlap: true, tailShare: 0.1 }), 1);
  // fp16 halves the bytes and adds its casts: 6 casts of 500 values at 1 ns.
  const fp16 = exposedCommMs({
    ...step,
    buckets: [1000],
    overlap: false,
    bytesPerValue: 2,
    castNs: 1,
  });
  assert.ok(Math.abs(fp16 - (2 + 0.003)) < 1e-9, String(fp16));
  assert.equal(exposedCommMs({ ...step, n: 1, buckets: [1000], overlap: false }), 0);
});

/** mnist-mlp measured single and DDP-2 on one host. */
function results() {
  const r = makeResults([
    { workload: "mnist-mlp", strategy: "single" },
    { workload: "mnist-mlp", strategy: "ddp", worldSize: 2, speedup: 1.4, interval: [1.3, 1.5] },
  ]);
  // Spread over the repeats: ±10% of samples/s.
  r.runs[0].samplesPerSecRepeats = [900, 1000, 1100];
  return r;
}

Deno.test("predictions reach 1024 ranks under weak scaling, strong ones stop at one sample per rank", async () => {
  const predictions = await predict(results(), { given: parseLink("10gbit,20us") });
  const weak = predictions.filter((p) => p.scaling === "weak");
  const strong = predictions.filter((p) => p.scaling === "strong");
  assert.deepEqual(weak.map((p) => p.worldSize), [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]);
  assert.deepEqual(strong.map((p) => p.worldSize), [2, 4, 8, 16, 32, 64]); // global batch 64
  for (const p of predictions) {
    assert.equal(p.hosts, p.worldSize);
    assert.ok(p.interval.low <= p.speedupVsBestSingle && p.speedupVsBestSingle <= p.interval.high);
    assert.ok(p.interval.low < p.interval.high, "the measured spread carries into the interval");
    assert.equal(p.computeFrom, "single");
  }
  // Weak scaling: the ring's time grows with N (α per step) and throughput keeps growing.
  assert.ok(weak[9].commMs > weak[0].commMs);
  assert.ok(weak[9].samplesPerSec > weak[0].samplesPerSec);
  // A slower link: slower steps.
  const slow = await predict(results(), { given: parseLink("100mbit,1ms") }, { worldSizes: [8] });
  assert.ok(slow[0].stepMs > strong[2].stepMs);
});

Deno.test("hosts × ranks per host: compute as the DDP run of that many ranks on one host", async () => {
  const models = [
    { transport: "tcp", worldSize: 2, alphaUs: 100, betaGBps: 0.1, residual: 0.05 },
    { transport: "unix", worldSize: 2, alphaUs: 10, betaGBps: 2, residual: 0.02 },
  ];
  const predictions = await predict(results(), { models }, {
    worldSizes: [2, 8],
    nprocPerNode: 2,
    scaling: "strong",
  });
  const [one, four] = predictions;
  assert.equal(one.hosts, 1);
  assert.equal(one.link.transport, "unix");
  assert.equal(four.hosts, 4);
  assert.equal(four.link.transport, "tcp");
  assert.equal(one.computeFrom, "ceiling of ddp-2"); // that very layout was measured
  // One host, strong scaling: the measured DDP-2 run is that configuration.
  assert.ok(one.measured && one.measured.stepMs > 0);
  await assert.rejects(
    () => predict(results(), { models }, { worldSizes: [6], nprocPerNode: 3 }),
    /No run of mnist-mlp measured 3 processes computing on one host/,
  );
  await assert.rejects(
    () => predict(results(), { models }, { worldSizes: [6], nprocPerNode: 4 }),
    /does not divide into hosts of --nproc-per-node 4/,
  );
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "predict", ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr).trim() };
}

Deno.test("predict: prints the table to 1024 ranks, writes prediction.json, puts the curve in the report", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "results.json");
    await Deno.writeTextFile(file, JSON.stringify(results()));
    const allreduce = {
      ...ALLREDUCE_FIXTURE,
      linkModel: fitLinkModels(ALLREDUCE_FIXTURE.rows.map((r) => ({ ...r, transport: "tcp" }))),
    };
    await Deno.writeTextFile(join(dir, "allreduce.json"), JSON.stringify(allreduce));
    const r = await cli(["--in", file, "--world-sizes", "2,8,64,1024"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\|\s+1024 \|\s+1024 × 1 \| weak/);
    const written = validatePrediction(
      JSON.parse(await Deno.readTextFile(join(dir, "prediction.json"))),
      "prediction.json",
    );
    assert.equal(written.schema, "paratrain/prediction@1");
    assert.ok(written.predictions.some((p) => p.worldSize === 1024));
    const html = await Deno.readTextFile(join(dir, "report.html"));
    assert.match(html, /chart-prediction/);
    assert.match(await Deno.readTextFile(join(dir, "report.md")), /## Predicted scaling/);
    // --link instead; --out elsewhere.
    const out = join(dir, "elsewhere");
    const given = await cli(["--in", file, "--link", "1gbit,50us", "--out", out]);
    assert.equal(given.code, 0, given.stderr);
    assert.match(await Deno.readTextFile(join(out, "prediction.md")), /given: α 50\.0 µs/);
    // Bad input: one line, exit 2.
    const bad: [string[], RegExp][] = [
      [["--in", join(dir, "missing.json")], /^paratrain: Cannot read .*missing\.json/],
      [["--in", file, "--link", "1gbit"], /^paratrain: Invalid --link "1gbit"/],
      [["--in", file, "--link", "1gbit,1us", "--allreduce", file], /not both/],
      [["--in", file, "--allreduce", file], /^paratrain: Invalid all-reduce results/],
      [["--in", file, "--world-sizes", "2,0"], /^paratrain: Invalid --world-sizes "0"/],
      [
        ["--in", file, "--nproc-per-node", "3", "--world-sizes", "6"],
        /No run of mnist-mlp measured 3/,
      ],
    ];
    for (const [args, message] of bad) {
      const b = await cli(args);
      assert.equal(b.code, 2, `${args.join(" ")}: ${b.stderr}`);
      assert.match(b.stderr, message);
      assert.equal(b.stderr.split("\n").length, 1, b.stderr);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
