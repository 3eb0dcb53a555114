/**
 * Hosts made of Linux network namespaces on this machine, for measuring (and testing) jobs
 * across hosts without a cluster: each host is a namespace with its own address in
 * 10.213.<net>.0/24, joined to a bridge in a "switch" namespace by a veth pair, whose rate can be
 * shaped with a token bucket (`tc qdisc … tbf`) in both directions, as a full-duplex link of
 * that rate. Needs root and iproute2; everything is named after this process and removed by
 * `cleanup()`, processes still running in the namespaces included.
 *
 * The hosts share this machine's CPUs: a job across them computes as a job on one host does,
 * and only its links differ.
 *
 * @module
 */

/** Bytes a shaped link may send at once above its rate (`tbf burst`): a few full-size segments. */
export const SHAPE_BURST = "64kb";
/** The longest a packet may wait in a shaped link's queue (`tbf latency`). */
export const SHAPE_QUEUE_LATENCY = "50ms";

/** Hosts made of namespaces. */
export interface NetnsHosts {
  /** Namespace names, host 0 first. */
  names: string[];
  /** Each host's address. */
  addrs: string[];
  /** `ip netns exec <ns>`, the prefix that runs a command on host i. */
  exec(i: number): string[];
  /** Pids of the processes in host i whose command line contains `needle`. */
  pids(i: number, needle?: string): number[];
  /** Cuts host i off: deletes its veth pair. */
  cut(i: number): void;
  /**
   * Shapes every host's link to `rate` in both directions (`tc qdisc replace … tbf`), or back to
   * the veth's own speed with null.
   */
  shape(rate: string | null): void;
  /** Kills what runs in the namespaces and deletes them; returns what was still running. */
  cleanup(): number[];
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
 * @example
 * ```ts
 * const why = netnsUnavailable(); // null as root with iproute2
 * ```
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

/**
 * Makes `count` hosts joined by a bridge in a switch namespace.
 *
 * @param count hosts
 * @returns the hosts; call `cleanup()` in a finally
 * @throws {Error} naming the `ip` command that failed (after removing what was made)
 * @example
 * ```ts
 * const hosts = makeNetnsHosts(2);
 * try {
 *   hosts.shape("200mbit");
 * } finally {
 *   hosts.cleanup();
 * }
 * ```
 */
export function makeNetnsHosts(count: number): NetnsHosts {
  const id = `${Deno.pid % 100000}${Math.floor(Math.random() * 100)}`;
  const net = 1 + (Deno.pid % 250);
  const sw = `pt${id}sw`;
  const names = Array.from({ length: count }, (_, i) => `pt${id}h${i}`);
  const addrs = names.map((_, i) => `10.213.${net}.${i + 1}`);
  const hostEnd = (i: number) => `v${id}h${i}`;
  const switchEnd = (i: number) => `v${id}s${i}`;
  const made: string[] = [];
  const must = (args: string[]) => {
    const r = run(args);
    if (!r.ok) throw new Error(`${args.join(" ")}: ${r.err.trim()}`);
  };
  const hosts: NetnsHosts = {
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
    cut: (i) => must(["ip", "-n", sw, "link", "del", switchEnd(i)]),
    shape: (rate) => {
      names.forEach((ns, i) => {
        for (const [where, dev] of [[ns, hostEnd(i)], [sw, switchEnd(i)]]) {
          if (rate === null) {
            run(["tc", "-n", where, "qdisc", "del", "dev", dev, "root"]);
            continue;
          }
          must([
            "tc",
            "-n",
            where,
            "qdisc",
            "replace",
            "dev",
            dev,
            "root",
            "tbf",
            "rate",
            rate,
            "burst",
            SHAPE_BURST,
            "latency",
            SHAPE_QUEUE_LATENCY,
          ]);
        }
      });
    },
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
      must([
        "ip",
        "link",
        "add",
        hostEnd(i),
        "netns",
        ns,
        "type",
        "veth",
        "peer",
        switchEnd(i),
        "netns",
        sw,
      ]);
      must(["ip", "-n", sw, "link", "set", switchEnd(i), "master", "br0", "up"]);
      must(["ip", "-n", ns, "addr", "add", `${addrs[i]}/24`, "dev", hostEnd(i)]);
      must(["ip", "-n", ns, "link", "set", hostEnd(i), "up"]);
      must(["ip", "-n", ns, "link", "set", "lo", "up"]);
    });
  } catch (error) {
    hosts.cleanup();
    throw error;
  }
  return hosts;
}
