/**
 * The multi-host tests' two behaviours where their tools are missing: a fresh machine skips them
 * with one line saying what they need (and the suite still passes); CI, which sets
 * PARATRAIN_REQUIRE_NETNS=1 and PARATRAIN_REQUIRE_MPIRUN=1, fails instead.
 */
import assert from "node:assert/strict";

const NETNS_TEST = new URL("./ddp_netns_test.ts", import.meta.url).pathname;
const TCP_TEST = new URL("./ddp_tcp_test.ts", import.meta.url).pathname;

/** Runs a test file with a PATH where neither `ip` nor `mpirun` can be found. */
async function runWithout(file: string, env: Record<string, string>, filter?: string) {
  const empty = await Deno.makeTempDir();
  try {
    const keep = ["HOME", "DENO_DIR"].flatMap((name) => {
      const value = Deno.env.get(name);
      return value === undefined ? [] : [[name, value]];
    });
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--allow-all", ...(filter ? ["--filter", filter] : []), file],
      clearEnv: true,
      env: { ...Object.fromEntries(keep), PATH: empty, NO_COLOR: "1", ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
  } finally {
    await Deno.remove(empty);
  }
}

Deno.test("without ip netns the namespace tests are skipped with one line; required, they fail", async () => {
  const skipped = await runWithout(NETNS_TEST, { PARATRAIN_REQUIRE_NETNS: "0" });
  assert.equal(skipped.code, 0, skipped.text);
  const lines = skipped.text.split("\n").filter((l) => l.startsWith("skipped "));
  assert.equal(lines.length, 1, skipped.text);
  assert.match(lines[0], /network-namespace DDP tests .*need root and iproute2/);
  assert.match(skipped.text, /7 ignored/);
  const required = await runWithout(NETNS_TEST, { PARATRAIN_REQUIRE_NETNS: "1" });
  assert.notEqual(required.code, 0, required.text);
  assert.match(required.text, /network namespaces are unavailable \(PARATRAIN_REQUIRE_NETNS=1\)/);
});

Deno.test("without mpirun its test is skipped with one line; required, it fails", async () => {
  const skipped = await runWithout(TCP_TEST, { PARATRAIN_REQUIRE_MPIRUN: "0" }, "mpirun");
  assert.equal(skipped.code, 0, skipped.text);
  const lines = skipped.text.split("\n").filter((l) => l.startsWith("skipped "));
  assert.equal(lines.length, 1, skipped.text);
  assert.match(lines[0], /`mpirun` not found; to run it, `apt-get install -y openmpi-bin`/);
  assert.match(skipped.text, /1 ignored/);
  const required = await runWithout(TCP_TEST, { PARATRAIN_REQUIRE_MPIRUN: "1" }, "mpirun");
  assert.notEqual(required.code, 0, required.text);
  assert.match(
    required.text,
    /`mpirun` not found: this test needs it \(PARATRAIN_REQUIRE_MPIRUN=1\)/,
  );
});
