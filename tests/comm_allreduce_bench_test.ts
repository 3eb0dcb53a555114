import assert from "node:assert/strict";
import { ALLREDUCE_SCHEMA, type AllreduceResult } from "../bench/allreduce.ts";
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
