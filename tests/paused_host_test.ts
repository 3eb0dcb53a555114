/**
 * A host paused (SIGSTOP to its launcher and ranks) past the collective timeout, then resumed
 * (SIGCONT): the other host names the paused rank as the one that stopped answering, and the
 * paused host, once it runs again, names itself as having been stopped — it does not blame the
 * host that gave up on it. Here the hosts are launchers on loopback; the same probe between
 * network namespaces is in `ddp_netns_test.ts`.
 */
import assert from "node:assert/strict";
import { childrenOf } from "./_processes.ts";
import { killQuietly, startLoopbackNodes } from "./_multihost.ts";

/** The collective timeout of the job, s. */
const TIMEOUT_S = 3;
/** How long host 1 stays paused: well past the timeout. */
const PAUSE_MS = 3 * TIMEOUT_S * 1000;

/** A launcher and every process under it. */
async function tree(pid: number): Promise<number[]> {
  const children = await childrenOf(pid);
  return [pid, ...(await Promise.all(children.map(tree))).flat()];
}

Deno.test("a paused host, once resumed, names itself, and the other host names it too", async () => {
  const job = startLoopbackNodes([0, 1].map((node) => [node, [
    "--steps",
    "10000000",
    "--collective-timeout",
    String(TIMEOUT_S),
  ]]));

  try {
    // Both ranks running and training: host 1's launcher has its rank (and it its threads).
    let pids: number[] = [];
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && pids.length < 2) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      pids = await tree(job[1].child.pid);
    }
    assert.ok(pids.length >= 2, "host 1 did not start its rank");
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    for (const pid of pids) Deno.kill(pid, "SIGSTOP");
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
    for (const pid of pids) Deno.kill(pid, "SIGCONT");
    const [host0, host1] = await Promise.all(job.map((l) => l.ended));
    assert.equal(host0.code, 1, host0.stderr);
    assert.equal(host1.code, 1, host1.stderr);
    // Host 0 names rank 1 (host 1's) as the one that stopped answering.
    assert.match(host0.stderr, /paratrain: Rank 1 on 127\.0\.0\.1 stopped answering/);
    // Host 1 names itself, and does not blame rank 0.
    assert.match(
      host1.stderr,
      /paratrain: Rank 1 failed: Rank 1 on 127\.0\.0\.1 \(this rank\) was stopped for \d+(\.\d+)? s during .*: its process was paused/,
    );
    assert.doesNotMatch(
      host1.stderr,
      /paratrain: .*Rank 0 .*(stopped answering|closed its connection)/,
    );
  } finally {
    job.forEach(killQuietly);
  }
});
