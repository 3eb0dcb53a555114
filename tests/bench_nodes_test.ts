/**
 * `bench` across hosts, with two launchers on loopback standing for two hosts (node 1's ranks
 * bind 127.0.0.2, so the two "hosts" are told apart and linked over TCP): DDP runs span both,
 * record `transport: "tcp"` and `hosts: 2`, and end equal to single; a host with other flags is
 * refused; a host that dies fails the bench at once, naming it; bad flags are one line.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { EQUIVALENCE_TOLERANCE } from "./_run_spec.ts";
import { freePort, killQuietly, type Launcher, MAIN, SECRET, startLauncher } from "./_multihost.ts";

/** The same bench on every host. */
function benchArgs(port: number, extra: string[] = []): string[] {
  return [
    "bench",
    "--workloads",
    "synthetic-mlp",
    "--strategies",
    "single,ddp",
    "--warmup",
    "0",
    "--repeats",
    "1",
    "--backend",
    "wasm",
    "--nnodes",
    "2",
    "--nproc-per-node",
    "1",
    "--master-addr",
    "127.0.0.1",
    "--master-port",
    String(port),
    ...extra,
  ];
}

function node(rank: number, args: string[], env = { PARATRAIN_TOKEN: SECRET }): Launcher {
  const bind = rank === 0 ? [] : ["--bind", `127.0.0.${rank + 1}`];
  return startLauncher([], [...args, "--node-rank", String(rank), ...bind], env);
}

Deno.test("a two-node bench on loopback: DDP runs span both hosts over TCP, equal to single", async () => {
  const out = await Deno.makeTempDir();
  const port = freePort();
  const nodes = [
    node(0, benchArgs(port, ["--steps", "20", "--quiet", "--out", out])),
    node(1, benchArgs(port, ["--steps", "20", "--quiet"])),
  ];
  try {
    const [zero, one] = await Promise.all(nodes.map((n) => n.ended));
    assert.equal(zero.code, 0, zero.stderr);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /Node 1 of 2: ran its ranks of 2 DDP runs; node 0 \(.+\) wrote/);
    const results = JSON.parse(await Deno.readTextFile(join(out, "results.json")));
    const ddp = results.runs.filter((r: { strategy: string }) => r.strategy === "ddp");
    assert.equal(ddp.length, 1);
    assert.equal(ddp[0].transport, "tcp");
    assert.equal(ddp[0].hosts, 2);
    assert.equal(ddp[0].worldSize, 2);
    assert.ok(ddp[0].paramMaxAbsDiffVsSingle < EQUIVALENCE_TOLERANCE, JSON.stringify(ddp[0]));
    // Both hosts' ranks have memory rows; the hosts are recorded and named in the matrix.
    assert.deepEqual(ddp[0].memory.workers.map((w: { index: number }) => w.index), [0, 1]);
    assert.deepEqual(
      results.config.nodes.hosts.map((h: { address: string }) => h.address),
      ["127.0.0.1", "127.0.0.2"],
    );
    const report = await Deno.readTextFile(join(out, "report.md"));
    assert.match(report, /tcp, 2 hosts \(.+ 127\.0\.0\.1, .+ 127\.0\.0\.2\)/);
  } finally {
    nodes.forEach(killQuietly);
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a host whose bench flags differ is refused, and both say so in one line", async () => {
  const port = freePort();
  const out = await Deno.makeTempDir();
  const nodes = [
    node(0, benchArgs(port, ["--steps", "5", "--quiet", "--out", out])),
    node(1, benchArgs(port, ["--steps", "6", "--quiet"])),
  ];
  try {
    const ends = await Promise.all(nodes.map((n) => n.ended));
    for (const end of ends) {
      assert.equal(end.code, 2, end.stderr);
      assert.match(
        end.stderr.trim(),
        /^paratrain: Node 1 \(.+, 127\.0\.0\.2\) plans other runs than node 0/,
      );
      assert.equal(end.stderr.trim().split("\n").length, 1, end.stderr);
    }
  } finally {
    nodes.forEach(killQuietly);
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a host that dies during a DDP run fails the bench at once, naming its rank and host", async () => {
  const out = await Deno.makeTempDir();
  const port = freePort();
  const clock = { start: Date.now() };
  const args = (extra: string[]) => benchArgs(port, ["--steps", "400", ...extra]);
  const zero = startLauncher([], [...args(["--out", out]), "--node-rank", "0"], {
    PARATRAIN_TOKEN: SECRET,
  }, clock);
  const one = startLauncher(
    [],
    [...args([]), "--node-rank", "1", "--bind", "127.0.0.2"],
    { PARATRAIN_TOKEN: SECRET },
    clock,
  );
  try {
    // Kill node 1 once its rank has trained a few steps of the DDP run.
    await waitFor(() => ranksOf(one.child.pid).length > 0, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const ranks = ranksOf(one.child.pid);
    const killedAt = Date.now() - clock.start;
    one.child.kill("SIGKILL");
    const end = await zero.ended;
    assert.equal(end.code, 1, end.stderr);
    assert.ok(end.atMs - killedAt < 10_000, `node 0 took ${end.atMs - killedAt} ms to fail`);
    assert.match(end.stderr, /Rank 1 on 127\.0\.0\.2 closed its connection/);
    // Its rank notices its launcher died and exits too.
    await waitFor(() => ranks.every((pid) => !alive(pid)), 5_000);
    assert.deepEqual([...Deno.readDirSync(out)], [], "node 0 wrote nothing");
  } finally {
    killQuietly(zero);
    killQuietly(one);
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("bench across hosts: bad flags are refused in one line before anything starts", async () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [benchArgs(freePort()), {}, /^paratrain: --nnodes 2 needs --node-rank/],
    [
      [...benchArgs(freePort()), "--node-rank", "0"],
      {},
      /^paratrain: A job across 2 hosts needs a shared secret/,
    ],
    [
      [...benchArgs(freePort()), "--node-rank", "0", "--strategies", "single,dp"],
      { PARATRAIN_TOKEN: SECRET },
      /^paratrain: --nnodes 2 needs ddp among --strategies/,
    ],
    [
      ["bench", "--nproc-per-node", "2"],
      {},
      /^paratrain: --nproc-per-node needs --nnodes 2 or more/,
    ],
    [
      [...benchArgs(freePort()), "--node-rank", "0", "--master-port", "65535"],
      { PARATRAIN_TOKEN: SECRET },
      /^paratrain: Invalid --master-port 65535: .* expected 1 to 65534/,
    ],
  ];
  for (const [args, env, message] of cases) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", MAIN, ...args],
      clearEnv: true,
      env: { ...keptEnv(), NO_COLOR: "1", ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr).trim();
    assert.equal(r.code, 2, `${args.join(" ")}: ${stderr}`);
    assert.match(stderr, message);
    assert.equal(stderr.split("\n").length, 1, stderr);
  }
});

/** The parent's environment a child needs (no job secret). */
function keptEnv(): Record<string, string> {
  return Object.fromEntries(
    ["PATH", "HOME", "DENO_DIR"].flatMap((name) => {
      const value = Deno.env.get(name);
      return value === undefined ? [] : [[name, value]];
    }),
  );
}

/** Pids of the DDP rank processes whose parent is `pid`. */
function ranksOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      if (ppid === pid && cmdline.includes("_ddp_rank.ts")) children.push(Number(entry.name));
    } catch {
      // Gone meanwhile.
    }
  }
  return children;
}

async function waitFor(condition: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Not reached within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Whether a process runs (neither gone nor a zombie). */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
