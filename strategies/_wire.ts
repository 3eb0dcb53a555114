/**
 * What crosses a process boundary between a child run and its launcher: the measurement
 * (as JSON, parameters as a plain array) and progress lines on stdout.
 *
 * @module
 */
import type { RunMeasurement } from "../core/run_types.ts";
import type { StepProgress } from "../core/train_loop.ts";

/** Marks a progress line on a child's stdout: `@paratrain-progress <done> <total>`. */
const PROGRESS_MARK = "@paratrain-progress";

/** A measurement as JSON can carry it. */
export type WireMeasurement = Omit<RunMeasurement, "snapshot"> & { snapshot: number[] };

/**
 * @param m a measurement
 * @returns the same, JSON-safe
 */
export function toWire(m: RunMeasurement): WireMeasurement {
  return { ...m, snapshot: Array.from(m.snapshot) };
}

/**
 * @param w a measurement read back from JSON
 * @returns the measurement
 */
export function fromWire(w: WireMeasurement): RunMeasurement {
  return { ...w, snapshot: Float32Array.from(w.snapshot) };
}

/** A {@linkcode StepProgress} that prints progress lines for the parent to read. */
export const printProgress: StepProgress = (done, total) => {
  console.log(`${PROGRESS_MARK} ${done} ${total}`);
};

/**
 * Read a child's line: a progress line is handed to `onStep` (and true returned).
 *
 * @param line one line of the child's stdout
 * @param onStep where progress goes
 * @returns true when the line was a progress line
 */
export function readProgress(line: string, onStep?: StepProgress): boolean {
  if (!line.startsWith(PROGRESS_MARK)) return false;
  const [done, total] = line.slice(PROGRESS_MARK.length).trim().split(" ").map(Number);
  onStep?.(done, total, false);
  return true;
}
