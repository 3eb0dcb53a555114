/**
 * DistributedDataParallel: one OS process per rank, started by a torchrun-style launcher.
 * Each rank builds its own model, receives rank 0's initial parameters (broadcast), trains
 * on its DistributedSampler shard, averages gradients with ring all-reduce over Unix domain
 * sockets, and steps its own optimizer.
 *
 * @module
 */
import { launch } from "../comm/launcher.ts";
import type { RunMeasurement, RunSpec } from "../core/run_types.ts";
import type { StepProgress } from "../core/train_loop.ts";
import { fromWire, readProgress, type WireMeasurement } from "./_wire.ts";

/** Gradient bucket cap, as PyTorch DDP's default `bucket_cap_mb=25`. */
export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;

/** Options for {@linkcode runDdp}. */
export interface DdpOptions {
  /** Gradient bucket cap in bytes (default {@linkcode DEFAULT_BUCKET_BYTES}). */
  bucketBytes?: number;
  /** ms a collective may wait for a peer before the run fails (default: the ranks' 60 s). */
  collectiveTimeoutMs?: number;
  /**
   * Measure the ceiling instead: the same ranks, shards and per-rank work, with no
   * communication at all.
   */
  ceiling?: boolean;
}

/**
 * Merge the ranks' measurements: rank 0's timings and accuracy (every rank holds the same
 * parameters), every rank's memory row.
 */
function mergeRanks(ranks: RunMeasurement[]): RunMeasurement {
  return { ...ranks[0], workers: ranks.flatMap((r) => r.workers) };
}

/**
 * Train `spec` with `spec.worldSize` DDP ranks.
 *
 * @param spec the run (`globalBatch` must divide by `worldSize`)
 * @param onStep progress of rank 0
 * @param options see {@linkcode DdpOptions}
 * @returns the merged measurement
 * @example
 * ```ts
 * const m = await runDdp({ ...spec, strategy: "ddp", worldSize: 2 });
 * ```
 */
export async function runDdp(
  spec: RunSpec,
  onStep?: StepProgress,
  options: DdpOptions = {},
): Promise<RunMeasurement> {
  const {
    bucketBytes = DEFAULT_BUCKET_BYTES,
    collectiveTimeoutMs = spec.collectiveTimeoutMs,
    ceiling = false,
  } = options;
  const { results } = await launch<WireMeasurement>(new URL("./_ddp_rank.ts", import.meta.url), {
    worldSize: spec.worldSize,
    args: [JSON.stringify({ ...spec, strategy: "ddp", bucketBytes, ceiling })],
    collectiveTimeoutMs,
    timeoutMs: spec.jobTimeoutMs,
    onLine: ({ rank, stream, line }) => {
      if (stream === "stdout" && readProgress(line, onStep)) return;
      (stream === "stdout" ? console.log : console.error)(`[rank ${rank}] ${line}`);
    },
  });
  return mergeRanks(results.map((r, rank) => {
    if (!r) throw new Error(`Rank ${rank} exited without reporting its measurement`);
    return fromWire(r);
  }));
}
