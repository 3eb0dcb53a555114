/**
 * The strategies, as a lookup table: what each is and how to run it. A strategy that is not
 * implemented yet says so instead of running.
 *
 * @module
 */
import type { RunMeasurement, RunSpec, StrategyName } from "../core/run_types.ts";
import type { StepProgress } from "../core/train_loop.ts";
import { runDdp } from "./ddp.ts";
import { measureDpCeiling, runDp } from "./dp.ts";
import { runSingle } from "./single.ts";

/** One entry of {@linkcode STRATEGIES}. */
export interface StrategyEntry {
  /** One line for `--list`. */
  description: string;
  /** Runs the strategy; absent while it is not implemented. */
  run?: (spec: RunSpec, onStep?: StepProgress) => Promise<RunMeasurement>;
  /**
   * Measures the strategy's ceiling: the same N workers doing the same per-worker work at
   * once with no communication — what this machine can give at all. Absent for single.
   */
  ceiling?: (spec: RunSpec) => Promise<{ samplesPerSec: number }>;
}

/** Every strategy paratrain knows, in report order. */
export const STRATEGIES: Record<StrategyName, StrategyEntry> = {
  single: {
    description: "one model, one engine, the plain loop; the reference for every speedup",
    run: runSingle,
  },
  dp: {
    description:
      "DataParallel: one process, replicas in Web Workers; the main replica gathers, reduces and updates",
    run: runDp,
    ceiling: (spec) => measureDpCeiling(spec),
  },
  ddp: {
    description: "DistributedDataParallel: one process per rank, ring all-reduce over Unix sockets",
    run: runDdp,
    ceiling: (spec) => runDdp(spec, undefined, { ceiling: true }),
  },
};

/** Strategy names in report order. */
export const STRATEGY_NAMES = Object.keys(STRATEGIES) as StrategyName[];
