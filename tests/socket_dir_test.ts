/**
 * A rank that a scheduler started (torchrun's variables here) keeps its Unix socket in a
 * private `paratrain-rank-<pid>-…` directory while the ring forms. Signalled while it waits at
 * the rendezvous — SIGINT, SIGTERM, SIGHUP or any other catchable stop signal — it removes the
 * directory and exits 128 + the signal; killed outright (SIGKILL), its directory is removed by
 * the next rank that starts on the host.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SIGNAL_EXIT_CODES, STOP_SIGNALS } from "../core/errors.ts";
import { removeStaleSocketDirs, SOCKET_DIR_PREFIX } from "../comm/_socket_dir.ts";
import { freePort, MAIN, SECRET } from "./_multihost.ts";

/** How long a rank may take to start and reach the rendezvous. */
const START_MS = 60_000;

/** Starts rank 0 of a 2-rank torchrun job that will never complete, with its own TMPDIR. */
function startRank(tmp: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      MAIN,
      "train",
      "--strategy",
      "ddp",
      "--workload",
      "synthetic-mlp",
      "--backend",
      "wasm",
      "--quiet",
    ],
    env: {
      NO_COLOR: "1",
      TMPDIR: tmp,
      RANK: "0",
      WORLD_SIZE: "2",
      LOCAL_RANK: "0",
      LOCAL_WORLD_SIZE: "1",
      MASTER_ADDR: "127.0.0.1",
      MASTER_PORT: String(freePort()),
      PARATRAIN_TOKEN: SECRET,
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  return { child, stderr };
}

/** This test's socket directories of process `pid` in `tmp`. */
function socketDirs(tmp: string, pid?: number): string[] {
  const prefix = pid === undefined ? SOCKET_DIR_PREFIX : `${SOCKET_DIR_PREFIX}${pid}-`;
  return [...Deno.readDirSync(tmp)].filter((e) => e.name.startsWith(prefix)).map((e) => e.name);
}

/** Waits until the rank has made its socket directory (it is then waiting for rank 1). */
async function waitForDir(tmp: string, pid: number): Promise<string> {
  const deadline = Date.now() + START_MS;
  while (Date.now() < deadline) {
    const dirs = socketDirs(tmp, pid);
    if (dirs.length > 0) return dirs[0];
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`rank ${pid} made no socket directory within ${START_MS} ms`);
}

async function withTmp(body: (tmp: string) => Promise<void>) {
  const tmp = await Deno.makeTempDir();
  try {
    await body(tmp);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1"] as const) {
  Deno.test(`a scheduler's rank signalled (${signal}) at the rendezvous removes its socket directory`, async () => {
    assert.ok(STOP_SIGNALS.includes(signal));
    await withTmp(async (tmp) => {
      const { child, stderr } = startRank(tmp);
      try {
        await waitForDir(tmp, child.pid);
        child.kill(signal);
        const status = await child.status;
        await stderr;
        assert.equal(status.code, SIGNAL_EXIT_CODES[signal], `exit: ${JSON.stringify(status)}`);
        assert.deepEqual(socketDirs(tmp), [], "the socket directory was left behind");
      } finally {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }
    });
  });
}

Deno.test("a rank killed outright leaves its directory; the next rank on the host removes it", async () => {
  await withTmp(async (tmp) => {
    const first = startRank(tmp);
    const left = await waitForDir(tmp, first.child.pid);
    first.child.kill("SIGKILL");
    await first.child.status;
    await first.stderr;
    assert.deepEqual(socketDirs(tmp), [left], "SIGKILL cannot be caught: the directory stays");
    // A live process's directory is never taken, whoever made it.
    const live = await Deno.makeTempDir({ dir: tmp, prefix: `${SOCKET_DIR_PREFIX}${Deno.pid}-` });
    const second = startRank(tmp);
    try {
      const own = await waitForDir(tmp, second.child.pid);
      assert.deepEqual(socketDirs(tmp).sort(), [own, live.split("/").at(-1)!].sort());
    } finally {
      second.child.kill("SIGTERM");
      await second.child.status;
      await second.stderr;
    }
    assert.deepEqual(removeStaleSocketDirs(tmp), [], "this process's own is not stale");
    await Deno.remove(join(live));
  });
});
