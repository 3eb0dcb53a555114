/**
 * The TCP transport and rendezvous, on loopback: collectives over TCP agree with the Unix-socket
 * ring, the handshake proves the secret both ways without sending it and refuses replays, and
 * the rendezvous port survives wrong secrets, garbage, replays and foreign clients.
 */
import assert from "node:assert/strict";
import { clientHandshake, importTokenKey, serverHandshake } from "../comm/_auth.ts";
import { initProcessGroup } from "../comm/init_process_group.ts";
import type { ProcessGroup } from "../comm/process_group.ts";
import type { TransportName } from "../comm/rank_env.ts";
import { withGroups } from "./_comm_helpers.ts";
import { freePort } from "./_multihost.ts";

const TOKEN = "0123456789abcdef".repeat(4);

/** Runs `body` with `worldSize` in-process ranks that meet at a TCP rendezvous on loopback. */
async function withTcpGroups<T>(
  worldSize: number,
  transport: TransportName,
  body: (groups: ProcessGroup[], port: number) => Promise<T>,
  beforeOthers?: (port: number) => Promise<void>,
): Promise<T> {
  const port = freePort();
  const tcp = { masterAddr: "127.0.0.1", masterPort: port, transport };
  const join = (rank: number) =>
    initProcessGroup({ rank, worldSize, token: TOKEN, tcp, connectTimeoutMs: 10_000 });
  const rank0 = join(0);
  let groups: ProcessGroup[] = [];
  try {
    await beforeOthers?.(port);
    groups = await Promise.all([
      rank0,
      ...Array.from({ length: worldSize - 1 }, (_, i) => join(i + 1)),
    ]);
    return await body(groups, port);
  } finally {
    await rank0.catch(() => {});
    for (const group of groups) group.close();
  }
}

for (const transport of ["tcp", "unix"] as const) {
  Deno.test(`a TCP rendezvous with --transport ${transport} all-reduces as the Unix ring does`, async () => {
    const length = 300_001; // uneven chunks, several sub-chunks each
    const inputs = (rank: number) =>
      Float32Array.from({ length }, (_, i) => Math.sin(i * 0.37 + rank) * (rank + 1));
    const expected = await withGroups(3, async (groups) => {
      const bufs = groups.map((g) => inputs(g.rank));
      await Promise.all(groups.map((g) => g.allReduce(bufs[g.rank], { op: "avg" })));
      return bufs[0];
    });
    await withTcpGroups(3, transport, async (groups) => {
      for (const group of groups) assert.equal(group.transport, transport);
      const bufs = groups.map((g) => inputs(g.rank));
      await Promise.all(groups.map((g) => g.allReduce(bufs[g.rank], { op: "avg" })));
      for (const buf of bufs) assert.deepEqual(buf, expected);
      const params = groups.map((g) => new Float32Array([g.rank + 5, 7]));
      await Promise.all(groups.map((g) => g.broadcast(params[g.rank])));
      for (const p of params) assert.deepEqual([...p], [5, 7]);
    });
  });
}

/** A TCP connection pair on loopback: what the client wrote is recorded. */
async function pair(): Promise<{ client: Deno.Conn; server: Deno.Conn; sent: Uint8Array[] }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port }),
    listener.accept(),
  ]);
  listener.close();
  const sent: Uint8Array[] = [];
  const write = client.write.bind(client);
  client.write = (bytes: Uint8Array) => {
    sent.push(bytes.slice());
    return write(bytes);
  };
  return { client, server, sent };
}

const ring = (rank: number) => ({ rank, worldSize: 2, purpose: "ring" as const });

Deno.test("the handshake proves the secret both ways, and a replayed hello is refused", async () => {
  const key = await importTokenKey(TOKEN);
  const first = await pair();
  const [server, client] = await Promise.all([
    serverHandshake(first.server, key, ring(0), () => null),
    clientHandshake(first.client, key, ring(1), () => null),
  ]);
  assert.deepEqual(server, ring(1));
  assert.equal(client, null);
  for (const bytes of first.sent) {
    assert.ok(!new TextDecoder().decode(bytes).includes(TOKEN), "the secret crossed the wire");
  }
  first.client.close();
  first.server.close();

  // The recorded hello, replayed on a new connection: the server's fresh nonce differs.
  const second = await pair();
  const refused = serverHandshake(second.server, key, ring(0), () => null);
  for (const bytes of first.sent) await second.client.write(bytes);
  assert.match(String(await refused), /wrong token/);
  second.client.close();
  second.server.close();

  // A client with another secret is refused.
  const other = await importTokenKey("x".repeat(32));
  const third = await pair();
  const [refusedClient] = await Promise.all([
    serverHandshake(third.server, key, ring(0), () => null).finally(() => third.server.close()),
    clientHandshake(third.client, other, ring(1), () => null).finally(() => third.client.close()),
  ]);
  assert.match(String(refusedClient), /wrong token/);

  // A server that cannot prove the secret (it welcomes anyone) is not trusted.
  const fourth = await pair();
  const frame = (parts: Uint8Array[]) => {
    const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (body.set(p, at), at + p.length), 0);
    const out = new Uint8Array(4 + body.length);
    new DataView(out.buffer).setUint32(0, body.length, true);
    out.set(body, 4);
    return out;
  };
  const fields = new Uint8Array(12);
  new DataView(fields.buffer).setUint32(4, 2, true);
  new DataView(fields.buffer).setUint32(8, 1, true);
  const enc = new TextEncoder();
  await fourth.server.write(
    frame([enc.encode("paratrc2"), crypto.getRandomValues(new Uint8Array(32)), fields]),
  );
  const untrusted = clientHandshake(fourth.client, key, ring(1), () => null);
  await fourth.server.read(new Uint8Array(4 + 84));
  await fourth.server.write(frame([enc.encode("paratrok"), new Uint8Array(32)]));
  assert.match(String(await untrusted), /proof does not match/);
  fourth.client.close();
  fourth.server.close();
});

Deno.test("garbage and a wrong secret at the rendezvous port are refused, and told why; the job forms", async () => {
  const refusals: string[] = [];
  const warn = console.warn;
  console.warn = (line: string) => refusals.push(line);
  try {
    await withTcpGroups(2, "tcp", async (groups) => {
      const bufs = groups.map((g) => new Float32Array([g.rank, 1]));
      await Promise.all(groups.map((g, r) => g.allReduce(bufs[r])));
      assert.deepEqual([...bufs[1]], [1, 2]);
    }, async (port) => {
      const connect = async () => {
        while (true) {
          try {
            return await Deno.connect({ hostname: "127.0.0.1", port });
          } catch {
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }
      };
      const garbage = await connect();
      await garbage.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
      await drain(garbage);
      const store = (rank: number, worldSize = 2) => ({
        rank,
        worldSize,
        purpose: "store" as const,
      });
      const conn = await connect();
      const key = await importTokenKey("y".repeat(40));
      assert.match(
        String(await clientHandshake(conn, key, store(1), () => null)),
        /^refused: wrong token \(its proof does not match this job's secret\)$/,
      );
      conn.close();
    });
  } finally {
    console.warn = warn;
  }
  assert.ok(refusals.some((line) => /wrong token/.test(line)), refusals.join("\n"));
  assert.ok(refusals.some((line) => /no valid hello|not a paratrain hello/.test(line)));
});

Deno.test("a rank with the job's secret but another world size fails every rank at once, naming it", async () => {
  const port = freePort();
  const tcp = { masterAddr: "127.0.0.1", masterPort: port, transport: "tcp" as const };
  const join = (rank: number, worldSize: number) =>
    initProcessGroup({ rank, worldSize, token: TOKEN, tcp, connectTimeoutMs: 10_000 });
  const started = Date.now();
  const rank0 = join(0, 3);
  const rank1 = join(1, 3);
  // A host started with other --nnodes/--nproc-per-node: its rank joins a world of 2.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const stray = join(1, 2);
  const outcomes = await Promise.allSettled([rank0, rank1, stray]);
  for (const outcome of outcomes) {
    assert.equal(outcome.status, "rejected");
    const error = (outcome as PromiseRejectedResult).reason;
    assert.equal(error.name, "JobMismatchError", String(error));
    assert.match(
      error.message,
      /Hosts disagree on the job: a rank from 127\.0\.0\.1 joins as rank 1 of world size 2, but rank 0 \(.*\) runs world size 3/,
    );
  }
  assert.ok(Date.now() - started < 5_000, "failed at once, not at the connect timeout");
});

Deno.test("a missing rank 0 is reported after the connect timeout, naming the rendezvous", async () => {
  const port = freePort();
  await assert.rejects(
    initProcessGroup({
      rank: 1,
      worldSize: 2,
      token: TOKEN,
      tcp: { masterAddr: "127.0.0.1", masterPort: port, transport: "tcp" },
      connectTimeoutMs: 300,
    }),
    new RegExp(`cannot reach the rendezvous at 127.0.0.1:${port} \\(rank 0's host\\).*after 0.3 s`),
  );
});

async function drain(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(256);
  try {
    while ((await conn.read(buf)) !== null) {
      // The challenge; the server closes after the garbage.
    }
  } catch {
    // A reset.
  }
  conn.close();
}
