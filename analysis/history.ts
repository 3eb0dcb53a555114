/**
 * A history over commits (`report --history DIR`): the results of successive commits ordered
 * by the commit's date, and the regression gate (`gate.ts`) run between each point and the one
 * before it. `reports/history_report.ts` renders it.
 *
 * @module
 */
import { UsageError } from "../core/errors.ts";
import { runLabel } from "../core/run_types.ts";
import { DEFAULT_TOLERANCE, gate, type GateCheck, type GateResult } from "./gate.ts";
import type { SourcedResults } from "./read_results_set.ts";
import type { Results } from "./results.ts";

/** Characters of a commit hash that name a point. */
const SHORT_COMMIT = 7;

/** One results file in the history. */
export interface HistoryPoint {
  /** A short commit hash (`6fe8622`), or `#k` for results outside a git checkout. */
  id: string;
  source: string;
  results: Results;
  commit: string | null;
  /** What orders the points: the commit's date, else when the bench started. */
  date: string;
  /** Where `date` came from: older files record no commit date. */
  dateFrom: "commit" | "bench start";
}

/** The gate between a point and the one before it. */
export interface HistoryStep {
  /** The gate's checks, the point before as the baseline; null when not compared. */
  gate: GateResult | null;
  /** Why the two were not compared (another backend, other settings, nothing shared). */
  notCompared: string | null;
}

/** What {@linkcode buildHistory} found. */
export interface History {
  /** Oldest first. */
  points: HistoryPoint[];
  /** `steps[k]` compares `points[k]` with `points[k − 1]`; `steps[0]` is null. */
  steps: (HistoryStep | null)[];
  /** Workloads of any point, in first-seen order. */
  workloads: string[];
  /** The gate's tolerance. */
  tolerance: number;
  /** How the points were ordered, and what differs between them, one line each. */
  notes: string[];
}

/** Options for {@linkcode buildHistory}. */
export interface HistoryOptions {
  /** The gate's allowed relative drop of a ratio (default `DEFAULT_TOLERANCE`). */
  tolerance?: number;
}

const commitDateOf = (results: Results) => {
  const date = results.env.gitCommitDate;
  return typeof date === "string" && !Number.isNaN(Date.parse(date)) ? date : null;
};

/**
 * A point dated by its commit: its own record of the commit's date, or another file's of the
 * same commit; else (older files) by when its bench started.
 */
function toPoint(
  entry: SourcedResults,
  commitDates: Map<string, string>,
): Omit<HistoryPoint, "id"> {
  const { env } = entry.results;
  const date = commitDateOf(entry.results) ??
    (env.gitCommit ? commitDates.get(env.gitCommit) ?? null : null);
  return {
    source: entry.source,
    results: entry.results,
    commit: env.gitCommit,
    date: date ?? env.startedAt,
    dateFrom: date ? "commit" : "bench start",
  };
}

/** Short commit ids, `#k` where there is none, a suffix where one commit ran twice. */
function withIds(points: Omit<HistoryPoint, "id">[]): HistoryPoint[] {
  const count = new Map<string, number>();
  return points.map((p, k) => {
    const base = p.commit ? p.commit.slice(0, SHORT_COMMIT) : `#${k + 1}`;
    const n = (count.get(base) ?? 0) + 1;
    count.set(base, n);
    return { ...p, id: n === 1 ? base : `${base} (${n})` };
  });
}

function orderNotes(points: HistoryPoint[]): string[] {
  const undated = points.filter((p) => p.dateFrom === "bench start");
  const notes = [
    undated.length === 0
      ? "Points are ordered by their commit's date (committer date)."
      : undated.length === points.length
      ? "No point records its commit's date (files written before `gitCommitDate`): points are ordered by when their bench started."
      : `Points are ordered by their commit's date; ${
        undated.map((p) => p.id).join(", ")
      } record none (written before \`gitCommitDate\`) and are placed by when their bench started.`,
  ];
  const machine = (r: Results) =>
    `${r.env.cpuModel}, ${r.env.logicalCpus} logical CPUs, backend ${r.env.backend}`;
  const machines = [...new Set(points.map((p) => machine(p.results)))];
  if (machines.length > 1) {
    notes.push(
      `The points ran on ${machines.length} machines or backends (${
        points.map((p) => `${p.id}: ${machine(p.results)}`).join("; ")
      }): samples/s compare only within one; the gate compares ratios, and not across backends.`,
    );
  }
  const presets = new Set(points.map((p) => p.results.config.quick ? "--quick" : "default"));
  if (presets.size > 1) {
    notes.push(
      `Presets differ: ${
        points.map((p) => `${p.id} ${p.results.config.quick ? "--quick" : "default"}`).join(", ")
      }.`,
    );
  }
  return notes;
}

function step(before: Results, after: Results, tolerance: number): HistoryStep {
  try {
    return { gate: gate(before, after, { tolerance, allowMissing: true }), notCompared: null };
  } catch (error) {
    // The gate refuses what it cannot compare (a usage error); anything else is a bug.
    if (!(error instanceof UsageError)) throw error;
    return { gate: null, notCompared: error.message };
  }
}

/**
 * Order results of successive commits by the commit's date and gate each against the one
 * before.
 *
 * @param set the results (one or more), in any order
 * @param options see {@linkcode HistoryOptions}
 * @returns the points, oldest first, with the gate between neighbours
 * @example
 * ```ts
 * import { readResultsSet } from "./read_results_set.ts";
 * const history = buildHistory(await readResultsSet(["results/history"]));
 * console.log(history.points.map((p) => p.id));
 * ```
 */
export function buildHistory(set: SourcedResults[], options: HistoryOptions = {}): History {
  const { tolerance = DEFAULT_TOLERANCE } = options;
  if (set.length === 0) throw new UsageError("A history needs at least one results file");
  const commitDates = new Map(
    set.flatMap(({ results }) =>
      results.env.gitCommit && commitDateOf(results)
        ? [[results.env.gitCommit, commitDateOf(results)!] as const]
        : []
    ),
  );
  const ordered = set.map((entry) => toPoint(entry, commitDates)).sort((a, b) =>
    Date.parse(a.date) - Date.parse(b.date) ||
    Date.parse(a.results.env.startedAt) - Date.parse(b.results.env.startedAt) ||
    a.source.localeCompare(b.source)
  );
  const points = withIds(ordered);
  return {
    points,
    steps: points.map((p, k) => k === 0 ? null : step(points[k - 1].results, p.results, tolerance)),
    workloads: [...new Set(points.flatMap((p) => p.results.runs.map((r) => r.workload)))],
    tolerance,
    notes: orderNotes(points),
  };
}

/** Which point's regressions {@linkcode regressionsAt} returns, of which workload and run. */
export interface RegressionsAt {
  /** The point's index (compared with the one before it). */
  point: number;
  workload: string;
  /** A run's label, as `runLabel` names it; every run of the workload when absent. */
  run?: string;
}

/**
 * The regressions the gate found at a point, against the point before, for a workload.
 *
 * @param history the history
 * @param at the point, the workload, and optionally the run
 * @returns the regressed checks
 * @example
 * ```ts
 * declare const history: History;
 * regressionsAt(history, { point: 2, workload: "mnist-cnn", run: "ddp-2" });
 * ```
 */
export function regressionsAt(history: History, at: RegressionsAt): GateCheck[] {
  return (history.steps[at.point]?.gate?.regressions ?? []).filter((c) =>
    c.workload === at.workload && (at.run === undefined || runLabel(c) === at.run)
  );
}
