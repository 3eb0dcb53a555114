/**
 * Honest answers on the fallback backend: on wasm (or cpu) every verdict is provisional, in
 * results.json and in the answer table, which says why; the report's first screen and bench's
 * first lines say how to get `native`. Native verdicts carry no flag, and older files still
 * validate.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type MatrixEntry, type VerdictRecord } from "../analysis/matrix.ts";
import { gettingNative, PROVISIONAL_BACKENDS, provisionalNote } from "../analysis/provisional.ts";
import { readResults, validateResults } from "../analysis/validate_results.ts";
import { describeEnvironment } from "../bench/environment.ts";
import { renderHtml } from "../reports/html.ts";
import { renderMarkdown } from "../reports/markdown.ts";
import { makeMachineResults, NATIVE_MISSING } from "./_results_fixture.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
const WASM_WHY = PROVISIONAL_BACKENDS.wasm;

const answerRows = (md: string) =>
  md.slice(md.indexOf("## The answer"), md.indexOf("## ", md.indexOf("## The answer") + 3))
    .split("\n").filter((l) => /^\| (mnist-cnn|iris-logreg|iris|mnist)/.test(l));

Deno.test("wasm verdicts are provisional in the matrix, in verdicts and in every answer row", () => {
  const results = makeMachineResults("wasm");
  const verdicts = results.verdicts as VerdictRecord[];
  assert.equal(verdicts.length, 2);
  assert.ok(verdicts.every((v) => v.provisional === true));
  const recs = (results.matrix as MatrixEntry[]).filter((e) => e.aspect === "recommendation");
  assert.ok(recs.every((r) => "provisional" in r && r.provisional === true));
  validateResults(JSON.parse(JSON.stringify(results)), "provisional results");
  const md = renderMarkdown(results);
  const rows = answerRows(md);
  assert.equal(rows.length, 2);
  for (const row of rows) {
    assert.match(row, /\| (choose|keep single|inconclusive) \(provisional\) +\|/);
    assert.ok(row.includes(`provisional — ${WASM_WHY}`), row);
  }
  // The first screen: the note comes before the table and says how to get native.
  const note = md.indexOf("> **Provisional verdicts** — wasm: compute several times slower");
  assert.ok(note > 0 && note < md.indexOf("| workload"), "the note leads the answer");
  assert.ok(md.includes("install it with `apt-get install libopenblas0-pthread`"));
});

Deno.test("native verdicts carry no provisional flag, note or words", async () => {
  const results = makeMachineResults("native");
  assert.ok((results.verdicts as VerdictRecord[]).every((v) => !("provisional" in v)));
  const md = renderMarkdown(results);
  assert.doesNotMatch(md, /provisional/i);
  assert.doesNotMatch(await renderHtml(results), /provisional/i);
});

Deno.test("the HTML report puts the provisional note first, above the answer table", async () => {
  const html = await renderHtml(makeMachineResults("wasm"));
  const note = html.indexOf('<p class="provisional"><strong>Provisional verdicts</strong>');
  assert.ok(note > 0, "the note is there");
  assert.ok(note < html.indexOf('<table class="answer">'));
  assert.ok(html.includes("<code>apt-get install libopenblas0-pthread</code>"));
  assert.match(html, /<td>keep single \(provisional\)<\/td>/);
});

Deno.test("how to get native follows what the bench recorded", () => {
  assert.match(
    gettingNative({ nativeUnavailable: NATIVE_MISSING }),
    /apt-get install libopenblas0-pthread/,
  );
  assert.match(gettingNative({ nativeUnavailable: null }), /`native` loads on this machine/);
  assert.match(gettingNative({}), /install OpenBLAS/);
  assert.equal(provisionalNote({ backend: "native" }), null);
  assert.equal(provisionalNote({ backend: "webgpu" }), null);
  assert.match(
    provisionalNote({ backend: "cpu" }, "B")!,
    /^\*\*Provisional verdicts on B\*\* — cpu:/,
  );
});

Deno.test("files without the new keys still validate; the new keys validate with their types", () => {
  const results = makeMachineResults("wasm");
  const old = JSON.parse(JSON.stringify(results));
  delete old.env.nativeUnavailable;
  delete old.verdicts;
  for (const e of old.matrix) delete e.provisional;
  validateResults(old, "a file written before provisional verdicts");
  const bad = JSON.parse(JSON.stringify(results));
  bad.verdicts[0].provisional = "yes";
  assert.throws(() => validateResults(bad, "bad.json"), /\/verdicts\/0\/provisional/);
  const badDate = JSON.parse(JSON.stringify(results));
  badDate.env.gitCommitDate = 20260101;
  assert.throws(() => validateResults(badDate, "bad.json"), /\/env\/gitCommitDate/);
});

Deno.test("the environment records the commit's date and, off native, whether native loads", async () => {
  const env = await describeEnvironment("wasm", true);
  assert.match(env.gitCommit ?? "", /^[0-9a-f]{40}$/);
  assert.ok(!Number.isNaN(Date.parse(env.gitCommitDate!)), `${env.gitCommitDate}`);
  assert.ok(env.nativeUnavailable === null || /libopenblas/.test(env.nativeUnavailable!));
});

async function cli(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("bench --backend wasm: provisional verdicts in results.json, said first and in the table", async () => {
  const dir = await Deno.makeTempDir();
  const r = await cli([
    "bench",
    "--quick",
    "--workloads",
    "iris-logreg",
    "--strategies",
    "single,ddp",
    "--backend",
    "wasm",
    "--out",
    dir,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const [first, second] = r.stderr.split("\n");
  assert.equal(first, "backend wasm (as asked)");
  assert.ok(second.startsWith(`Provisional verdicts — ${WASM_WHY}.`), second);
  assert.match(second, /loads on this machine|apt-get install libopenblas0-pthread/);
  const results = await readResults(join(dir, "results.json"));
  const verdicts = results.verdicts as VerdictRecord[];
  assert.equal(verdicts.length, 1);
  assert.equal(verdicts[0].provisional, true);
  const md = await Deno.readTextFile(join(dir, "report.md"));
  assert.match(md, /\| iris-logreg \| (keep single|choose|inconclusive) \(provisional\) \|/);
  assert.ok(md.includes(`provisional — ${WASM_WHY}`));
  assert.ok(r.stdout.includes(`provisional — ${WASM_WHY}`), "the printed report says so too");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bench falling back to wasm says how to get native in its first lines and its results", async () => {
  const dir = await Deno.makeTempDir();
  const r = await cli(
    ["bench", "--quick", "--workloads", "iris-logreg", "--strategies", "single", "--out", dir],
    { PARATRAIN_OPENBLAS: "/nonexistent/libopenblas.so" },
  );
  assert.equal(r.code, 0, r.stderr);
  const [first, second] = r.stderr.split("\n");
  assert.match(first, /^backend wasm \(default here\): OpenBLAS could not be loaded/);
  assert.match(
    second,
    /^Provisional verdicts — wasm: .*To get `native`: OpenBLAS could not be loaded from PARATRAIN_OPENBLAS=\/nonexistent\/libopenblas\.so .*apt-get install libopenblas0-pthread/,
  );
  const results = await readResults(join(dir, "results.json"));
  assert.match(results.env.nativeUnavailable!, /PARATRAIN_OPENBLAS=\/nonexistent/);
  assert.ok((results.verdicts as VerdictRecord[]).every((v) => v.provisional === true));
  await Deno.remove(dir, { recursive: true });
});
