/**
 * The scaling predictor: what DDP would give at world sizes not measured — up to thousands of
 * ranks, across hosts — from what one bench measured (each run's compute per step and its
 * spread, the gradient's size, buckets, overlap and compression) and a model of the link
 * (`bench/link_model.ts`: α per message, β per link, fitted by `allreduce` or given by hand).
 *
 * One step of DDP on N ranks, P to a host (H = N / P hosts), each rank computing on its share
 * of the batch:
 *
 * ```
 * step = the step without communication + exposed communication
 * without      where the results hold this very layout's ceiling (a DDP run of N ranks on H
 *  comm        hosts, with a barrier for the all-reduce): its measured step; otherwise
 *              compute(b) + update + rest + waiting for the slowest rank:
 * compute(b)   the measured compute phase (forward + backward), scaled to this rank's batch b
 *              (strong scaling: b = B / N; weak: b = B): from single when P = 1 (a host of its
 *              own per rank), from the DDP run of P ranks on one host when P > 1 (they share
 *              its cores), from the DDP run of N ranks with `sharedMachine` (hosts that share
 *              one machine's cores, as network namespaces do); a `calibration` bench may give
 *              those DDP runs, their times scaled by the two benches' single processes
 * update, rest the optimizer step, the loop's own time and the waiting, as measured there
 * bucket k      2(N−1)·α + 2(N−1)/N · bytes_k / β  (+ the casts of compression: 4(N−1)+2 casts
 *               of bytes_k / N values, at the measured cost per value); the links between hosts
 *               set α and β when H > 1
 * exposed       with overlap, bucket k starts when the backward has produced its gradients
 *               (the forward a third of compute, then the buckets in reverse layer order; the
 *               compute phase goes on after the last one for the share a measured DDP run of
 *               the same buckets hid behind it) and the previous bucket is done; the step
 *               waits for whatever ends after compute; without overlap, every bucket after
 *               compute
 * ```
 *
 * Intervals carry the measured spread: the compute side moves as the source run's repeats did
 * (their lowest and highest samples/s against the median), the communication side by the link
 * fit's residual.
 *
 * @module
 */
import type { LinkModel } from "../bench/link_model.ts";
import { ringAllReduceUs } from "../bench/link_model.ts";
import { createLayout } from "../core/flat_layout.ts";
import { DEFAULT_BUCKET_BYTES, type GradCompression, type Scaling } from "../core/run_types.ts";
import { median } from "../core/stats.ts";
import { UsageError } from "../core/errors.ts";
import { gradientBuckets } from "../strategies/ddp.ts";
import { resolveWorkload } from "../workloads/resolve_workload.ts";
import { phasesOf, type Results, type RunRecord } from "./results.ts";

/** The schema identifier of `prediction.json`. */
export const PREDICTION_SCHEMA = "paratrain/prediction@1";
/** World sizes predicted by default: powers of two up to 1024. */
export const DEFAULT_PREDICT_WORLD_SIZES = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
/** The forward's share of the compute phase (a backward costs about twice a forward). */
export const FORWARD_SHARE = 1 / 3;
/**
 * Casts per value of a bucket's N-th in one ring all-reduce with compression: each of the
 * 2(N−1) steps casts what it sends and what it receives, and the owner of each reduced chunk
 * rounds it (twice).
 */
const castsPerChunkValue = (n: number) => 4 * (n - 1) + 2;

/** The largest share of compute taken to follow the last bucket's start (a bound on noise). */
const MAX_TAIL_SHARE = 0.5;

/** Where a prediction's link came from. */
export interface PredictedLink {
  /** `tcp`, `unix`, or `given` (`--link`). */
  transport: string;
  /** The world size it was fitted at (0: given by hand). */
  fittedAt: number;
  alphaUs: number;
  betaGBps: number;
  residual: number;
}

/** One predicted configuration. */
export interface Prediction {
  workload: string;
  strategy: "ddp";
  worldSize: number;
  /** Hosts: worldSize / nprocPerNode. */
  hosts: number;
  nprocPerNode: number;
  scaling: Scaling;
  /** Global batch of one optimizer step (all micro-batches, all ranks). */
  globalBatch: number;
  gradCompression: GradCompression;
  bucketBytes: number;
  overlap: boolean;
  /** Predicted step time, ms. */
  stepMs: number;
  /** Of it: compute (forward and backward), ms. */
  computeMs: number;
  /** Of it: communication the step waits for, ms. */
  commMs: number;
  samplesPerSec: number;
  /** samples/s ÷ the best single process's, measured. */
  speedupVsBestSingle: number;
  /** Where `speedupVsBestSingle` lies, from the measured spreads (module doc). */
  interval: { low: number; high: number };
  /** The run whose compute the prediction scales: `single` or `ddp-N`. */
  computeFrom: string;
  link: PredictedLink;
  /** The same configuration as measured in the results, where it was. */
  measured?: { stepMs: number; speedupVsBestSingle: number | null } | null;
}

/** `prediction.json`. */
export interface PredictionFile {
  schema: typeof PREDICTION_SCHEMA;
  /** What the predictions were made from. */
  inputs: {
    /** The results file. */
    results: string;
    /** The all-reduce file whose link models were used, or null. */
    allreduce: string | null;
    /** `--link`, or null. */
    link: string | null;
    /** The hosts share one machine's CPUs (`--shared-machine`). */
    sharedMachine: boolean;
    /** The cast cost per value used for each compression, ns, measured here; null: none. */
    castNsPerValue: Partial<Record<Exclude<GradCompression, "none">, number>> | null;
  };
  predictions: Prediction[];
}

/** The links a prediction may use. */
export interface LinkSource {
  /** Fitted models (`allreduce.json`'s `linkModel`). */
  models?: LinkModel[];
  /** A link given by hand for the links between hosts (and within, unless a model says). */
  given?: LinkModel | null;
}

/** Options for {@linkcode predict}. */
export interface PredictOptions {
  /** World sizes (default {@linkcode DEFAULT_PREDICT_WORLD_SIZES}). */
  worldSizes?: number[];
  /** Ranks per host (default 1). */
  nprocPerNode?: number;
  /** Only this scaling (default: both; strong only where the global batch splits). */
  scaling?: Scaling;
  /** The hosts share the measuring machine's CPUs (namespaces, containers on one box). */
  sharedMachine?: boolean;
  /** ns per value cast, per compression (default: compression's casts cost nothing). */
  castNsPerValue?: Partial<Record<Exclude<GradCompression, "none">, number>>;
  /** Only these DDP configurations: keys `compression/bucketBytes/overlap` (default: all). */
  configs?: string[];
  /**
   * A bench on one host whose DDP runs say how much slower P ranks computing at once are than
   * its own single process (default: the results themselves). Its DDP times are scaled to the
   * results' single, so the compute follows the results' machine state, and only the
   * slowdown of sharing the cores comes from here.
   */
  calibration?: Results;
}

/** A DDP configuration the results measured (or the default one). */
interface Config {
  gradCompression: GradCompression;
  bucketBytes: number;
  overlap: boolean;
}

/**
 * Predicts every workload of `results` at the given world sizes.
 *
 * @param results a bench's results
 * @param links the link models
 * @param options world sizes, ranks per host, scaling, shared machine, cast cost
 * @returns the predictions, by workload, configuration, scaling and world size
 * @throws {UsageError} when a needed measurement or link is missing
 * @example
 * ```ts
 * import { readResults } from "./validate_results.ts";
 * const results = await readResults("results/latest/results.json");
 * const given = { transport: "given", worldSize: 0, alphaUs: 20, betaGBps: 1.25, residual: 0 };
 * const predictions = await predict(results, { given }, { worldSizes: [2, 64, 1024] });
 * ```
 */
export async function predict(
  results: Results,
  links: LinkSource,
  options: PredictOptions = {},
): Promise<Prediction[]> {
  const { worldSizes = DEFAULT_PREDICT_WORLD_SIZES, nprocPerNode = 1 } = options;
  for (const n of worldSizes) {
    if (n % nprocPerNode !== 0) {
      throw new UsageError(
        `Invalid world size ${n}: it does not divide into hosts of --nproc-per-node ${nprocPerNode}`,
      );
    }
  }
  const predictions: Prediction[] = [];
  const workloads = [...new Set(results.runs.map((r) => r.workload))];
  for (const workload of workloads) {
    const runs = results.runs.filter((r) => r.workload === workload);
    const single = referenceSingle(runs);
    if (!single) continue;
    // A Layers model is built again from its file or module, with the loss its runs trained with.
    const loss = runs[0].model?.lossName;
    const resolved = await resolveWorkload(workload, loss ? { loss } : {});
    const layout = createLayout(resolved.createModel().params);
    const best = Math.max(
      ...runs.filter((r) => r.strategy === "single").map((r) => r.samplesPerSec),
    );
    const perRank = single.globalBatch;
    const accumulate = single.accumulate ?? 1;
    for (const config of configsOf(runs, options.configs)) {
      const buckets = gradientBuckets(layout, config.bucketBytes).map((b) => b.length);
      for (const scaling of options.scaling ? [options.scaling] : ["strong", "weak"] as const) {
        for (const n of worldSizes) {
          // Strong scaling splits the global batch: at most one sample per rank.
          if (scaling === "strong" && n > single.globalBatch) continue;
          const hosts = n / nprocPerNode;
          const processes = options.sharedMachine ? n : nprocPerNode;
          const scaled = computeSource(
            runs,
            processes,
            config,
            single,
            options.calibration?.runs.filter((r) => r.workload === workload),
          );
          const b = scaling === "strong" ? perRank / n : perRank;
          // The step without communication: this very layout's measured ceiling where the
          // results hold one (the same ranks on the same hosts, a barrier for the all-reduce),
          // else the scaled compute, update, loop time and waiting for the slowest rank.
          const ceiling = measuredCeiling(runs, n, hosts, scaling, config, single);
          const scaledCompute = scaled.computeMsPerSample * b * accumulate;
          const scaledRest = scaled.updateMs + scaled.restMs + scaled.waitMs;
          const withoutCommMs = ceiling?.stepMs ?? scaledCompute + scaledRest;
          const computeMs = ceiling
            ? ceiling.stepMs * scaledCompute / (scaledCompute + scaledRest)
            : scaledCompute;
          const source = ceiling ? { ...scaled, label: ceiling.label } : scaled;
          const link = pickLink(links, n, hosts);
          const commMs = exposedCommMs({
            buckets,
            n,
            link,
            computeMs,
            tailShare: source.tailShare,
            overlap: config.overlap,
            bytesPerValue: config.gradCompression === "none" ? 4 : 2,
            castNs: config.gradCompression === "none"
              ? 0
              : options.castNsPerValue?.[config.gradCompression] ?? 0,
          });
          const stepMs = withoutCommMs + commMs;
          const globalBatch = (scaling === "strong" ? perRank : perRank * n) * accumulate;
          const samplesPerSec = globalBatch / (stepMs / 1000);
          const [lowStep, highStep] = [
            withoutCommMs * source.spread.fast + commMs * (1 - link.residual),
            withoutCommMs * source.spread.slow + commMs * (1 + link.residual),
          ];
          const measured = runs.find((r) =>
            r.strategy === "ddp" && r.worldSize === n && (r.hosts ?? 1) === hosts &&
            (r.scaling ?? "strong") === scaling && sameConfig(r, config)
          );
          predictions.push({
            workload,
            strategy: "ddp",
            worldSize: n,
            hosts,
            nprocPerNode,
            scaling,
            globalBatch,
            ...config,
            stepMs,
            computeMs,
            commMs,
            samplesPerSec,
            speedupVsBestSingle: samplesPerSec / best,
            interval: {
              low: globalBatch / (highStep / 1000) / best,
              high: globalBatch / (lowStep / 1000) / best,
            },
            computeFrom: source.label,
            link: {
              transport: link.transport,
              fittedAt: link.worldSize,
              alphaUs: link.alphaUs,
              betaGBps: link.betaGBps,
              residual: link.residual,
            },
            measured: measured
              ? {
                stepMs: measured.stepMs.p50,
                speedupVsBestSingle: measured.speedupVsBestSingle ?? null,
              }
              : null,
          });
        }
      }
    }
  }
  return predictions;
}

/**
 * The step time of a measured DDP run's ceiling at this very layout (world size, hosts,
 * scaling, configuration): its samples/s is `ceiling.speedup` × single's.
 */
function measuredCeiling(
  runs: RunRecord[],
  n: number,
  hosts: number,
  scaling: Scaling,
  config: Config,
  single: RunRecord,
): { stepMs: number; label: string } | null {
  const run = runs.find((r) =>
    r.strategy === "ddp" && r.worldSize === n && (r.hosts ?? 1) === hosts &&
    (r.scaling ?? "strong") === scaling && sameConfig(r, config) && r.ceiling
  );
  if (!run?.ceiling) return null;
  const samples = run.globalBatch * (run.accumulate ?? 1);
  return {
    stepMs: (samples / (run.ceiling.speedup * single.samplesPerSec)) * 1000,
    label: `ceiling of ddp-${n}${hosts > 1 ? ` on ${hosts} hosts` : ""}`,
  };
}

/** The single run with the bench's own threads per worker (the scaling reference). */
function referenceSingle(runs: RunRecord[]): RunRecord | undefined {
  const singles = runs.filter((r) => r.strategy === "single");
  const ddpThreads = runs.find((r) => r.strategy === "ddp")?.threads ?? 1;
  return singles.find((r) => (r.threads ?? 1) === ddpThreads) ?? singles[0];
}

/** A configuration's key, as `configs` names it. */
function configKey(c: Config): string {
  return `${c.gradCompression}/${c.bucketBytes}/${c.overlap ? "overlap" : "no-overlap"}`;
}

function configOf(r: RunRecord): Config {
  return {
    gradCompression: r.gradCompression ?? "none",
    bucketBytes: r.bucketBytes ?? DEFAULT_BUCKET_BYTES,
    overlap: r.overlap ?? true,
  };
}

function sameConfig(r: RunRecord, c: Config): boolean {
  return configKey(configOf(r)) === configKey(c);
}

/** Every DDP configuration measured, or PyTorch's defaults where no DDP run was. */
function configsOf(runs: RunRecord[], only?: string[]): Config[] {
  const measured = runs.filter((r) => r.strategy === "ddp").map(configOf);
  const all = measured.length > 0
    ? [...new Map(measured.map((c) => [configKey(c), c])).values()]
    : [{ gradCompression: "none" as const, bucketBytes: DEFAULT_BUCKET_BYTES, overlap: true }];
  return only ? all.filter((c) => only.includes(configKey(c))) : all;
}

/** The measured run a prediction scales its compute from, per sample. */
interface ComputeSource {
  label: string;
  computeMsPerSample: number;
  updateMs: number;
  /** The step beyond its phases: the loop's own time. */
  restMs: number;
  /** Waiting for the slowest rank at the collectives (DDP sources), ms. */
  waitMs: number;
  /**
   * The compute phase's share that runs after the last bucket is sent (a DDP run of the same
   * buckets: its hidden communication against its compute, where it overlapped); 0 without one.
   */
  tailShare: number;
  /** Step-time factors of the fastest and slowest repeats against the median. */
  spread: { fast: number; slow: number };
}

function computeSource(
  results: RunRecord[],
  processes: number,
  config: Config,
  single: RunRecord,
  calibration: RunRecord[] = results,
): ComputeSource {
  const runs = processes === 1 ? results : calibration;
  // Times from the calibration bench follow the results' machine state: scaled by the ratio
  // of the two single processes' compute per sample.
  const calibrationSingle = processes === 1 ? single : referenceSingle(runs) ?? single;
  const perSample = (r: RunRecord) =>
    phasesOf(r).compute / ((r.globalBatch / r.worldSize) * (r.accumulate ?? 1));
  const scale = perSample(single) / perSample(calibrationSingle);
  const run = processes === 1 ? single : (() => {
    const ddp = runs.filter((r) => r.strategy === "ddp" && r.worldSize === processes);
    const found = ddp.find((r) => sameConfig(r, config)) ?? ddp[0];
    if (!found) {
      throw new UsageError(
        `No run of ${single.workload} measured ${processes} processes computing on one host: ` +
          `bench --strategies single,ddp --world-sizes ${processes} first`,
      );
    }
    return found;
  })();
  const phases = phasesOf(run);
  const perRankBatch = (run.globalBatch / run.worldSize) * (run.accumulate ?? 1);
  const restMs = Math.max(
    0,
    run.stepMs.p50 - phases.compute - phases.update - phases.allReduce,
  );
  const repeats = run.samplesPerSecRepeats ?? [run.samplesPerSec];
  const mid = median(repeats);
  // How much of compute follows the last bucket's start: what a DDP run of these buckets hid
  // behind its compute, where its communication outlasted that (it then hid all of the tail).
  const overlapped = [run, ...runs].find((r) =>
    r.strategy === "ddp" && sameConfig(r, config) && r.comm.exposedMsPerStep !== undefined
  );
  const tailShare = overlapped
    ? Math.min(
      MAX_TAIL_SHARE,
      Math.max(0, overlapped.comm.msPerStep - overlapped.comm.exposedMsPerStep!) /
        phasesOf(overlapped).compute,
    )
    : 0;
  return {
    label: run.strategy === "single"
      ? "single"
      : `ddp-${run.worldSize}${calibration === results ? "" : " (calibration)"}`,
    computeMsPerSample: (phases.compute / perRankBatch) * scale,
    updateMs: phases.update * scale,
    restMs: restMs * scale,
    waitMs: (run.strategy === "ddp" ? run.comm.waitMsPerStep : 0) * scale,
    tailShare,
    spread: { fast: mid / Math.max(...repeats), slow: mid / Math.min(...repeats) },
  };
}

/**
 * The link for N ranks on H hosts: between hosts (H > 1) the given link or the `tcp` fit,
 * within one host the `unix` fit (else the given link, else `tcp`); of the fits, the one at N
 * ranks, else the largest world size below N, else the smallest.
 */
function pickLink(links: LinkSource, n: number, hosts: number): LinkModel {
  if (hosts > 1 && links.given) return links.given;
  const models = links.models ?? [];
  const order = hosts > 1 ? ["tcp"] : ["unix", "tcp"];
  for (const transport of order) {
    if (transport === "tcp" && hosts === 1 && links.given) return links.given;
    const fits = models.filter((m) => m.transport === transport)
      .sort((a, b) => a.worldSize - b.worldSize);
    if (fits.length === 0) continue;
    return fits.find((m) => m.worldSize === n) ??
      fits.filter((m) => m.worldSize < n).pop() ?? fits[0];
  }
  if (links.given) return links.given;
  throw new UsageError(
    `No link model for ${hosts > 1 ? "links between hosts (tcp)" : "one host"}: run ` +
      `\`allreduce --transport ${hosts > 1 ? "tcp" : "unix"}\`, or give --link RATE,LATENCY`,
  );
}

/**
 * The communication one step waits for, ms (module doc).
 *
 * @param step the buckets, ranks, link, compute phase, overlap, bytes and cast cost per value
 * @returns the exposed ms
 * @example
 * ```ts
 * const link = { transport: "tcp", worldSize: 2, alphaUs: 0, betaGBps: 0.001, residual: 0 };
 * exposedCommMs({ buckets: [1000], n: 2, link, computeMs: 30, overlap: false, bytesPerValue: 4, castNs: 0 }); // 4
 * ```
 */
export function exposedCommMs(step: {
  /** Floats per bucket, in the order they are all-reduced. */
  buckets: number[];
  n: number;
  link: LinkModel;
  /** The step's compute phase, ms. */
  computeMs: number;
  /** The share of compute after the last bucket can start (0: the backward ends compute). */
  tailShare?: number;
  overlap: boolean;
  bytesPerValue: number;
  /** ns per value cast (0 without compression). */
  castNs: number;
}): number {
  const { buckets, n, link, computeMs, overlap, bytesPerValue, castNs } = step;
  if (n < 2) return 0;
  const backwardEnd = computeMs * (1 - (overlap ? step.tailShare ?? 0 : 0));
  const total = buckets.reduce((a, b) => a + b, 0);
  let done = 0;
  let end = 0;
  let produced = 0;
  for (const floats of buckets) {
    const ms = ringAllReduceUs(link, n, floats * bytesPerValue) / 1000 +
      castsPerChunkValue(n) * (floats / n) * castNs / 1e6;
    produced += floats;
    const ready = overlap
      ? backwardEnd * (FORWARD_SHARE + (1 - FORWARD_SHARE) * produced / total)
      : computeMs;
    end = Math.max(ready, done) + ms;
    done = end;
  }
  return Math.max(0, end - computeMs);
}

/** Bits per second of each unit `--link` takes, as `tc` spells rates. */
const RATE_UNITS: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12 };
/** Microseconds per unit `--link` takes for the latency. */
const TIME_UNITS: Record<string, number> = { us: 1, ms: 1e3, s: 1e6 };

/**
 * A link given by hand: `RATE,LATENCY`, the rate as `tc` spells it (`10gbit`, `200mbit`) and
 * the latency per message (`20us`, `1ms`).
 *
 * @param text e.g. `10gbit,20us`
 * @returns the link model (transport `given`, any world size, no residual)
 * @throws {UsageError} naming what is wrong
 * @example
 * ```ts
 * parseLink("10gbit,20us"); // { alphaUs: 20, betaGBps: 1.25, … }
 * ```
 */
export function parseLink(text: string): LinkModel {
  const parts = text.split(",").map((p) => p.trim().toLowerCase());
  const rate = /^(\d+(?:\.\d+)?)([a-z]+)$/.exec(parts[0] ?? "");
  const time = /^(\d+(?:\.\d+)?)([a-z]+)$/.exec(parts[1] ?? "");
  const usage = `expected RATE,LATENCY such as 10gbit,20us (rates in ${
    Object.keys(RATE_UNITS).join("/")
  }, latencies in ${Object.keys(TIME_UNITS).join("/")})`;
  if (parts.length !== 2 || !rate || !time) {
    throw new UsageError(`Invalid --link "${text}": ${usage}`);
  }
  const bitsPerUnit = RATE_UNITS[rate[2]];
  const usPerUnit = TIME_UNITS[time[2]];
  const bits = Number(rate[1]) * bitsPerUnit;
  if (bitsPerUnit === undefined || usPerUnit === undefined || !(bits > 0)) {
    throw new UsageError(`Invalid --link "${text}": ${usage}`);
  }
  return {
    transport: "given",
    worldSize: 0,
    alphaUs: Number(time[1]) * usPerUnit,
    betaGBps: bits / 8 / 1e9,
    residual: 0,
  };
}
