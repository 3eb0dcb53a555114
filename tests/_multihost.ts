/**
 * Helpers for jobs across "hosts" in tests: several `train` launchers (one per host, torchrun's
 * flags), and hosts made of Linux network namespaces joined by veth pairs to a bridge, each
 * with its own address in 10.213.<net>.0/24. Namespaces are named after this process, made by
 * the test and removed on every path.
 */
import assert from "node:assert/strict";

/** The CLI entry point. */
export const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
/** A job secret for tests. */
export const SECRET = "0123456789abcdef".repeat(4);
/** Set to 1 (as CI does) to make missing namespaces a failure instead of a skip. */
export const REQUIRE_NETNS_ENV = "PARATRAIN_REQUIRE_NETNS";

/** A run of the same training on every host, as the equivalence tests use. */
export const TRAIN_ARGS = [
  "train",
  "--strategy",
  "ddp",
  "--workload",
  "synthetic-mlp",
  "--backend",
  "wasm",
  "--seed",
  "4",
  "--batch",
  "48",
  "--quiet",
];

/** One launcher's end. */
export interface Ended {
  code: number;
  stdout: string;
  stderr: string;
  /** ms from the start of `launchers` (or from `since`) to its exit. */
  atMs: number;
}

/** A running launcher. */
export interface Launcher {
  child: Deno.ChildProcess;
  ended: Promise<Ended>;
}

/**
 * Starts one launcher: `prefix` (e.g. `ip netns exec <ns>`) then `deno run cli/main.ts args`.
 *
 * @param prefix the command to run it under, or []
 * @param args CLI arguments
 * @param env extra environment
 * @param clock what `atMs` counts from
 * @returns the running launcher
 */
export function startLauncher(
  prefix: string[],
  args: string[],
  env: Record<string, string>,
  clock: { start: number } = { start: Date.now() },
): Launcher {
  const command = [...prefix, Deno.execPath(), "run", "--allow-all", MAIN, ...args];
  const child = new Deno.Command(command[0], {
    args: command.slice(1),
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new Response(child.stdout).text();
  const stderr = new Response(child.stderr).text();
  const ended = child.status.then(async (status) => ({
    code: status.code,
    stdout: await stdout,
    stderr: await stderr,
    atMs: Date.now() - clock.start,
  }));
  return { child, ended };
}

/** Kills a launcher if it still runs (it takes its ranks with it). */
export function killQuietly(launcher: Launcher): void {
  try {
    launcher.child.kill("SIGKILL");
  } catch {
    // Already gone.
  }
}

/** A port nothing listens on right now (in this namespace). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

function run(args: string[]): { ok: boolean; out: string; err: string } {
  const out = new Deno.Command(args[0], { args: args.slice(1), stdout: "piped", stderr: "piped" })
    .outputSync();
  const dec = new TextDecoder();
  return { ok: out.success, out: dec.decode(out.stdout), err: dec.decode(out.stderr) };
}

/**
 * Whether this machine lets us make network namespaces (root, iproute2), tried for real.
 *
 * @returns null when it does, else why not
 */
export function netnsUnavailable(): string | null {
  const name = `ptprobe${Deno.pid}`;
  try {
    const added = run(["ip", "netns", "add", name]);
    if (!added.ok) return `\`ip netns add\` failed: ${added.err.trim()}`;
    run(["ip", "netns", "del", name]);
    return null;
  } catch (error) {
    return `\`ip\` (iproute2) cannot run: ${(error as Error).message}`;
  }
}

/** Hosts made of namespaces. */
export interface Hosts {
  /** Namespace names, host 0 first. */
  names: string[];
  /** Each host's address. */
  addrs: string[];
  /** `ip netns exec <ns>` for host i. */
  exec(i: number): string[];
  /** Pids of the processes in host i whose command line contains `needle`. */
  pids(i: number, needle?: string): number[];
  /** Cuts host i off: deletes its veth pair. */
  cut(i: number): void;
  /** Kills what runs in the namespaces and deletes them; returns what was still running. */
  cleanup(): number[];
}

/**
 * Makes `count` hosts joined by a bridge in a switch namespace.
 *
 * @param count hosts
 * @returns the hosts; call `cleanup()` in a finally
 */
export function makeHosts(count: number): Hosts {
  const id = `${Deno.pid % 100000}${Math.floor(Math.random() * 100)}`;
  const net = 1 + (Deno.pid % 250);
  const sw = `pt${id}sw`;
  const names = Array.from({ length: count }, (_, i) => `pt${id}h${i}`);
  const addrs = names.map((_, i) => `10.213.${net}.${i + 1}`);
  const made: string[] = [];
  const must = (args: string[]) => {
    const r = run(args);
    assert.ok(r.ok, `${args.join(" ")}: ${r.err}`);
  };
  const hosts: Hosts = {
    names,
    addrs,
    exec: (i) => ["ip", "netns", "exec", names[i]],
    pids: (i, needle) => {
      const r = run(["ip", "netns", "pids", names[i]]);
      const pids = r.out.split("\n").filter(Boolean).map(Number);
      if (!needle) return pids;
      return pids.filter((pid) => {
        try {
          return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes(needle);
        } catch {
          return false;
        }
      });
    },
    cut: (i) => must(["ip", "-n", sw, "link", "del", `v${id}s${i}`]),
    cleanup: () => {
      const left: number[] = [];
      for (const ns of made) {
        const pids = run(["ip", "netns", "pids", ns]).out.split("\n").filter(Boolean).map(Number);
        for (const pid of pids) {
          left.push(pid);
          try {
            Deno.kill(pid, "SIGKILL");
          } catch {
            // Gone meanwhile.
          }
        }
        run(["ip", "netns", "del", ns]);
      }
      return left;
    },
  };
  try {
    must(["ip", "netns", "add", sw]);
    made.push(sw);
    must(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"]);
    must(["ip", "-n", sw, "link", "set", "br0", "up"]);
    names.forEach((ns, i) => {
      must(["ip", "netns", "add", ns]);
      made.push(ns);
      const hostEnd = `v${id}h${i}`;
      const swEnd = `v${id}s${i}`;
      must(["ip", "link", "add", hostEnd, "netns", ns, "type", "veth", "peer", swEnd, "netns", sw]);
      must(["ip", "-n", sw, "link", "set", swEnd, "master", "br0", "up"]);
      must(["ip", "-n", ns, "addr", "add", `${addrs[i]}/24`, "dev", hostEnd]);
      must(["ip", "-n", ns, "link", "set", hostEnd, "up"]);
      must(["ip", "-n", ns, "link", "set", "lo", "up"]);
    });
  } catch (error) {
    hosts.cleanup();
    throw error;
  }
  return hosts;
}

/**
 * Max |a − b| over two parameter vectors.
 *
 * @param a one
 * @param b the other, same length
 * @returns the largest absolute difference
 */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}
