/**
 * Implementation complexity, counted by one stated rule: a strategy's code is every module its
 * run reaches — its entry module's imports, followed through, and the modules it starts as
 * Web Workers or processes (`new URL("./x.ts", import.meta.url)`) — outside `core/`,
 * `backends/` and `workloads/`, which every strategy shares. The parallel strategies do not count what
 * single's run reaches too (the shared run path): their figure is what each adds to the plain
 * loop. Lines are those neither blank nor comment-only.
 *
 * @module
 */
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { StrategyName } from "../core/run_types.ts";

/** The repository root, next to this file. */
export const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Each strategy's entry module, relative to the root. */
export const STRATEGY_ENTRIES: Record<StrategyName, string> = {
  single: "strategies/single.ts",
  dp: "strategies/dp.ts",
  ddp: "strategies/ddp.ts",
};

/** Folders every strategy shares: the training core, the backends and the workloads. Never counted. */
const SHARED_FOLDERS = ["core/", "backends/", "workloads/"];

/** What {@linkcode measureComplexity} counted. */
export interface Complexity {
  /** Non-blank, non-comment lines over `files`; null when the entry module does not exist. */
  lines: number | null;
  /** The files counted, relative to the root, sorted. */
  files: string[];
}

/**
 * Lines of `text` that are neither blank nor inside or made only of a comment.
 *
 * @param text TypeScript source
 * @returns the count
 */
export function countCodeLines(text: string): number {
  let inBlock = false;
  let count = 0;
  for (const raw of text.split("\n")) {
    let line = raw.trim();
    if (inBlock) {
      const end = line.indexOf("*/");
      if (end < 0) continue;
      inBlock = false;
      line = line.slice(end + 2).trim();
    }
    while (line.startsWith("/*")) {
      const end = line.indexOf("*/", 2);
      if (end < 0) {
        inBlock = true;
        line = "";
        break;
      }
      line = line.slice(end + 2).trim();
    }
    if (line !== "" && !line.startsWith("//")) count++;
  }
  return count;
}

/** Relative `.ts` modules a file imports or starts (workers, processes). */
const MODULE_REFERENCE = /(?:from\s*|import\s*\(?\s*|new URL\(\s*)["'](\.{1,2}\/[^"']+\.ts)["']/g;

/** Every module `entry` reaches, relative to `root` (the entry included). */
function reachable(entry: string, root: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    let text: string;
    try {
      text = Deno.readTextFileSync(join(root, file));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    seen.add(file);
    for (const [, spec] of text.matchAll(MODULE_REFERENCE)) {
      visit(relative(root, normalize(join(root, dirname(file), spec))));
    }
  };
  visit(entry);
  return seen;
}

/**
 * Count the code lines of `strategy`'s own modules under `root`, by the rule above.
 *
 * @param strategy the strategy
 * @param root the repository root (default: the one holding this file)
 * @returns lines and files
 * @example
 * ```ts
 * const { lines, files } = measureComplexity("ddp");
 * ```
 */
export function measureComplexity(strategy: StrategyName, root: string = REPO_ROOT): Complexity {
  const own = reachable(STRATEGY_ENTRIES[strategy], root);
  if (own.size === 0) return { lines: null, files: [] };
  const shared = strategy === "single"
    ? new Set<string>()
    : reachable(STRATEGY_ENTRIES.single, root);
  const files = [...own]
    .filter((f) => !shared.has(f) && !SHARED_FOLDERS.some((folder) => f.startsWith(folder)))
    .sort();
  const lines = files.reduce(
    (sum, f) => sum + countCodeLines(Deno.readTextFileSync(join(root, f))),
    0,
  );
  return { lines, files };
}
