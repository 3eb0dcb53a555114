import { quote, UsageError } from "../core/errors.ts";
import type { Workload } from "../core/workload.ts";
import { irisLogreg } from "./iris_logreg.ts";
import { mnistCnn } from "./mnist_cnn.ts";
import { mnistMlp } from "./mnist_mlp.ts";
import { syntheticMlp } from "./synthetic_mlp.ts";

/** The built-in workloads, in report order. */
export const WORKLOADS: readonly Workload[] = [syntheticMlp, mnistMlp, mnistCnn, irisLogreg];

const registered = new Map<string, Workload>();

/**
 * Make a user's workload known by name in this process (single strategy, or any strategy
 * whose workers import the module that registers it).
 *
 * @param workload the workload
 * @example
 * ```ts
 * import { WORKLOADS } from "./registry.ts";
 * const myWorkload = { ...WORKLOADS[0], name: "my-copy" };
 * registerWorkload(myWorkload);
 * ```
 */
export function registerWorkload(workload: Workload): void {
  if (WORKLOADS.some((w) => w.name === workload.name)) {
    throw new UsageError(`Cannot register workload "${workload.name}": a built-in has that name`);
  }
  registered.set(workload.name, workload);
}

/**
 * Find a built-in or registered workload by name.
 *
 * @param name e.g. `mnist-mlp`
 * @returns the workload
 * @throws UsageError naming the valid choices when `name` is unknown
 * @example
 * ```ts
 * getWorkload("iris-logreg").defaults.batchSize; // 32
 * ```
 */
export function getWorkload(name: string): Workload {
  const found = WORKLOADS.find((w) => w.name === name) ?? registered.get(name);
  if (!found) {
    throw new UsageError(
      `Unknown workload ${quote(name)}: choose from ${WORKLOADS.map((w) => w.name).join(", ")}`,
    );
  }
  return found;
}
