/**
 * Live progress on stderr: which run, step n/N, the last step's time, and the ETA of the run
 * and of the whole bench. A bar on a terminal, plain lines (one per run) elsewhere, so CI logs
 * stay readable; `--json-progress` writes one JSON object per event instead, for tools, and
 * `--quiet` writes nothing.
 *
 * @module
 */
import cliProgress from "cli-progress";

/** Reports progress of a sequence of runs. */
export interface Progress {
  /** A run starts: `label` names it, `total` counts its steps (warm-up included). */
  startRun(label: string, total: number): void;
  /** `done` steps of the current run are finished. */
  step(done: number): void;
  /** The current run ended, with a one-line summary. */
  endRun(summary: string): void;
  /** Stop drawing. */
  stop(): void;
}

/** How progress is shown: a bar or lines (`text`), JSON lines (`json`), or not at all. */
export type ProgressMode = "text" | "json" | "quiet";

/**
 * The mode the flags ask for.
 *
 * @param flags `--quiet` and `--json-progress`
 * @returns the mode (`--json-progress` wins over `--quiet`)
 * @example
 * ```ts
 * progressMode({ quiet: true }); // "quiet"
 * ```
 */
export function progressMode(flags: { quiet?: boolean; jsonProgress?: boolean }): ProgressMode {
  return flags.jsonProgress ? "json" : flags.quiet ? "quiet" : "text";
}

/** `1m05s`, `42s`. */
function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/**
 * A progress reporter for stderr.
 *
 * @param runs how many runs will follow (for "run k/N" and the bench's ETA)
 * @param mode see {@linkcode ProgressMode} (default `text`)
 * @returns the reporter
 * @example
 * ```ts
 * const progress = createProgress(4);
 * progress.startRun("mnist-mlp single", 23);
 * ```
 */
export function createProgress(runs: number, mode: ProgressMode = "text"): Progress {
  const tty = Deno.stderr.isTerminal();
  const started = performance.now();
  let index = 0;
  let lastStep = 0;
  let bar: InstanceType<typeof cliProgress.SingleBar> | undefined;
  const write = (line: string) => Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
  const event = (fields: Record<string, unknown>) =>
    write(JSON.stringify({ ...fields, elapsedMs: Math.round(performance.now() - started) }));
  // The whole bench's ETA from the runs finished so far (runs differ, so it is rough early on).
  const benchEta = () =>
    index > 1 ? duration(((performance.now() - started) / (index - 1)) * (runs - index + 1)) : "…";
  // The wall time of the step just finished (warm-up steps included: they show compilation).
  const sinceLastStep = () => {
    const now = performance.now();
    const ms = now - lastStep;
    lastStep = now;
    return Number(ms.toFixed(2));
  };
  if (mode === "quiet") {
    return { startRun() {}, step() {}, endRun() {}, stop() {} };
  }
  if (mode === "json") {
    let label = "";
    return {
      startRun(name, total) {
        index++;
        label = name;
        lastStep = performance.now();
        event({ event: "run-start", run: index, runs, label, steps: total });
      },
      step(done) {
        event({ event: "step", run: index, label, step: done, stepMs: sinceLastStep() });
      },
      endRun(summary) {
        event({ event: "run-end", run: index, label, summary });
      },
      stop() {},
    };
  }
  return {
    startRun(label, total) {
      index++;
      lastStep = performance.now();
      const name = `run ${index}/${runs} ${label}`;
      if (!tty) {
        write(`${name}: ${total} steps`);
        return;
      }
      bar = new cliProgress.SingleBar({
        format:
          `${name} |{bar}| step {value}/{total} | last step {stepMs} ms | ETA {eta_formatted} (bench {benchEta})`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
      }, cliProgress.Presets.shades_classic);
      bar.start(total, 0, { stepMs: "…", benchEta: benchEta() });
    },
    step(done) {
      bar?.update(done, { stepMs: sinceLastStep().toFixed(1), benchEta: benchEta() });
    },
    endRun(summary) {
      bar?.stop();
      bar = undefined;
      write(`  ${summary}`);
    },
    stop() {
      bar?.stop();
    },
  };
}
