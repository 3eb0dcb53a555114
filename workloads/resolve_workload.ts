import { quote, UsageError } from "../core/errors.ts";
import type { Workload } from "../core/workload.ts";
import { getWorkload } from "./registry.ts";

/**
 * A workload from a built-in name, or from `module-url#exportName` for a user's own (so that
 * DDP ranks and DP workers, which run in other processes and threads, can load it too).
 *
 * @param ref `mnist-mlp`, or e.g. `file:///home/me/my_workload.ts#myWorkload`
 * @returns the workload
 * @example
 * ```ts
 * await resolveWorkload("iris-logreg");
 * ```
 */
export async function resolveWorkload(ref: string): Promise<Workload> {
  const hash = ref.lastIndexOf("#");
  if (hash < 0) return getWorkload(ref);
  const url = ref.slice(0, hash);
  const name = ref.slice(hash + 1);
  let module: Record<string, unknown>;
  try {
    module = await import(url);
  } catch (error) {
    throw new UsageError(
      `Cannot load workload module ${quote(url)}: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  const workload = module[name] as Workload | undefined;
  if (!workload || typeof workload.createModel !== "function") {
    throw new UsageError(
      `Workload module ${quote(url)} has no workload export named ${quote(name)}`,
    );
  }
  return workload;
}
