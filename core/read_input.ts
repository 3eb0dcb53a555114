/**
 * The one reader of every file a command takes as input (checkpoints, results, all-reduce
 * tables, token files): regular files only, and never more than a stated number of bytes. A
 * FIFO would hang the read, `/dev/zero` or a directory's link would grow memory without end, a
 * huge file would fail deep inside a JSON parser; each is refused at once instead, in one line
 * naming the file and the limit.
 *
 * @module
 */
import { formatBytes } from "./format_bytes.ts";
import { quote, UsageError } from "./errors.ts";

/** Bytes read at a time. */
const CHUNK_BYTES = 1 << 20;

/** Options for {@linkcode readInputFile}. */
export interface ReadInputOptions {
  /** What the file is, for messages (e.g. `checkpoint`, `--token-file`); default none. */
  what?: string;
  /** The most bytes the file may hold. */
  limitBytes: number;
  /** What the limit is, for messages (e.g. `a results file`); default none. */
  limitName?: string;
  /** Return null, rather than throw, when the file does not exist. */
  missingOk?: boolean;
}

/** What a file that is not regular is, for messages. */
function kind(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a FIFO";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "not a regular file";
}

/**
 * Reads a whole input file: a regular file (a link is followed to one) of at most
 * `limitBytes`, read in chunks so that a file growing while it is read stops at the limit too.
 *
 * @param path the file
 * @param options what it is, its limit, whether a missing file is null
 * @returns its bytes (null only with `missingOk`, when it does not exist)
 * @throws UsageError naming the file and the problem: missing, unreadable, not a regular file,
 *   or above the limit
 * @example
 * ```ts
 * const bytes = await readInputFile("results.json", { limitBytes: 1 << 20 });
 * ```
 */
export async function readInputFile(
  path: string,
  options: ReadInputOptions & { missingOk: true },
): Promise<Uint8Array | null>;
export async function readInputFile(path: string, options: ReadInputOptions): Promise<Uint8Array>;
export async function readInputFile(
  path: string,
  options: ReadInputOptions,
): Promise<Uint8Array | null> {
  const { what, limitBytes, limitName, missingOk = false } = options;
  const name = `${what ? `${what} ` : ""}${printablePath(path)}`;
  const refuse = (reason: string) => new UsageError(`Cannot read ${name}: ${reason}`);
  const limit = `the limit of ${formatBytes(limitBytes)}${limitName ? ` for ${limitName}` : ""}`;
  const tooLarge = (size: string) => refuse(`${size} is more than ${limit}`);
  let file: Deno.FsFile | null = null;
  try {
    // Checked before opening: opening a FIFO for reading waits for a writer.
    const info = await Deno.stat(path);
    if (!info.isFile) throw refuse(`${kind(info)}, not a regular file`);
    if (info.size > limitBytes) throw tooLarge(formatBytes(info.size));
    file = await Deno.open(path, { read: true });
    const chunks: Uint8Array[] = [];
    let total = 0;
    while (true) {
      const chunk = new Uint8Array(Math.min(CHUNK_BYTES, limitBytes + 1 - total));
      const n = await file.read(chunk);
      if (n === null) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > limitBytes) throw refuse(`it grew past ${limit} while being read`);
    }
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, at);
      at += chunk.length;
    }
    return bytes;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    if (error instanceof Deno.errors.NotFound && missingOk) return null;
    throw refuse((error as Error).message.split("\n")[0]);
  } finally {
    file?.close();
  }
}

/**
 * {@linkcode readInputFile} as UTF-8 text.
 *
 * @param path the file
 * @param options what it is and its limit
 * @returns its text
 * @throws UsageError as {@linkcode readInputFile} does
 * @example
 * ```ts
 * const text = await readInputText("allreduce.json", { limitBytes: 64 << 20 });
 * ```
 */
export async function readInputText(path: string, options: ReadInputOptions): Promise<string>;
export async function readInputText(
  path: string,
  options: ReadInputOptions & { missingOk: true },
): Promise<string | null>;
export async function readInputText(
  path: string,
  options: ReadInputOptions,
): Promise<string | null> {
  const bytes = await readInputFile(path, options);
  return bytes === null ? null : new TextDecoder().decode(bytes);
}

/** A path as messages show it: control characters escaped, long ones cut, without quotes. */
function printablePath(path: string): string {
  return quote(path).slice(1, -1);
}
