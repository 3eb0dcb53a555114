import assert from "node:assert/strict";
import { join } from "node:path";
import { webgpuAvailability } from "../backends/webgpu.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

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
  [
    // deno.json denies tfjs-node's install script, so a fresh clone has the package without
    // libtensorflow: the loading path's one line, everywhere this suite runs.
    ["bench", "--backend", "tensorflow"],
    /Cannot use --backend tensorflow: libtensorflow 2\.9\.1 is missing \(no libtensorflow\.so\* in \S+tfjs-node\/deps\/lib .*; tfjs-node-gpu: libtensorflow 2\.9\.1 is missing\. Install with `deno install --allow-scripts=npm:@tensorflow\/tfjs-node`/,
  ],
  [
    ["train", "--backend", "wasm", "--threads", "2"],
    /Invalid --threads 2 on the wasm backend: it computes on one thread; use --backend native/,
  ],
  [["bench", "--threads", "0"], /Invalid --threads "0": expected a positive integer/],
  [
    ["train", "--threads", "999"],
    /Invalid --threads 999: at most \d+ \(this machine's \d+ logical CPUs, and never more than 64\)/,
  ],
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
  [["bench", "--accumulate", "0"], /Invalid --accumulate "0": expected a positive integer/],
  [["train", "--accumulate", "-2"], /Invalid --accumulate "-2"/],
  [
    ["bench", "--grad-compression", "int8"],
    /Unknown compression "int8" in --grad-compression: choose from none, fp16, bf16/,
  ],
  [["bench", "--grad-compression", "fp16,bf16"], /expected one compression/],
  [["bench", "--bucket-mb", "0.0001"], /Invalid --bucket-mb "0.0001": .*at least 1 KiB/],
  [["bench", "--bucket-mb", "1,x"], /Invalid --bucket-mb "x"/],
  [["bench", "--bucket-mb", "99999"], /Invalid --bucket-mb "99999": at most 4096 MiB/],
  [["bench", "--scaling", "medium"], /Unknown scaling "medium".*choose from strong, weak/],
  [
    ["train", "--strategy", "single", "--grad-compression", "fp16"],
    /--grad-compression applies to dp and ddp: single moves no gradients/,
  ],
  [["train", "--strategy", "dp", "--bucket-mb", "1"], /--bucket-mb applies to --strategy ddp/],
  [["train", "--strategy", "dp", "--no-overlap"], /--no-overlap applies to --strategy ddp/],
  [
    ["train", "--strategy", "ddp", "--bucket-mb", "1,2"],
    /train runs one bucket size \(bench sweeps a list\)/,
  ],
  [
    ["train", "--resume", "/nonexistent/ckpt.json"],
    /Cannot read checkpoint \/nonexistent\/ckpt.json/,
  ],
  [["allreduce", "--world-sizes", "1"], /an all-reduce needs at least 2 ranks/],
  [
    ["allreduce", "-b", "1X"],
    /Invalid -b "1X": expected a size in bytes such as 4096, 1K, 64M or 1G/,
  ],
  [
    ["allreduce", "-b", "64M", "-e", "1K"],
    /Invalid -b\/-e: the smallest size .* is above the largest/,
  ],
  [["allreduce", "-f", "1"], /Invalid -f\/--step-factor 1: expected 2 or more/],
  [
    ["allreduce", "-b", "8G", "-e", "8G", "--world-sizes", "2"],
    /Cannot time all-reduce of 8\.0 GiB at world size 2: it sends frames of 4\.0 GiB, above the ring's frame limit of 4294967295 bytes.*; the largest size that fits is \d+ bytes \(-e \d+M\)/,
  ],
  [
    ["allreduce", "-b", "1024G", "--world-sizes", "4"],
    /Cannot time all-reduce of 1\.0 TiB at world size 4: .*it needs about 8\.0 TiB on this host \(4 ranks × 2 buffers of 1\.0 TiB and 128\.0 MiB each\), more than the [\d.]+ [GT]iB available; the largest size that fits is \d+ bytes/,
  ],
  [
    ["allreduce", "--collective", "all-to-all"],
    /Unknown collective "all-to-all".*all-reduce, all-gather/,
  ],
  [["allreduce", "--op", "prod"], /Unknown reduce op "prod".*sum, avg, max, min/],
  [
    ["train", "--collective-timeout", "3000000"],
    /Invalid --collective-timeout "3000000": at most 2147483 s .*the longest a timer can wait/,
  ],
  [["train", "--job-timeout", "0"], /Invalid --job-timeout "0": expected a positive integer/],
  [
    ["train", "--strategy", "ddp", "--world-size", "3"],
    /Global batch 256 of mnist-mlp does not divide across 3 DDP ranks/,
  ],
  [
    ["train", "--strategy", "dp", "--world-size", "4", "--batch", "2"],
    /Global batch 2 of mnist-mlp is smaller than 4 DP replicas/,
  ],
  [
    ["train", "--strategy", "ddp", "--world-size", "4096"],
    /World size 4096 is more than this machine can start: at most \d+/,
  ],
  [["bench", "--world-sizes", "4096"], /World size 4096 is more than this machine can start/],
  [
    ["bench", "--workloads", "x".repeat(100_000)],
    /Unknown workload "x{80}… \(100000 characters\)" in --workloads/,
  ],
  [
    ["bench", "--workloads", "\u001b[2J\u001b[31mred"],
    /Unknown workload "\\u001b\[2J\\u001b\[31mred"/,
  ],
  [["report", "--in", "/nonexistent/results.json"], /Cannot read \/nonexistent\/results.json/],
  [
    ["bench", "--transport", "udp"],
    /Unknown transport "udp" in --transport: choose from unix, tcp/,
  ],
  [["train", "--transport", "tcp"], /--transport needs --strategy ddp/],
  [["train", "--nnodes", "2"], /--nnodes needs --strategy ddp/],
  [
    ["train", "--strategy", "ddp", "--nnodes", "2", "--node-rank", "0"],
    /--nnodes 2 needs --master-addr: host 0's address/,
  ],
  [
    ["train", "--strategy", "ddp", "--nnodes", "2", "--master-addr", "10.213.0.1"],
    /--nnodes 2 needs --node-rank/,
  ],
  [
    ["train", "--strategy", "ddp", "--nnodes", "2", "--node-rank", "2", "--master-addr", "h"],
    /Invalid --node-rank 2: expected 0 to 1/,
  ],
  [["train", "--strategy", "ddp", "--master-port", "70000"], /Invalid --master-port "70000"/],
  [
    [
      "train",
      "--strategy",
      "ddp",
      "--nnodes",
      "3",
      "--node-rank",
      "1",
      "--master-addr",
      "h",
    ],
    /--world-size 2 does not divide across --nnodes 3/,
  ],
  [["train", "--strategy", "ddp", "--token-file", "/nonexistent/t"], /Cannot read --token-file/],
  [
    ["bench", "--workloads", "transformer-lm:huge"],
    /Unknown size "huge" of transformer-lm in --workloads: choose from tiny, small, medium/,
  ],
  [["train", "--workload", "wide-mlp:xl"], /Unknown size "xl" of wide-mlp in --workload/],
  [["bench", "--batches", "0"], /Invalid --batches "0": expected a positive integer/],
  [["bench", "--batches", "32,x"], /Invalid --batches "x"/],
  [
    ["bench", "--strategies", "ddp", "--workloads", "transformer-lm", "--batches", "33"],
    /Global batch 33 of transformer-lm:tiny does not divide across 2 DDP ranks/,
  ],
  [
    ["bench", "--batchnorm", "global"],
    /Unknown BatchNorm mode "global" in --batchnorm: choose from local, sync/,
  ],
  [
    ["bench", "--workloads", "mnist-mlp,wide-mlp", "--batchnorm", "sync"],
    /--batchnorm applies to workloads with BatchNorm \(resnet-cnn\); none of mnist-mlp, wide-mlp:medium has any/,
  ],
  [
    ["bench", "--workloads", "resnet-cnn", "--strategies", "single", "--batchnorm", "sync"],
    /--batchnorm applies to dp and ddp: single has one replica/,
  ],
  [
    ["train", "--workload", "resnet-cnn", "--batchnorm", "sync"],
    /--batchnorm applies to dp and ddp: single has one replica/,
  ],
  [
    ["train", "--strategy", "dp", "--batchnorm", "sync"],
    /--batchnorm applies to workloads with BatchNorm \(resnet-cnn\), not mnist-mlp/,
  ],
];

for (const [args, message] of BAD_INPUTS) {
  const shown = JSON.stringify(args.join(" ")).slice(1, -1);
  const name = shown.length > 80 ? `${shown.slice(0, 60)}… (${shown.length} characters)` : shown;
  Deno.test(`bad input exits 2 with one line: ${name}`, async () => {
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
    assert.ok(!r.stderr.includes("\u001b"), "no raw escape code");
    assert.ok(r.stderr.length < 2_000, `a short line, not ${r.stderr.length} characters`);
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
      "transformer-lm:tiny",
      "transformer-lm:small",
      "transformer-lm:medium",
      "resnet-cnn:tiny",
      "resnet-cnn:medium",
      "wide-mlp:medium",
      "single",
      "dp",
      "ddp",
      "native",
      "wasm",
      "cpu",
      "webgpu",
      "tensorflow",
    ]
  ) {
    assert.match(r.stdout, new RegExp(`^  ${name} `, "m"));
  }
  assert.match(r.stdout, /^ {2}wasm .* — available here$/m);
  // Available where WebGPU offers an adapter (here: llvmpipe's software Vulkan), else why not.
  assert.match(
    r.stdout,
    webgpuAvailability() == null
      ? /^ {2}webgpu .* — available here$/m
      : /^ {2}webgpu .* — not available here: (WebGPU|cannot ask WebGPU)/m,
  );
  assert.match(
    r.stdout,
    /^ {2}tensorflow .* — not available here: libtensorflow 2\.9\.1 is missing/m,
  );
  assert.match(
    r.stdout,
    /^ {2}native .* — (available here|not available here: OpenBLAS could not)/m,
  );
});

Deno.test("--help works for every command and exits 0", async () => {
  for (const command of ["bench", "train", "allreduce", "predict", "report", "prediction-check"]) {
    const r = await cli(command, "--help");
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`Usage: paratrain ${command}`));
  }
});

Deno.test("--json-progress writes one JSON event per line; --quiet writes nothing on stderr", async () => {
  const dir = await Deno.makeTempDir();
  const args = ["bench", "--quick", "--workloads", "iris-logreg", "--strategies", "single"];
  const json = await cli(...args, "--backend", "wasm", "--json-progress", "--out", join(dir, "a"));
  assert.equal(json.code, 0, json.stderr);
  const events = json.stderr.trim().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(
    [...new Set(events.map((e) => e.event))],
    ["backend", "run-start", "step", "run-end"],
  );
  const start = events.find((e) => e.event === "run-start");
  assert.deepEqual([start.run, start.runs, start.label], [1, 1, "iris-logreg single"]);
  const steps = events.filter((e) => e.event === "step");
  assert.equal(steps.length, start.steps);
  assert.ok(steps.every((e) => e.stepMs > 0 && e.elapsedMs >= 0));
  const quiet = await cli(...args, "--backend", "wasm", "--quiet", "--out", join(dir, "b"));
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stderr, "");
  assert.match(quiet.stdout, /# paratrain report/);
  await Deno.remove(dir, { recursive: true });
});
