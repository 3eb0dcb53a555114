/**
 * Atomic file writes: a temp file in the same folder, then a rename, so an interrupted run
 * never leaves a half-written report over a good one.
 *
 * @module
 */
import { join } from "node:path";
import { InterruptedError, STOP_SIGNALS } from "./errors.ts";

/**
 * Write `text` to `path` atomically.
 *
 * @param path destination
 * @param text contents
 * @example
 * ```ts
 * await writeAtomic("results/latest/report.md", "# Report\n");
 * ```
 */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, path);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
}

/**
 * Write several files into `dir` so that they are always one run's: each is first written
 * in full to a staged file beside its destination, then all are renamed into place in one
 * go, in order. A SIGINT, SIGTERM, SIGHUP or another of `STOP_SIGNALS` while staging
 * abandons the new set and leaves the old one intact; one during the renames (microseconds)
 * is held until the set is complete.
 * Either way the signal is then raised as an {@linkcode InterruptedError}.
 *
 * @param dir destination folder (must exist)
 * @param files file names and contents, in the order they are put in place
 * @returns the paths written
 * @example
 * ```ts
 * await writeFileSet("results/latest", [["report.md", "# Report\n"], ["results.json", "{}\n"]]);
 * ```
 */
export async function writeFileSet(dir: string, files: [string, string][]): Promise<string[]> {
  let received: Deno.Signal | null = null;
  const listeners = Deno.build.os === "windows" ? [] : STOP_SIGNALS.map((signal) => {
    const handler = () => received ??= signal;
    Deno.addSignalListener(signal, handler);
    return { signal, handler };
  });
  let renamed = false;
  const tag = `${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const staged = files.map(([name, text]) => ({
    text,
    path: join(dir, name),
    tmp: join(dir, `.${name}.staged-${tag}`),
  }));
  try {
    for (const file of staged) {
      if (received) break;
      await Deno.writeTextFile(file.tmp, file.text);
    }
    if (!received) {
      for (const file of staged) Deno.renameSync(file.tmp, file.path);
      renamed = true;
    }
  } finally {
    for (const file of staged) await Deno.remove(file.tmp).catch(() => {});
    for (const { signal, handler } of listeners) Deno.removeSignalListener(signal, handler);
  }
  if (received) {
    const kept = renamed ? "the new files were written in full" : "the previous files were kept";
    throw new InterruptedError(received, `Writing ${files.length} files (${kept}) was`);
  }
  return staged.map((file) => file.path);
}
