/**
 * DistributedDataParallel: one OS process per rank, started by a torchrun-style launcher.
 * Each rank builds its own model, receives rank 0's initial parameters (broadcast), trains
 * on its DistributedSampler shard, averages gradients with ring all-reduce (Unix domain sockets
 * on one host, TCP across hosts or with `transport: "tcp"`), and steps its own optimizer:
 *
 * ```
 *   broadcast      rank 0's params ──► every rank           (once, before step 1)
 *   compute        every rank: forward + backward on its shard of the global batch
 *   all-reduce     gradient buckets (≤ 25 MiB) averaged across ranks, in place
 *   update         every rank's own optimizer steps its own params (the loop's `update`)
 * ```
 *
 * {@linkcode runDdp} launches the ranks; each runs {@linkcode distributedDataParallel}.
 *
 * @module
 */
import { launch } from "../comm/launcher.ts";
import type { ProcessGroup } from "../comm/process_group.ts";
import { timed } from "../core/phases.ts";
import type { RunMeasurement, RunSpec, WorkerMemory } from "../core/run_types.ts";
import { summarize } from "../core/stats.ts";
import { activeTrace, hostMicros } from "../core/trace.ts";
import type { StepProgress } from "../core/train_loop.ts";
import type { Participation, Replica } from "./_run_replica.ts";
import { fromWire, readProgress, type WireMeasurement } from "./_wire.ts";

/** Gradient bucket cap, as PyTorch DDP's default `bucket_cap_mb=25`. */
export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;

/** What every rank is given: the run, and its bucket size. */
export type RankSpec = RunSpec & { bucketBytes: number };

/** Options for {@linkcode runDdp}. */
export interface DdpOptions {
  /** Gradient bucket cap in bytes (default {@linkcode DEFAULT_BUCKET_BYTES}). */
  bucketBytes?: number;
}

/**
 * Train `spec` with `spec.worldSize` DDP ranks (with `spec.ceiling`: its ceiling, the same
 * ranks with a barrier per step in place of the all-reduce).
 *
 * @param spec the run (`globalBatch` must divide by `worldSize`)
 * @param onStep progress of rank 0
 * @param options see {@linkcode DdpOptions}
 * @returns rank 0's measurement with every rank's memory row
 * @example
 * ```ts
 * const m = await runDdp({
 *   workload: "iris-logreg", strategy: "ddp", worldSize: 2, backend: "wasm",
 *   fastKernels: true, seed: 0, steps: 5, warmup: 0, globalBatch: 32, snapshotStep: 5,
 * });
 * console.log(m.comm.bytesPerStep);
 * ```
 */
export async function runDdp(
  spec: RunSpec,
  onStep?: StepProgress,
  options: DdpOptions = {},
): Promise<RunMeasurement> {
  const { bucketBytes = DEFAULT_BUCKET_BYTES } = options;
  const rankSpec: RankSpec = { ...spec, strategy: "ddp", bucketBytes };
  const { results } = await launch<WireMeasurement>(new URL("./_ddp_rank.ts", import.meta.url), {
    worldSize: spec.worldSize,
    args: [JSON.stringify(rankSpec)],
    collectiveTimeoutMs: spec.collectiveTimeoutMs,
    timeoutMs: spec.jobTimeoutMs,
    transport: spec.transport,
    nodes: spec.nodes,
    onLine: ({ rank, stream, line }) => {
      if (stream === "stdout" && readProgress(line, onStep)) return;
      (stream === "stdout" ? console.log : console.error)(`[rank ${rank}] ${line}`);
    },
  });
  const ranks = results.map((r, rank) => {
    if (!r) throw new Error(`Rank ${rank} exited without reporting its measurement`);
    return fromWire(r);
  });
  // Every rank holds the same parameters: rank 0's timings and accuracy stand for the run.
  return {
    ...ranks[0],
    workers: arrivalLags(ranks.flatMap((r) => r.workers), spec.warmup),
    ...(spec.trace ? { trace: ranks.flatMap((r) => r.trace ?? []) } : {}),
  };
}

/**
 * One rank's participation: its shard of the data, rank 0's starting parameters, its own
 * gradient averaged across ranks bucket by bucket. With `spec.ceiling` the buckets are
 * replaced by one barrier per step: the ranks keep their shards and stay in lock-step, so the
 * run measures what N processes computing at once can give on this machine (ranks left to
 * drift apart would overlap their compute less and look faster than any synchronous
 * schedule can be).
 *
 * @param pg this rank's process group
 * @param spec the run, with its bucket size
 * @returns the participation `runReplica` takes
 * @example
 * ```ts
 * import { initProcessGroupFromEnv } from "../comm/init_process_group.ts";
 * import { runReplica } from "./_run_replica.ts";
 * declare const spec: RankSpec;
 * const pg = await initProcessGroupFromEnv();
 * const m = await runReplica(spec, distributedDataParallel(pg, spec));
 * ```
 */
export function distributedDataParallel(
  pg: ProcessGroup,
  spec: RankSpec,
): (replica: Replica) => Promise<Participation> {
  const bucketFloats = Math.max(1, Math.floor(spec.bucketBytes / Float32Array.BYTES_PER_ELEMENT));
  // When this rank reached each step's collective, on the host's clock (one per host: every
  // rank's `timeOrigin + now()` reads the same system clock).
  const arrivals: number[] = [];
  return ({ trainer }) =>
    Promise.resolve({
      rank: pg.rank,
      shards: pg.worldSize,
      start: async (params) => {
        if (!spec.ceiling) await pg.broadcast(params);
        return params;
      },
      gradients: async (batch, { phases, comm }) => {
        const result = await timed(phases, "compute", () => trainer.computeGradients(batch));
        arrivals.push(performance.timeOrigin + performance.now());
        await timed(phases, "allReduce", async () => {
          if (spec.ceiling) {
            comm.waitMs += (await pg.barrier()).waitMs;
            return;
          }
          const grads = result.grads;
          for (let start = 0; start < grads.length; start += bucketFloats) {
            const bucket = grads.subarray(start, Math.min(grads.length, start + bucketFloats));
            const startUs = hostMicros();
            const stats = await pg.allReduce(bucket, { op: "avg" });
            comm.bytes += stats.bytes;
            comm.waitMs += stats.waitMs;
            const trace = activeTrace();
            trace?.span("wait", "waiting for the other ranks", startUs, stats.waitMs * 1000);
            trace?.span(
              "allReduce",
              `bucket ${start / bucketFloats}`,
              startUs,
              hostMicros() - startUs,
              { bytes: stats.bytes, floats: bucket.length },
            );
          }
        });
        return result;
      },
      // Each rank's loss is its own shard's; the run reports the global batch's, as single does.
      globalLoss: async (loss) => {
        const global = new Float32Array([loss]);
        if (!spec.ceiling) await pg.allReduce(global, { op: "avg" });
        return global[0];
      },
      memory: (loop) => [
        {
          role: "rank",
          index: pg.rank,
          peakBytes: loop.peakBytes,
          peakRssBytes: loop.peakRssBytes,
          arrivals,
        },
      ],
    });
}

/**
 * Each rank's lag behind the first arrival at every timed step's collective (p50, p95), from
 * the arrival times the ranks recorded; the raw times are dropped.
 *
 * @param workers one row per rank, with `arrivals`
 * @param warmup untimed steps at the start, left out
 * @returns the rows with `arrivalLagMs`
 * @example
 * ```ts
 * arrivalLags([
 *   { role: "rank", index: 0, peakBytes: 1, peakRssBytes: 1, arrivals: [0, 10] },
 *   { role: "rank", index: 1, peakBytes: 1, peakRssBytes: 1, arrivals: [3, 11] },
 * ], 0); // rank 1: p50 2 ms
 * ```
 */
export function arrivalLags(workers: WorkerMemory[], warmup: number): WorkerMemory[] {
  const steps = Math.min(...workers.map((w) => w.arrivals?.length ?? 0));
  return workers.map(({ arrivals, ...w }) => {
    if (!arrivals || steps <= warmup) return w;
    const lags = [];
    for (let s = warmup; s < steps; s++) {
      lags.push(arrivals[s] - Math.min(...workers.map((o) => o.arrivals![s])));
    }
    const { p50, p95 } = summarize(lags);
    return { ...w, arrivalLagMs: { p50, p95 } };
  });
}
