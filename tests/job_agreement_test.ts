/**
 * Hosts of one DDP job must run the same job: each rank registers its settings (by flag), the
 * hash of the checkpoint it resumes from and the code's version at the TCP rendezvous, and rank
 * 0 compares them with its own. Any difference fails every host at once, before training, with
 * exit 2 naming the settings and the hosts; a second host with a `--node-rank` already taken is
 * told so at once, and the job goes on. Here the hosts are launchers on loopback; the same
 * probes between network namespaces are in `ddp_netns_test.ts`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { jobDifferences } from "../comm/_tcp_rendezvous.ts";
import type { RunSpec } from "../core/run_types.ts";
import { jobRecord } from "../strategies/_job_record.ts";
import {
  type Ended,
  killQuietly,
  type Launcher,
  startLoopbackNodes,
  writeSyntheticCheckpoint,
} from "./_multihost.ts";

/** The default ring set-up deadline: every host must fail within it. */
const RENDEZVOUS_TIMEOUT_MS = 30_000;
/** A run that would train for hours if the hosts were let through. */
const LONG = ["--steps", "1000000"];

/** Waits for every launcher, killing what still runs after `ms`. */
async function ends(job: Launcher[], ms = RENDEZVOUS_TIMEOUT_MS + 15_000): Promise<Ended[]> {
  const timer = setTimeout(() => job.forEach(killQuietly), ms);
  try {
    return await Promise.all(job.map((l) => l.ended));
  } finally {
    clearTimeout(timer);
  }
}

function assertRefused(end: Ended, message: RegExp) {
  assert.equal(end.code, 2, end.stderr);
  assert.match(end.stderr, message);
  assert.ok(end.atMs < RENDEZVOUS_TIMEOUT_MS, `took ${end.atMs} ms`);
  assert.doesNotMatch(end.stdout, /samples\/s/, "it trained");
}

Deno.test("every setting the ranks must share is in the job record, each named by its flag", async () => {
  const base: RunSpec = {
    workload: "synthetic-mlp",
    strategy: "ddp",
    worldSize: 2,
    backend: "wasm",
    fastKernels: true,
    seed: 4,
    steps: 20,
    warmup: 0,
    globalBatch: 48,
    snapshotStep: 20,
  };
  const dir = await Deno.makeTempDir();
  try {
    const ckpt = join(dir, "ckpt.json");
    await writeSyntheticCheckpoint(ckpt, 0);
    const variants: [Partial<RunSpec>, string][] = [
      [{ workload: "mnist-mlp" }, "--workload"],
      [{ globalBatch: 96 }, "--batch (global)"],
      [{ steps: 21 }, "--steps"],
      [{ warmup: 2 }, "--warmup"],
      [{ seed: 5 }, "--seed"],
      [{ accumulate: 2 }, "--accumulate"],
      [{ scaling: "weak" }, "--scaling"],
      [{ gradCompression: "fp16" }, "--grad-compression"],
      [{ bucketBytes: 2 ** 20 }, "--bucket-mb"],
      [{ overlap: false }, "--no-overlap"],
      [{ backend: "cpu" }, "--backend"],
      [{ fastKernels: false }, "--no-fast-kernels"],
      [{ transport: "tcp" }, "--transport"],
      [{ resumePath: ckpt }, "--resume"],
    ];
    const job = await jobRecord(base);
    assert.deepEqual(jobDifferences(job, await jobRecord({ ...base })), []);
    assert.match(String(job["code version"]), /^[0-9a-f]{16}$/);
    for (const [change, flag] of variants) {
      const differences = jobDifferences(job, await jobRecord({ ...base, ...change }));
      assert.equal(differences.length, 1, `${flag}: ${differences}`);
      assert.ok(differences[0].startsWith(`${flag} (`), differences[0]);
    }
    // The checkpoint counts by content, not by path.
    await Deno.copyFile(ckpt, join(dir, "copy.json"));
    assert.deepEqual(
      jobDifferences(
        await jobRecord({ ...base, resumePath: ckpt }),
        await jobRecord({ ...base, resumePath: join(dir, "copy.json") }),
      ),
      [],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("two hosts with different settings both exit 2 before training, naming each setting and the hosts", async () => {
  const job = startLoopbackNodes([
    [0, [...LONG, "--batch", "48", "--seed", "4"]],
    [1, [...LONG, "--batch", "96", "--seed", "5", "--accumulate", "2", "--scaling", "weak"]],
  ]);
  try {
    const [host0, host1] = await ends(job);
    const named =
      /Hosts disagree on the job: --accumulate \(1 vs 2\), --batch \(global\) \(48 vs 192\), --scaling \(strong vs weak\), --seed \(4 vs 5\) between rank 0 \(.*\/127\.0\.0\.1\) and rank 1 \(.*\/127\.0\.0\.1\); start every host with the same settings/;
    assertRefused(host0, named);
    assertRefused(host1, named);
  } finally {
    job.forEach(killQuietly);
  }
});

Deno.test("--resume on one host only, or different --steps, fail both hosts before training", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ckpt = join(dir, "ckpt.json");
    await writeSyntheticCheckpoint(ckpt, 0.01);
    const resume = startLoopbackNodes([[0, [...LONG, "--resume", ckpt]], [1, LONG]]);
    const steps = startLoopbackNodes([[0, ["--steps", "20"]], [1, ["--steps", "30"]]]);
    try {
      for (const end of await ends(resume)) {
        assertRefused(end, /Hosts disagree on the job: --resume \(sha256:[0-9a-f]{16} vs none\)/);
      }
      for (const end of await ends(steps)) {
        assertRefused(end, /Hosts disagree on the job: --steps \(20 vs 30\)/);
      }
    } finally {
      [...resume, ...steps].forEach(killQuietly);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hosts with different world sizes both exit 2 at the rendezvous, naming it", async () => {
  const job = startLoopbackNodes([[0, LONG, 1], [1, LONG, 2]]);

  try {
    for (const end of await ends(job)) {
      assertRefused(
        end,
        /Hosts disagree on the job: a rank from 127\.0\.0\.1 joins as rank [23] of world size 4, but rank 0 \(.*\) runs world size 2/,
      );
    }
  } finally {
    job.forEach(killQuietly);
  }
});

Deno.test("a second host with a --node-rank already taken is named as a duplicate at once; the job goes on", async () => {
  // Two hosts say they are node 1: whichever registers second is told its rank is taken.
  const job = startLoopbackNodes([[0, ["--steps", "20"]], [1, ["--steps", "20"]], [1, [
    "--steps",
    "20",
  ]]]);
  try {
    const [host0, ...ones] = await ends(job);
    assert.equal(host0.code, 0, host0.stderr);
    const dup = ones.find((end) => end.code !== 0);
    const kept = ones.find((end) => end !== dup);
    assert.ok(dup && kept, `one node 1 must be refused: ${ones.map((e) => e.code)}`);
    assert.equal(kept.code, 0, kept.stderr);
    assertRefused(
      dup,
      /Rank 1 could not join the rendezvous at 127\.0\.0\.1:\d+ \(rank 0's host\): rank 1 is already in the job \(registered from .*\): are two hosts started with the same --node-rank \(or RANK\)\?/,
    );
    assert.doesNotMatch(dup.stderr, /Connection refused/);
  } finally {
    job.forEach(killQuietly);
  }
});
