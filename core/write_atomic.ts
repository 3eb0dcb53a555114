/**
 * Atomic file writes: a temp file in the same folder, then a rename, so an interrupted run
 * never leaves a half-written report over a good one.
 *
 * @module
 */

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
