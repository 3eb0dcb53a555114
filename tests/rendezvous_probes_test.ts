/**
 * The TCP rendezvous under abuse and misconfiguration: its accept loop outlives accept errors
 * (out of file descriptors under a connection flood) and caps the handshakes in progress, so
 * the job still forms.
 */
import assert from "node:assert/strict";
import { acceptLoop } from "../comm/_accept_loop.ts";
import { initProcessGroup } from "../comm/init_process_group.ts";
import { freePort, SECRET } from "./_multihost.ts";

/** A stand-in connection: only `close` is called on it. */
function fakeConn(closed: Set<number>, id: number): Deno.Conn {
  return { close: () => closed.add(id) } as unknown as Deno.Conn;
}

Deno.test("the accept loop goes on after accept errors and stops when its listener closes", async () => {
  const closed = new Set<number>();
  const seen: number[] = [];
  const warnings: unknown[] = [];
  let calls = 0;
  const listener = {
    accept: () => {
      calls++;
      if (calls <= 3) return Promise.reject(new Error("Too many open files (os error 24)"));
      if (calls <= 6) return Promise.resolve(fakeConn(closed, calls));
      return Promise.reject(new Deno.errors.BadResource("Listener has been closed"));
    },
  };
  const end = await acceptLoop(listener, {
    maxPending: 10,
    handshake: (conn) => {
      seen.push(calls);
      conn.close();
      return Promise.resolve();
    },
    stopped: () => false,
    onError: (error) => warnings.push(error),
  });
  assert.ok(end instanceof Deno.errors.BadResource);
  assert.deepEqual(seen, [4, 5, 6], "the connections after the errors were handled");
  assert.equal(warnings.length, 1, "one warning, not one per error");
});

Deno.test("the accept loop caps handshakes in progress, dropping the oldest", async () => {
  const closed = new Set<number>();
  let calls = 0;
  const never = new Promise<void>(() => {});
  await acceptLoop({
    accept: () =>
      ++calls <= 10
        ? Promise.resolve(fakeConn(closed, calls))
        : Promise.reject(new Deno.errors.BadResource("closed")),
  }, { maxPending: 4, handshake: () => never, stopped: () => false });
  // Ten silent clients, four at a time: the six oldest were dropped as newer ones came.
  assert.deepEqual([...closed].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6]);
});

/**
 * Rank 0 of 2 serving the rendezvous in a process with few file descriptors. Deno 2.9 sets up
 * its signal handling lazily in the first seconds of a process and panics if it finds no free
 * descriptor then (outside paratrain's code: a bare accept loop does the same), so the script
 * sets it up first by adding and removing a listener.
 */
const STARVED_MASTER = `
const warm = () => {};
Deno.addSignalListener("SIGUSR2", warm);
Deno.removeSignalListener("SIGUSR2", warm);
const { initProcessGroup } = await import(${
  JSON.stringify(new URL("../comm/init_process_group.ts", import.meta.url).href)
});
const pg = await initProcessGroup({
  rank: 0,
  worldSize: 2,
  token: "${SECRET}",
  tcp: { masterAddr: "127.0.0.1", masterPort: Number(Deno.args[0]), transport: "tcp" },
  connectTimeoutMs: 30000,
});
const buf = new Float32Array([1, 2]);
await pg.allReduce(buf);
console.log("sum " + buf.join(","));
pg.close();
`;

Deno.test("a connection flood that runs the rendezvous out of descriptors does not stop it: the job forms", async () => {
  const port = freePort();
  // 48 descriptors: the process needs about 25; the flood takes the rest and more.
  const master = new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -n 48 && exec "$0" eval "$1" "$2"`,
      Deno.execPath(),
      STARVED_MASTER,
      String(port),
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const flood: Deno.Conn[] = [];
  try {
    // Wait for the rendezvous, then open far more connections than it has descriptors.
    for (let i = 0; i < 200 && flood.length === 0; i++) {
      try {
        flood.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    assert.equal(flood.length, 1, "the rendezvous never came up");
    for (let i = 0; i < 100; i++) flood.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // accept fails meanwhile
    for (const conn of flood) conn.close();
    const pg = await initProcessGroup({
      rank: 1,
      worldSize: 2,
      token: SECRET,
      tcp: { masterAddr: "127.0.0.1", masterPort: port, transport: "tcp" },
      connectTimeoutMs: 20_000,
    });
    const buf = new Float32Array([10, 20]);
    await pg.allReduce(buf);
    pg.close();
    assert.deepEqual([...buf], [11, 22]);
    const out = await master.output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, /sum 11,22/);
    assert.match(text, /could not accept a connection on the rendezvous port: .*accepting again/);
  } finally {
    for (const conn of flood) {
      try {
        conn.close();
      } catch {
        // Closed above.
      }
    }
    try {
      master.kill("SIGKILL");
    } catch {
      // Exited.
    }
    await master.status;
  }
});
