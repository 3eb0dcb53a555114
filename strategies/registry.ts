/**
 * The strategies, as a lookup table: what each is, how to run it (its ceiling too, as the
 * same run with `spec.ceiling` set), and what it needs of a run before anything starts.
 *
 * @module
 */
import { UsageError } from "../core/errors.ts";
import type { RunMeasurement, RunSpec, StrategyName } from "../core/run_types.ts";
export { STRATEGY_NAMES } from "../core/run_types.ts";
import type { StepProgress } from "../core/train_loop.ts";
import { runDdp } from "./ddp.ts";
import { runDp } from "./dp.ts";
import { runSingle } from "./single.ts";

/** One entry of {@linkcode STRATEGIES}. */
export interface StrategyEntry {
  /** One line for `--list`. */
  description: string;
  /**
   * Runs the strategy; with `spec.ceiling`, its ceiling: the same N workers doing the same
   * per-worker work at once, through the same loop, with no communication — what this
   * machine can give at all.
   */
  run: (spec: RunSpec, onStep?: StepProgress) => Promise<RunMeasurement>;
  /** Whether a ceiling can be measured (the parallel strategies). */
  hasCeiling: boolean;
  /**
   * Throws a {@linkcode UsageError} when `spec` cannot run under this strategy; checked
   * before any process, worker or file is made.
   */
  check?: (spec: RunShape) => void;
}

/**
 * What the checks look at. `ranksHere`: the job's ranks on this host when a scheduler started
 * this process as one of them (its `LOCAL_WORLD_SIZE`, …), where `nodes` is absent.
 */
export type RunShape =
  & Pick<RunSpec, "workload" | "strategy" | "worldSize" | "globalBatch">
  & Partial<Pick<RunSpec, "nodes">>
  & { ranksHere?: number };

/** Every strategy paratrain knows, in report order. */
export const STRATEGIES: Record<StrategyName, StrategyEntry> = {
  single: {
    description: "one model, one engine, the plain loop; the reference for every speedup",
    run: runSingle,
    hasCeiling: false,
  },
  dp: {
    description:
      "DataParallel: one process, replicas in Web Workers; the main replica gathers, reduces and updates",
    run: runDp,
    hasCeiling: true,
    check: ({ workload, worldSize, globalBatch }) => {
      if (globalBatch < worldSize) {
        throw new UsageError(
          `Global batch ${globalBatch} of ${workload} is smaller than ${worldSize} DP replicas: each needs a sample; use a larger --batch or fewer replicas`,
        );
      }
    },
  },
  ddp: {
    description: "DistributedDataParallel: one process per rank, ring all-reduce over Unix sockets",
    run: runDdp,
    hasCeiling: true,
    check: ({ workload, worldSize, globalBatch }) => {
      if (globalBatch % worldSize !== 0) {
        throw new UsageError(
          `Global batch ${globalBatch} of ${workload} does not divide across ${worldSize} DDP ranks: choose world sizes that divide it`,
        );
      }
    },
  },
};

/** Workers (ranks, replicas) started per logical CPU at most: beyond that, runs measure the OS scheduler. */
const WORKERS_PER_CPU = 4;
/** Memory a worker may need (a rank's RSS measured here: 110–410 MiB), for the upper bound. */
const WORKER_MEMORY_BYTES = 512 * 1024 * 1024;

/**
 * The most workers this machine can start for one run: {@linkcode WORKERS_PER_CPU} per
 * logical CPU, and no more than the available memory holds at
 * {@linkcode WORKER_MEMORY_BYTES} each.
 *
 * @returns the bound (at least 1)
 * @example
 * ```ts
 * maxWorldSize(); // 8 on a 2-vCPU machine with 24 GiB
 * ```
 */
export function maxWorldSize(): number {
  const byCpu = WORKERS_PER_CPU * navigator.hardwareConcurrency;
  const byMemory = Math.floor(Deno.systemMemoryInfo().available / WORKER_MEMORY_BYTES);
  return Math.max(1, Math.min(byCpu, byMemory));
}

/**
 * Checks a run before anything starts: its world size against what the machine can start,
 * then the strategy's own conditions (DP: a sample per replica; DDP: the batch divides).
 *
 * @param spec the run
 * @throws UsageError naming the problem
 * @example
 * ```ts
 * checkRun({ workload: "mnist-mlp", strategy: "ddp", worldSize: 3, globalBatch: 256 }); // throws
 * ```
 */
export function checkRun(spec: RunShape): void {
  const max = maxWorldSize();
  // Across hosts, this machine holds only its own ranks: the job's world size counts them all.
  const here = spec.ranksHere ?? spec.nodes?.nprocPerNode ?? spec.worldSize;
  if (spec.strategy !== "single" && here > max) {
    const what = here === spec.worldSize
      ? `World size ${here}`
      : `${here} ranks on this host (of world size ${spec.worldSize})`;
    throw new UsageError(
      `${what} is more than this machine can start: at most ${max} (${WORKERS_PER_CPU} per logical CPU, ${
        WORKER_MEMORY_BYTES / 2 ** 20
      } MiB of available memory each)`,
    );
  }
  STRATEGIES[spec.strategy].check?.(spec);
}
