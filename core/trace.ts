/**
 * Per-run timelines in the Chrome trace-event format (loads in Perfetto and
 * `chrome://tracing`): every process records complete events ("X") for its steps and their
 * phases on the host's clock, the strategy merges them (a process per worker: DP replica, DDP
 * rank), and `bench`/`train --trace DIR` write one JSON file per run.
 *
 * One clock per host: `performance.timeOrigin + performance.now()` reads the system clock in
 * every Deno process and Web Worker alike, so events of different processes on one machine
 * line up without exchanging offsets.
 *
 * @module
 */
import { evenSample } from "./even_sample.ts";
import type { StepPhases } from "./phases.ts";

/** One trace event (a subset of the Chrome trace-event format). */
export interface TraceEvent {
  name: string;
  /** `X`: a complete event with a duration; `M`: metadata (process and thread names). */
  ph: "X" | "M";
  /** Microseconds on the host's clock (X events). */
  ts?: number;
  dur?: number;
  /** The worker: DP replica or DDP rank index. */
  pid: number;
  /** The track. */
  tid: number;
  cat?: string;
  args?: Record<string, unknown>;
}

/** The tracks, one per phase, with the step itself on the first. */
export const TRACKS = [
  "step",
  "compute",
  "replicate",
  "scatter",
  "gather",
  "allReduce",
  "wait",
  "update",
] as const;

/** One of {@linkcode TRACKS}. */
export type Track = typeof TRACKS[number];

/** Steps a trace keeps in full at each end of a run; those between are sampled. */
export const TRACE_EDGE_STEPS = 10;
/** Steps a trace keeps at most. */
export const TRACE_MAX_STEPS = 100;

/**
 * A moment on the host's clock, µs.
 *
 * @param at a `performance.now()` reading of this process or worker (default: now)
 * @returns microseconds since the epoch
 */
export function hostMicros(at = performance.now()): number {
  return (performance.timeOrigin + at) * 1000;
}

/** Collects one worker's events. */
export class TraceRecorder {
  readonly events: TraceEvent[] = [];
  #step = 0;
  constructor(readonly pid: number) {}

  /** The step being recorded (1-based), for the events' arguments. */
  set step(step: number) {
    this.#step = step;
  }

  /**
   * Records a span on a track.
   *
   * @param track the track
   * @param name the event's name
   * @param startUs when it began, µs on the host's clock
   * @param durUs how long it took, µs
   * @param args extra fields
   */
  span(
    track: Track,
    name: string,
    startUs: number,
    durUs: number,
    args: Record<string, unknown> = {},
  ) {
    this.spanFor(this.pid, track, name, startUs, durUs, args);
  }

  /**
   * Records a span of another worker of this process (a DP replica timed by its Web Worker).
   *
   * @param pid the worker
   * @param track the track
   * @param name the event's name
   * @param startUs when it began, µs on the host's clock
   * @param durUs how long it took, µs
   * @param args extra fields
   */
  spanFor(
    pid: number,
    track: Track,
    name: string,
    startUs: number,
    durUs: number,
    args: Record<string, unknown> = {},
  ) {
    this.events.push({
      name,
      ph: "X",
      ts: startUs,
      dur: Math.max(0, durUs),
      pid,
      tid: TRACKS.indexOf(track),
      cat: track,
      args: { step: this.#step, ...args },
    });
  }
}

let active: TraceRecorder | null = null;

/**
 * The recorder of this process or worker while a traced run records, else null.
 *
 * @returns the recorder
 */
export function activeTrace(): TraceRecorder | null {
  return active;
}

/**
 * Makes `recorder` the one `timed` phases and collectives record into (null stops).
 *
 * @param recorder the recorder, or null
 */
export function setActiveTrace(recorder: TraceRecorder | null): void {
  active = recorder;
}

/** Records a phase that just ran (used by `timed`). */
export function tracePhase(name: keyof StepPhases, startUs: number, durUs: number): void {
  active?.span(name, name, startUs, durUs);
}

/**
 * Keeps the first and last {@linkcode TRACE_EDGE_STEPS} steps and an even sample of those
 * between, at most {@linkcode TRACE_MAX_STEPS} in all.
 *
 * @param events every worker's events
 * @param steps the run's steps (warm-up included)
 * @returns the kept events, and which steps were kept
 * @example
 * ```ts
 * const { kept } = boundSteps([], 1000); // 100 of 1000 steps
 * ```
 */
export function boundSteps(
  events: TraceEvent[],
  steps: number,
): { events: TraceEvent[]; kept: number[] } {
  const all = Array.from({ length: steps }, (_, i) => i + 1);
  const kept = evenSample(all, TRACE_MAX_STEPS, TRACE_EDGE_STEPS);
  const keep = new Set(kept);
  return { events: events.filter((e) => keep.has(e.args?.step as number)), kept };
}

/**
 * The whole trace file of one run: names for every process and track, the events, and the
 * run's metadata.
 *
 * @param events every worker's events
 * @param workers the worker names by pid (`rank 0`, `main (replica 0)`, …)
 * @param metadata the run: spec, clock, which steps were kept
 * @returns the JSON object to write
 * @example
 * ```ts
 * const file = traceFile([], ["rank 0"], { workload: "w" });
 * ```
 */
export function traceFile(
  events: TraceEvent[],
  workers: string[],
  metadata: Record<string, unknown>,
): { traceEvents: TraceEvent[]; displayTimeUnit: "ms"; metadata: Record<string, unknown> } {
  const names: TraceEvent[] = workers.flatMap((name, pid) => [
    { name: "process_name", ph: "M", pid, tid: 0, args: { name } },
    { name: "process_sort_index", ph: "M", pid, tid: 0, args: { sort_index: pid } },
    ...TRACKS.map((track, tid): TraceEvent => ({
      name: "thread_name",
      ph: "M",
      pid,
      tid,
      args: { name: track },
    })),
  ]);
  return { traceEvents: [...names, ...events], displayTimeUnit: "ms", metadata };
}
