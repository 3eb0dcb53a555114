/**
 * The failure paths a careful user (and an attacker) probes: no hidden job limit, timers that
 * cannot overflow, errors that lead with the cause, no checkpoint of NaNs, one run's reports
 * written as one set, stray clients that cannot stall set-up.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { launch } from "../comm/launcher.ts";
import { readRankEnv } from "../comm/rank_env.ts";
import { initProcessGroup } from "../comm/init_process_group.ts";
import { createRendezvous, rankSocketPath } from "../comm/rendezvous.ts";
import { CHECKPOINT_SCHEMA, readCheckpoint, writeCheckpoint } from "../core/checkpoint.ts";
import { createLayout } from "../core/flat_layout.ts";
import { UsageError } from "../core/errors.ts";
import { runSingle } from "../strategies/single.ts";
import { runDdp } from "../strategies/ddp.ts";
import { buildMatrix } from "../analysis/matrix.ts";
import { validateResults } from "../analysis/validate_results.ts";
import { writeReports } from "../reports/write_reports.ts";
import { isGone, livePids, RANK_MODULE } from "./_comm_helpers.ts";
import { childrenOf, DDP_FOREVER, envOf } from "./_processes.ts";
import { FULL_SHAPES, makeResults } from "./_results_fixture.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
const DIVERGING = `${new URL("./_diverging_workload.ts", import.meta.url).href}#diverging`;
const dec = new TextDecoder();

async function cli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Direct children of `pid`, with the RANK each was given. */
async function ranksOf(pid: number): Promise<{ pid: number; rank: number }[]> {
  const ranks = await Promise.all((await childrenOf(pid)).map(async (child) => {
    const rank = await envOf(child, "RANK");
    return { pid: child, rank: rank === null ? -1 : Number(rank) };
  }));
  return ranks.filter((r) => r.rank >= 0);
}

/** Starts `train` and waits until its `n` ranks are running (and a little more). */
async function startTrain(args: string[], n: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new Response(child.stdout).text();
  const stderr = new Response(child.stderr).text();
  let ranks: { pid: number; rank: number }[] = [];
  const deadline = Date.now() + 60_000;
  while (ranks.length < n && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    ranks = await ranksOf(child.pid);
  }
  assert.equal(ranks.length, n, "every rank started");
  await new Promise((r) => setTimeout(r, 2_000)); // into the training steps
  return { child, ranks, stdout, stderr };
}

Deno.test("the launcher sets no job deadline unless one is asked for", async () => {
  const delays: number[] = [];
  const original = globalThis.setTimeout;
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    delays.push(ms ?? 0);
    return original(fn, ms);
  }) as typeof setTimeout;
  try {
    await launch(RANK_MODULE, {
      worldSize: 2,
      args: [
        JSON.stringify({ kind: "cases", cases: [{ collective: "barrier", length: 0, seed: 0 }] }),
      ],
      onLine: () => {},
    });
  } finally {
    globalThis.setTimeout = original;
  }
  const long = delays.filter((ms) => ms >= 10_000);
  assert.deepEqual(long, [], "no timer of 10 s or more: a healthy job is never stopped");
});

Deno.test("train --job-timeout stops a DDP job at the limit asked for", async () => {
  const started = Date.now();
  const r = await cli([...DDP_FOREVER, "--job-timeout", "3"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^paratrain: Job timed out after 3 s with ranks 0, 1 still running/m);
  assert.ok(Date.now() - started < 30_000);
});

Deno.test("a hung rank is named as the cause, in one line, without stack or colour codes", async () => {
  const { child, ranks, stderr } = await startTrain(
    [...DDP_FOREVER, "--collective-timeout", "2"],
    2,
  );
  const victim = ranks.find((r) => r.rank === 1)!;
  Deno.kill(victim.pid, "SIGSTOP");
  const status = await child.status;
  const err = await stderr;
  assert.equal(status.code, 1, err);
  const headline = err.split("\n").find((line) => line.startsWith("paratrain: "));
  assert.match(
    headline ?? "",
    /^paratrain: Rank 1 stopped answering during all-reduce \(timeout 2 s\) \(seen by rank 0/,
  );
  assert.doesNotMatch(err, /^\s+at /m, "no stack trace");
  assert.ok(!err.includes("\u001b["), "no ANSI codes in output that is not a terminal");
  assert.deepEqual(await livePids(ranks.map((r) => r.pid)), [], "no rank left");
});

Deno.test("SIGINT to train stops every rank and exits 130", async () => {
  const { child, ranks, stderr } = await startTrain(DDP_FOREVER, 2);
  child.kill("SIGINT");
  const status = await child.status;
  assert.equal(status.code, 130, await stderr);
  assert.match(await stderr, /paratrain: Job interrupted by SIGINT; all ranks were killed/);
  assert.deepEqual(await livePids(ranks.map((r) => r.pid)), []);
});

Deno.test("timeouts a timer cannot hold are refused, from flags and from the environment", async () => {
  assert.throws(
    () =>
      readRankEnv({
        env: {
          RANK: "0",
          WORLD_SIZE: "2",
          PARATRAIN_RENDEZVOUS: "/tmp/x",
          PARATRAIN_TOKEN: "0".repeat(64),
          PARATRAIN_COLLECTIVE_TIMEOUT_MS: "3000000000",
        },
      }),
    /PARATRAIN_COLLECTIVE_TIMEOUT_MS: expected an integer from 1 to 2147483647/,
  );
  const { dir, token } = await createRendezvous();
  await assert.rejects(
    initProcessGroup({ rank: 0, worldSize: 2, rendezvousDir: dir, token, timeoutMs: 3e9 }),
    /collective timeout: 3000000000 ms is not a delay a timer can hold/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train checks the run before making the --checkpoint folder", async () => {
  const dir = await Deno.makeTempDir();
  const folder = join(dir, "new");
  const r = await cli([
    "train",
    "--strategy",
    "ddp",
    "--world-size",
    "3",
    "--checkpoint",
    join(folder, "model.ckpt.json"),
  ]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^paratrain: Global batch 256 of mnist-mlp does not divide across 3/);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.ok(await isGone(folder), "the checkpoint folder was created");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a checkpoint holding NaN is neither written nor resumed from", async () => {
  const dir = await Deno.makeTempDir();
  const layout = createLayout([{ name: "w", shape: [2, 2] }]);
  const path = join(dir, "nan.ckpt.json");
  const base = { schema: CHECKPOINT_SCHEMA, workload: "x", steps: 1, layout } as const;
  await assert.rejects(
    writeCheckpoint(path, { ...base, params: new Float32Array([1, NaN, 3, 4]) }),
    /Refusing to write checkpoint .*: parameter 1 is NaN/,
  );
  assert.ok(await isGone(path));
  // Written by hand, as a corrupt or hostile file would be.
  const bytes = new Uint8Array(new Float32Array([1, 2, Infinity, 4]).buffer);
  await Deno.writeTextFile(
    path,
    JSON.stringify({ ...base, params: btoa(String.fromCharCode(...bytes)) }),
  );
  await assert.rejects(
    readCheckpoint(path, { workload: "x", layout }),
    (e) =>
      e instanceof UsageError &&
      /holds a non-finite parameter \(index 2 is Infinity\)/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train --resume of a NaN checkpoint exits 2 with one line", async () => {
  const dir = await Deno.makeTempDir();
  const good = join(dir, "good.ckpt.json");
  const r0 = await cli([
    "train",
    "--workload",
    "iris-logreg",
    "--steps",
    "2",
    "--checkpoint",
    good,
  ]);
  assert.equal(r0.code, 0, r0.stderr);
  const checkpoint = JSON.parse(await Deno.readTextFile(good));
  const raw = Uint8Array.from(atob(checkpoint.params), (c) => c.charCodeAt(0));
  new Float32Array(raw.buffer)[0] = NaN;
  checkpoint.params = btoa(String.fromCharCode(...raw));
  const bad = join(dir, "bad.ckpt.json");
  await Deno.writeTextFile(bad, JSON.stringify(checkpoint));
  const r = await cli(["train", "--workload", "iris-logreg", "--resume", bad]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^paratrain: Checkpoint .*bad\.ckpt\.json holds a non-finite parameter/);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a run whose parameters become non-finite fails naming the step, on every strategy", async () => {
  const spec = {
    workload: DIVERGING,
    strategy: "single" as const,
    worldSize: 1,
    backend: "cpu" as const,
    fastKernels: false,
    seed: 0,
    steps: 5,
    warmup: 0,
    globalBatch: 16,
    snapshotStep: 5,
  };
  await assert.rejects(runSingle(spec), /^DivergedError: Parameters became non-finite at step 1 /);
  await assert.rejects(
    runDdp({ ...spec, strategy: "ddp", worldSize: 2 }, undefined),
    /^LaunchError: Rank [01] failed: Parameters became non-finite at step 1 /,
  );
});

Deno.test("results that no bench could produce are refused by the schema", () => {
  const valid = makeResults(FULL_SHAPES);
  valid.matrix = buildMatrix(valid);
  validateResults(JSON.parse(JSON.stringify(valid)), "fixture");
  const cases: [string, (run: Record<string, unknown>) => void][] = [
    ["negative efficiencyVsCeiling", (run) => run.efficiencyVsCeiling = -0.5],
    ["negative finalLoss", (run) => run.finalLoss = -1],
    ["a speedup of 1e308", (run) => run.speedup = 1e308],
    ["a step time of -1e308", (run) => (run.stepMs as Record<string, number>).p50 = -1e308],
  ];
  for (const [what, corrupt] of cases) {
    const copy = JSON.parse(JSON.stringify(valid));
    corrupt(copy.runs.find((r: { strategy: string }) => r.strategy !== "single"));
    assert.throws(() => validateResults(copy, "corrupt"), UsageError, `${what} was accepted`);
  }
});

Deno.test("noise over results that share no run exits 2 naming why", async () => {
  const dir = await Deno.makeTempDir();
  const a = makeResults(FULL_SHAPES);
  const b = makeResults(FULL_SHAPES.map((s) => ({ ...s, workload: `${s.workload}-other` })));
  for (const [name, r] of [["a.json", a], ["b.json", b]] as const) {
    r.matrix = buildMatrix(r);
    await Deno.writeTextFile(join(dir, name), JSON.stringify(r));
  }
  const r = await cli(["noise", join(dir, "a.json"), join(dir, "b.json")]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^paratrain: No parallel run and ratio appears in all 2 results files/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("SIGINT at any moment of `report` leaves one run's files, never a mix", async () => {
  const dir = await Deno.makeTempDir();
  const older = makeResults(FULL_SHAPES);
  older.env.startedAt = "2026-01-01T00:00:00.000Z";
  const newer = makeResults(FULL_SHAPES);
  newer.env.startedAt = "2026-02-02T00:00:00.000Z";
  const out = join(dir, "out");
  await writeReports(newer, join(dir, "newer"));
  const files = ["results.json", "report.md", "report.html"];
  const stamp = (text: string) =>
    text.includes("2026-01-01") ? "old" : text.includes("2026-02-02") ? "new" : "?";
  const outcomes = new Set<string>();
  const report = () =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        MAIN,
        "report",
        "--in",
        join(dir, "newer", "results.json"),
        "--out",
        out,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
  // How long an uninterrupted re-render takes here; the signals land across all of it.
  await writeReports(older, out);
  const t0 = performance.now();
  await report().status;
  const fullMs = performance.now() - t0;
  for (const fraction of [0.05, 0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.5]) {
    const delayMs = Math.round(fraction * fullMs);
    await Deno.remove(out, { recursive: true }).catch(() => {});
    await writeReports(older, out);
    const child = report();
    const stderr = new Response(child.stderr).text();
    await new Promise((r) => setTimeout(r, delayMs));
    try {
      child.kill("SIGINT");
    } catch {
      // It had already finished.
    }
    const status = await child.status;
    await stderr;
    const stamps = await Promise.all(
      files.map(async (f) => stamp(await Deno.readTextFile(join(out, f)))),
    );
    assert.equal(
      new Set(stamps).size,
      1,
      `after ${delayMs} ms: ${files.map((f, i) => `${f} ${stamps[i]}`).join(", ")}`,
    );
    assert.ok(status.code === 0 || status.code === 130, `exit ${status.code}`);
    const leftovers = [...Deno.readDirSync(out)].map((e) => e.name).filter((n) =>
      n.includes("staged")
    );
    assert.deepEqual(leftovers, []);
    outcomes.add(stamps[0]);
  }
  assert.deepEqual(
    [...outcomes].sort(),
    ["new", "old"],
    "signals landed before and after the write",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("silent clients on a rank's socket cannot stall the ring's set-up", async () => {
  const { dir, token } = await createRendezvous();
  const strays: Deno.Conn[] = [];
  try {
    const connectTimeoutMs = 8_000;
    const rank1 = initProcessGroup({
      rank: 1,
      worldSize: 2,
      rendezvousDir: dir,
      token,
      connectTimeoutMs,
    });
    const path = rankSocketPath(dir, 1);
    while (await isGone(path)) await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 8; i++) strays.push(await Deno.connect({ transport: "unix", path }));
    const started = performance.now();
    const rank0 = initProcessGroup({
      rank: 0,
      worldSize: 2,
      rendezvousDir: dir,
      token,
      connectTimeoutMs,
    });
    const groups = await Promise.all([rank0, rank1]);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 3_000, `set-up took ${elapsed.toFixed(0)} ms behind 8 silent clients`);
    const bufs = groups.map((g) => new Float32Array([g.rank + 1]));
    await Promise.all(groups.map((g, k) => g.allReduce(bufs[k])));
    assert.deepEqual([...bufs[0]], [3]);
    for (const g of groups) g.close();
  } finally {
    for (const conn of strays) {
      try {
        conn.close();
      } catch {
        // Closed by the rank.
      }
    }
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gate exits 1 when the current results miss a run, 0 with --allow-missing", async () => {
  const dir = await Deno.makeTempDir();
  const full = makeResults(FULL_SHAPES);
  full.matrix = buildMatrix(full);
  const partial = makeResults(
    FULL_SHAPES.filter((s) => !(s.strategy === "dp" && s.worldSize !== 4)),
  );
  partial.matrix = buildMatrix(partial);
  await Deno.writeTextFile(join(dir, "full.json"), JSON.stringify(full));
  await Deno.writeTextFile(join(dir, "partial.json"), JSON.stringify(partial));
  const args = [
    "gate",
    "--baseline",
    join(dir, "full.json"),
    "--current",
    join(dir, "partial.json"),
  ];
  const strict = await cli(args);
  assert.equal(strict.code, 1, strict.stderr);
  assert.match(strict.stdout, /dp-2 on mnist-cnn: the run is missing from the current results/);
  assert.match(strict.stderr, /paratrain: Gate failed: \d+ of \d+ checks regressed \(\d+ missing/);
  const lenient = await cli([...args, "--allow-missing"]);
  assert.equal(lenient.code, 0, lenient.stderr);
  assert.match(lenient.stdout, /Missing from the current results \(allowed by --allow-missing\)/);
  await Deno.remove(dir, { recursive: true });
});
