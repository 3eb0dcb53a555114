/**
 * Helpers for jobs across "hosts" in tests: several `train` launchers (one per host, torchrun's
 * flags), and hosts made of Linux network namespaces joined by veth pairs to a bridge, each
 * with its own address in 10.213.<net>.0/24. Namespaces are named after this process, made by
 * the test and removed on every path.
 */
import assert from "node:assert/strict";
import { makeNetnsHosts, type NetnsHosts, netnsUnavailable } from "../bench/netns_hosts.ts";
import { CHECKPOINT_SCHEMA, writeCheckpoint } from "../core/checkpoint.ts";
import { createLayout } from "../core/flat_layout.ts";
import { getWorkload } from "../workloads/registry.ts";

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

/**
 * `train` launchers on loopback as torchrun's flags would start them on as many hosts, one per
 * entry of `perNode`: `--nnodes`, its `--node-rank`, its ranks (`nproc`, default 1), the master
 * on 127.0.0.1 at a free port, the job's secret, then its own flags.
 *
 * @param perNode each launcher's node rank, flags and ranks
 * @param nnodes `--nnodes`
 * @returns the running launchers
 */
export function startLoopbackNodes(
  perNode: [node: number, flags: string[], nproc?: number][],
  nnodes = 2,
): Launcher[] {
  const port = freePort();
  return perNode.map(([node, flags, nproc = 1]) =>
    startLauncher([], [
      ...TRAIN_ARGS,
      "--nnodes",
      String(nnodes),
      "--node-rank",
      String(node),
      "--nproc-per-node",
      String(nproc),
      "--master-addr",
      "127.0.0.1",
      "--master-port",
      String(port),
      ...flags,
    ], { PARATRAIN_TOKEN: SECRET })
  );
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

/** Hosts made of namespaces (`bench/netns_hosts.ts`). */
export type Hosts = NetnsHosts;

/**
 * Makes `count` hosts joined by a bridge in a switch namespace.
 *
 * @param count hosts
 * @returns the hosts; call `cleanup()` in a finally
 */
export function makeHosts(count: number): Hosts {
  return makeNetnsHosts(count);
}

export { netnsUnavailable };

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

/** synthetic-mlp's parameter layout, as its checkpoints hold it. */
export const SYNTHETIC_LAYOUT = createLayout(getWorkload("synthetic-mlp").createModel().params);

/**
 * Writes a synthetic-mlp checkpoint after one step, every parameter `value`: something for one
 * host's `--resume` to name.
 *
 * @param path where
 * @param value every parameter's value
 */
export async function writeSyntheticCheckpoint(path: string, value: number): Promise<void> {
  await writeCheckpoint(path, {
    schema: CHECKPOINT_SCHEMA,
    workload: "synthetic-mlp",
    steps: 1,
    layout: SYNTHETIC_LAYOUT,
    params: new Float32Array(SYNTHETIC_LAYOUT.totalSize).fill(value),
  });
}
