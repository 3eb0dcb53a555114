/**
 * What a hostile or careless user hands the commands as files and paths: every input file is
 * read by one bounded, regular-file-only reader (a FIFO, /dev/zero, a directory or an
 * oversized file is one line and exit 2 at once, never a hang or a memory blow-up), and every
 * output path is checked before any work.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readInputFile } from "../core/read_input.ts";
import { MAX_RESULTS_BYTES } from "../analysis/validate_results.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
const SECRET = "0123456789abcdef".repeat(4);
/** Far longer than any of these commands takes to refuse; a read that hangs is killed here. */
const HANG_MS = 30_000;

/** Runs the CLI; a run past {@linkcode HANG_MS} is killed and reported as hung. */
async function cli(args: string[], env: Record<string, string> = {}) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const started = Date.now();
  const timer = setTimeout(() => child.kill("SIGKILL"), HANG_MS);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    ms: Date.now() - started,
  };
}

function oneLine(r: { code: number; stderr: string; ms: number }, message: RegExp) {
  assert.ok(r.ms < HANG_MS, `hung: killed after ${r.ms} ms`);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, message);
  assert.equal(r.stderr.trim().split("\n").length, 1, `one line expected, got: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
}

async function withDir(body: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function mkfifo(path: string) {
  const made = new Deno.Command("mkfifo", { args: [path] }).outputSync();
  assert.ok(made.success, "mkfifo failed");
}

/** A sparse file of `bytes` (no disk used): large by size, instantly made. */
async function sparse(path: string, bytes: number) {
  await Deno.writeTextFile(path, "");
  await Deno.truncate(path, bytes);
}

Deno.test("the reader refuses what is not a regular file, and what is above its limit", async () => {
  await withDir(async (dir) => {
    const fifo = join(dir, "fifo");
    mkfifo(fifo);
    const link = join(dir, "zero");
    await Deno.symlink("/dev/zero", link);
    const big = join(dir, "big");
    await sparse(big, 2048);
    const cases: [string, RegExp][] = [
      [fifo, /Cannot read input .*fifo: a FIFO, not a regular file/],
      [link, /Cannot read input .*zero: a character device, not a regular file/],
      ["/dev/zero", /Cannot read input \/dev\/zero: a character device, not a regular file/],
      [dir, /Cannot read input .*: a directory, not a regular file/],
      [big, /Cannot read input .*big: 2\.0 KiB is more than the limit of 1\.0 KiB for tests/],
      [join(dir, "none"), /Cannot read input .*none: No such file/],
    ];
    for (const [path, message] of cases) {
      await assert.rejects(
        readInputFile(path, { what: "input", limitBytes: 1024, limitName: "tests" }),
        message,
        path,
      );
    }
    assert.equal(
      await readInputFile(join(dir, "none"), { limitBytes: 1, missingOk: true }),
      null,
    );
    await Deno.writeTextFile(big, "x".repeat(1024));
    assert.equal((await readInputFile(big, { limitBytes: 1024 })).length, 1024);
  });
});

Deno.test("train --resume of /dev/zero, a link to it, a FIFO or an oversized file: exit 2 at once", async () => {
  await withDir(async (dir) => {
    const fifo = join(dir, "ckpt.fifo");
    mkfifo(fifo);
    const link = join(dir, "ckpt.json");
    await Deno.symlink("/dev/zero", link);
    const huge = join(dir, "huge.json");
    await sparse(huge, 20 * 2 ** 30);
    const train = ["train", "--workload", "synthetic-mlp", "--steps", "1", "--backend", "wasm"];
    for (
      const [path, message] of [
        ["/dev/zero", /Cannot read checkpoint \/dev\/zero: a character device, not a regular file/],
        [link, /Cannot read checkpoint .*ckpt\.json: a character device, not a regular file/],
        [fifo, /Cannot read checkpoint .*ckpt\.fifo: a FIFO, not a regular file/],
        [dir, /Cannot read checkpoint .*: a directory, not a regular file/],
        [
          huge,
          /Cannot read checkpoint .*huge\.json: 20\.0 GiB is more than the limit of [\d.]+ MiB for a checkpoint of this model/,
        ],
      ] as const
    ) {
      oneLine(await cli([...train, "--resume", path]), message);
    }
  });
});

Deno.test("report, gate, compare and noise refuse /dev/zero, FIFOs and oversized results at once", async () => {
  await withDir(async (dir) => {
    const fifo = join(dir, "results.json");
    mkfifo(fifo);
    const huge = join(dir, "huge.json");
    await sparse(huge, MAX_RESULTS_BYTES + 1);
    oneLine(
      await cli(["report", "--in", "/dev/zero", "--out", join(dir, "out")]),
      /Cannot read \/dev\/zero: a character device, not a regular file/,
    );
    oneLine(await cli(["report", "--in", fifo]), /Cannot read .*results\.json: a FIFO/);
    oneLine(
      await cli(["gate", "--baseline", huge, "--current", huge]),
      /Cannot read .*huge\.json: 256\.0 MiB is more than the limit of 256\.0 MiB for a results file/,
    );
    oneLine(await cli(["compare", "/dev/zero", huge]), /Cannot read \/dev\/zero: a character/);
    oneLine(await cli(["noise", fifo, huge]), /Cannot read .*: (a FIFO|256\.0 MiB is more)/);
  });
});

Deno.test("an allreduce.json beside the results that is a FIFO or a device is refused at once", async () => {
  await withDir(async (dir) => {
    const src = new URL("../docs/report/results.json", import.meta.url).pathname;
    await Deno.copyFile(src, join(dir, "results.json"));
    mkfifo(join(dir, "allreduce.json"));
    oneLine(
      await cli(["report", "--in", join(dir, "results.json"), "--out", join(dir, "out")]),
      /Cannot read .*allreduce\.json: a FIFO, not a regular file/,
    );
  });
});

Deno.test("a --token-file that is a FIFO or /dev/zero is refused at once, never waited on", async () => {
  await withDir(async (dir) => {
    const fifo = join(dir, "token");
    mkfifo(fifo);
    await Deno.chmod(fifo, 0o600);
    const args = [
      "train",
      "--strategy",
      "ddp",
      "--workload",
      "synthetic-mlp",
      "--nnodes",
      "2",
      "--node-rank",
      "1",
      "--master-addr",
      "127.0.0.1",
    ];
    oneLine(
      await cli([...args, "--token-file", fifo]),
      /Cannot read --token-file .*token: a FIFO, not a regular file/,
    );
    oneLine(
      await cli([...args, "--token-file", "/dev/zero"]),
      /Cannot read --token-file \/dev\/zero: a character device/,
    );
    const big = join(dir, "big-token");
    await Deno.writeTextFile(big, SECRET.repeat(2000));
    await Deno.chmod(big, 0o600);
    oneLine(
      await cli([...args, "--token-file", big]),
      /Cannot read --token-file .*big-token: 125\.0 KiB is more than the limit of 64\.0 KiB for a token file/,
    );
  });
});

Deno.test("output paths in the way are found before any work: a directory as --checkpoint, a report file that is a folder", async () => {
  await withDir(async (dir) => {
    // A run that would take hours: only a check before the work can end it within the test.
    const long = ["--workload", "synthetic-mlp", "--steps", "10000000", "--backend", "wasm"];
    const ckpt = join(dir, "ckpt");
    await Deno.mkdir(ckpt);
    for (const strategy of ["single", "ddp"]) {
      oneLine(
        await cli(["train", "--strategy", strategy, ...long, "--checkpoint", ckpt]),
        /Cannot write to --checkpoint ".*ckpt": it is a directory/,
      );
    }
    const fifo = join(dir, "ckpt.fifo");
    mkfifo(fifo);
    oneLine(
      await cli(["train", ...long, "--checkpoint", fifo]),
      /Cannot write to --checkpoint ".*ckpt\.fifo": it is a FIFO/,
    );
    const out = join(dir, "out");
    await Deno.mkdir(join(out, "report.md"), { recursive: true });
    oneLine(
      await cli([
        "bench",
        "--workloads",
        "synthetic-mlp",
        "--steps",
        "10000000",
        "--strategies",
        "single",
        "--out",
        out,
      ]),
      /Cannot write to --out ".*out": its report\.md is a directory, not a file/,
    );
    await Deno.mkdir(join(out, "allreduce.json"));
    oneLine(
      await cli(["allreduce", "--world-sizes", "2", "-n", "100000", "--out", out]),
      /Cannot write to --out ".*out": its allreduce\.json is a directory, not a file/,
    );
    const src = new URL("../docs/report/results.json", import.meta.url).pathname;
    const again = join(dir, "again");
    await Deno.mkdir(join(again, "report.html"), { recursive: true });
    await Deno.copyFile(src, join(again, "results.json"));
    oneLine(
      await cli(["report", "--in", join(again, "results.json")]),
      /Cannot write to --out ".*again": its report\.html is a directory, not a file/,
    );
    // Nothing already there was touched.
    assert.deepEqual(
      [...Deno.readDirSync(again)].map((e) => e.name).sort(),
      ["report.html", "results.json"],
    );
  });
});
