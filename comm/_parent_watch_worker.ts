/**
 * The parent watch, in a thread of its own so that it keeps watching while the rank's main
 * thread is inside a long synchronous kernel: every {@linkcode POLL_MS} it compares the
 * process's parent with the one it started under. When the launcher has died (the rank was
 * re-parented), it removes the job's rendezvous directory and kills its own process at once.
 *
 * @module
 */

/** How often the parent is checked. */
const POLL_MS = 100;

/** What the rank tells the watch. */
export interface ParentWatchInit {
  /** The launcher's pid: this process's parent when it started. */
  parentPid: number;
  /** The job's rendezvous directory, removed if the launcher dies (null: nothing to remove). */
  cleanupDir: string | null;
}

interface WatchScope {
  onmessage: ((event: MessageEvent<ParentWatchInit>) => void) | null;
}

(self as unknown as WatchScope).onmessage = ({ data }) => {
  setInterval(() => {
    if (Deno.ppid === data.parentPid) return;
    if (data.cleanupDir) {
      try {
        Deno.removeSync(data.cleanupDir, { recursive: true });
      } catch {
        // Another rank removed it first.
      }
    }
    Deno.kill(Deno.pid, "SIGKILL");
  }, POLL_MS);
};
