import assert from "node:assert/strict";
import { initProcessGroup } from "../comm/init_process_group.ts";
import { launch, LaunchError, type RankLine } from "../comm/launcher.ts";
import { createRendezvous, rankSocketPath } from "../comm/rendezvous.ts";
import { clientHandshake, importTokenKey } from "../comm/_auth.ts";
import { CommError } from "../comm/_ring.ts";
import {
  type CasesReport,
  isGone,
  livePids,
  parsePidLine,
  RANK_MODULE,
  type Scenario,
  withGroups,
} from "./_comm_helpers.ts";

/** A failed job must be reported within this. */
const FAILURE_REPORT_LIMIT_MS = 15_000;

/** Collects the pid and rendezvous directory each rank prints first. */
function pidCollector() {
  const pids = new Map<number, number>();
  let dir = "";
  const onLine = (line: RankLine) => {
    const parsed = parsePidLine(line.line);
    if (parsed) {
      pids.set(line.rank, parsed.pid);
      dir = parsed.dir;
    }
  };
  return { pids, onLine, dir: () => dir };
}

async function expectLaunchFailure(
  scenario: Scenario,
  options: { worldSize: number; collectiveTimeoutMs?: number; onLine?: (line: RankLine) => void },
): Promise<{ error: LaunchError; elapsedMs: number; pids: number[]; dir: string }> {
  const collector = pidCollector();
  const started = performance.now();
  const error = await launch(RANK_MODULE, {
    worldSize: options.worldSize,
    collectiveTimeoutMs: options.collectiveTimeoutMs,
    args: [JSON.stringify(scenario)],
    onLine: (line) => {
      collector.onLine(line);
      options.onLine?.(line);
    },
  }).then(() => null, (error) => error);
  const elapsedMs = performance.now() - started;
  assert.ok(error instanceof LaunchError, `expected a LaunchError, got ${error}`);
  return { error, elapsedMs, pids: [...collector.pids.values()], dir: collector.dir() };
}

Deno.test("a rank that exits mid-run fails the job at once, naming it, with no rank left", async () => {
  const { error, elapsedMs, pids, dir } = await expectLaunchFailure(
    { kind: "die", victim: 1, how: "exit", afterIterations: 5 },
    { worldSize: 3 },
  );
  assert.match(error.message, /^Rank 1 exited with code 3/);
  assert.equal(error.rank, 1);
  assert.equal(error.code, 3);
  assert.ok(elapsedMs < FAILURE_REPORT_LIMIT_MS, `took ${elapsedMs} ms`);
  assert.equal(pids.length, 3);
  assert.deepEqual(await livePids(pids), []);
  assert.ok(dir !== "" && await isGone(dir), `rendezvous ${dir} was not removed`);
});

Deno.test("a rank killed by SIGKILL fails the job, naming it and the signal", async () => {
  const killed: number[] = [];
  const collector = pidCollector();
  const { error, elapsedMs, pids } = await expectLaunchFailure(
    { kind: "die", victim: 2, how: "wait-for-kill", afterIterations: 3 },
    {
      worldSize: 3,
      onLine: (line) => {
        collector.onLine(line);
        const victim = collector.pids.get(2);
        if (
          line.rank === 2 && line.line === "ready to be killed" && victim && killed.length === 0
        ) {
          killed.push(victim);
          Deno.kill(victim, "SIGKILL");
        }
      },
    },
  );
  assert.equal(killed.length, 1);
  assert.match(error.message, /^Rank 2 was killed by SIGKILL/);
  assert.equal(error.signal, "SIGKILL");
  assert.ok(elapsedMs < FAILURE_REPORT_LIMIT_MS, `took ${elapsedMs} ms`);
  assert.deepEqual(await livePids(pids), []);
});

Deno.test("a rank that stops answering makes its peer time out naming it", async () => {
  const { error, elapsedMs, pids } = await expectLaunchFailure(
    { kind: "stall", victim: 1 },
    { worldSize: 2, collectiveTimeoutMs: 2_000 },
  );
  assert.equal(error.rank, 0);
  assert.match(error.message, /Rank 1 stopped answering during all-reduce \(timeout 2 s\)/);
  assert.ok(elapsedMs < FAILURE_REPORT_LIMIT_MS, `took ${elapsedMs} ms`);
  assert.deepEqual(await livePids(pids), [], "the stalled rank was not killed");
});

Deno.test("every waiting rank names the rank that never arrived, not its neighbour", async () => {
  await withGroups(3, async (groups) => {
    const outcomes = await Promise.allSettled(
      groups.slice(0, 2).map((group) => group.allReduce(new Float32Array(1000))),
    );
    for (const outcome of outcomes) {
      assert.equal(outcome.status, "rejected");
      const error = (outcome as PromiseRejectedResult).reason;
      assert.ok(error instanceof CommError);
      assert.equal(error.peer, 2);
      assert.match(error.message, /^Rank 2 stopped answering during all-reduce \(timeout 1 s\)$/);
    }
    await assert.rejects(
      groups[0].barrier(),
      /Cannot run barrier: the process group failed earlier/,
    );
  }, { timeoutMs: 1_000 });
});

Deno.test("a peer that closes its connection is named", async () => {
  await withGroups(2, async (groups) => {
    groups[1].close();
    await assert.rejects(
      groups[0].allReduce(new Float32Array(10)),
      /^CommError: Rank 1 closed its connection during all-reduce$/,
    );
    await assert.rejects(
      groups[1].barrier(),
      /^CommError: Cannot run barrier: the process group is closed$/,
    );
  });
});

Deno.test("a client with a wrong token is refused and the job still forms", async () => {
  const { dir, token } = await createRendezvous();
  try {
    const rank0 = initProcessGroup({ rank: 0, worldSize: 2, rendezvousDir: dir, token });
    const path = rankSocketPath(dir, 0);
    while (await isGone(path)) await new Promise((resolve) => setTimeout(resolve, 10));

    // Rank 1's hello, proven with a secret of its own; then bytes that are no hello at all.
    const impostor = await Deno.connect({ transport: "unix", path });
    const wrongKey = await importTokenKey("f".repeat(64));
    const problem = await clientHandshake(
      impostor,
      wrongKey,
      { rank: 1, worldSize: 2, purpose: "ring" },
      () => null,
    );
    assert.match(String(problem), /refused/);
    impostor.close();
    const garbage = await Deno.connect({ transport: "unix", path });
    await garbage.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
    // Refused: closed after the challenge (EOF, or a reset when its bytes were left unread).
    const answer = await readUntilClosed(garbage);
    assert.ok(answer === null || answer instanceof Deno.errors.ConnectionReset, `got ${answer}`);
    garbage.close();

    const rank1 = initProcessGroup({ rank: 1, worldSize: 2, rendezvousDir: dir, token });
    const groups = await Promise.all([rank0, rank1]);
    const bufs = groups.map((group) => new Float32Array([group.rank, 1]));
    await Promise.all(groups.map((group, rank) => group.allReduce(bufs[rank])));
    assert.deepEqual([...bufs[0]], [1, 2]);
    for (const group of groups) group.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing neighbour gives a clear connect error after the timeout", async () => {
  const { dir, token } = await createRendezvous();
  try {
    await assert.rejects(
      initProcessGroup({ rank: 0, worldSize: 2, rendezvousDir: dir, token, connectTimeoutMs: 300 }),
      /^CommError: Cannot connect to rank 1: socket not found after 0.3 s$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the rendezvous directory is private (0700) and removed after the job", async () => {
  const { results } = await launch<CasesReport>(RANK_MODULE, {
    worldSize: 2,
    args: [
      JSON.stringify({ kind: "cases", cases: [{ collective: "barrier", length: 0, seed: 0 }] }),
    ],
    onLine: () => {},
  });
  const dir = results[0]!.dir;
  assert.equal(results[0]!.dirMode, 0o700);
  assert.equal(results[1]!.dir, dir);
  assert.ok(await isGone(dir));
});

Deno.test("a job past its deadline is killed and reported", async () => {
  const { pids, dir } = await (async () => {
    const collector = pidCollector();
    await assert.rejects(
      launch(RANK_MODULE, {
        worldSize: 2,
        timeoutMs: 1_500,
        args: [JSON.stringify({ kind: "stall", victim: 1 })],
        onLine: collector.onLine,
      }),
      /^LaunchError: Job timed out after 1.5 s with ranks 0, 1 still running; all were killed$/,
    );
    return { pids: [...collector.pids.values()], dir: collector.dir() };
  })();
  assert.deepEqual(await livePids(pids), []);
  assert.ok(await isGone(dir));
});

Deno.test("SIGINT to the launcher stops every rank and removes the rendezvous", async () => {
  const scenario: Scenario = { kind: "launch", worldSize: 2, inner: { kind: "stall", victim: 1 } };
  const launcher = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", RANK_MODULE.href, JSON.stringify(scenario)],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(launcher.stderr).text();
  const pids: number[] = [];
  let dir = "";
  const decoder = new TextDecoder();
  let pending = "";
  for await (const bytes of launcher.stdout) {
    pending += decoder.decode(bytes, { stream: true });
    for (const line of pending.split("\n")) {
      const parsed = parsePidLine(line.replace(/^\[rank \d+\] /, ""));
      if (parsed && !pids.includes(parsed.pid)) {
        pids.push(parsed.pid);
        dir = parsed.dir;
      }
    }
    if (pids.length === 2) break;
  }
  launcher.kill("SIGINT");
  const status = await launcher.status;
  assert.equal(status.code, 1);
  assert.match(await stderr, /Job interrupted by SIGINT; all ranks were killed/);
  assert.deepEqual(await livePids(pids), []);
  assert.ok(await isGone(dir));
});

/** Reads until the peer closes: null on EOF, or the error the read ended with. */
async function readUntilClosed(conn: Deno.Conn): Promise<null | Error> {
  const buf = new Uint8Array(256);
  try {
    while ((await conn.read(buf)) !== null) {
      // The challenge, which any client gets; keep reading.
    }
    return null;
  } catch (error) {
    return error as Error;
  }
}
