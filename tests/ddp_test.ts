import assert from "node:assert/strict";
import { join } from "node:path";
import { createLayout } from "../core/flat_layout.ts";
import { readCheckpoint } from "../core/checkpoint.ts";
import { arrivalLags, runDdp } from "../strategies/ddp.ts";
import { runSingle } from "../strategies/single.ts";
import { getWorkload } from "../workloads/registry.ts";
import { EQUIVALENCE_TOLERANCE, maxAbsDiff, testSpec as spec } from "./_run_spec.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

const single = runSingle(spec({ strategy: "single", worldSize: 1 }));

for (const worldSize of [2, 3]) {
  Deno.test(`DDP with ${worldSize} ranks ends with single's parameters after 20 steps`, async () => {
    const ddp = await runDdp(spec({ worldSize }));
    const diff = maxAbsDiff(ddp.snapshot, (await single).snapshot);
    assert.ok(diff < EQUIVALENCE_TOLERANCE, `max |Δparam| ${diff}`);
    // The reported loss is the global batch's mean, as single's is.
    assert.ok(Math.abs(ddp.finalLoss - (await single).finalLoss) < 1e-4);
    assert.ok(maxAbsDiff(ddp.snapshot, new Float32Array(ddp.snapshot.length)) > 0.01);
    assert.deepEqual(
      ddp.workers.map((w) => [w.role, w.index]),
      [...Array(worldSize).keys()].map((k) => ["rank", k]),
    );
    for (const w of ddp.workers) assert.ok(w.peakBytes > 0 && (w.peakRssBytes ?? 0) > 0);
    // Every rank reports its lag behind the first arrival at the collectives, not raw times.
    for (const w of ddp.workers) {
      assert.ok(
        w.arrivalLagMs && w.arrivalLagMs.p95 >= w.arrivalLagMs.p50 && w.arrivalLagMs.p50 >= 0,
      );
      assert.equal(w.arrivals, undefined);
    }
    const gradientBytes = ddp.snapshot.length * 4;
    // A ring all-reduce sends 2(N−1)/N of the buffer from every rank.
    assert.ok(
      Math.abs(ddp.comm.bytesPerStep - (2 * (worldSize - 1) / worldSize) * gradientBytes) < 64,
    );
    assert.ok(ddp.comm.msPerStep > 0 && ddp.comm.msPerStep >= ddp.comm.transferMsPerStep);
  });
}

Deno.test("DDP with one rank communicates nothing and matches single exactly", async () => {
  const ddp = await runDdp(spec({ worldSize: 1 }));
  assert.equal(ddp.comm.bytesPerStep, 0);
  assert.deepEqual(ddp.workers.map((w) => w.role), ["rank"]);
  assert.equal(maxAbsDiff(ddp.snapshot, (await single).snapshot), 0);
});

Deno.test("small gradient buckets give the same parameters as one bucket", async () => {
  const ddp = await runDdp(spec({ steps: 5, snapshotStep: 5, bucketBytes: 4096 }));
  const one = await runDdp(spec({ steps: 5, snapshotStep: 5 }));
  assert.equal(maxAbsDiff(ddp.snapshot, one.snapshot), 0);
});

Deno.test("a checkpoint written by DDP rank 0 loads into the single strategy", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "ddp.ckpt.json");
  const ddp = await runDdp(spec({ steps: 10, snapshotStep: 10, checkpointPath: path }));
  const layout = createLayout(getWorkload("synthetic-mlp").createModel().params);
  const ckpt = await readCheckpoint(path, { workload: "synthetic-mlp", layout });
  assert.deepEqual(ckpt.params, ddp.snapshot);
  assert.equal(ckpt.steps, 10);
  const resumed = await runSingle(
    spec({ strategy: "single", worldSize: 1, steps: 1, snapshotStep: 0, resumePath: path }),
  );
  const fresh = await runSingle(spec({ strategy: "single", worldSize: 1, steps: 1 }));
  assert.ok(
    resumed.finalLoss < fresh.finalLoss,
    `resumed ${resumed.finalLoss} vs fresh ${fresh.finalLoss}`,
  );
  await assert.rejects(
    readCheckpoint(path, { workload: "mnist-mlp", layout }),
    /is for workload "synthetic-mlp", not "mnist-mlp"/,
  );
  await Deno.remove(dir, { recursive: true });
});

/** The DDP ranks `launcher` started (its children), not other jobs' on the machine. */
async function rankPids(launcher: number): Promise<number[]> {
  const out = await new Deno.Command("pgrep", {
    args: ["-P", String(launcher), "-f", "strategies/_ddp_rank.ts"],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).map(Number);
}

/** Which of `pids` are still running. */
function alive(pids: number[]): number[] {
  return pids.filter((pid) => {
    try {
      Deno.kill(pid, "SIGCONT"); // a no-op signal for a running process; throws when it is gone
      return true;
    } catch {
      return false;
    }
  });
}

Deno.test("a rank killed mid-training fails the run within 15 s, naming it, no rank left", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      MAIN,
      "train",
      "--workload",
      "synthetic-mlp",
      "--strategy",
      "ddp",
      "--world-size",
      "2",
      "--steps",
      "100000",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const stdout = new Response(child.stdout).text();
  let pids: number[] = [];
  const deadline = Date.now() + 60_000;
  while (pids.length < 2 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    pids = await rankPids(child.pid);
  }
  if (pids.length !== 2) {
    child.kill("SIGKILL"); // its ranks follow it (the parent watch); nothing outlives the test
    await Promise.all([child.status, stderr, stdout]);
  }
  assert.equal(pids.length, 2, "both ranks started");
  await new Promise((r) => setTimeout(r, 3000)); // let training get going
  const victim = Math.max(...pids);
  const killedAt = Date.now();
  Deno.kill(victim, "SIGKILL");
  const status = await child.status;
  const elapsed = Date.now() - killedAt;
  const [err] = await Promise.all([stderr, stdout]);
  assert.equal(status.code, 1, err);
  assert.ok(elapsed < 15_000, `took ${elapsed} ms`);
  assert.match(err, /^paratrain: Rank [01] (was killed by SIGKILL|exited with code)/m);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(alive(pids), [], "no rank left running");
});

Deno.test("arrival lag: each rank's delay behind the first arrival per step, warm-up left out", () => {
  const row = (index: number, arrivals: number[]) => ({
    role: "rank" as const,
    index,
    peakBytes: 1,
    peakRssBytes: 1,
    arrivals,
  });
  // Step 0 is warm-up; rank 1 is 2 ms late at step 1, 4 ms at step 2, first at step 3.
  const [r0, r1] = arrivalLags([row(0, [0, 10, 20, 33]), row(1, [50, 12, 24, 30])], 1);
  // Rank 0's lags are 0, 0 and 3 ms (late at step 3); rank 1's 2, 4 and 0.
  assert.equal(r0.arrivalLagMs!.p50, 0);
  assert.ok(Math.abs(r0.arrivalLagMs!.p95 - 2.7) < 1e-9, String(r0.arrivalLagMs!.p95));
  assert.equal(r1.arrivalLagMs!.p50, 2);
  assert.ok(Math.abs(r1.arrivalLagMs!.p95 - 3.8) < 1e-9);
  assert.equal(r0.arrivals, undefined);
});
