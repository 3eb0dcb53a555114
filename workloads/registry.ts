import { quote, UsageError } from "../core/errors.ts";
import type { Workload, WorkloadFamily } from "../core/workload.ts";
import { irisLogreg } from "./iris_logreg.ts";
import { mnistCnn } from "./mnist_cnn.ts";
import { mnistMlp } from "./mnist_mlp.ts";
import { resnetCnn } from "./resnet_cnn.ts";
import { syntheticMlp } from "./synthetic_mlp.ts";
import { transformerLm } from "./transformer_lm.ts";
import { wideMlp } from "./wide_mlp.ts";

/** The workloads with sizes (`transformer-lm:small`), in report order. */
export const WORKLOAD_FAMILIES: readonly WorkloadFamily[] = [transformerLm, resnetCnn, wideMlp];

/** The workloads the default bench runs, in report order (larger sizes are opt-in). */
export const WORKLOADS: readonly Workload[] = [syntheticMlp, mnistMlp, mnistCnn, irisLogreg];

/**
 * Every built-in workload name: the unsized ones, then each family's sizes.
 *
 * @returns names such as `mnist-mlp` and `transformer-lm:small`
 * @example
 * ```ts
 * builtinWorkloadNames().includes("wide-mlp:medium"); // true
 * ```
 */
export function builtinWorkloadNames(): string[] {
  const sized = WORKLOAD_FAMILIES.flatMap((f) => Object.values(f.sizes).map((w) => w.name));
  return [...new Set([...WORKLOADS.map((w) => w.name), ...sized])];
}

/** The family a workload name belongs to (the part before `:`), or the name itself. */
function familyOf(name: string): string {
  const colon = name.indexOf(":");
  return colon < 0 ? name : name.slice(0, colon);
}

/** A family's size, by `family:size` or the bare family name (its default size). */
function sizedWorkload(name: string): Workload | undefined {
  const family = WORKLOAD_FAMILIES.find((f) => f.name === familyOf(name));
  if (!family) return undefined;
  const size = name.includes(":") ? name.slice(name.indexOf(":") + 1) : family.defaultSize;
  const found = family.sizes[size];
  if (!found) {
    throw new UsageError(
      `Unknown size ${quote(size)} of ${family.name}: choose from ${
        Object.keys(family.sizes).join(", ")
      }`,
    );
  }
  return found;
}

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
  if (builtinWorkloadNames().includes(workload.name) || inBuiltinFamily(workload.name)) {
    throw new UsageError(`Cannot register workload "${workload.name}": a built-in has that name`);
  }
  registered.set(workload.name, workload);
}

/** Whether `name` is in a built-in family's namespace (`family` or `family:anything`). */
function inBuiltinFamily(name: string): boolean {
  return WORKLOAD_FAMILIES.some((f) => f.name === familyOf(name));
}

/**
 * Find a built-in or registered workload by name: a family's size as `family:size`, or the
 * bare family name for its default size.
 *
 * @param name e.g. `mnist-mlp`, `transformer-lm:small`, `wide-mlp`
 * @returns the workload (a family's is named `family:size`)
 * @throws UsageError naming the valid choices when `name` (or its size) is unknown
 * @example
 * ```ts
 * getWorkload("iris-logreg").defaults.batchSize; // 32
 * getWorkload("transformer-lm").name; // "transformer-lm:tiny"
 * ```
 */
export function getWorkload(name: string): Workload {
  const found = WORKLOADS.find((w) => w.name === name) ?? sizedWorkload(name) ??
    registered.get(name);
  if (!found) {
    const families = WORKLOAD_FAMILIES.map((f) => `${f.name}[:${Object.keys(f.sizes).join("|")}]`);
    throw new UsageError(
      `Unknown workload ${quote(name)}: choose from ${
        [...WORKLOADS.map((w) => w.name), ...families].join(", ")
      }`,
    );
  }
  return found;
}
