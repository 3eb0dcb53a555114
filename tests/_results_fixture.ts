/**
 * Constructed results for the report, matrix and gate tests: plausible figures, no bench run.
 *
 * @module
 */
import type { AllreduceResult } from "../bench/allreduce.ts";
import type { Results, RunRecord } from "../analysis/results.ts";
import type { StrategyName } from "../core/run_types.ts";
import { buildMatrix, verdictsOf } from "../analysis/matrix.ts";

const MIB = 1024 * 1024;

/** What a constructed run needs; the rest is filled in plausibly. */
export interface RunShape {
  workload: string;
  strategy: StrategyName;
  worldSize?: number;
  speedup?: number;
  /** Ceiling speedup for dp/ddp; null for none. */
  ceiling?: number | null;
  /** Peak MiB per worker, in worker order (DP: main first). */
  peaksMiB?: number[];
  paramDiff?: number;
  /** The interval of the speedup over the repeats (also used against the best single). */
  interval?: [number, number];
  /** The speedup over the best single process, where it differs from `speedup`. */
  vsBest?: number;
}

/** Samples/s of single per workload. */
const SINGLE_SAMPLES_PER_SEC: Record<string, number> = { "mnist-cnn": 400, "iris-logreg": 9000 };
const GLOBAL_BATCH = 64;

/** A run record with every field set. */
export function makeRun(shape: RunShape): RunRecord {
  const { workload, strategy } = shape;
  const worldSize = shape.worldSize ?? (strategy === "single" ? 1 : 2);
  const speedup = shape.speedup ?? 1;
  const ceiling = shape.ceiling === undefined
    ? (strategy === "single" ? null : Math.min(worldSize, 1.9))
    : shape.ceiling;
  const samplesPerSec = (SINGLE_SAMPLES_PER_SEC[workload] ?? 1000) * speedup;
  const stepMs = 1000 * GLOBAL_BATCH / samplesPerSec;
  const roles = strategy === "single"
    ? ["main"]
    : strategy === "dp"
    ? ["main", ...Array(worldSize).fill("replica")]
    : Array(worldSize).fill("rank");
  const peaks = shape.peaksMiB ?? roles.map(() => 16);
  const workers = roles.map((role, i) => ({
    role: role as "main" | "replica" | "rank",
    index: role === "replica" ? i - 1 : i,
    peakBytes: peaks[i] * MIB,
    peakRssBytes: strategy === "dp" && role === "replica" ? null : 90 * MIB,
  }));
  const peakBytes = workers.map((w) => w.peakBytes);
  const imbalance = Math.max(...peakBytes) /
    (peakBytes.reduce((a, b) => a + b, 0) / peakBytes.length);
  return {
    workload,
    strategy,
    worldSize,
    backend: "wasm",
    fastKernels: true,
    globalBatch: GLOBAL_BATCH,
    steps: 10,
    warmup: 2,
    repeats: 3,
    stepMs: { p50: stepMs, p95: stepMs * 1.2, mean: stepMs * 1.05 },
    samplesPerSec,
    samplesPerSecRepeats: [samplesPerSec, samplesPerSec, samplesPerSec],
    speedup,
    efficiency: speedup / worldSize,
    ceiling: ceiling === null ? null : { speedup: ceiling },
    efficiencyVsCeiling: ceiling === null ? null : speedup / ceiling,
    phaseMs: { compute: stepMs * 0.8, comm: stepMs * 0.1, update: stepMs * 0.1 },
    memory: { workers, imbalance },
    comm: {
      bytesPerStep: strategy === "single" ? 0 : 4096,
      msPerStep: strategy === "single" ? 0 : stepMs * 0.1,
      waitMsPerStep: 0,
      transferMsPerStep: 0,
      share: strategy === "single" ? 0 : 0.1,
    },
    compute: { gflops: 1, peakGflops: 10, fractionOfPeak: 0.1 },
    finalLoss: 0.5,
    accuracy: 0.9,
    loadMs: 5,
    paramMaxAbsDiffVsSingle: shape.paramDiff ?? (strategy === "single" ? 0 : 1e-7),
    ...(shape.interval
      ? {
        speedupInterval: { low: shape.interval[0], high: shape.interval[1], level: 0.75 },
        speedupVsBestSingle: shape.vsBest ?? speedup,
        speedupVsBestSingleInterval: {
          low: shape.interval[0],
          high: shape.interval[1],
          level: 0.75,
        },
        bestSingleThreads: shape.vsBest === undefined ? 1 : 2,
      }
      : {}),
    equivalenceSteps: 12,
  };
}

/** Results holding `shapes`, with an empty matrix. */
export function makeResults(shapes: RunShape[]): Results {
  const runs = shapes.map(makeRun);
  return {
    schema: "paratrain/results@1",
    env: {
      deno: "2.9.6",
      v8: "15.0",
      typescript: "6.0",
      tfjs: "4.22.0",
      backend: "wasm",
      fastKernels: true,
      os: "linux x86_64",
      cpuModel: "Test CPU",
      logicalCpus: 8,
      startedAt: "2026-01-01T00:00:00.000Z",
      gitCommit: null,
    } as Results["env"],
    config: {
      workloads: [...new Set(runs.map((r) => r.workload))],
      strategies: [...new Set(runs.map((r) => r.strategy))],
      worldSizes: [...new Set(runs.filter((r) => r.strategy !== "single").map((r) => r.worldSize))],
      steps: 10,
      warmup: 2,
      repeats: 3,
      seed: 0,
      quick: false,
    },
    runs,
    matrix: [],
  };
}

/** Two workloads × single, DP and DDP at 2 and 4: DDP wins mnist-cnn, nothing wins iris. */
export const FULL_SHAPES: RunShape[] = [
  { workload: "mnist-cnn", strategy: "single", peaksMiB: [20] },
  { workload: "mnist-cnn", strategy: "dp", worldSize: 2, speedup: 1.3, peaksMiB: [30, 18, 18] },
  {
    workload: "mnist-cnn",
    strategy: "dp",
    worldSize: 4,
    speedup: 1.5,
    peaksMiB: [34, 17, 17, 17, 17],
  },
  { workload: "mnist-cnn", strategy: "ddp", worldSize: 2, speedup: 1.8, peaksMiB: [20, 20] },
  { workload: "mnist-cnn", strategy: "ddp", worldSize: 4, speedup: 2.9, ceiling: 3.4 },
  { workload: "iris-logreg", strategy: "single" },
  { workload: "iris-logreg", strategy: "dp", worldSize: 2, speedup: 0.5, peaksMiB: [18, 16, 16] },
  {
    workload: "iris-logreg",
    strategy: "dp",
    worldSize: 4,
    speedup: 0.3,
    peaksMiB: [19, 16, 16, 16, 16],
  },
  { workload: "iris-logreg", strategy: "ddp", worldSize: 2, speedup: 0.4 },
  { workload: "iris-logreg", strategy: "ddp", worldSize: 4, speedup: 0.25 },
];

/** An all-reduce result as `allreduce` writes it. */
export const ALLREDUCE_FIXTURE: AllreduceResult = {
  schema: "paratrain/allreduce@1",
  raw: { transport: "unix", GBps: 2.5, bytes: 64 << 20 },
  rows: [2, 4].flatMap((worldSize) =>
    [4 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20].map((bytes, i) => {
      const algbwGBps = 0.05 * 3 ** i / worldSize;
      const usPerOp = bytes / (algbwGBps * 1e9) * 1e6;
      return {
        transport: "unix" as const,
        worldSize,
        bytes,
        usPerOp,
        algbwGBps,
        busbwGBps: algbwGBps * 2 * (worldSize - 1) / worldSize,
      };
    })
  ),
  env: {
    deno: "2.9.6",
    os: "linux",
    arch: "x86_64",
    logicalCpus: 8,
    quick: true,
    startedAt: "2026-01-01T00:00:00.000Z",
  },
};

/** Why native did not load, as a fresh machine records it. */
export const NATIVE_MISSING =
  "OpenBLAS could not be loaded from the usual library paths (no libopenblas found); install it with `apt-get install libopenblas0-pthread` or set PARATRAIN_OPENBLAS to a libopenblas.so";

/**
 * `makeResults(shapes)` on one backend, its matrix and verdicts built as a bench builds them:
 * `native` with OpenBLAS on a 64-core Xeon, or `wasm` where native did not load.
 */
export function makeMachineResults(
  backend: "native" | "wasm",
  shapes: RunShape[] = FULL_SHAPES,
): Results {
  const results = makeResults(shapes);
  results.runs.forEach((r) => r.backend = backend);
  results.env = backend === "native"
    ? {
      ...results.env,
      backend,
      cpuModel: "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
      logicalCpus: 64,
      blas: {
        path: "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
        config: "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64",
        coreName: "Cooperlake",
        parallel: "pthread",
      },
    }
    : { ...results.env, backend, nativeUnavailable: NATIVE_MISSING };
  const matrix = buildMatrix(results);
  results.matrix = matrix;
  results.verdicts = verdictsOf(matrix);
  return results;
}
