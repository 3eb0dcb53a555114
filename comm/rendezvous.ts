/**
 * The rendezvous: a private directory where each rank listens on a Unix socket, and a random
 * per-job token that every connection must present.
 *
 * @module
 */
import { join } from "node:path";

/** Random bytes in a job token (shown as twice as many hex digits). */
export const TOKEN_BYTES = 32;

/** Permissions of the rendezvous directory: owner only, so no other user can connect. */
const PRIVATE_DIR_MODE = 0o700;

/** Where a job's ranks meet. */
export interface Rendezvous {
  /** Private directory (mode 0700) holding `rank-<k>.sock` and `result-<k>.json`. */
  dir: string;
  /** Per-job secret, {@linkcode TOKEN_BYTES} random bytes as lowercase hex. */
  token: string;
}

/**
 * Creates a fresh private rendezvous directory and a random token. The caller removes the
 * directory when the job ends ({@linkcode launch} does).
 *
 * @returns The directory and token to hand to every rank.
 * @example
 * ```ts
 * const { dir, token } = await createRendezvous();
 * // ... start ranks with PARATRAIN_RENDEZVOUS=dir, PARATRAIN_TOKEN=token ...
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function createRendezvous(): Promise<Rendezvous> {
  const dir = await Deno.makeTempDir({ prefix: "paratrain-" });
  await Deno.chmod(dir, PRIVATE_DIR_MODE);
  const bytes = crypto.getRandomValues(new Uint8Array(TOKEN_BYTES));
  const token = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return { dir, token };
}

/**
 * Path of the socket rank `rank` listens on.
 *
 * @param dir The rendezvous directory.
 * @param rank A rank.
 * @returns `<dir>/rank-<rank>.sock`.
 * @example
 * ```ts
 * rankSocketPath("/tmp/paratrain-x", 2); // "/tmp/paratrain-x/rank-2.sock"
 * ```
 */
export function rankSocketPath(dir: string, rank: number): string {
  return join(dir, `rank-${rank}.sock`);
}

/**
 * Decodes and validates a token.
 *
 * @param token {@linkcode TOKEN_BYTES} bytes as hex.
 * @returns The raw bytes.
 * @throws {Error} If the token is not exactly that many hex digits.
 * @example
 * ```ts
 * const bytes = decodeToken((await createRendezvous()).token); // 32 bytes
 * ```
 */
export function decodeToken(token: string): Uint8Array {
  if (!new RegExp(`^[0-9a-fA-F]{${TOKEN_BYTES * 2}}$`).test(token)) {
    throw new Error(
      `Invalid rendezvous token: expected ${TOKEN_BYTES * 2} hexadecimal digits, got ` +
        `${token.length} characters`,
    );
  }
  return Uint8Array.from(
    { length: TOKEN_BYTES },
    (_, i) => parseInt(token.slice(2 * i, 2 * i + 2), 16),
  );
}
