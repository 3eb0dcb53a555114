/**
 * All-reduce benchmark in the style of nccl-tests `all_reduce_perf`: for each world size and
 * buffer size, the time per all-reduce, the algorithm bandwidth (bytes / time) and the bus
 * bandwidth (algbw · 2(n−1)/n, comparable across world sizes), next to the raw point-to-point
 * throughput of the same transport measured in the same run: the ceiling a ring approaches.
 *
 * This module measures; `reports/allreduce_markdown.ts` presents.
 *
 * @module
 */
import { median } from "../core/stats.ts";
import { UsageError } from "../core/errors.ts";
import { formatBytes } from "../core/format_bytes.ts";
import { launch } from "../comm/launcher.ts";
import { followNodes, leadNodes, type NodeHost } from "../comm/node_group.ts";
import { ENV_NAMES } from "../comm/rank_env.ts";
import type { NodeSpec } from "../core/run_types.ts";
import type { Collective, RankPlan, RankTimings, SizePlan } from "./_allreduce_rank.ts";
import type { ReduceOp } from "../comm/process_group.ts";
import { fitLinkModels, type LinkModel } from "./link_model.ts";

export type { LinkModel };

/** Schema tag of {@linkcode AllreduceResult}. */
export const ALLREDUCE_SCHEMA = "paratrain/allreduce@1";
/** Smallest buffer timed (4 KiB). */
const MIN_BYTES = 4 << 10;
/** Largest buffer timed (64 MiB). */
const MAX_BYTES = 64 << 20;
/** Size step: ×2 (nccl-tests' `-f 2`); quick runs use ×4. */
const SIZE_FACTOR = 2;
const QUICK_SIZE_FACTOR = 4;
/** Untimed all-reduces before each size's timed ones (warms code paths and page mappings). */
const WARMUP_ITERATIONS = 5;
const QUICK_WARMUP_ITERATIONS = 2;
/** Bytes all-reduced per timed size: small sizes repeat more, up to the caps below. */
const BYTES_PER_SIZE = 1 << 30;
const QUICK_BYTES_PER_SIZE = 256 << 20;
/** Bounds on timed iterations per size. */
const MIN_ITERATIONS = 5;
const MAX_ITERATIONS = 100;
const QUICK_MIN_ITERATIONS = 3;
const QUICK_MAX_ITERATIONS = 20;
/** Raw point-to-point transfer size: large, as a ring step's chunk is. */
const RAW_BYTES = 64 << 20;
/** Timed raw transfers (and one warm-up); the median counts. */
const RAW_ITERATIONS = 7;
const QUICK_RAW_ITERATIONS = 3;
/** Bytes in a GB, as nccl-tests counts them. */
const BYTES_PER_GB = 1e9;
/** The ring's largest frame payload: what its 4-byte length header can describe. */
const MAX_FRAME_BYTES = 0xffff_ffff;
/**
 * Memory one benchmark rank takes besides its two buffers (a Deno process with the ring and its
 * scratch pieces: about 60 MiB measured here), rounded up.
 */
const RANK_OVERHEAD_BYTES = 128 << 20;
/** Buffers of the timed size each rank holds: the collective's, and the out-of-place input. */
const BUFFERS_PER_RANK = 2;

/** Rank module that does the measuring. */
const RANK_MODULE = new URL("./_allreduce_rank.ts", import.meta.url);

/** A transport the benchmark measures: Unix sockets, or TCP on loopback. */
export type AllreduceTransport = "unix" | "tcp";

/** Raw point-to-point throughput of one transport. */
export interface RawThroughput {
  /** The transport. */
  transport: AllreduceTransport;
  /** The better of the measurements before and after the ring runs, GB/s per direction. */
  GBps: number;
  /** Bytes sent each way per measurement. */
  bytes: number;
  /** Each measurement, GB/s. */
  samplesGBps?: number[];
}

/** One timed size of one world size. */
export interface AllreduceRow {
  /** The transport measured. */
  transport: AllreduceTransport;
  /** Ranks in the ring. */
  worldSize: number;
  /** Buffer size all-reduced, in bytes (float32 elements × 4). */
  bytes: number;
  /** Median time of one all-reduce (the slowest rank's, per iteration), in µs. */
  usPerOp: number;
  /** bytes / time. */
  algbwGBps: number;
  /** algbw · 2(n−1)/n: what each link carried; compare with `raw.GBps`. */
  busbwGBps: number;
  /** all-reduce (absent in older files), all-gather, reduce-scatter or broadcast. */
  collective?: Collective;
  /** The reduce op (all-reduce, reduce-scatter), else absent. */
  op?: ReduceOp;
  /** Float32 elements: the buffer's (all-gather: the gathered result's). */
  count?: number;
  /** False: the input copied into a separate output buffer first (the copy timed); absent in older files: in place. */
  inPlace?: boolean;
  /** With `-c 1`: elements that came out wrong, summed over the ranks (nccl-tests' #wrong); else null. */
  wrong?: number | null;
}

/** What {@linkcode runAllreduceBench} measured. */
export interface AllreduceResult {
  /** Always {@linkcode ALLREDUCE_SCHEMA}. */
  schema: typeof ALLREDUCE_SCHEMA;
  /** Point-to-point throughput between two Deno processes, both directions at once. */
  /** `GBps`: the better of the measurements before and after the ring runs (`samplesGBps`). */
  raw: RawThroughput;
  /** Every transport's raw throughput when more than one ran (`raw` is the first). */
  raws?: RawThroughput[];
  /** One row per world size and buffer size. */
  rows: AllreduceRow[];
  /**
   * All-reduce only: the latency α and bandwidth β fitted to the in-place rows, per transport
   * and world size (`bench/link_model.ts`); absent in older files and for other collectives.
   */
  linkModel?: LinkModel[];
  /** Where it ran. */
  env: {
    deno: string;
    os: string;
    arch: string;
    logicalCpus: number;
    quick: boolean;
    startedAt: string;
    /** Across hosts: the hosts (absent on one host). */
    nodes?: { nnodes: number; nprocPerNode: number; hosts: NodeHost[] };
  };
}

/** Progress of a running benchmark. */
export interface AllreduceProgress {
  /** What is being measured. */
  phase: "raw" | "all-reduce";
  /** Ranks involved. */
  worldSize: number;
  /** One line for people. */
  message: string;
}

/** Options for {@linkcode runAllreduceBench}. */
export interface AllreduceBenchOptions {
  /** World sizes to run (default [2, 4]). */
  worldSizes?: number[];
  /** Fewer sizes and iterations: finishes in well under a minute (default false). */
  quick?: boolean;
  /** A deadline for each launched job, ms (default: none; a hung rank fails at the collective timeout). */
  timeoutMs?: number;
  /** Called before each measurement. */
  onProgress?: (progress: AllreduceProgress) => void;
  /** The collective (default all-reduce). */
  collective?: Collective;
  /** The reduce op (default sum). */
  op?: ReduceOp;
  /** Smallest and largest buffer, bytes (nccl-tests' -b, -e); default 4 KiB to 64 MiB. */
  minBytes?: number;
  maxBytes?: number;
  /** Size multiplier between rows (-f); default 2 (4 with --quick). */
  stepFactor?: number;
  /** Timed iterations per size (-n); default: enough for about 1 GiB, 5 to 100. */
  iterations?: number;
  /** Untimed iterations per size (-w); default 5 (2 with --quick). */
  warmupIterations?: number;
  /** Check each size on known values and count wrong elements (-c 1). */
  check?: boolean;
  /**
   * Transports to measure, each with its own raw ceiling (default `["unix"]`). Across hosts:
   * the links between hosts are TCP; the first transport says how ranks on one host link.
   */
  transports?: AllreduceTransport[];
  /**
   * Across hosts (torchrun's flags): every host runs the same benchmark; node 0 leads and
   * writes. A world size of n uses the first n / `nprocPerNode` hosts.
   */
  nodes?: NodeSpec;
}

/**
 * Measures the raw transport throughput, then times all-reduce for each world size over sizes
 * 4 KiB … 64 MiB, each rank a separate Deno process started by the launcher.
 *
 * @param options World sizes, quick preset, output directory, optional deadline, progress callback.
 * @returns The measurements (schema `paratrain/allreduce@1`).
 * @example
 * ```ts
 * const result = await runAllreduceBench({ worldSizes: [2], quick: true });
 * console.log(result.rows.map((r) => `${r.bytes} B: ${r.busbwGBps} GB/s`).join("\n"));
 * ```
 */
export async function runAllreduceBench(
  options: AllreduceBenchOptions = {},
): Promise<AllreduceResult> {
  const { quick = false, onProgress = () => {}, collective = "all-reduce", op = "sum" } = options;
  const { check = false } = options;
  const jobs = planJobs(options);
  const nodes = acrossHosts(options);
  if (nodes && nodes.nodeRank !== 0) {
    throw new Error("runAllreduceBench runs on node 0; the other hosts follow it");
  }
  const startedAt = new Date().toISOString();
  const group = nodes ? await leadNodes(await groupOptions(nodes, jobs)) : null;
  const timings: RankTimings[][] = [];
  try {
    for (const [index, job] of jobs.entries()) {
      onProgress(job.progress);
      const here = () => hostPart(job, options);
      if (!group) timings.push(await here());
      else {
        const { local, remote } = await group.run(index, here);
        timings.push([...local, ...(remote as RankTimings[][]).flat()]);
      }
    }
    await group?.close();
  } catch (error) {
    await group?.close((error as Error).message);
    throw error;
  }
  const sizes = planSizes(quick, options);
  const rows: AllreduceRow[] = [];
  const raws: RawThroughput[] = [];
  const reduces = collective === "all-reduce" || collective === "reduce-scatter";
  const rawSamples = new Map<AllreduceTransport, number[]>();
  jobs.forEach((job, j) => {
    const ranks = timings[j].sort((a, b) => a.rank - b.rank);
    if (job.plan.mode === "raw") {
      const [rawUs] = slowestMedians(ranks);
      rawSamples.set(job.transport, [
        ...rawSamples.get(job.transport) ?? [],
        RAW_BYTES / (rawUs * 1e-6) / BYTES_PER_GB,
      ]);
      return;
    }
    const { transport, worldSize } = job;
    const inPlace = slowestMedians(ranks, "us");
    const outOfPlace = slowestMedians(ranks, "usOutOfPlace");
    sizes.forEach(({ bytes }, i) => {
      const wrong = check ? ranks.reduce((sum, r) => sum + (r.sizes[i].wrong ?? 0), 0) : null;
      for (const [place, us] of [[false, outOfPlace[i]], [true, inPlace[i]]] as const) {
        const algbwGBps = bytes / (us * 1e-6) / BYTES_PER_GB;
        rows.push({
          transport,
          worldSize,
          bytes,
          usPerOp: us,
          algbwGBps,
          busbwGBps: algbwGBps * busFactor(collective, worldSize),
          collective,
          ...(reduces ? { op } : {}),
          count: bytes / Float32Array.BYTES_PER_ELEMENT,
          inPlace: place,
          wrong,
        });
      }
    });
  });
  for (const [transport, samplesGBps] of rawSamples) {
    raws.push({ transport, GBps: Math.max(...samplesGBps), bytes: RAW_BYTES, samplesGBps });
  }
  const result: AllreduceResult = {
    schema: ALLREDUCE_SCHEMA,
    raw: raws[0],
    ...(raws.length > 1 ? { raws } : {}),
    rows,
    ...(collective === "all-reduce"
      ? { linkModel: fitLinkModels(rows.filter((r) => r.inPlace !== false)) }
      : {}),
    env: {
      deno: Deno.version.deno,
      os: Deno.build.os,
      arch: Deno.build.arch,
      logicalCpus: navigator.hardwareConcurrency,
      quick,
      startedAt,
      ...(group && nodes
        ? { nodes: { nnodes: nodes.nnodes, nprocPerNode: nodes.nprocPerNode, hosts: group.hosts } }
        : {}),
    },
  };
  return result;
}

/**
 * The all-reduce benchmark on a host other than node 0 (`--node-rank` ≥ 1): joins node 0 and
 * runs this host's ranks of every job node 0 starts.
 *
 * @param options the same options as node 0's, with this host's `nodes.nodeRank`
 * @returns how many jobs this host took part in
 * @example
 * ```ts
 * await followAllreduceBench({
 *   worldSizes: [2], quick: true,
 *   nodes: { nnodes: 2, nodeRank: 1, nprocPerNode: 1, masterAddr: "10.0.0.1", masterPort: 29500 },
 * });
 * ```
 */
export async function followAllreduceBench(options: AllreduceBenchOptions): Promise<number> {
  const nodes = acrossHosts(options);
  if (!nodes || nodes.nodeRank === 0) {
    throw new Error("followAllreduceBench runs on the hosts other than node 0");
  }
  const jobs = planJobs(options);
  let ran = 0;
  await followNodes(await groupOptions(nodes, jobs), async (index) => {
    const job = jobs[index];
    if (!job) throw new Error(`Node 0 asked for job ${index}, which this host did not plan`);
    options.onProgress?.(job.progress);
    const timings = await hostPart(job, options);
    if (timings.length > 0) ran++;
    return timings;
  });
  return ran;
}

/** One launch of the benchmark: a raw measurement or a ring over some sizes. */
interface Job {
  plan: RankPlan;
  transport: AllreduceTransport;
  worldSize: number;
  progress: AllreduceProgress;
}

/** The options' node spec when the benchmark spans hosts, else null. */
function acrossHosts(options: AllreduceBenchOptions): NodeSpec | null {
  return options.nodes && options.nodes.nnodes > 1 ? options.nodes : null;
}

/**
 * Every launch, in order: per transport, raw before, the ring at each world size, raw after
 * (this machine's speed drifts; the better raw figure is the ceiling). Across hosts the links
 * between hosts are TCP, and rows say so.
 */
function planJobs(options: AllreduceBenchOptions): Job[] {
  const { worldSizes = [2, 4], quick = false, collective = "all-reduce", op = "sum" } = options;
  const { check = false } = options;
  const nodes = acrossHosts(options);
  for (const n of worldSizes) {
    if (!Number.isInteger(n) || n < 2) {
      throw new RangeError(
        `Invalid world size ${n} for the all-reduce benchmark: expected an integer ≥ 2`,
      );
    }
  }
  const transports = nodes ? ["tcp" as const] : options.transports ?? ["unix"];
  const sizes = planSizes(quick, options);
  for (const n of worldSizes) checkAllreduceFits(sizes.at(-1)?.bytes ?? 0, n, { collective });
  const raw = (transport: AllreduceTransport, when: string): Job => ({
    plan: {
      mode: "raw",
      size: {
        bytes: RAW_BYTES,
        warmup: 1,
        iterations: quick ? QUICK_RAW_ITERATIONS : RAW_ITERATIONS,
      },
      transport,
      ...(nodes ? { acrossHosts: true } : {}),
    },
    transport,
    worldSize: 2,
    progress: {
      phase: "raw",
      worldSize: 2,
      message: `raw ${transport} socket${nodes ? " between hosts 0 and 1" : ""}, ${
        RAW_BYTES / 2 ** 20
      } MiB each way (${when})`,
    },
  });
  return transports.flatMap((transport) => [
    raw(transport, "before"),
    ...worldSizes.map((worldSize): Job => ({
      plan: { mode: "ring", sizes, collective, op, check },
      transport,
      worldSize,
      progress: {
        phase: "all-reduce",
        worldSize,
        message: `${collective} over ${transport}, ${worldSize} ranks${
          nodes ? ` on ${worldSize / nodes.nprocPerNode} hosts` : ""
        }, ${sizes.length} sizes`,
      },
    })),
    raw(transport, "after"),
  ]);
}

/**
 * This host's ranks of a job: all of them on one host; across hosts, ranks `nproc-per-node`
 * to a host on the first `worldSize / nproc-per-node` hosts (the raw pair: hosts 0 and 1, one
 * rank each), each job's rendezvous one port above node 0's control port. None where this host
 * is not among them.
 */
async function hostPart(job: Job, options: AllreduceBenchOptions): Promise<RankTimings[]> {
  const nodes = acrossHosts(options);
  const launchNodes = nodes
    ? (() => {
      const perHost = job.plan.mode === "raw" ? 1 : nodes.nprocPerNode;
      return {
        ...nodes,
        nnodes: job.worldSize / perHost,
        nprocPerNode: perHost,
        masterPort: nodes.masterPort + 1,
      };
    })()
    : undefined;
  if (launchNodes && launchNodes.nodeRank >= launchNodes.nnodes) return [];
  const { results } = await launch<RankTimings>(RANK_MODULE, {
    worldSize: job.worldSize,
    args: [JSON.stringify(job.plan)],
    timeoutMs: options.timeoutMs,
    // Across hosts: Unix sockets between ranks on a host, TCP between hosts.
    transport: nodes ? options.transports?.[0] ?? "unix" : job.transport,
    nodes: launchNodes,
  });
  return results.map((timings, k) => {
    if (timings === null) {
      throw new Error(`A rank of the all-reduce benchmark reported no timings (local rank ${k})`);
    }
    return timings;
  });
}

/** The node group's settings: the control port, the secret, the digest of the jobs. */
async function groupOptions(nodes: NodeSpec, jobs: Job[]) {
  const token = Deno.env.get(ENV_NAMES.token);
  if (!token) throw new Error(`An all-reduce benchmark across hosts needs ${ENV_NAMES.token}`);
  const bytes = new TextEncoder().encode(JSON.stringify([nodes.nnodes, nodes.nprocPerNode, jobs]));
  const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return { ...nodes, token, digest };
}

/**
 * nccl-tests' bus bandwidth factor: what each link carries per byte of the collective's
 * buffer, so busbw compares with the raw link throughput whatever the collective.
 *
 * @param collective the collective
 * @param n ranks
 * @returns the factor
 * @example
 * ```ts
 * busFactor("all-reduce", 4); // 1.5
 * ```
 */
export function busFactor(collective: Collective, n: number): number {
  if (collective === "all-reduce") return (2 * (n - 1)) / n;
  if (collective === "broadcast") return 1;
  return (n - 1) / n;
}

/** Options for {@linkcode checkAllreduceFits}. */
export interface AllreduceFitOptions {
  /** The collective (default all-reduce): it decides the largest frame. */
  collective?: Collective;
  /** Memory this host has for the ranks (default: what the OS says is available now). */
  availableBytes?: number;
}

/**
 * Checks that a collective of `bytes` at `worldSize` ranks can run here, before any rank
 * starts: its largest ring frame (a chunk of `bytes / worldSize`, or the whole buffer for a
 * broadcast) within the 4-byte frame header's limit, and every rank's two buffers (plus
 * {@linkcode RANK_OVERHEAD_BYTES}) within the available memory, all ranks on this host.
 *
 * @param bytes the largest buffer the run times
 * @param worldSize ranks
 * @param options the collective, the memory available
 * @throws UsageError naming the size, why it cannot run, and the largest size that can
 * @example
 * ```ts
 * checkAllreduceFits(64 << 20, 2); // fine
 * checkAllreduceFits(8 * 2 ** 30, 2); // throws: frames of 4 GiB
 * ```
 */
export function checkAllreduceFits(
  bytes: number,
  worldSize: number,
  options: AllreduceFitOptions = {},
): void {
  const { collective = "all-reduce", availableBytes = Deno.systemMemoryInfo().available } = options;
  const floats = (n: number) => Math.floor(n / Float32Array.BYTES_PER_ELEMENT);
  // The largest frame: one chunk of the even split, or the whole buffer for a broadcast.
  const chunks = collective === "broadcast" ? 1 : worldSize;
  const maxFrameFloats = floats(MAX_FRAME_BYTES);
  const frameLimit = chunks * maxFrameFloats * Float32Array.BYTES_PER_ELEMENT;
  const perRank = Math.floor(availableBytes / worldSize) - RANK_OVERHEAD_BYTES;
  const memoryLimit = floats(Math.max(0, perRank) / BUFFERS_PER_RANK) *
    Float32Array.BYTES_PER_ELEMENT;
  if (bytes <= Math.min(frameLimit, memoryLimit)) return;
  const largest = Math.min(frameLimit, memoryLimit);
  const what = `${collective} of ${formatBytes(bytes)} at world size ${worldSize}`;
  const memory = `it needs about ${
    formatBytes(worldSize * (BUFFERS_PER_RANK * bytes + RANK_OVERHEAD_BYTES))
  } on this host (${worldSize} ranks × ${BUFFERS_PER_RANK} buffers of ${formatBytes(bytes)} and ${
    formatBytes(RANK_OVERHEAD_BYTES)
  } each), more than the ${formatBytes(availableBytes)} available`;
  const frame = `it sends frames of ${
    formatBytes(Math.ceil(floats(bytes) / chunks) * 4)
  }, above the ring's frame limit of ${MAX_FRAME_BYTES} bytes`;
  const why = [...(bytes > frameLimit ? [frame] : []), ...(bytes > memoryLimit ? [memory] : [])];
  throw new UsageError(
    `Cannot time ${what}: ${why.join(", and ")}; ` +
      (largest >= 4
        ? `the largest size that fits is ${largest} bytes (-e ${sizeFlag(largest)})`
        : `no size fits at this world size`),
  );
}

/** A byte count as -b/-e take it, rounded down to a whole M or K: `4095M`, `64K`, `4096`. */
function sizeFlag(bytes: number): string {
  for (const [suffix, unit] of [["M", 2 ** 20], ["K", 2 ** 10]] as const) {
    if (bytes >= unit) return `${Math.floor(bytes / unit)}${suffix}`;
  }
  return String(bytes);
}

/** The sizes to run: -b to -e by -f, each with its warm-up and timed iterations. */
function planSizes(quick: boolean, options: AllreduceBenchOptions): SizePlan[] {
  const factor = options.stepFactor ?? (quick ? QUICK_SIZE_FACTOR : SIZE_FACTOR);
  const perSize = quick ? QUICK_BYTES_PER_SIZE : BYTES_PER_SIZE;
  const [min, max] = quick
    ? [QUICK_MIN_ITERATIONS, QUICK_MAX_ITERATIONS]
    : [MIN_ITERATIONS, MAX_ITERATIONS];
  const warmup = options.warmupIterations ?? (quick ? QUICK_WARMUP_ITERATIONS : WARMUP_ITERATIONS);
  const sizes: SizePlan[] = [];
  // -b alone above the default -e times that one size, rather than none.
  const last = options.maxBytes ?? Math.max(MAX_BYTES, options.minBytes ?? MIN_BYTES);
  for (let bytes = options.minBytes ?? MIN_BYTES; bytes <= last; bytes *= factor) {
    sizes.push({
      bytes,
      warmup,
      iterations: options.iterations ?? Math.min(max, Math.max(min, Math.floor(perSize / bytes))),
    });
  }
  return sizes;
}

/**
 * The raw throughput a row compares with: its own transport's.
 *
 * @param result the benchmark's result
 * @param transport a row's transport
 * @returns GB/s per direction
 * @example
 * ```ts
 * declare const result: AllreduceResult;
 * rawGBps(result, "tcp");
 * ```
 */
export function rawGBps(result: AllreduceResult, transport: AllreduceTransport): number {
  return (result.raws ?? [result.raw]).find((r) => r.transport === transport)?.GBps ??
    result.raw.GBps;
}

/** Per size: the median over iterations of the slowest rank's time, in µs. */
function slowestMedians(ranks: RankTimings[], which: "us" | "usOutOfPlace" = "us"): number[] {
  return ranks[0].sizes.map((_, s) => {
    const times = (rank: RankTimings) => rank.sizes[s][which] ?? rank.sizes[s].us;
    const slowest = times(ranks[0]).map((_, i) => Math.max(...ranks.map((rank) => times(rank)[i])));
    return median(slowest);
  });
}
