/**
 * The article's selection matrix (适用场景, 显存占用, 并行效率, 实现复杂度, 扩展性) filled from
 * the measured runs instead of folklore, plus one recommendation per workload derived by
 * {@linkcode RECOMMENDATION_RULES}. Built once when the results are built and stored in
 * `results.matrix`, so `report` re-renders it byte for byte.
 *
 * @module
 */
import { EQUIVALENCE_BOUND, type Results, type RunRecord } from "./results.ts";
import { runLabel, STRATEGY_NAMES, type StrategyName } from "../core/run_types.ts";
import { type Interval, median } from "../core/stats.ts";
import { measureComplexity } from "./complexity.ts";
import { bytes, fixed, percent, sci } from "./format.ts";
import { provisionalWhy } from "./provisional.ts";
import { type RunSet, runSets } from "./_runs.ts";
import type { CrossoverEntry } from "./crossover.ts";

/** The article's five rows, in its order. */
export const ASPECTS = [
  "useCase",
  "memoryPerDevice",
  "parallelEfficiency",
  "implementationComplexity",
  "scalability",
] as const;

/** One of {@linkcode ASPECTS}. */
export type Aspect = typeof ASPECTS[number];

/** A parallel run must beat the best single process by at least this factor to be worth it. */
export const WORTHWHILE_SPEEDUP = 1.1;
/** Suggested repeats are capped here ("more than" beyond it). */
const MAX_SUGGESTED_REPEATS = 50;

/** How a recommendation was reached. */
export type RuleId =
  | "fastest"
  | "tie-balanced-memory"
  | "keep-single"
  | "inconclusive"
  | "only-single";

/** The three answers a workload can get (the schema's `verdicts[].verdict`). */
export type Verdict = "choose" | "keep-single" | "inconclusive";

/** The rules, as the report states them. */
export const RECOMMENDATION_RULES: Record<RuleId, string> = {
  fastest: `Eligible runs are those whose parameters match single's within ${
    sci(EQUIVALENCE_BOUND)
  } (max |Δparam| after the equivalence steps), or that no bound applies to (weak scaling; local BatchNorm statistics, PyTorch's default, which compute another gradient than single by design — their difference is shown). Each is compared with the best single process (the fastest \`single\` run, which may use every core through threads), by the interval of its speedup over the repeats. Choose: the fastest eligible run whose whole interval lies at or above ${
    fixed(WORTHWHILE_SPEEDUP, 2)
  }x.`,
  "tie-balanced-memory":
    "When the best DP and DDP runs both qualify and their intervals overlap, neither is measurably faster: the one with the lower memory imbalance (max/mean peak per worker) is chosen.",
  "keep-single": `Keep single when every eligible run's whole interval lies below ${
    fixed(WORTHWHILE_SPEEDUP, 2)
  }x (or no parallel run is eligible).`,
  inconclusive: `Otherwise the answer is inconclusive on this machine: an interval straddles ${
    fixed(WORTHWHILE_SPEEDUP, 2)
  }x, and the report says how many repeats the observed spread suggests would settle it.`,
  "only-single": "When only single was measured, there is nothing to choose between.",
};

/** What one matrix cell holds. */
export interface MatrixCell {
  strategy: StrategyName;
  /** False when the results hold no run of this strategy. */
  measured: boolean;
  /** One line, fixed precision. */
  text: string;
  /** The numbers behind the text (plain JSON). */
  figures: Record<string, unknown>;
}

/** One of the article's five rows. */
export interface AspectRow {
  aspect: Aspect;
  /** One cell per strategy, in `STRATEGY_NAMES` order. */
  cells: MatrixCell[];
}

/** The choice for one workload (at one global batch, where a bench swept them). */
export interface Recommendation {
  aspect: "recommendation";
  workload: string;
  /** The run set's global batch where the bench swept batches (`--batches`). */
  globalBatch?: number;
  /** `choose`, `keep-single` or `inconclusive` (absent in files written before verdicts). */
  verdict?: Verdict;
  strategy: StrategyName;
  worldSize: number;
  /** The decisive run's speedup over the best single process (1 when single is kept). */
  speedup: number;
  /** Its interval over the repeats, where there was one. */
  interval?: Interval | null;
  /** Inconclusive: repeats the observed spread suggests would settle it (null: unknown). */
  repeatsSuggested?: number | null;
  rule: RuleId;
  text: string;
  /** True on a fallback backend (`analysis/provisional.ts`); absent otherwise. */
  provisional?: true;
}

/** An entry of `results.matrix`. */
export type MatrixEntry = AspectRow | Recommendation;

/** Options for {@linkcode buildMatrix}. */
export interface BuildMatrixOptions {
  /** Where the strategies' modules are counted (default: this repository). */
  root?: string;
  /** Where parallel starts to pay (`results.crossover`), cited in the use-case row. */
  crossover?: CrossoverEntry[];
}

/** What each strategy supports, independent of what was run. */
const SUPPORT: Record<StrategyName, string> = {
  single: "one process",
  dp: "one process (Web Workers): one machine",
  ddp: "a process per rank: Unix sockets, TCP across hosts",
};

const NOT_MEASURED = "not measured";

/** `single`, `DP-2`, `DDP-4`: how recommendations name a run. */
const upper = (run: RunRecord) =>
  run.strategy === "single" ? "single" : runLabel(run).toUpperCase();

const maxPeak = (run: RunRecord) => Math.max(...run.memory.workers.map((w) => w.peakBytes));
const meanPeak = (run: RunRecord) =>
  run.memory.workers.reduce((s, w) => s + w.peakBytes, 0) / run.memory.workers.length;

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** `lo–hi` with `format`, or one value when both format alike. */
function range(values: number[], format: (n: number) => string): string {
  const lo = format(Math.min(...values));
  const hi = format(Math.max(...values));
  return lo === hi ? lo : `${lo}–${hi}`;
}

function singleOf(set: RunSet): RunRecord | undefined {
  return set.runs.find((r) => r.strategy === "single");
}

/** The run set a run belongs to. */
function setOf(sets: RunSet[], run: RunRecord): RunSet {
  return sets.find((s) => s.runs.includes(run))!;
}

/**
 * Whether a run can be chosen: its parameters matched single's within its bound (or no bound
 * applies: weak scaling, local BatchNorm).
 *
 * @param run a run record
 * @returns whether the rules consider it
 */
export function eligible(run: RunRecord): boolean {
  // Weak scaling has no equivalence to check (it trains on a larger batch): it is eligible.
  const bound = run.equivalenceBoundUsed !== undefined
    ? run.equivalenceBoundUsed
    : EQUIVALENCE_BOUND;
  if (bound === null) return true;
  return run.paramMaxAbsDiffVsSingle !== null && run.paramMaxAbsDiffVsSingle <= bound;
}

/** The run with the highest speedup over the best single process, if any. */
export function bestOf(runs: RunRecord[]): RunRecord | undefined {
  return runs.reduce<RunRecord | undefined>(
    (best, r) => (best === undefined || vsBest(r) > vsBest(best) ? r : best),
    undefined,
  );
}

/** A run's speedup over the best single process (older files: over single). */
export function vsBest(run: RunRecord): number {
  return run.speedupVsBestSingle ?? run.speedup;
}

/** Its interval; a point where the file has none. */
export function vsBestInterval(run: RunRecord): Interval {
  return run.speedupVsBestSingleInterval ?? run.speedupInterval ??
    { low: vsBest(run), high: vsBest(run), level: 0 };
}

/** `[0.95–1.31]`: an interval at two decimals. */
export function intervalText(interval: Interval | null | undefined): string {
  // One repeat gives a point, not an interval: nothing to show.
  return interval && interval.level > 0
    ? `[${fixed(interval.low, 2)}–${fixed(interval.high, 2)}]`
    : "";
}

/** `single` or `single-2t`: the best single process a parallel run was compared with. */
function bestSingleLabel(run: RunRecord): string {
  return runLabel({ strategy: "single", worldSize: 1, threads: run.bestSingleThreads ?? 1 });
}

function describeRun(run: RunRecord): string {
  const reached = `${upper(run)} reached ${fixed(vsBest(run), 2)}x ${
    intervalText(vsBestInterval(run))
  }`
    .trim();
  if (!eligible(run)) {
    return `${reached} but its parameters differ from single's by ${
      sci(run.paramMaxAbsDiffVsSingle)
    } (not eligible)`;
  }
  return run.batchNorm === "local" && run.paramMaxAbsDiffVsSingle != null
    ? `${reached} (local BatchNorm statistics: ${
      sci(run.paramMaxAbsDiffVsSingle)
    } from single's parameters by design)`
    : reached;
}

/** Repeats that would shrink `run`'s interval clear of the threshold, if its spread holds. */
function repeatsToSettle(run: RunRecord): number | null {
  const { low, high } = vsBestInterval(run);
  const distance = Math.abs(vsBest(run) - WORTHWHILE_SPEEDUP);
  if (distance === 0 || high === low) return null;
  // An interval for the median narrows about as 1/√n: n' = n·(half-width / distance)².
  const n = Math.ceil(run.repeats * ((high - low) / 2 / distance) ** 2);
  return Math.min(Math.max(n, run.repeats + 1), MAX_SUGGESTED_REPEATS);
}

const overlap = (a: Interval, b: Interval) => a.low <= b.high && b.low <= a.high;

function recommend(set: RunSet): Recommendation {
  const parallel = set.runs.filter((r) => r.strategy !== "single");
  const workload = set.label;
  const base = {
    aspect: "recommendation" as const,
    workload: set.workload,
    ...(set.globalBatch !== null ? { globalBatch: set.globalBatch } : {}),
  };
  if (parallel.length === 0) {
    return {
      ...base,
      verdict: "keep-single",
      strategy: "single",
      worldSize: 1,
      speedup: 1,
      rule: "only-single",
      text: `for ${workload} only single was measured: nothing to choose between`,
    };
  }
  const against = bestSingleLabel(parallel[0]);
  const measured =
    `on this machine, for ${workload}, against the best single process (${against}): ${
      parallel.map(describeRun).join("; ")
    }`;
  const candidates = parallel.filter(eligible);
  const keep = (why: string): Recommendation => ({
    ...base,
    verdict: "keep-single",
    strategy: "single",
    worldSize: 1,
    speedup: 1,
    rule: "keep-single",
    text: `${measured}; ${why}: keep ${against}`,
  });
  if (candidates.length === 0) return keep("no parallel run matched single's parameters");
  const qualifying = candidates.filter((r) => vsBestInterval(r).low >= WORTHWHILE_SPEEDUP);
  if (qualifying.length > 0) {
    const bests = (["dp", "ddp"] as const)
      .map((s) => bestOf(qualifying.filter((r) => r.strategy === s)))
      .filter((r): r is RunRecord => r !== undefined)
      .sort((a, b) => vsBest(b) - vsBest(a));
    const [top, other] = bests;
    const tie = other !== undefined && overlap(vsBestInterval(top), vsBestInterval(other));
    const chosen = tie && other.memory.imbalance < top.memory.imbalance ? other : top;
    const rival = chosen === top ? other : top;
    const why = tie
      ? ` (its interval overlaps ${upper(rival)}'s; memory max/mean ${
        fixed(chosen.memory.imbalance, 2)
      } vs ${fixed(rival.memory.imbalance, 2)})`
      : "";
    return {
      ...base,
      verdict: "choose",
      strategy: chosen.strategy,
      worldSize: chosen.worldSize,
      speedup: vsBest(chosen),
      interval: vsBestInterval(chosen),
      rule: tie ? "tie-balanced-memory" : "fastest",
      text:
        `${measured}; choose ${chosen.strategy.toUpperCase()} with world size ${chosen.worldSize}${why}`,
    };
  }
  if (candidates.every((r) => vsBestInterval(r).high < WORTHWHILE_SPEEDUP)) {
    return keep(`no run's interval reaches ${fixed(WORTHWHILE_SPEEDUP, 2)}x`);
  }
  const straddling = candidates.filter((r) => vsBestInterval(r).high >= WORTHWHILE_SPEEDUP)
    .sort((a, b) => vsBest(b) - vsBest(a))[0];
  const suggested = repeatsToSettle(straddling);
  const settle = suggested === null
    ? "its median sits on the threshold, so more repeats alone may not settle it"
    : suggested >= MAX_SUGGESTED_REPEATS
    ? `more than ${MAX_SUGGESTED_REPEATS} repeats would be needed to settle it at this spread`
    : `about ${suggested} repeats would settle it if the spread holds (--repeats ${suggested})`;
  return {
    ...base,
    verdict: "inconclusive",
    strategy: straddling.strategy,
    worldSize: straddling.worldSize,
    speedup: vsBest(straddling),
    interval: vsBestInterval(straddling),
    repeatsSuggested: suggested,
    rule: "inconclusive",
    text: `${measured}; ${upper(straddling)}'s interval straddles ${
      fixed(WORTHWHILE_SPEEDUP, 2)
    }x: inconclusive on this machine — ${settle}`,
  };
}

function notMeasured(strategy: StrategyName, prefix = ""): MatrixCell {
  return { strategy, measured: false, text: `${prefix}${NOT_MEASURED}`, figures: {} };
}

/** How a recommendation names its run set: the workload, with its batch where swept. */
function recLabel(rec: Recommendation): string {
  return rec.globalBatch === undefined ? rec.workload : `${rec.workload}, batch ${rec.globalBatch}`;
}

/**
 * Where parallel starts to pay, per family, for `strategy`'s cell: the smallest configuration
 * whose run the rules would choose, or that none was within the measured range.
 */
function crossoverText(strategy: StrategyName, crossover: CrossoverEntry[]): string[] {
  return crossover.filter((c) => c.strategy === strategy).map((c) =>
    `${c.family} (N=${c.worldSize}): ${
      c.firstChoose
        ? `pays from ${c.firstChoose.workload}, batch ${c.firstChoose.globalBatch}`
        : "not within the measured range"
    }`
  );
}

function useCaseCell(
  strategy: StrategyName,
  runs: RunRecord[],
  sets: RunSet[],
  recs: Recommendation[],
  crossover: CrossoverEntry[],
): MatrixCell {
  const chosen = recs.filter((r) => r.strategy === strategy && r.verdict !== "inconclusive")
    .map(recLabel);
  const names = (xs: string[]) => xs.join(", ") || "none";
  if (strategy === "single") {
    return {
      strategy,
      measured: true,
      text: `kept for ${names(chosen)}`,
      figures: { chosenFor: chosen },
    };
  }
  const perSet = sets.flatMap((set) => {
    const best = bestOf(runs.filter((r) => setOf(sets, r) === set && eligible(r)));
    const single = singleOf(set);
    return best && single ? [{ workload: set.label, best, singleStepMs: single.stepMs.p50 }] : [];
  });
  const paid = perSet.filter((x) => vsBest(x.best) >= WORTHWHILE_SPEEDUP);
  const unpaid = perSet.filter((x) => vsBest(x.best) < WORTHWHILE_SPEEDUP);
  const pays = crossoverText(strategy, crossover);
  return {
    strategy,
    measured: true,
    text: `chosen for ${names(chosen)}; ≥ ${fixed(WORTHWHILE_SPEEDUP, 2)}x on ${
      names(paid.map((x) => x.workload))
    }${pays.length ? `; where parallel starts to pay: ${pays.join("; ")}` : ""}`,
    figures: {
      chosenFor: chosen,
      paidOn: paid.map((x) => x.workload),
      notPaidOn: unpaid.map((x) => x.workload),
      singleStepMs: Object.fromEntries(perSet.map((x) => [x.workload, x.singleStepMs])),
      ...(pays.length ? { startsToPay: pays } : {}),
    },
  };
}

function memoryCell(strategy: StrategyName, runs: RunRecord[], sets: RunSet[]): MatrixCell {
  const vsSingle = runs.flatMap((r) => {
    const single = singleOf(setOf(sets, r));
    return single ? [maxPeak(r) / maxPeak(single)] : [];
  });
  const mainOverReplicas = runs.flatMap((r) => {
    const main = r.memory.workers.find((w) => w.role === "main");
    const replicas = r.memory.workers.filter((w) => w.role === "replica");
    return main && replicas.length ? [main.peakBytes / mean(replicas.map((w) => w.peakBytes))] : [];
  });
  const workers = range(runs.map((r) => r.memory.workers.length), (n) => n.toFixed(0));
  const parts = strategy === "single" ? [`peak ${range(runs.map(maxPeak), bytes)}`] : [
    `${workers} × ≤ ${range(runs.map(maxPeak), bytes)}${
      vsSingle.length ? ` (${range(vsSingle, (n) => fixed(n, 2))}x single)` : ""
    }`,
    `max/mean ${range(runs.map((r) => r.memory.imbalance), (n) => fixed(n, 2))}`,
    ...(mainOverReplicas.length
      ? [`main ${range(mainOverReplicas, (n) => fixed(n, 2))}x replicas`]
      : []),
  ];
  return {
    strategy,
    measured: true,
    text: parts.join("; "),
    figures: {
      maxPeakBytes: Math.max(...runs.map(maxPeak)),
      meanPeakBytes: mean(runs.map(meanPeak)),
      maxImbalance: Math.max(...runs.map((r) => r.memory.imbalance)),
      mainOverReplicas: mainOverReplicas.length ? Math.max(...mainOverReplicas) : null,
      maxWorkerVsSingle: vsSingle.length ? Math.max(...vsSingle) : null,
    },
  };
}

function worldSizesOf(runs: RunRecord[]): number[] {
  return [...new Set(runs.map((r) => r.worldSize))].sort((a, b) => a - b);
}

function efficiencyCell(strategy: StrategyName, runs: RunRecord[]): MatrixCell {
  if (strategy === "single") {
    return {
      strategy,
      measured: true,
      text: "1.00x (the reference)",
      figures: {},
    };
  }
  const byWorldSize = worldSizesOf(runs).map((worldSize) => {
    const at = runs.filter((r) => r.worldSize === worldSize);
    const vsCeiling = at.flatMap((r) =>
      r.efficiencyVsCeiling === null ? [] : [r.efficiencyVsCeiling]
    );
    return {
      worldSize,
      speedup: [Math.min(...at.map((r) => r.speedup)), Math.max(...at.map((r) => r.speedup))],
      efficiency: [
        Math.min(...at.map((r) => r.efficiency)),
        Math.max(...at.map((r) => r.efficiency)),
      ],
      efficiencyVsCeiling: vsCeiling.length
        ? [Math.min(...vsCeiling), Math.max(...vsCeiling)]
        : null,
      text: `N=${worldSize}: ${range(at.map((r) => r.speedup), (n) => `${fixed(n, 2)}x`)} (${
        range(at.map((r) => r.efficiency), percent)
      })${vsCeiling.length ? `, ${range(vsCeiling, percent)} of ceiling` : ""}`,
    };
  });
  return {
    strategy,
    measured: true,
    text: byWorldSize.map((w) => w.text).join("; "),
    figures: { byWorldSize: byWorldSize.map(({ text: _, ...figures }) => figures) },
  };
}

function complexityCell(strategy: StrategyName, runs: RunRecord[], root?: string): MatrixCell {
  const { lines, files } = measureComplexity(strategy, root);
  const folders = [...new Set(files.map((f) => f.slice(0, f.indexOf("/") + 1)))];
  const where = folders.map((folder) =>
    `${folder} ${files.filter((f) => f.startsWith(folder)).length}`
  ).join(", ");
  return {
    strategy,
    measured: runs.length > 0,
    text: lines === null ? "not implemented" : `${lines} lines, ${files.length} files (${where})`,
    figures: { lines, files },
  };
}

/** `1 host`, or `2 hosts (a 10.0.0.1, b 10.0.0.2)` for a bench across hosts. */
function hostsText(runs: RunRecord[], results: Results): string {
  const hosts = Math.max(...runs.map((r) => r.hosts ?? 1));
  if (hosts === 1) return "1 host";
  const names = results.config.nodes?.hosts.map((h) => `${h.host} ${h.address}`);
  return `${hosts} hosts${names ? ` (${names.join(", ")})` : ""}`;
}

function scalabilityCell(
  strategy: StrategyName,
  runs: RunRecord[],
  results: Results,
  sets: RunSet[],
): MatrixCell {
  if (runs.length === 0) return notMeasured(strategy, `${SUPPORT[strategy]}; `);
  const sizes = worldSizesOf(runs);
  const parts = [SUPPORT[strategy]];
  if (strategy !== "single") parts.push(`N run: ${sizes.join(", ")}`);
  // What was actually run: the links, and the hosts (one, unless bench ran across hosts).
  const transports = [...new Set(runs.flatMap((r) => r.transport ? [r.transport] : []))];
  if (strategy === "ddp") {
    parts.push(`${transports.join("+") || "unix"}, ${hostsText(runs, results)}`);
  }
  let growth: number | null = null;
  if (sizes.length >= 2) {
    const [lo, hi] = [sizes[0], sizes[sizes.length - 1]];
    const ratios = sets.flatMap((set) => {
      const a = runs.find((r) => setOf(sets, r) === set && r.worldSize === lo);
      const b = runs.find((r) => setOf(sets, r) === set && r.worldSize === hi);
      return a && b ? [b.speedup / a.speedup] : [];
    });
    if (ratios.length) {
      growth = median(ratios);
      parts.push(`N=${lo}→${hi}: ×${fixed(growth, 2)}`);
    }
  }
  return {
    strategy,
    measured: true,
    text: parts.join("; "),
    figures: { worldSizes: strategy === "single" ? [1] : sizes, speedupGrowth: growth },
  };
}

function aspectRow(
  aspect: Aspect,
  results: Results,
  recs: Recommendation[],
  options: BuildMatrixOptions,
): AspectRow {
  const sets = runSets(results);
  const cells = STRATEGY_NAMES.map((strategy) => {
    const runs = results.runs.filter((r) => r.strategy === strategy);
    if (aspect === "implementationComplexity") return complexityCell(strategy, runs, options.root);
    if (aspect === "scalability") return scalabilityCell(strategy, runs, results, sets);
    if (runs.length === 0) return notMeasured(strategy);
    if (aspect === "useCase") {
      return useCaseCell(strategy, runs, sets, recs, options.crossover ?? []);
    }
    if (aspect === "memoryPerDevice") return memoryCell(strategy, runs, sets);
    return efficiencyCell(strategy, runs);
  });
  return { aspect, cells };
}

/**
 * Fill the selection matrix from measured runs: the five rows for single, DP and DDP, then one
 * recommendation per workload. Counts each strategy's code lines now, so store the result in
 * `results.matrix` and renderers only read it.
 *
 * @param results the results, runs filled in (`matrix` is ignored)
 * @param options see {@linkcode BuildMatrixOptions}
 * @returns the matrix entries: five {@linkcode AspectRow}s, then the {@linkcode Recommendation}s
 * @example
 * ```ts
 * import type { Results } from "./results.ts";
 * declare const results: Results;
 * results.matrix = buildMatrix(results);
 * ```
 */
export function buildMatrix(results: Results, options: BuildMatrixOptions = {}): MatrixEntry[] {
  // On a fallback backend every answer is provisional: compute is slower than native here.
  const provisional = provisionalWhy(results.env.backend) === null
    ? {}
    : { provisional: true as const };
  const recs = runSets(results).map((set) => ({ ...recommend(set), ...provisional }));
  return [...ASPECTS.map((aspect) => aspectRow(aspect, results, recs, options)), ...recs];
}

/** One entry of `results.verdicts`. */
export interface VerdictRecord {
  workload: string;
  /** The run set's global batch where the bench swept batches (`--batches`). */
  globalBatch?: number;
  verdict: Verdict;
  strategy: StrategyName;
  worldSize: number;
  /** The decisive run's speedup over the best single process (1 when single is kept). */
  speedup: number;
  interval: Interval | null;
  repeatsSuggested: number | null;
  reason: string;
  /** True on a fallback backend whose compute is far from native (`analysis/provisional.ts`). */
  provisional?: true;
}

/**
 * The verdicts of a matrix's recommendations, as `results.verdicts` holds them.
 *
 * @param matrix `results.matrix`
 * @returns one verdict per workload
 * @example
 * ```ts
 * import type { Results } from "./results.ts";
 * declare const results: Results;
 * const verdicts = verdictsOf(results.matrix as MatrixEntry[]);
 * ```
 */
export function verdictsOf(matrix: MatrixEntry[]): VerdictRecord[] {
  return matrix.filter((e): e is Recommendation => e.aspect === "recommendation").map((r) => ({
    workload: r.workload,
    ...(r.globalBatch !== undefined ? { globalBatch: r.globalBatch } : {}),
    verdict: r.verdict ?? (r.strategy === "single" ? "keep-single" : "choose"),
    strategy: r.strategy,
    worldSize: r.worldSize,
    speedup: r.speedup,
    interval: r.interval ?? null,
    repeatsSuggested: r.repeatsSuggested ?? null,
    reason: r.text,
    ...(r.provisional ? { provisional: true as const } : {}),
  }));
}
