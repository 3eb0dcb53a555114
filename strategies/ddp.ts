/**
 * DistributedDataParallel: one OS process per rank, started by a torchrun-style launcher.
 * Each rank builds its own model, receives rank 0's initial parameters (broadcast), trains
 * on its DistributedSampler shard, averages gradients with ring all-reduce (Unix domain sockets
 * on one host, TCP across hosts or with `transport: "tcp"`), and steps its own optimizer:
 *
 * ```
 *   broadcast      rank 0's params ──► every rank           (once, before step 1)
 *   compute        every rank: forward + backward on its shard of the global batch
 *                  (accumulating K micro-batches locally first with --accumulate K)
 *   all-reduce     gradient buckets (≤ 25 MiB, in reverse layer order) averaged across
 *                  ranks, each started as soon as its layers' gradients exist (overlap)
 *   update         every rank's own optimizer steps its own params (the loop's `update`)
 * ```
 *
 * {@linkcode runDdp} launches the ranks; each runs {@linkcode distributedDataParallel}.
 *
 * @module
 */
import { launch } from "../comm/launcher.ts";
import { DEFAULT_COLLECTIVE_TIMEOUT_MS } from "../comm/init_process_group.ts";
import type { AllReduceOptions, CollectiveStats } from "../comm/process_group.ts";
import type { FlatLayout } from "../core/flat_layout.ts";
import { timed } from "../core/phases.ts";
import {
  DEFAULT_BUCKET_BYTES,
  type RunMeasurement,
  type RunSpec,
  type WorkerMemory,
} from "../core/run_types.ts";
import { summarize } from "../core/stats.ts";
import { activeTrace } from "../core/trace.ts";
import type { StepProgress } from "../core/train_loop.ts";
import type { Participation, Replica } from "./_run_replica.ts";
import { fromWire, readProgress, type WireMeasurement } from "./_wire.ts";

export { DEFAULT_BUCKET_BYTES };

/**
 * The collectives a rank's participation needs: a `ProcessGroup`, or one whose ring runs on a
 * communication thread (`sharedFloats` then gives gradient memory that thread reads in place,
 * so a bucket's all-reduce progresses while the backward goes on).
 */
export interface RankCollectives {
  readonly rank: number;
  readonly worldSize: number;
  allReduce(buf: Float32Array, options?: AllReduceOptions): Promise<CollectiveStats>;
  broadcast(buf: Float32Array, options?: { root?: number }): Promise<CollectiveStats>;
  barrier(): Promise<CollectiveStats>;
  /** `n` floats of memory the collectives use without copying, where there is such memory. */
  sharedFloats?(n: number): Float32Array;
  /**
   * An all-reduce of a shared region that blocks this thread until it is done (SyncBatchNorm
   * inside a synchronous forward), where the collectives run on another thread; returns the
   * ms blocked.
   */
  allReduceBlocking?(buf: Float32Array, options: AllReduceOptions, timeoutMs: number): number;
}

/** What SyncBatchNorm's blocking all-reduces have cost this rank so far. */
interface SyncCost {
  ms: number;
  bytes: number;
  calls: number;
}

/**
 * SyncBatchNorm's sums for `trainer`, as blocking all-reduces on the communication thread
 * through one shared region, their cost added up in `cost`.
 */
function syncStatistics(
  pg: RankCollectives,
  trainer: Replica["trainer"],
  spec: RunSpec,
  cost: SyncCost,
): void {
  if (!pg.allReduceBlocking || !pg.sharedFloats) {
    throw new Error("SyncBatchNorm needs the communication thread's blocking all-reduce");
  }
  const region = pg.sharedFloats(trainer.bufferLayout.totalSize + 1);
  const timeoutMs = 2 * (spec.collectiveTimeoutMs ?? DEFAULT_COLLECTIVE_TIMEOUT_MS);
  const n = pg.worldSize;
  trainer.synchronizeStatistics({
    sum(values) {
      const view = region.subarray(0, values.length);
      view.set(values);
      cost.ms += pg.allReduceBlocking!(view, { op: "sum" }, timeoutMs);
      values.set(view);
      // A ring all-reduce sends 2(n − 1)/n of the buffer from each rank.
      cost.bytes += Math.round((2 * (n - 1) / n) * values.byteLength);
      cost.calls++;
    },
  });
}

/**
 * Train `spec` with `spec.worldSize` DDP ranks (with `spec.ceiling`: its ceiling, the same
 * ranks with a barrier per step in place of the all-reduce).
 *
 * @param spec the run (`globalBatch` must divide by `worldSize`; `bucketBytes`, `overlap`,
 *   `gradCompression` and `accumulate` as given)
 * @param onStep progress of rank 0
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
export async function runDdp(spec: RunSpec, onStep?: StepProgress): Promise<RunMeasurement> {
  const rankSpec: RunSpec = { ...spec, strategy: "ddp" };
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

/** A gradient bucket: whole parameters, contiguous in the flat buffer. */
export interface Bucket {
  /** Its range of the flat gradient. */
  offset: number;
  length: number;
  /** The parameters (layout entries) it holds. */
  entries: number[];
}

/** The first bucket's cap, as PyTorch's `dist._DEFAULT_FIRST_BUCKET_BYTES`: 1 MiB. */
export const FIRST_BUCKET_BYTES = 1024 * 1024;

/**
 * Gradient buckets as PyTorch DDP builds them: whole parameters, in reverse order of the
 * model's parameters (the backward produces the last layer's gradients first), each bucket
 * filled up to `capBytes` of float32 gradient — the first one only up to
 * {@linkcode FIRST_BUCKET_BYTES} (or the cap, if smaller), so that communication starts early
 * in the backward; a parameter larger than the cap is a bucket of its own.
 *
 * @param layout the flat layout of the parameters
 * @param capBytes the bucket cap (`--bucket-mb`), bytes
 * @param firstCapBytes the first bucket's cap (default: the smaller of 1 MiB and `capBytes`)
 * @returns the buckets in the order they are all-reduced
 * @example
 * ```ts
 * import { createLayout } from "../core/flat_layout.ts";
 * const layout = createLayout([{ name: "w", shape: [300] }, { name: "b", shape: [10] }]);
 * gradientBuckets(layout, 1024); // [{ b, and w }] — 310 floats fit in 1 KiB
 * ```
 */
export function gradientBuckets(
  layout: FlatLayout,
  capBytes: number,
  firstCapBytes = Math.min(capBytes, FIRST_BUCKET_BYTES),
): Bucket[] {
  const floats = (bytes: number) => Math.max(1, Math.floor(bytes / Float32Array.BYTES_PER_ELEMENT));
  const buckets: Bucket[] = [];
  let current: Bucket | null = null;
  for (let i = layout.entries.length - 1; i >= 0; i--) {
    const { offset, size } = layout.entries[i];
    const capFloats = floats(buckets.length === 1 ? firstCapBytes : capBytes);
    if (current && current.length + size <= capFloats) {
      current.offset = offset;
      current.length += size;
      current.entries.push(i);
      continue;
    }
    current = { offset, length: size, entries: [i] };
    buckets.push(current);
  }
  return buckets;
}

/**
 * One rank's participation: its shard of the data, rank 0's starting parameters, its own
 * gradient averaged across ranks bucket by bucket. With `spec.accumulate` K, the K
 * micro-batches' gradients are summed locally and the buckets go out once, during the last
 * micro-batch's backward (PyTorch's `no_sync`). With overlap (the default), a bucket's
 * all-reduce is called as soon as its last parameter's gradient exists; it progresses during
 * the rest of the backward when the collectives run on a communication thread, and the
 * `allReduce` phase is only what the step still waits for afterwards (`exposedMsPerStep`).
 * With `spec.ceiling` the buckets are replaced by one barrier per step: the ranks keep their
 * shards and stay in lock-step, so the run measures what N processes computing at once can
 * give on this machine.
 *
 * @param pg this rank's collectives
 * @param spec the run
 * @returns the participation `runReplica` takes
 * @example
 * ```ts
 * import { initProcessGroupFromEnv } from "../comm/init_process_group.ts";
 * import type { RunSpec } from "../core/run_types.ts";
 * import { runReplica } from "./_run_replica.ts";
 * declare const spec: RunSpec;
 * const pg = await initProcessGroupFromEnv();
 * const m = await runReplica(spec, distributedDataParallel(pg, spec));
 * ```
 */
export function distributedDataParallel(
  pg: RankCollectives,
  spec: RunSpec,
): (replica: Replica) => Promise<Participation> {
  const overlap = spec.overlap ?? true;
  const reduceOptions: AllReduceOptions = {
    op: "avg",
    compression: spec.gradCompression ?? "none",
  };
  // When this rank reached each step's collective, on the host's clock (one per host: every
  // rank's `timeOrigin + now()` reads the same system clock).
  const arrivals: number[] = [];
  return ({ trainer }) => {
    // BatchNorm's running statistics (buffers): rank 0's are broadcast before every step.
    const hasBuffers = trainer.bufferLayout.totalSize > 0 && !spec.ceiling;
    const sync: SyncCost = { ms: 0, bytes: 0, calls: 0 };
    if (hasBuffers && spec.batchNorm === "sync") syncStatistics(pg, trainer, spec, sync);
    const buckets = gradientBuckets(trainer.layout, spec.bucketBytes ?? DEFAULT_BUCKET_BYTES);
    const bucketOf = new Map<number, number>();
    buckets.forEach((b, k) => b.entries.forEach((e) => bucketOf.set(e, k)));
    // The averaged gradient's memory, reused every step (the loop applies it before the next).
    const out = pg.sharedFloats?.(trainer.layout.totalSize) ??
      new Float32Array(trainer.layout.totalSize);
    return Promise.resolve({
      rank: pg.rank,
      shards: pg.worldSize,
      start: async (params) => {
        if (!spec.ceiling) await pg.broadcast(params);
        return params;
      },
      gradients: async (batches, { phases, comm }) => {
        if (spec.ceiling) {
          const result = await timed(
            phases,
            "compute",
            () => trainer.accumulateGradientsAsync(batches),
          );
          arrivals.push(performance.timeOrigin + performance.now());
          await timed(phases, "allReduce", async () => {
            comm.waitMs += (await pg.barrier()).waitMs;
          });
          return result;
        }
        if (hasBuffers) {
          // As PyTorch's broadcast_buffers=True: every rank starts the step from rank 0's.
          const buffers = trainer.getBuffers();
          await timed(phases, "replicate", async () => {
            const st = await pg.broadcast(buffers);
            comm.bytes += st.bytes;
            comm.waitMs += st.waitMs;
            comm.messages++;
          });
          trainer.setBuffers(buffers);
        }
        const calls: Promise<CollectiveStats>[] = [];
        const reduce = (k: number) => {
          const { offset, length } = buckets[k];
          calls.push(pg.allReduce(out.subarray(offset, offset + length), reduceOptions));
        };
        // Buckets go out in order, each once all of its parameters' gradients are final.
        const pending = buckets.map((b) => b.entries.length);
        let next = 0;
        const onReady = overlap
          ? (entry: number) => {
            pending[bucketOf.get(entry)!]--;
            while (next < buckets.length && pending[next] === 0) reduce(next++);
          }
          : undefined;
        const syncBefore = { ...sync };
        const computed = await timed(
          phases,
          "compute",
          () => trainer.accumulateGradientsAsync(batches, { out, onReady }),
        );
        // SyncBatchNorm's all-reduces ran inside the forward and backward: count them as
        // all-reduce time, not compute.
        const syncMs = sync.ms - syncBefore.ms;
        phases.compute -= syncMs;
        phases.allReduce += syncMs;
        comm.bytes += sync.bytes - syncBefore.bytes;
        comm.messages += sync.calls - syncBefore.calls;
        arrivals.push(performance.timeOrigin + performance.now());
        const exposedBefore = phases.allReduce;
        const stats = await timed(phases, "allReduce", () => {
          while (next < buckets.length) reduce(next++);
          return Promise.all(calls);
        });
        let busyMs = 0;
        const trace = activeTrace();
        stats.forEach((st, k) => {
          comm.bytes += st.bytes;
          comm.waitMs += st.waitMs;
          comm.messages++;
          busyMs += st.waitMs + st.transferMs;
          trace?.span("wait", "waiting for the other ranks", st.startUs, st.waitMs * 1000);
          trace?.span("allReduce", `bucket ${k}`, st.startUs, st.endUs - st.startUs, {
            bytes: st.bytes,
            floats: buckets[k].length,
          });
        });
        // What ran while this rank was still computing is hidden: the phase holds the rest.
        comm.hiddenMs += Math.max(0, busyMs - (phases.allReduce - exposedBefore));
        return computed;
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
  };
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
