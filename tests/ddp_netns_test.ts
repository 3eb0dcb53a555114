/**
 * DDP across hosts, with hosts made of Linux network namespaces joined by veth pairs to a
 * bridge (each its own address in 10.213.<net>.0/24), one launcher per host: 2 × 1 and 2 × 2
 * ranks end equal to single; a rank killed on the other host, or a host cut off, makes every
 * launcher exit 1 within the collective timeout naming the rank and its host, with nothing
 * left; a foreign client from a third namespace is refused and the job goes on; hosts that
 * disagree on the job (a setting, `--resume` on one only) both exit 2 before training naming
 * it and both hosts; a third host with a taken `--node-rank` is named as a duplicate while the
 * job goes on; a host paused past the timeout names itself once resumed; `allreduce` across two
 * hosts on a link shaped with tbf fits the shaped rate.
 *
 * Needs root and iproute2; skipped with one line where `ip netns` is unavailable, unless
 * PARATRAIN_REQUIRE_NETNS=1 (as in CI).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readCheckpoint } from "../core/checkpoint.ts";
import { runSingle } from "../strategies/single.ts";
import {
  type Hosts,
  killQuietly,
  type Launcher,
  makeHosts,
  maxAbsDiff,
  netnsUnavailable,
  REQUIRE_NETNS_ENV,
  SECRET,
  startLauncher,
  SYNTHETIC_LAYOUT,
  TRAIN_ARGS,
  writeSyntheticCheckpoint,
} from "./_multihost.ts";
import { testSpec } from "./_run_spec.ts";

const EQUIVALENCE_TOLERANCE = 1e-5;
/** Collective timeout of the fault tests, s: a cut-off host is detected after this. */
const COLLECTIVE_TIMEOUT_S = 5;
/** What the fault tests allow beyond it: the launchers' own exit and clean-up. */
const EXIT_SLACK_MS = 5_000;
const PORT = 29_517;

const why = netnsUnavailable();
const skip = why !== null && Deno.env.get(REQUIRE_NETNS_ENV) !== "1";
if (skip) {
  console.error(
    `skipped the network-namespace DDP tests (ddp_netns_test.ts): ${why}; they need root and ` +
      `iproute2 (\`apt-get install -y iproute2\`)`,
  );
}

function test(name: string, fn: () => Promise<void>) {
  Deno.test({ name, ignore: skip }, async () => {
    assert.equal(why, null, `network namespaces are unavailable (${REQUIRE_NETNS_ENV}=1): ${why}`);
    await fn();
  });
}

const single = skip ? null : runSingle(testSpec({ strategy: "single", worldSize: 1 }));

/** One launcher per host with torchrun's flags. */
function startJob(
  hosts: Hosts,
  nproc: number,
  extra: (node: number) => string[],
  clock?: { start: number },
  only?: number[],
): Launcher[] {
  const nodes = only ?? hosts.names.map((_, node) => node);
  return nodes.map((node) =>
    startLauncher(
      hosts.exec(node),
      [
        ...TRAIN_ARGS,
        "--nnodes",
        "2",
        "--node-rank",
        String(node),
        "--nproc-per-node",
        String(nproc),
        "--master-addr",
        hosts.addrs[0],
        "--master-port",
        String(PORT),
        ...extra(node),
      ],
      { PARATRAIN_TOKEN: SECRET },
      clock,
    )
  );
}

async function withHosts(count: number, body: (hosts: Hosts) => Promise<void>): Promise<void> {
  const hosts = makeHosts(count);
  let left: number[];
  try {
    await body(hosts);
  } finally {
    left = hosts.cleanup();
  }
  // Checked only when the body passed, so that its own failure is the one reported.
  assert.deepEqual(left, [], "processes were left in the namespaces");
}

for (const nproc of [1, 2]) {
  const how = nproc === 1 ? "with --bind" : "binding the interface that reaches the master";
  test(`2 hosts × ${nproc} rank${nproc > 1 ? "s" : ""} ${how} end equal to single`, async () => {
    await withHosts(2, async (hosts) => {
      const dir = await Deno.makeTempDir();
      const path = join(dir, "ddp.ckpt.json");
      const job = startJob(
        hosts,
        nproc,
        (node) => [
          "--steps",
          "20",
          ...(node === 0 ? ["--checkpoint", path] : []),
          // One rank per host: each binds its host's address by hand (--bind); with two, the
          // default (the interface that reaches the master) is used.
          ...(nproc === 1 ? ["--bind", hosts.addrs[node]] : []),
        ],
      );
      try {
        const ends = await Promise.all(job.map((l) => l.ended));
        for (const end of ends) assert.equal(end.code, 0, end.stderr);
        const ckpt = await readCheckpoint(path, {
          workload: "synthetic-mlp",
          layout: SYNTHETIC_LAYOUT,
        });
        const diff = maxAbsDiff(ckpt.params, (await single!).snapshot);
        assert.ok(diff < EQUIVALENCE_TOLERANCE, `max |Δparam| ${diff}`);
      } finally {
        job.forEach(killQuietly);
        await Deno.remove(dir, { recursive: true });
      }
    });
  });
}

/** Waits until host `i` runs `count` ranks, then a little longer for training to get going. */
async function ranksRunning(hosts: Hosts, i: number, count: number): Promise<number[]> {
  const deadline = Date.now() + 60_000;
  let pids: number[] = [];
  while (pids.length < count && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    pids = hosts.pids(i, "_ddp_rank.ts");
  }
  assert.equal(pids.length, count, `host ${i} did not start its ranks`);
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  return pids;
}

const LONG = ["--steps", "100000", "--collective-timeout", String(COLLECTIVE_TIMEOUT_S)];

test("a rank killed on the other host fails both launchers fast, naming it and its host", async () => {
  await withHosts(2, async (hosts) => {
    const clock = { start: 0 };
    const job = startJob(hosts, 2, () => LONG, clock);
    try {
      const pids = await ranksRunning(hosts, 1, 2);
      await ranksRunning(hosts, 0, 2);
      // Rank 2 is host 1's first rank, host 0's rank 1 sends to it.
      const victim = pids.find((pid) =>
        Deno.readTextFileSync(`/proc/${pid}/environ`).split("\0").includes("RANK=2")
      )!;
      // The secret is in no command line of any process on either host (`ps` shows those).
      for (const i of [0, 1]) {
        for (const pid of hosts.pids(i)) {
          const argv = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
          assert.ok(!argv.includes(SECRET), `the secret is on pid ${pid}'s command line`);
        }
      }
      clock.start = Date.now();
      Deno.kill(victim, "SIGKILL");
      const ends = await Promise.all(job.map((l) => l.ended));
      console.log(`exits after the kill: ${ends.map((e) => `${e.atMs} ms`).join(", ")}`);
      for (const end of ends) {
        assert.equal(end.code, 1, end.stderr);
        assert.ok(end.atMs < COLLECTIVE_TIMEOUT_S * 1000 + EXIT_SLACK_MS, `took ${end.atMs} ms`);
      }
      assert.match(ends[1].stderr, /Rank 2 was killed by SIGKILL/);
      // Host 0 learns of it through the ring: it names the first rank of host 1 it lost
      // (rank 3, whose link from rank 2 closed first, or rank 2 itself), and that host.
      const host1 = hosts.addrs[1].replaceAll(".", "\\.");
      assert.match(ends[0].stderr, new RegExp(`paratrain: Rank [23] on ${host1} `));
    } finally {
      job.forEach(killQuietly);
    }
  });
});

test("a host cut off (its veth deleted) fails both launchers within the timeout, naming rank and host", async () => {
  await withHosts(2, async (hosts) => {
    const clock = { start: 0 };
    const job = startJob(hosts, 1, () => LONG, clock);
    try {
      await ranksRunning(hosts, 1, 1);
      clock.start = Date.now();
      hosts.cut(1);
      const ends = await Promise.all(job.map((l) => l.ended));
      console.log(`exits after the cut: ${ends.map((e) => `${e.atMs} ms`).join(", ")}`);
      for (const end of ends) {
        assert.equal(end.code, 1, end.stderr);
        assert.ok(end.atMs < COLLECTIVE_TIMEOUT_S * 1000 + EXIT_SLACK_MS, `took ${end.atMs} ms`);
      }
      const [a0, a1] = hosts.addrs.map((a) => a.replaceAll(".", "\\."));
      assert.match(ends[0].stderr, new RegExp(`Rank 1 on ${a1} stopped answering`));
      assert.match(ends[1].stderr, new RegExp(`Rank 0 on ${a0} stopped answering`));
    } finally {
      job.forEach(killQuietly);
    }
  });
});

test("a foreign client from a third namespace is refused and the job goes on", async () => {
  await withHosts(3, async (hosts) => {
    const dir = await Deno.makeTempDir();
    const path = join(dir, "ddp.ckpt.json");
    const extra = (
      node: number,
    ) => ["--steps", "20", ...(node === 0 ? ["--checkpoint", path] : [])];
    // Host 0 starts and serves the rendezvous; host 1 joins only after the foreign client.
    const job = startJob(hosts, 1, extra, undefined, [0]);
    try {
      const out = await new Deno.Command("ip", {
        args: [
          ...hosts.exec(2).slice(1),
          Deno.execPath(),
          "eval",
          FOREIGN_CLIENT,
          hosts.addrs[0],
          String(PORT),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, text);
      assert.match(text, /garbage: closed/);
      assert.match(text, /wrong secret: refused/);
      // Host 0 waits for host 1: its rendezvous and rank 0's ring listener are up, and
      // neither listens on every interface, only on the host's own address.
      const listening = new TextDecoder().decode(
        new Deno.Command("ip", {
          args: ["netns", "exec", hosts.names[0], "ss", "-Hltn"],
          stdout: "piped",
        }).outputSync().stdout,
      ).split("\n").filter(Boolean).map((line) => line.trim().split(/\s+/)[3]);
      assert.ok(listening.includes(`${hosts.addrs[0]}:${PORT}`), `listening: ${listening}`);
      assert.ok(listening.length >= 2, `listening: ${listening}`);
      for (const local of listening) assert.ok(local.startsWith(`${hosts.addrs[0]}:`), local);
      job.push(...startJob(hosts, 1, extra, undefined, [1]));
      const ends = await Promise.all(job.map((l) => l.ended));
      for (const end of ends) assert.equal(end.code, 0, end.stderr);
      assert.match(ends[0].stderr, /refused a connection on the rendezvous port: wrong token/);
      const ckpt = await readCheckpoint(path, {
        workload: "synthetic-mlp",
        layout: SYNTHETIC_LAYOUT,
      });
      assert.ok(maxAbsDiff(ckpt.params, (await single!).snapshot) < EQUIVALENCE_TOLERANCE);
    } finally {
      job.forEach(killQuietly);
      await Deno.remove(dir, { recursive: true });
    }
  });
});

test("two hosts with different settings, or --resume on one only, both exit 2 before training, naming it and both hosts", async () => {
  await withHosts(2, async (hosts) => {
    const dir = await Deno.makeTempDir();
    try {
      const ckpt = join(dir, "ckpt.json");
      await writeSyntheticCheckpoint(ckpt, 0.01);
      const job = startJob(
        hosts,
        2,
        (node) => [...LONG, ...(node === 0 ? ["--resume", ckpt, "--batch", "96"] : [])],
      );
      try {
        const ends = await Promise.all(job.map((l) => l.ended));
        const [a0, a1] = hosts.addrs.map((a) => a.replaceAll(".", "\\."));
        for (const end of ends) {
          assert.equal(end.code, 2, end.stderr);
          assert.match(
            end.stderr,
            new RegExp(
              `Hosts disagree on the job: --batch \\(global\\) \\(96 vs 48\\), --resume \\(sha256:[0-9a-f]+ vs none\\) between rank 0 \\(.*/${a0}\\) and rank [23] \\(.*/${a1}\\)`,
            ),
          );
          assert.ok(end.atMs < 30_000, `took ${end.atMs} ms`);
          assert.doesNotMatch(end.stdout, /samples\/s/, "it trained");
        }
      } finally {
        job.forEach(killQuietly);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

test("a third host with a --node-rank already taken is named as a duplicate at once; the job goes on", async () => {
  await withHosts(3, async (hosts) => {
    const job = startJob(hosts, 1, () => LONG, undefined, [0, 1]);
    try {
      // Host 2 says it is node 1 as well, once host 1 has registered and the job trains.
      await ranksRunning(hosts, 1, 1);
      const clock = { start: Date.now() };
      const dup = startLauncher(
        hosts.exec(2),
        [
          ...TRAIN_ARGS,
          ...LONG,
          "--nnodes",
          "2",
          "--node-rank",
          "1",
          "--nproc-per-node",
          "1",
          "--master-addr",
          hosts.addrs[0],
          "--master-port",
          String(PORT),
        ],
        { PARATRAIN_TOKEN: SECRET },
        clock,
      );
      job.push(dup);
      const host2 = await dup.ended;
      assert.equal(host2.code, 2, host2.stderr);
      assert.match(
        host2.stderr,
        new RegExp(
          `Rank 1 could not join the rendezvous at ${
            hosts.addrs[0].replaceAll(".", "\\.")
          }:${PORT} \\(rank 0's host\\): rank 1 is already in the job \\(registered from .*/${
            hosts.addrs[1].replaceAll(".", "\\.")
          }\\): are two hosts started with the same --node-rank`,
        ),
      );
      assert.ok(host2.atMs < 15_000, `named after ${host2.atMs} ms`);
      // The job itself goes on: both of its hosts still train.
      assert.equal(hosts.pids(0, "_ddp_rank.ts").length, 1);
      assert.equal(hosts.pids(1, "_ddp_rank.ts").length, 1);
    } finally {
      job.forEach(killQuietly);
      // Their ranks follow their killed launchers within a tenth of a second.
      await Promise.all(job.map((l) => l.ended));
      for (let i = 0; i < 50 && [0, 1].some((h) => hosts.pids(h).length > 0); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  });
});

test("a scheduler's ranks on two hosts (torchrun's variables, one rank per host) train as one job, leaving nothing in TMPDIR", async () => {
  await withHosts(2, async (hosts) => {
    const tmp = await Deno.makeTempDir();
    try {
      const ranks = [0, 1].map((rank) =>
        startLauncher(hosts.exec(rank), [...TRAIN_ARGS, "--steps", "20"], {
          PARATRAIN_TOKEN: SECRET,
          TMPDIR: tmp,
          RANK: String(rank),
          WORLD_SIZE: "2",
          LOCAL_RANK: "0",
          LOCAL_WORLD_SIZE: "1",
          MASTER_ADDR: hosts.addrs[0],
          MASTER_PORT: String(PORT),
        })
      );
      try {
        const ends = await Promise.all(ranks.map((l) => l.ended));
        for (const end of ends) assert.equal(end.code, 0, end.stderr);
        assert.match(ends[0].stdout, /ddp-2/);
        assert.deepEqual([...Deno.readDirSync(tmp)].map((e) => e.name), []);
      } finally {
        ranks.forEach(killQuietly);
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  });
});

test("a host paused past the collective timeout, once resumed, names itself; the other host names it", async () => {
  await withHosts(2, async (hosts) => {
    const job = startJob(hosts, 1, () => LONG);
    try {
      await ranksRunning(hosts, 1, 1);
      await ranksRunning(hosts, 0, 1);
      const paused = hosts.pids(1);
      for (const pid of paused) Deno.kill(pid, "SIGSTOP");
      await new Promise((resolve) => setTimeout(resolve, 2 * COLLECTIVE_TIMEOUT_S * 1000));
      for (const pid of paused) Deno.kill(pid, "SIGCONT");
      const ends = await Promise.all(job.map((l) => l.ended));
      for (const end of ends) assert.equal(end.code, 1, end.stderr);
      const a1 = hosts.addrs[1].replaceAll(".", "\\.");
      assert.match(ends[0].stderr, new RegExp(`Rank 1 on ${a1} stopped answering`));
      assert.match(
        ends[1].stderr,
        new RegExp(`paratrain: Rank 1 failed: Rank 1 on ${a1} \\(this rank\\) was stopped for`),
      );
      assert.doesNotMatch(ends[1].stderr, /paratrain: .*Rank 0 .*(stopped answering|closed its)/);
    } finally {
      job.forEach(killQuietly);
    }
  });
});

test("a master address that never answers fails at the connect timeout, not the kernel's minutes", async () => {
  await withHosts(1, async (hosts) => {
    // A neighbour entry for an address nobody holds: SYNs leave and nothing ever answers.
    const silent = hosts.addrs[0].replace(/\.\d+$/, ".99");
    const dev = new TextDecoder().decode(
      new Deno.Command("ip", { args: ["-n", hosts.names[0], "-o", "link"], stdout: "piped" })
        .outputSync().stdout,
    ).match(/\d+: (v\w+)@/)![1];
    const neigh = new Deno.Command("ip", {
      args: [
        "-n",
        hosts.names[0],
        "neigh",
        "add",
        silent,
        "lladdr",
        "02:00:00:00:00:99",
        "dev",
        dev,
      ],
    }).outputSync();
    assert.ok(neigh.success, "ip neigh add failed");
    const started = Date.now();
    const out = await new Deno.Command("ip", {
      args: [...hosts.exec(0).slice(1), Deno.execPath(), "eval", SILENT_MASTER, silent],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const elapsed = Date.now() - started;
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.match(
      text,
      new RegExp(`cannot reach the rendezvous at ${silent.replaceAll(".", "\\.")}:`),
    );
    assert.match(text, /no answer after 1 s/);
    // 1 s of connect timeout, plus starting Deno.
    assert.ok(elapsed < 10_000, `took ${elapsed} ms`);
  });
});

test("allreduce across two hosts on a link shaped to 200 Mbit/s fits β near that rate", async () => {
  await withHosts(2, async (hosts) => {
    hosts.shape("200mbit");
    const dir = await Deno.makeTempDir();
    try {
      const ends = await Promise.all([0, 1].map((node) =>
        startLauncher(hosts.exec(node), [
          "allreduce",
          "--world-sizes",
          "2",
          "-b",
          "64K",
          "-e",
          "1M",
          "-n",
          "4",
          "-w",
          "1",
          "--quick",
          "--nnodes",
          "2",
          "--node-rank",
          String(node),
          "--master-addr",
          hosts.addrs[0],
          "--master-port",
          String(PORT),
          ...(node === 0 ? ["--out", dir] : []),
        ], { PARATRAIN_TOKEN: SECRET }).ended
      ));
      for (const end of ends) assert.equal(end.code, 0, end.stderr);
      const result = JSON.parse(await Deno.readTextFile(join(dir, "allreduce.json")));
      assert.equal(result.env.nodes.nnodes, 2);
      const [model] = result.linkModel;
      assert.equal(model.transport, "tcp");
      // The shaped rate, less framing and TCP/IP headers; well below the veth's own speed.
      const mbits = model.betaGBps * 8e3;
      assert.ok(mbits > 140 && mbits < 210, `β ${mbits.toFixed(0)} Mbit/s`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

/**
 * Joins a job whose master never answers, with a 1 s connect timeout; prints the error and
 * exits (as `cli/main.ts` and `runRank` do: the abandoned connect would otherwise hold the
 * process until the kernel gives up).
 */
const SILENT_MASTER = `
const { initProcessGroup } = await import(${
  JSON.stringify(new URL("../comm/init_process_group.ts", import.meta.url).href)
});
try {
  await initProcessGroup({
    rank: 1,
    worldSize: 2,
    token: "${SECRET}",
    tcp: { masterAddr: Deno.args[0], masterPort: 29517, transport: "tcp" },
    connectTimeoutMs: 1000,
  });
  console.log("joined?");
} catch (error) {
  console.log(String(error));
}
// The kernel's own connect attempt is still pending; the CLI and ranks exit this way too.
Deno.exit(0);
`;

/** The foreign client, run with `deno eval` in the third namespace: address, port. */
const FOREIGN_CLIENT = `
const [hostname, port] = [Deno.args[0], Number(Deno.args[1])];
const { clientHandshake, importTokenKey } = await import(${
  JSON.stringify(new URL("../comm/_auth.ts", import.meta.url).href)
});
async function connect() {
  for (;;) {
    try { return await Deno.connect({ hostname, port }); }
    catch { await new Promise((r) => setTimeout(r, 50)); }
  }
}
const garbage = await connect();
await garbage.write(new TextEncoder().encode("GET / HTTP/1.1\\r\\n\\r\\n"));
const buf = new Uint8Array(256);
try { while ((await garbage.read(buf)) !== null) {} } catch {}
console.log("garbage: closed");
const conn = await connect();
const key = await importTokenKey("not-the-job-secret-at-all");
const problem = await clientHandshake(conn, key, { rank: 1, worldSize: 2, purpose: "store" }, () => null);
console.log("wrong secret: " + (problem === null ? "accepted" : "refused"));
`;
