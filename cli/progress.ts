/**
 * Live progress on stderr: which run, step n/N, ETA. A bar on a terminal, plain lines
 * (one per run) elsewhere, so CI logs stay readable.
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

/**
 * A progress reporter for stderr.
 *
 * @param runs how many runs will follow (for "run k/N")
 * @returns the reporter
 * @example
 * ```ts
 * const progress = createProgress(4);
 * progress.startRun("mnist-mlp single", 23);
 * ```
 */
export function createProgress(runs: number): Progress {
  const tty = Deno.stderr.isTerminal();
  let index = 0;
  let bar: InstanceType<typeof cliProgress.SingleBar> | undefined;
  const write = (line: string) => Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
  return {
    startRun(label, total) {
      index++;
      const name = `run ${index}/${runs} ${label}`;
      if (!tty) {
        write(`${name}: ${total} steps`);
        return;
      }
      bar = new cliProgress.SingleBar({
        format: `${name} |{bar}| step {value}/{total} | ETA {eta_formatted}`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
      }, cliProgress.Presets.shades_classic);
      bar.start(total, 0);
    },
    step(done) {
      bar?.update(done);
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
