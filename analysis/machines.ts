/**
 * Machines side by side (`report --in A --in B …`): each results file becomes a machine
 * labelled from its environment (CPU, cores, backend, BLAS, GPU adapter, hosts), and what the
 * files share is set apart from what they do not — workloads run on only one machine, and
 * settings that differ, are named rather than mixed in silently. `reports/machines_report.ts`
 * renders it.
 *
 * @module
 */
import { UsageError } from "../core/errors.ts";
import { hasProvisionalVerdicts, provisionalWhy } from "./provisional.ts";
import type { SourcedResults } from "./read_results_set.ts";
import type { Results } from "./results.ts";

/** One results file, as a machine. */
export interface Machine {
  /** `A`, `B`, … in the order given. */
  id: string;
  source: string;
  results: Results;
  /** For legends and headings: `A: AMD EPYC, 2 CPUs, native`. */
  label: string;
  cpu: string;
  logicalCpus: number;
  os: string;
  /** The backend and what computes behind it (BLAS, adapter, threads). */
  compute: string;
  /** The GPU adapter's description, where the backend used one. */
  gpu: string | null;
  /** Hosts the runs spanned (1 unless a run records more). */
  hosts: number;
  /** The bench's settings in a few words (preset, steps, repeats). */
  settings: string;
  commit: string | null;
  startedAt: string;
  /** Why its stored verdicts are provisional (a fallback backend), or null. */
  provisional: string | null;
}

/** What {@linkcode compareMachines} found. */
export interface MachineComparison {
  machines: Machine[];
  /** Workloads at least two machines ran, in first-seen order: shown side by side. */
  shared: string[];
  /** Workloads only one machine ran: named, not compared. */
  unshared: { workload: string; machine: string }[];
  /** Settings that differ between the machines, one line each (`repeats: A 1, B 3`). */
  differences: string[];
}

/** Words in CPU model names that say nothing about the machine. */
const CPU_NOISE = /\((R|TM|tm|r)\)|\bCPU\b|\bProcessor\b|\b\d+-Core\b/g;

/**
 * A CPU model name without trademarks and filler: `Intel Xeon @ 2.20GHz`.
 *
 * @param model `env.cpuModel`
 * @returns the short name
 * @example
 * ```ts
 * shortCpu("Intel(R) Xeon(R) CPU @ 2.20GHz"); // "Intel Xeon @ 2.20GHz"
 * ```
 */
export function shortCpu(model: string): string {
  return model.replace(CPU_NOISE, " ").replace(/\s+/g, " ").trim() || model;
}

/** `A`…`Z`, then `M27`, `M28`, …. */
function machineId(index: number): string {
  return index < 26 ? String.fromCharCode(65 + index) : `M${index + 1}`;
}

function computeOf(results: Results): string {
  const { env } = results;
  const threads = `${env.threads ?? 1} thread${(env.threads ?? 1) > 1 ? "s" : ""} per worker`;
  if (env.backend === "native" && env.blas) {
    const library = env.blas.config.split(" ").slice(0, 2).join(" ") || "OpenBLAS";
    return `native: ${library} (${env.blas.parallel}, ${env.blas.coreName} kernels), ${threads}`;
  }
  if (env.backend === "webgpu" && env.adapter) {
    return `webgpu: ${env.adapter.description}${
      env.adapter.fallback ? " (a software fallback adapter)" : ""
    }`;
  }
  if (env.backend === "wasm") return `wasm: XNNPACK + SIMD, ${threads}`;
  if (env.backend === "cpu") return "cpu: plain JavaScript, one thread per worker";
  return `${env.backend}, ${threads}`;
}

function hostsOf(results: Results): number {
  // Runs across hosts record `hosts`; a file without it ran on one.
  return Math.max(
    1,
    ...results.runs.map((r) => (r as { hosts?: unknown }).hosts)
      .filter((h): h is number => typeof h === "number"),
  );
}

function settingsOf(results: Results): string {
  const { config } = results;
  const steps = config.steps === null || config.steps === undefined
    ? "each workload's steps"
    : `${config.steps} steps`;
  const repeats = `${config.repeats} repeat${config.repeats === 1 ? "" : "s"}`;
  return `${config.quick ? "`--quick`: " : ""}${steps} after ${config.warmup} warm-up, ${repeats}`;
}

function describe(source: SourcedResults, index: number): Machine {
  const { results } = source;
  const { env } = results;
  const id = machineId(index);
  const cpu = shortCpu(env.cpuModel);
  const hosts = hostsOf(results);
  const gpu = env.adapter?.description ?? null;
  return {
    id,
    source: source.source,
    results,
    label: `${id}: ${cpu}, ${env.logicalCpus} CPUs, ${env.backend}${gpu ? ` (${gpu})` : ""}${
      hosts > 1 ? `, ${hosts} hosts` : ""
    }`,
    cpu,
    logicalCpus: env.logicalCpus,
    os: env.os,
    compute: computeOf(results),
    gpu,
    hosts,
    settings: settingsOf(results),
    commit: env.gitCommit,
    startedAt: env.startedAt,
    provisional: hasProvisionalVerdicts(results) ? provisionalWhy(env.backend) : null,
  };
}

/** Settings that change what a run measures, as each file records them. */
const SETTINGS: [string, (r: Results) => unknown][] = [
  ["preset", (r) => (r.config.quick ? "--quick" : "default")],
  ["timed steps", (r) => r.config.steps ?? "each workload's"],
  ["warm-up steps", (r) => r.config.warmup],
  ["repeats", (r) => r.config.repeats],
  ["seed", (r) => r.config.seed],
  ["threads per worker", (r) => r.env.threads ?? 1],
  ["fast kernels", (r) => (r.env.fastKernels ? "on" : "off")],
  ["--accumulate", (r) => r.config.accumulate ?? 1],
  ["--grad-compression", (r) => r.config.gradCompression ?? "none"],
  ["--scaling", (r) => r.config.scaling ?? "strong"],
  ["DDP overlap", (r) => (r.config.overlap ?? true) ? "on" : "off"],
  ["TensorFlow.js", (r) => r.env.tfjs],
];

function differences(machines: Machine[], shared: string[]): string[] {
  const line = (name: string, values: unknown[]) =>
    new Set(values.map(String)).size > 1
      ? [`${name}: ${machines.map((m, i) => `${m.id} ${values[i]}`).join(", ")}`]
      : [];
  const settings = SETTINGS.flatMap(([name, of]) => line(name, machines.map((m) => of(m.results))));
  // The same workload trained on another batch is another measurement: say so per workload.
  const batches = shared.flatMap((workload) => {
    const batch = machines.map((m) =>
      m.results.runs.find((r) => r.workload === workload && r.strategy === "single")
        ?.globalBatch ?? "not run"
    );
    return line(`${workload} global batch`, batch.filter((b) => b !== "not run")).length
      ? line(`${workload} global batch`, batch)
      : [];
  });
  return [...settings, ...batches];
}

/**
 * Set several results side by side as machines.
 *
 * @param set the results, in the order given (two or more)
 * @returns the machines, the workloads they share and those they do not, and the settings
 *   that differ
 * @throws UsageError with fewer than two results, or when no workload is shared
 * @example
 * ```ts
 * import { readResultsSet } from "./read_results_set.ts";
 * const comparison = compareMachines(await readResultsSet(["a.json", "b.json"]));
 * console.log(comparison.machines.map((m) => m.label));
 * ```
 */
export function compareMachines(set: SourcedResults[]): MachineComparison {
  if (set.length < 2) {
    throw new UsageError(`Machines side by side need two results or more; got ${set.length}`);
  }
  const machines = set.map(describe);
  const runBy = machines.map((m) => new Set(m.results.runs.map((r) => r.workload)));
  const workloads = [...new Set(machines.flatMap((m) => m.results.runs.map((r) => r.workload)))];
  const shared = workloads.filter((w) => runBy.filter((s) => s.has(w)).length >= 2);
  if (shared.length === 0) {
    throw new UsageError(
      `Nothing to set side by side: no workload was run on two of ${
        machines.map((m) => m.source).join(", ")
      }`,
    );
  }
  const unshared = workloads.filter((w) => !shared.includes(w)).map((workload) => ({
    workload,
    machine: machines[runBy.findIndex((s) => s.has(workload))].id,
  }));
  return { machines, shared, unshared, differences: differences(machines, shared) };
}
