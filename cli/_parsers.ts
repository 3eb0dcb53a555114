/**
 * Parsers for command-line values: each throws a one-line {@linkcode UsageError} naming the
 * flag, the bad value and (for names) the valid choices.
 *
 * @module
 */
import { dirname } from "node:path";
import { quote, UsageError } from "../core/errors.ts";
import { MAX_TIMER_MS } from "../core/durations.ts";

/**
 * A positive integer.
 *
 * @param flag the flag, for the message
 * @param value the text given
 * @returns the number
 * @example
 * ```ts
 * positiveInt("--steps", "20"); // 20
 * ```
 */
export function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`Invalid ${flag} ${quote(value)}: expected a positive integer`);
  }
  return n;
}

/**
 * A non-negative integer.
 *
 * @param flag the flag, for the message
 * @param value the text given
 * @returns the number
 * @example
 * ```ts
 * nonNegativeInt("--warmup", "0"); // 0
 * ```
 */
export function nonNegativeInt(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n)) {
    throw new UsageError(`Invalid ${flag} ${quote(value)}: expected a non-negative integer`);
  }
  return n;
}

/**
 * Any integer (seeds).
 *
 * @param flag the flag, for the message
 * @param value the text given
 * @returns the number
 * @example
 * ```ts
 * integer("--seed", "-3"); // -3
 * ```
 */
export function integer(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n)) {
    throw new UsageError(`Invalid ${flag} ${quote(value)}: expected an integer`);
  }
  return n;
}

/**
 * A duration in whole seconds that a timer can hold (at most 2³¹ − 1 ms, about 24.8 days).
 *
 * @param flag the flag, for the message
 * @param value the text given
 * @returns the duration in milliseconds
 * @example
 * ```ts
 * seconds("--collective-timeout", "60"); // 60000
 * ```
 */
export function seconds(flag: string, value: string): number {
  const n = positiveInt(flag, value);
  const maxSeconds = Math.floor(MAX_TIMER_MS / 1000);
  if (n > maxSeconds) {
    throw new UsageError(
      `Invalid ${flag} ${
        quote(value)
      }: at most ${maxSeconds} s (about 24.8 days), the longest a timer can wait`,
    );
  }
  return n * 1000;
}

/**
 * A comma-separated list of names from `choices`, without repeats.
 *
 * @param flag the flag, for the message
 * @param value the text given, e.g. `a,b`
 * @param choices the valid names
 * @param noun what one name is, for the message (e.g. `strategy`)
 * @returns the names, in the order given
 * @example
 * ```ts
 * nameList("--strategies", "single,ddp", ["single", "dp", "ddp"], "strategy");
 * ```
 */
export function nameList<T extends string>(
  flag: string,
  value: string,
  choices: readonly T[],
  noun: string,
): T[] {
  const names = value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0) {
    throw new UsageError(`Invalid ${flag} ${quote(value)}: expected at least one name`);
  }
  for (const name of names) {
    if (!choices.includes(name as T)) {
      throw new UsageError(
        `Unknown ${noun} ${quote(name)} in ${flag}: choose from ${choices.join(", ")}`,
      );
    }
  }
  return [...new Set(names)] as T[];
}

/**
 * One name out of `choices`.
 *
 * @param flag the flag, for the message
 * @param value the text given
 * @param choices the valid names
 * @param noun what a name is, for the message
 * @returns the name
 * @throws UsageError for an unknown name or more than one
 * @example
 * ```ts
 * oneName("--scaling", "weak", ["strong", "weak"], "scaling"); // "weak"
 * ```
 */
export function oneName<T extends string>(
  flag: string,
  value: string,
  choices: readonly T[],
  noun: string,
): T {
  const names = nameList(flag, value, choices, noun);
  if (names.length > 1) {
    throw new UsageError(`Invalid ${flag} ${quote(value)}: expected one ${noun}`);
  }
  return names[0];
}

/**
 * A comma-separated list of positive integers, without repeats.
 *
 * @param flag the flag, for the message
 * @param value the text given, e.g. `2,4`
 * @returns the numbers, in the order given
 * @example
 * ```ts
 * intList("--world-sizes", "2,4"); // [2, 4]
 * ```
 */
export function intList(flag: string, value: string): number[] {
  const parts = value.split(",").map((s) => s.trim());
  return [...new Set(parts.map((p) => positiveInt(flag, p)))];
}

/**
 * Make sure `dir` exists and can be written, before any work starts — and that none of the
 * files the command will put there (`files`) is in the way as something other than a file.
 *
 * @param dir the output folder
 * @param flag the flag that named it, for the message
 * @param files names the command writes into `dir` (default: none checked)
 * @throws UsageError naming the folder and the problem
 * @example
 * ```ts
 * await ensureWritableDir("results/latest", "--out", ["report.md"]);
 * ```
 */
export async function ensureWritableDir(
  dir: string,
  flag: string,
  files: string[] = [],
): Promise<void> {
  const probe = `${dir}/.paratrain-write-probe-${Deno.pid}`;
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  } catch (error) {
    const reason = error instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : error instanceof Deno.errors.AlreadyExists || error instanceof Deno.errors.NotADirectory
      ? "not a directory"
      : (error as Error).message.split("\n")[0];
    throw new UsageError(`Cannot write to ${flag} ${quote(dir)}: ${reason}`);
  }
  for (const name of files) {
    const kind = await notAFile(`${dir}/${name}`);
    if (kind) {
      throw new UsageError(
        `Cannot write to ${flag} ${quote(dir)}: its ${name} is ${kind}, not a file`,
      );
    }
  }
}

/**
 * Make sure the file `path` can be written, before any work starts: its folder exists (made
 * if missing) and can be written, and `path` itself is not a directory or another non-file.
 *
 * @param path the output file
 * @param flag the flag that named it, for the message
 * @throws UsageError naming the file and the problem
 * @example
 * ```ts
 * await ensureWritableFile("model.ckpt.json", "--checkpoint");
 * ```
 */
export async function ensureWritableFile(path: string, flag: string): Promise<void> {
  const kind = await notAFile(path);
  if (kind) throw new UsageError(`Cannot write to ${flag} ${quote(path)}: it is ${kind}`);
  await ensureWritableDir(dirname(path), flag);
}

/** What `path` is when it exists and is not a regular file (`a directory`, …), else null. */
async function notAFile(path: string): Promise<string | null> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    return null; // Missing (it will be made), or unreachable: the folder's check says why.
  }
  if (info.isFile) return null;
  return info.isDirectory
    ? "a directory"
    : info.isFifo
    ? "a FIFO"
    : info.isCharDevice || info.isBlockDevice
    ? "a device"
    : "not a regular file";
}

/**
 * Parse a `--tolerance` value for the CLI.
 *
 * @param flag the flag, for the message
 * @param value the text given
 * @returns the tolerance, in [0, 1)
 * @throws UsageError when it is not a number in [0, 1)
 * @example
 * ```ts
 * parseTolerance("--tolerance", "0.15"); // 0.15
 * ```
 */
export function parseTolerance(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !(n >= 0 && n < 1)) {
    throw new UsageError(`Invalid ${flag} ${quote(value)}: expected a number in [0, 1), e.g. 0.1`);
  }
  return n;
}

/** Multipliers of the size suffixes nccl-tests takes. */
const SIZE_SUFFIXES: Record<string, number> = { "": 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 };

/**
 * A buffer size in bytes, as nccl-tests writes them: `4096`, `1K`, `64M`, `1G` (powers of
 * 1024), a positive multiple of 4 (float32 elements).
 *
 * @param flag the flag, for the message
 * @param value the text given
 * @returns bytes
 * @throws UsageError naming the flag and the value
 * @example
 * ```ts
 * byteSize("-e", "64M"); // 67108864
 * ```
 */
export function byteSize(flag: string, value: string): number {
  const match = /^\s*(\d+)\s*([KMG]?)B?\s*$/i.exec(value);
  const bytes = match ? Number(match[1]) * SIZE_SUFFIXES[match[2].toUpperCase()] : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 4 || bytes % 4 !== 0) {
    throw new UsageError(
      `Invalid ${flag} ${
        quote(value)
      }: expected a size in bytes such as 4096, 1K, 64M or 1G, a positive multiple of 4`,
    );
  }
  return bytes;
}

/** The smallest gradient bucket `--bucket-mb` takes: 1 KiB. */
export const MIN_BUCKET_BYTES = 1024;
/** The largest: 4 GiB − 1 float, what a frame's length field can describe. */
const MAX_BUCKET_BYTES = 2 ** 32 - 4;

/**
 * Parses `--bucket-mb X[,Y…]`: bucket caps in MiB (decimals allowed, as PyTorch's
 * `bucket_cap_mb`), each from 1 KiB to 4 GiB, duplicates dropped.
 *
 * @param flag the flag, for the message
 * @param value e.g. `1,25` or `0.25`
 * @returns the caps in bytes (whole floats), in the order given
 * @throws UsageError naming the bad value
 * @example
 * ```ts
 * bucketMbList("--bucket-mb", "1,25"); // [1048576, 26214400]
 * ```
 */
export function bucketMbList(flag: string, value: string): number[] {
  const sizes = value.split(",").map((part) => {
    const mb = Number(part.trim());
    const bytes = Math.floor((mb * 2 ** 20) / 4) * 4;
    if (part.trim() === "" || !Number.isFinite(mb) || bytes < MIN_BUCKET_BYTES) {
      throw new UsageError(
        `Invalid ${flag} ${quote(part)}: expected a size in MiB of at least 1 KiB (${
          MIN_BUCKET_BYTES / 2 ** 20
        }), e.g. 25 or 1,25`,
      );
    }
    if (bytes > MAX_BUCKET_BYTES) {
      throw new UsageError(`Invalid ${flag} ${quote(part)}: at most 4096 MiB`);
    }
    return bytes;
  });
  return [...new Set(sizes)];
}
