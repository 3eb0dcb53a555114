/**
 * Implementation complexity, counted honestly: the lines of each strategy's own modules that
 * are neither blank nor comment-only. Code every strategy shares (core/, workloads/, bench/)
 * is not counted.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { StrategyName } from "../core/run_types.ts";

/** The repository root, next to this file. */
export const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Each strategy's own modules, as `folder/pattern` with `*` matching any file-name part. */
export const STRATEGY_MODULES: Record<StrategyName, readonly string[]> = {
  single: ["strategies/single.ts", "strategies/_replica_loop.ts"],
  dp: ["strategies/dp.ts", "strategies/_dp_*.ts"],
  ddp: [
    "strategies/ddp.ts",
    "strategies/_ddp_rank.ts",
    "strategies/_bucketed_group.ts",
    "comm/*.ts",
  ],
};

/** What {@linkcode measureComplexity} counted. */
export interface Complexity {
  /** Non-blank, non-comment lines over `files`; null when none of the modules exist. */
  lines: number | null;
  /** The files counted, relative to the root, sorted. */
  files: string[];
  /** The patterns that were looked for. */
  patterns: string[];
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

function matches(pattern: string, name: string): boolean {
  const [prefix, suffix] = pattern.split("*");
  return suffix === undefined
    ? name === pattern
    : name.startsWith(prefix) && name.endsWith(suffix) && name.length >= pattern.length - 1;
}

function filesFor(pattern: string, root: string): string[] {
  const slash = pattern.lastIndexOf("/");
  const folder = pattern.slice(0, slash);
  const namePattern = pattern.slice(slash + 1);
  try {
    return [...Deno.readDirSync(join(root, folder))]
      .filter((e) => e.isFile && matches(namePattern, e.name))
      .map((e) => `${folder}/${e.name}`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

/**
 * Count the code lines of `strategy`'s own modules under `root`.
 *
 * @param strategy the strategy
 * @param root the repository root (default: the one holding this file)
 * @returns lines, files and patterns
 * @example
 * ```ts
 * const { lines, files } = measureComplexity("ddp");
 * ```
 */
export function measureComplexity(strategy: StrategyName, root: string = REPO_ROOT): Complexity {
  const patterns = [...STRATEGY_MODULES[strategy]];
  const files = [...new Set(patterns.flatMap((p) => filesFor(p, root)))].sort();
  const lines = files.length === 0
    ? null
    : files.reduce((sum, f) => sum + countCodeLines(Deno.readTextFileSync(join(root, f))), 0);
  return { lines, files, patterns };
}
