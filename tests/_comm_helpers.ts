/**
 * Shared by the comm tests and their rank module: deterministic inputs, the naive reference
 * all-reduce, and a way to run N ranks in this process over real Unix sockets.
 *
 * @module
 */
import { createRendezvous } from "../comm/rendezvous.ts";
import { initProcessGroup } from "../comm/init_process_group.ts";
import type { ProcessGroup, ReduceOp } from "../comm/process_group.ts";

/** Rank module used by the launcher-based tests. */
export const RANK_MODULE = new URL("./_comm_rank.ts", import.meta.url);

/** One collective call the rank module makes and checks. */
export interface Case {
  collective: "all-reduce" | "broadcast" | "barrier";
  length: number;
  seed: number;
  op?: ReduceOp;
  root?: number;
}

/** What the rank module is asked to do. */
export type Scenario =
  | { kind: "cases"; cases: Case[] }
  | { kind: "die"; victim: number; how: "exit" | "wait-for-kill"; afterIterations: number }
  | { kind: "stall"; victim: number }
  | { kind: "launch"; worldSize: number; inner: Scenario };

/** What the rank module reports for a "cases" scenario. */
export interface CasesReport {
  rank: number;
  worldSize: number;
  dir: string;
  dirMode: number;
  /** One line per wrong element range, empty when all cases passed. */
  errors: string[];
  /** Per case, a hash of the result's bits (equal on all ranks when results are identical). */
  digests: number[];
}

/**
 * Rank `rank`'s input element `i` for a case seed: a small integer, so that sums of a few
 * are exact in float32 and results can be compared for equality.
 */
export function inputValue(seed: number, rank: number, i: number): number {
  const mixed = (Math.imul(seed, 0x9e3779b1) + Math.imul(rank + 1, 40503) + Math.imul(i, 9973)) >>>
    0;
  return (mixed % 201) - 100;
}

/** Rank `rank`'s input buffer for a case. */
export function inputBuffer(seed: number, rank: number, length: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => inputValue(seed, rank, i));
}

/** The reference all-reduce: a plain sum over ranks (divided by N for "avg", in float32). */
export function naiveAllReduce(
  seed: number,
  worldSize: number,
  length: number,
  op: ReduceOp,
): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const values = Array.from({ length: worldSize }, (_, rank) => inputValue(seed, rank, i));
    if (op === "max" || op === "min") {
      out[i] = op === "max" ? Math.max(...values) : Math.min(...values);
      continue;
    }
    const sum = values.reduce((a, b) => a + b, 0);
    out[i] = op === "avg" ? Math.fround(Math.fround(sum) / worldSize) : sum;
  }
  return out;
}

/** Describes where `actual` differs from `expected`, or returns null when equal. */
export function compareBuffers(
  label: string,
  actual: Float32Array,
  expected: Float32Array,
): string | null {
  if (actual.length !== expected.length) {
    return `${label}: length ${actual.length}, expected ${expected.length}`;
  }
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      return `${label}: element ${i} is ${actual[i]}, expected ${expected[i]}`;
    }
  }
  return null;
}

/** FNV-1a hash of a buffer's bytes. */
export function digest(buf: Float32Array): number {
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash;
}

/** Runs `body` with `worldSize` in-process ranks joined over real Unix sockets. */
export async function withGroups<T>(
  worldSize: number,
  body: (groups: ProcessGroup[]) => Promise<T>,
  options: { timeoutMs?: number } = {},
): Promise<T> {
  const { dir, token } = await createRendezvous();
  let groups: ProcessGroup[] = [];
  try {
    groups = await Promise.all(
      Array.from(
        { length: worldSize },
        (_, rank) =>
          initProcessGroup({
            rank,
            worldSize,
            rendezvousDir: dir,
            token,
            timeoutMs: options.timeoutMs,
          }),
      ),
    );
    return await body(groups);
  } finally {
    for (const group of groups) group.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Pid and rendezvous directory from a rank module's first line, `pid <pid> dir <dir>`. */
export function parsePidLine(line: string): { pid: number; dir: string } | null {
  const match = /^pid (\d+) dir (.+)$/.exec(line);
  return match ? { pid: Number(match[1]), dir: match[2] } : null;
}

/** True when `path` does not exist. */
export async function isGone(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return false;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    throw error;
  }
}

/** Lists the ids of the given processes that are still alive (not reaped). */
export async function livePids(pids: number[]): Promise<number[]> {
  if (pids.length === 0) return [];
  const { stdout } = await new Deno.Command("ps", { args: ["-o", "pid=", "-p", pids.join(",")] })
    .output();
  return new TextDecoder().decode(stdout).split(/\s+/).filter((s) => s !== "").map(Number);
}
