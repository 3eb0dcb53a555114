import assert from "node:assert/strict";
import { join } from "node:path";

const MAIN = new URL("../bench/main.ts", import.meta.url).pathname;

async function cli(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const BAD_INPUTS: [string[], RegExp][] = [
  [
    ["bench", "--workloads", "nope"],
    /Unknown workload "nope".*choose from synthetic-mlp, mnist-mlp/,
  ],
  [["bench", "--strategies", "zero"], /Unknown strategy "zero".*choose from single, dp, ddp/],
  [["bench", "--backend", "gpu"], /Unknown backend "gpu".*wasm, cpu, webgpu, tensorflow/],
  [["bench", "--backend", "tensorflow"], /Backend "tensorflow" is not yet supported/],
  [["bench", "--steps", "0"], /Invalid --steps "0": expected a positive integer/],
  [["bench", "--steps", "ten"], /Invalid --steps "ten"/],
  [["bench", "--repeats", "-1"], /Invalid --repeats "-1"/],
  [["bench", "--world-sizes", "2,x"], /Invalid --world-sizes "x"/],
  [["bench", "--warmup", "1.5"], /Invalid --warmup "1.5"/],
  [["bench", "--seed", "abc"], /Invalid --seed "abc"/],
  [["bench", "--frobnicate"], /unknown option '--frobnicate'/],
  [
    ["bench", "--strategies", "ddp", "--world-sizes", "3"],
    /Global batch 256 of synthetic-mlp does not divide across 3 DDP ranks/,
  ],
  [["train", "--workload", "nope"], /Unknown workload "nope"/],
  [
    ["train", "--resume", "/nonexistent/ckpt.json"],
    /Cannot read checkpoint \/nonexistent\/ckpt.json/,
  ],
  [["allreduce", "--world-sizes", "1"], /an all-reduce needs at least 2 ranks/],
  [["report", "--in", "/nonexistent/results.json"], /Cannot read \/nonexistent\/results.json/],
];

for (const [args, message] of BAD_INPUTS) {
  Deno.test(`bad input exits 2 with one line: ${args.join(" ")}`, async () => {
    const dir = await Deno.makeTempDir();
    const out = join(dir, "out");
    const r = await cli(
      ...args,
      ...(args[0] === "bench" || args[0] === "allreduce" ? ["--out", out] : []),
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line expected, got: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
    await assert.rejects(Deno.stat(out), "nothing written");
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("an unwritable --out exits 2 naming it, before any run", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "a-file");
  await Deno.writeTextFile(file, "keep me");
  const r = await cli("bench", "--quick", "--out", join(file, "sub"));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Cannot write to --out .*a-file\/sub/);
  assert.equal(await Deno.readTextFile(file), "keep me");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("--list names every workload, strategy and backend", async () => {
  const r = await cli("bench", "--list");
  assert.equal(r.code, 0);
  for (
    const name of [
      "synthetic-mlp",
      "mnist-mlp",
      "mnist-cnn",
      "iris-logreg",
      "single",
      "dp",
      "ddp",
      "wasm",
      "cpu",
      "webgpu",
      "tensorflow",
    ]
  ) {
    assert.match(r.stdout, new RegExp(`^  ${name} `, "m"));
  }
});

Deno.test("--help works for every command and exits 0", async () => {
  for (const command of ["bench", "train", "allreduce", "report"]) {
    const r = await cli(command, "--help");
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`Usage: paratrain ${command}`));
  }
});
