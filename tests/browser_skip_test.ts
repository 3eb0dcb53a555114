/**
 * The browser test's two behaviours where Chromium is missing: a fresh machine skips it with
 * one line saying how to enable it (and the suite still passes); CI, which sets
 * PARATRAIN_REQUIRE_CHROMIUM=1, fails instead.
 */
import assert from "node:assert/strict";

const HTML_TEST = new URL("./html_report_test.ts", import.meta.url).pathname;

async function runBrowserTest(require: "0" | "1") {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", "--filter", "headless Chromium", HTML_TEST],
    env: {
      PARATRAIN_CHROMIUM: "/nonexistent/chromium",
      PARATRAIN_REQUIRE_CHROMIUM: require,
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test("without Chromium the browser test is skipped with one line naming it and the fix", async () => {
  const r = await runBrowserTest("0");
  assert.equal(r.code, 0, r.text);
  const lines = r.text.split("\n").filter((l) => l.startsWith("skipped "));
  assert.equal(lines.length, 1, r.text);
  assert.match(lines[0], /skipped "headless Chromium opens report\.html offline/);
  assert.match(lines[0], /apt-get install -y chromium/);
  assert.match(lines[0], /PARATRAIN_CHROMIUM/);
  assert.match(r.text, /1 ignored/);
});

Deno.test("with PARATRAIN_REQUIRE_CHROMIUM=1 a missing Chromium fails the browser test", async () => {
  const r = await runBrowserTest("1");
  assert.notEqual(r.code, 0, r.text);
  assert.match(r.text, /Chromium is not installed at \/nonexistent\/chromium/);
  assert.match(r.text, /1 failed/);
});
