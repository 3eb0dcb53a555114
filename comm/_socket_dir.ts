/**
 * A scheduler-started rank's private directory for its Unix socket (`paratrain-rank-<pid>-…`
 * in the temp folder), and making sure none is left behind:
 *
 * - the directory lives only while the ring forms (`_connect_ring.ts` removes it once both
 *   links are up, or when joining fails);
 * - a rank that is signalled meanwhile (any of `STOP_SIGNALS`: SIGINT, SIGTERM, SIGHUP, …)
 *   removes its own directories and exits as the signal would have
 *   ({@linkcode whileJoining});
 * - a rank killed outright (SIGKILL) cannot clean up: the next rank to start on the host
 *   removes the directories of processes that no longer exist ({@linkcode createSocketDir}).
 *
 * Our own launcher's ranks use the launcher's rendezvous directory instead, which the
 * launcher and each rank's parent watch remove.
 *
 * @module
 */
import { join } from "node:path";
import { SIGNAL_EXIT_CODES, STOP_SIGNALS } from "../core/errors.ts";

/** Every socket directory's name starts with this, then the pid of the rank that made it. */
export const SOCKET_DIR_PREFIX = "paratrain-rank-";
/** Owner only: no other user can reach the socket. */
const PRIVATE_DIR_MODE = 0o700;
/** `paratrain-rank-<pid>-<random>`. */
const NAME = new RegExp(`^${SOCKET_DIR_PREFIX}(\\d+)-`);

/** Where `Deno.makeTempDir` puts directories. */
function tempRoot(): string {
  return Deno.env.get("TMPDIR") || "/tmp";
}

/** Whether process `pid` exists (Linux: its /proc entry); elsewhere, assumed to. */
function alive(pid: number): boolean {
  try {
    Deno.statSync("/proc/self");
  } catch {
    return true; // No /proc to ask: never take another process's directory.
  }
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes the socket directories of ranks that no longer run (killed outright, so they could
 * not), then makes this rank's own.
 *
 * @returns the new directory (mode 0700), named after this process
 * @example
 * ```ts
 * const dir = await createSocketDir(); // /tmp/paratrain-rank-4242-abc123
 * ```
 */
export async function createSocketDir(): Promise<string> {
  removeStaleSocketDirs();
  const dir = await Deno.makeTempDir({ prefix: `${SOCKET_DIR_PREFIX}${Deno.pid}-` });
  await Deno.chmod(dir, PRIVATE_DIR_MODE);
  return dir;
}

/**
 * Removes the socket directories in `root` whose process has ended.
 *
 * @param root the temp folder (default `TMPDIR`, else /tmp)
 * @returns the directories removed
 * @example
 * ```ts
 * removeStaleSocketDirs();
 * ```
 */
export function removeStaleSocketDirs(root = tempRoot()): string[] {
  return removeSocketDirs(root, (pid) => pid !== Deno.pid && !alive(pid));
}

function removeSocketDirs(root: string, which: (pid: number) => boolean): string[] {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(root)];
  } catch {
    return removed;
  }
  for (const entry of entries) {
    const pid = Number(NAME.exec(entry.name)?.[1] ?? NaN);
    if (!entry.isDirectory || !Number.isInteger(pid) || !which(pid)) continue;
    try {
      Deno.removeSync(join(root, entry.name), { recursive: true });
      removed.push(join(root, entry.name));
    } catch {
      // Not ours to remove (another user's), or gone meanwhile.
    }
  }
  return removed;
}

/**
 * Whether joining with these options makes a socket directory: over the TCP rendezvous with
 * Unix links between ranks on one host, and no rendezvous directory to put the socket in.
 *
 * @param options the join's rendezvous directory and TCP settings
 * @returns true when `connectRing` will make one
 */
export function makesSocketDir(
  options: { rendezvousDir?: string | null; tcp?: { transport: string } | null },
): boolean {
  return !options.rendezvousDir && !!options.tcp && options.tcp.transport === "unix";
}

/** Whether this code runs on the process's main thread (signals can end the process there). */
export function onMainThread(): boolean {
  return !("WorkerGlobalScope" in globalThis);
}

/**
 * Runs `join` (a rank joining its job, which may make a socket directory, possibly in a
 * communication thread) with every one of `STOP_SIGNALS` caught: a signal meanwhile removes
 * this process's socket directories and exits with 128 + the signal's number. Afterwards the
 * signals act as before. Call it on the process's main thread.
 *
 * @param join joining the job
 * @returns what `join` returns
 * @example
 * ```ts
 * import { initProcessGroupFromEnv } from "./init_process_group.ts";
 * const pg = await whileJoining(() => initProcessGroupFromEnv());
 * ```
 */
export async function whileJoining<T>(join: () => Promise<T>): Promise<T> {
  const root = tempRoot();
  const listeners = Deno.build.os === "windows" ? [] : STOP_SIGNALS.map((signal) => {
    const handler = () => {
      removeSocketDirs(root, (pid) => pid === Deno.pid);
      Deno.exit(SIGNAL_EXIT_CODES[signal] ?? 1);
    };
    Deno.addSignalListener(signal, handler);
    return { signal, handler };
  });
  try {
    return await join();
  } finally {
    for (const { signal, handler } of listeners) Deno.removeSignalListener(signal, handler);
  }
}
