/**
 * When the process that launched ranks (or bench's isolated run children) dies without a
 * chance to clean up — SIGKILL — its children notice within a fraction of a second, remove the
 * job's rendezvous directory and exit; nothing is written to `--out`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isGone, livePids } from "./_comm_helpers.ts";
import { childrenOf, DDP_FOREVER, envOf } from "./_processes.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
/** The acceptance limit: no process and no rendezvous directory after this. */
const CLEANUP_LIMIT_MS = 5_000;

async function snapshot(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for await (const entry of Deno.readDir(dir)) {
    files[entry.name] = await Deno.readTextFile(join(dir, entry.name));
  }
  return files;
}

/**
 * Starts the CLI with `args`, waits until it has started `expectedChildren` processes, SIGKILLs
 * it, and checks that within the limit its children are gone with their rendezvous directory,
 * and `out` (where the command would write) holds exactly what it held before.
 */
async function killLauncher(args: string[], expectedChildren: number, out: string) {
  await Deno.mkdir(out, { recursive: true });
  await Deno.writeTextFile(join(out, "report.md"), "the previous report\n");
  const before = await snapshot(out);
  const cli = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    stdout: "null",
    stderr: "null",
  }).spawn();
  let children: number[] = [];
  let dirs: string[] = [];
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    children = await childrenOf(cli.pid);
    dirs = (await Promise.all(children.map((c) => envOf(c, "PARATRAIN_RENDEZVOUS"))))
      .filter((d): d is string => !!d);
    if (children.length >= expectedChildren && dirs.length >= expectedChildren) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(children.length >= expectedChildren, `only ${children.length} children started`);
  await new Promise((r) => setTimeout(r, 1_500)); // let them get into their steps
  cli.kill("SIGKILL");
  await cli.status;
  const killedAt = Date.now();
  let alive = children;
  while (Date.now() - killedAt < CLEANUP_LIMIT_MS) {
    alive = await livePids(children);
    if (alive.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(alive, [], `children still running ${Date.now() - killedAt} ms after the kill`);
  for (const dir of new Set(dirs)) assert.ok(await isGone(dir), `${dir} was left behind`);
  // Nothing can write to --out any more; wait past the longest a surviving child would need.
  await new Promise((r) => setTimeout(r, 1_000));
  assert.deepEqual(await snapshot(out), before, "--out was changed");
}

Deno.test("SIGKILL to `train --strategy ddp` stops its ranks and removes the rendezvous", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const out = join(tmp, "out");
    await killLauncher(
      [...DDP_FOREVER, "--checkpoint", join(out, "model.ckpt.json")],
      2,
      out,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("SIGKILL to `bench` stops its run child, and --out keeps the previous report", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const out = join(tmp, "out");
    await killLauncher(
      ["bench", "--workloads", "iris-logreg", "--strategies", "dp", "--steps", "10000000"].concat(
        ["--out", out],
      ),
      1,
      out,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a rank whose launcher died while it was still loading exits at once", async () => {
  const dir = await Deno.makeTempDir();
  const script = join(dir, "rank.ts");
  const runRankUrl = new URL("../comm/rank_main.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { runRank } from "${runRankUrl}";\nawait runRank(() => new Promise(() => {}));\n`,
  );
  // A launcher pid that is not this rank's parent: the launcher is gone and the rank was
  // re-parented before its watch started.
  const gone = new Deno.Command("true").spawn();
  await gone.status;
  const started = Date.now();
  const rank = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", script],
    env: { PARATRAIN_LAUNCHER_PID: String(gone.pid) },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const status = await rank.status;
  assert.equal(status.signal, "SIGKILL");
  assert.ok(Date.now() - started < 20_000);
  await Deno.remove(dir, { recursive: true });
});
