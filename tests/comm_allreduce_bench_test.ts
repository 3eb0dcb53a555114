import assert from "node:assert/strict";
import {
  ALLREDUCE_SCHEMA,
  type AllreduceResult,
  busFactor,
  checkAllreduceFits,
} from "../bench/allreduce.ts";
import { renderAllreduceMarkdown, writeAllreduceReport } from "../reports/allreduce_markdown.ts";

const RESULT: AllreduceResult = {
  schema: ALLREDUCE_SCHEMA,
  raw: { transport: "unix", GBps: 2, bytes: 64 << 20 },
  rows: [
    {
      transport: "unix",
      worldSize: 2,
      bytes: 4096,
      usPerOp: 100,
      algbwGBps: 0.04,
      busbwGBps: 0.04,
    },
    {
      transport: "unix",
      worldSize: 4,
      bytes: 64 << 20,
      usPerOp: 80_000,
      algbwGBps: 1,
      busbwGBps: 1.5,
    },
  ],
  env: {
    deno: "2",
    os: "linux",
    arch: "x86_64",
    logicalCpus: 2,
    quick: true,
    startedAt: "2025-01-01T00:00:00.000Z",
  },
};

Deno.test("the Markdown report shows the raw ceiling and busbw as a share of it", () => {
  const markdown = renderAllreduceMarkdown(RESULT);
  assert.match(markdown, /both directions at once \(64 MiB\): \*\*2\.000 GB\/s\*\*/);
  assert.match(markdown, /\| busbw \/ raw \|/);
  assert.match(
    markdown,
    /\| unix {6}\| {5}4 \| 64\.0 MiB \| +80000\.0 \| +1\.000 \| +1\.500 \| +75% \|/,
  );
});

Deno.test("the report files are written whole, with no temporary files left", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const paths = await writeAllreduceReport(RESULT, `${dir}/out`);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(paths.json)), RESULT);
    assert.equal(await Deno.readTextFile(paths.markdown), renderAllreduceMarkdown(RESULT));
    const names = [...Deno.readDirSync(`${dir}/out`)].map((entry) => entry.name).sort();
    assert.deepEqual(names, ["allreduce.json", "allreduce.md"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

async function allreduceCli(args: string[], env: Record<string, string> = {}) {
  const dir = await Deno.makeTempDir();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "allreduce", ...args, "--out", dir],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const result = out.code === 0
    ? JSON.parse(await Deno.readTextFile(`${dir}/allreduce.json`)) as AllreduceResult
    : null;
  await Deno.remove(dir, { recursive: true });
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr), result };
}

Deno.test("allreduce takes nccl-tests' knobs: sizes, factor, iterations, check, collective", async () => {
  const { code, stderr, stdout, result } = await allreduceCli([
    ..."-b 1K -e 64K -f 2 -n 3 -w 1 -c 1 --collective all-gather --world-sizes 2".split(" "),
  ]);
  assert.equal(code, 0, stderr);
  const sizes = [1, 2, 4, 8, 16, 32, 64].map((k) => k << 10);
  // One out-of-place and one in-place row per size.
  assert.deepEqual(
    result!.rows.map((r) => [r.bytes, r.inPlace]),
    sizes.flatMap((b) => [[b, false], [b, true]]),
  );
  for (const row of result!.rows) {
    assert.equal(row.collective, "all-gather");
    assert.equal(row.wrong, 0);
    assert.equal(row.count, row.bytes / 4);
    // all-gather's bus factor is (n−1)/n.
    assert.ok(Math.abs(row.busbwGBps - row.algbwGBps / 2) < 1e-12);
  }
  assert.match(
    stdout,
    /\| collective +\| ranks \| +size \| count \| type +\| redop \| in place \|.*#wrong/,
  );
});

Deno.test("the check counts the elements a corrupted rank got wrong (#wrong > 0)", async () => {
  for (const collective of ["all-gather", "all-reduce"]) {
    const { code, stderr, result } = await allreduceCli(
      [..."-b 4K -e 4K -n 1 -w 0 -c 1 --world-sizes 2 --collective".split(" "), collective],
      { PARATRAIN_TEST_CORRUPT_RANK: "1" },
    );
    assert.equal(code, 0, stderr);
    assert.ok(
      result!.rows.every((r) => (r.wrong ?? 0) > 0),
      `${collective}: ${JSON.stringify(result!.rows)}`,
    );
  }
});

Deno.test("bus bandwidth factors are nccl-tests'", () => {
  assert.equal(busFactor("all-reduce", 4), 1.5);
  assert.equal(busFactor("all-gather", 4), 0.75);
  assert.equal(busFactor("reduce-scatter", 2), 0.5);
  assert.equal(busFactor("broadcast", 8), 1);
});

Deno.test("allreduce --transport unix,tcp: rows of both, each against its own raw throughput", async () => {
  const { code, stderr, stdout, result } = await allreduceCli([
    ..."-b 1M -e 4M -f 4 -n 2 -w 1 --world-sizes 2 --transport unix,tcp".split(" "),
  ]);
  assert.equal(code, 0, stderr);
  assert.deepEqual(result!.raws!.map((r) => r.transport), ["unix", "tcp"]);
  assert.equal(result!.raw.transport, "unix");
  for (const raw of result!.raws!) assert.ok(raw.GBps > 0 && raw.samplesGBps!.length === 2);
  assert.deepEqual(
    [...new Set(result!.rows.map((r) => `${r.transport} ${r.bytes}`))],
    ["unix 1048576", "unix 4194304", "tcp 1048576", "tcp 4194304"],
  );
  assert.match(stdout, /Raw unix socket throughput/);
  assert.match(stdout, /Raw tcp socket throughput/);
  // Each row's busbw / raw uses its own transport's raw throughput.
  const tcpRow = result!.rows.find((r) => r.transport === "tcp")!;
  const share = `${(100 * tcpRow.busbwGBps / result!.raws![1].GBps).toFixed(0)}%`;
  const line = stdout.split("\n").find((l) =>
    l.startsWith("| tcp") && l.includes(tcpRow.usPerOp.toFixed(1))
  );
  assert.ok(line?.trimEnd().endsWith(`${share} |`), `${line} should end with ${share}`);
});

Deno.test("sizes above the frame limit or the memory a run needs are refused with the largest that fits", () => {
  const GiB = 2 ** 30;
  const plenty = { availableBytes: 1024 * GiB };
  checkAllreduceFits(64 << 20, 2, plenty);
  // All-reduce frames are chunks of bytes / n: 8 GiB at 2 ranks sends 4 GiB frames.
  assert.throws(
    () => checkAllreduceFits(8 * GiB, 2, plenty),
    /frames of 4\.0 GiB, above the ring's frame limit of 4294967295 bytes; the largest size that fits is 8589934584 bytes \(-e 8191M\)/,
  );
  checkAllreduceFits(8 * GiB, 4, plenty);
  // A broadcast sends the whole buffer as one frame.
  assert.throws(
    () => checkAllreduceFits(4 * GiB, 4, { ...plenty, collective: "broadcast" }),
    /largest size that fits is 4294967292 bytes \(-e 4095M\)/,
  );
  // Memory: every rank holds two buffers and its own overhead, all on this host.
  const small = { availableBytes: 4 * GiB };
  assert.throws(
    () => checkAllreduceFits(2 * GiB, 2, small),
    /needs about 8\.3 GiB on this host \(2 ranks × 2 buffers of 2\.0 GiB and 128\.0 MiB each\), more than the 4\.0 GiB available; the largest size that fits is 1006632960 bytes \(-e 960M\)/,
  );
  checkAllreduceFits(960 << 20, 2, small);
  assert.throws(
    () => checkAllreduceFits(4096, 64, { availableBytes: 1 << 30 }),
    /no size fits at this world size/,
  );
});
