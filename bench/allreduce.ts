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
import { launch } from "../comm/launcher.ts";
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
  /** Transports to measure, each with its own raw ceiling (default `["unix"]`). */
  transports?: AllreduceTransport[];
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
  const {
    worldSizes = [2, 4],
    quick = false,
    timeoutMs,
    onProgress = () => {},
    collective = "all-reduce",
    op = "sum",
    check = false,
    transports = ["unix"],
  } = options;
  for (const n of worldSizes) {
    if (!Number.isInteger(n) || n < 2) {
      throw new RangeError(
        `Invalid world size ${n} for the all-reduce benchmark: expected an integer ≥ 2`,
      );
    }
  }
  const startedAt = new Date().toISOString();

  const rawPlan: RankPlan = {
    mode: "raw",
    size: {
      bytes: RAW_BYTES,
      warmup: 1,
      iterations: quick ? QUICK_RAW_ITERATIONS : RAW_ITERATIONS,
    },
  };
  /** One raw measurement: GB/s per direction. */
  const measureRaw = async (transport: AllreduceTransport, when: string) => {
    onProgress({
      phase: "raw",
      worldSize: 2,
      message: `raw ${transport} socket, ${RAW_BYTES / 2 ** 20} MiB each way (${when})`,
    });
    const [rawUs] = slowestMedians(
      await runRanks({ ...rawPlan, transport }, 2, timeoutMs, transport),
    );
    return RAW_BYTES / (rawUs * 1e-6) / BYTES_PER_GB;
  };
  const sizes = planSizes(quick, options);
  const rows: AllreduceRow[] = [];
  const raws: RawThroughput[] = [];
  const reduces = collective === "all-reduce" || collective === "reduce-scatter";
  for (const transport of transports) {
    // Raw is measured before and after the all-reduce runs (this machine's speed drifts);
    // the better of the two is the ceiling the ring is compared with.
    const rawBefore = await measureRaw(transport, "before");
    for (const worldSize of worldSizes) {
      onProgress({
        phase: "all-reduce",
        worldSize,
        message: `${collective} over ${transport}, ${worldSize} ranks, ${sizes.length} sizes`,
      });
      const ranks = await runRanks(
        { mode: "ring", sizes, collective, op, check },
        worldSize,
        timeoutMs,
        transport,
      );
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
    }
    const samplesGBps = [rawBefore, await measureRaw(transport, "after")];
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
    },
  };
  return result;
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

/** The sizes to run: -b to -e by -f, each with its warm-up and timed iterations. */
function planSizes(quick: boolean, options: AllreduceBenchOptions): SizePlan[] {
  const factor = options.stepFactor ?? (quick ? QUICK_SIZE_FACTOR : SIZE_FACTOR);
  const perSize = quick ? QUICK_BYTES_PER_SIZE : BYTES_PER_SIZE;
  const [min, max] = quick
    ? [QUICK_MIN_ITERATIONS, QUICK_MAX_ITERATIONS]
    : [MIN_ITERATIONS, MAX_ITERATIONS];
  const warmup = options.warmupIterations ?? (quick ? QUICK_WARMUP_ITERATIONS : WARMUP_ITERATIONS);
  const sizes: SizePlan[] = [];
  const last = options.maxBytes ?? MAX_BYTES;
  for (let bytes = options.minBytes ?? MIN_BYTES; bytes <= last; bytes *= factor) {
    sizes.push({
      bytes,
      warmup,
      iterations: options.iterations ?? Math.min(max, Math.max(min, Math.floor(perSize / bytes))),
    });
  }
  return sizes;
}

async function runRanks(
  plan: RankPlan,
  worldSize: number,
  timeoutMs: number | undefined,
  transport: AllreduceTransport,
): Promise<RankTimings[]> {
  const { results } = await launch<RankTimings>(RANK_MODULE, {
    worldSize,
    args: [JSON.stringify(plan)],
    timeoutMs,
    transport,
  });
  return results.map((timings, rank) => {
    if (timings === null) {
      throw new Error(`Rank ${rank} of the all-reduce benchmark reported no timings`);
    }
    return timings;
  });
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
