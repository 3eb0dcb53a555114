/**
 * DDP over TCP on one machine: forced with `--transport tcp`, started by two of our launchers
 * with torchrun's flags on loopback, and started by `mpirun` — each ends with single's
 * parameters within 1e-5, and bench records the transport.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readCheckpoint } from "../core/checkpoint.ts";
import { createLayout } from "../core/flat_layout.ts";
import { runDdp } from "../strategies/ddp.ts";
import { runSingle } from "../strategies/single.ts";
import { getWorkload } from "../workloads/registry.ts";
import {
  freePort,
  killQuietly,
  MAIN,
  maxAbsDiff,
  SECRET,
  startLoopbackNodes,
  TRAIN_ARGS,
} from "./_multihost.ts";
import { EQUIVALENCE_TOLERANCE, testSpec as spec } from "./_run_spec.ts";

/** Set to 1 (as CI does) to make a missing `mpirun` a failure instead of a skip. */
const REQUIRE_MPIRUN_ENV = "PARATRAIN_REQUIRE_MPIRUN";

const single = runSingle(spec({ strategy: "single", worldSize: 1 }));
const layout = createLayout(getWorkload("synthetic-mlp").createModel().params);

Deno.test("DDP over TCP (3 ranks) ends with single's parameters after 20 steps", async () => {
  const ddp = await runDdp(spec({ worldSize: 3, transport: "tcp" }));
  const diff = maxAbsDiff(ddp.snapshot, (await single).snapshot);
  assert.ok(diff < EQUIVALENCE_TOLERANCE, `max |Δparam| ${diff}`);
  assert.ok(maxAbsDiff(ddp.snapshot, new Float32Array(ddp.snapshot.length)) > 0.01);
});

Deno.test("bench --strategies single,ddp --transport tcp records transport tcp and matches single", async () => {
  const out = await Deno.makeTempDir();
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        MAIN,
        "bench",
        "--strategies",
        "single,ddp",
        "--transport",
        "tcp",
        "--workloads",
        "synthetic-mlp",
        "--world-sizes",
        "2",
        "--steps",
        "20",
        "--warmup",
        "0",
        "--repeats",
        "1",
        "--backend",
        "wasm",
        "--quiet",
        "--out",
        out,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    const results = JSON.parse(await Deno.readTextFile(join(out, "results.json")));
    const ddp = results.runs.filter((run: { strategy: string }) => run.strategy === "ddp");
    assert.equal(ddp.length, 1);
    assert.equal(ddp[0].transport, "tcp");
    assert.ok(ddp[0].paramMaxAbsDiffVsSingle < EQUIVALENCE_TOLERANCE, JSON.stringify(ddp[0]));
    const singles = results.runs.filter((run: { strategy: string }) => run.strategy === "single");
    assert.ok(singles.every((run: { transport?: string }) => run.transport === undefined));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("two launchers with --nnodes 2 on loopback train as one job, equal to single", async () => {
  const dir = await Deno.makeTempDir();
  const nodes = startLoopbackNodes([0, 1].map((node) => [node, [
    "--steps",
    "20",
    ...(node === 0 ? ["--checkpoint", join(dir, "ddp.ckpt.json")] : []),
  ]]));

  try {
    const ends = await Promise.all(nodes.map((n) => n.ended));
    for (const end of ends) assert.equal(end.code, 0, end.stderr);
    assert.match(ends[0].stdout, /ddp-2/);
    assert.match(ends[1].stdout, /rank 1: /);
    const ckpt = await readCheckpoint(join(dir, "ddp.ckpt.json"), {
      workload: "synthetic-mlp",
      layout,
    });
    const diff = maxAbsDiff(ckpt.params, (await single).snapshot);
    assert.ok(diff < EQUIVALENCE_TOLERANCE, `max |Δparam| ${diff}`);
  } finally {
    nodes.forEach(killQuietly);
    await Deno.remove(dir, { recursive: true });
  }
});

function mpirunMissing(): string | null {
  try {
    const out = new Deno.Command("mpirun", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync();
    return out.success ? null : "`mpirun --version` failed";
  } catch {
    return "`mpirun` not found";
  }
}

const MPIRUN_TEST = "mpirun -np 2 … train --strategy ddp runs as two ranks, equal to single";
const noMpirun = mpirunMissing();
const skipMpirun = noMpirun !== null && Deno.env.get(REQUIRE_MPIRUN_ENV) !== "1";
if (skipMpirun) {
  console.error(
    `skipped "${MPIRUN_TEST}": ${noMpirun}; to run it, \`apt-get install -y openmpi-bin\``,
  );
}

Deno.test({ name: MPIRUN_TEST, ignore: skipMpirun }, async () => {
  assert.equal(noMpirun, null, `${noMpirun}: this test needs it (${REQUIRE_MPIRUN_ENV}=1)`);
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "mpi.ckpt.json");
    const r = await new Deno.Command("mpirun", {
      args: [
        "--allow-run-as-root",
        "--oversubscribe",
        "-np",
        "2",
        "-x",
        "PARATRAIN_TOKEN",
        "-x",
        "MASTER_PORT",
        Deno.execPath(),
        "run",
        "--allow-all",
        MAIN,
        ...TRAIN_ARGS,
        "--steps",
        "20",
        "--checkpoint",
        path,
      ],
      env: { PARATRAIN_TOKEN: SECRET, MASTER_PORT: String(freePort()), NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, text);
    const ckpt = await readCheckpoint(path, { workload: "synthetic-mlp", layout });
    const diff = maxAbsDiff(ckpt.params, (await single).snapshot);
    assert.ok(diff < EQUIVALENCE_TOLERANCE, `max |Δparam| ${diff}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
