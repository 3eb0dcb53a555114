/**
 * Per-connection challenge–response authentication, the same over Unix and TCP sockets: each
 * side proves it knows the job's secret without sending it, with HMAC-SHA-256 (WebCrypto) over
 * both sides' fresh random nonces, so a recorded handshake cannot be replayed.
 *
 * Frames (a 4-byte little-endian payload length, then the payload):
 * - challenge, server → client: magic "paratrc2", server nonce (32), server rank, world size,
 *   purpose (u32 each);
 * - hello, client → server: magic "paratrn2", client nonce (32), client rank, world size,
 *   purpose, then HMAC(key, "client" ‖ challenge ‖ hello-so-far);
 * - welcome, server → client: magic "paratrok", HMAC(key, "server" ‖ challenge ‖ hello);
 * - or refusal, server → client: magic "paratrno", then why in UTF-8 (at most
 *   {@linkcode MAX_REASON_BYTES}): a wrong token, another job's world size, a rank already taken.
 *
 * MACs are compared in constant time. Anything else (a wrong MAC, wrong sizes, silence past the
 * deadline) ends the handshake with a reason; the server tells a client that sent a hello why
 * it was refused (nothing secret: the reasons name ranks, world sizes and hosts), so a
 * misconfigured host learns what is wrong at once; then the caller closes the connection.
 *
 * @module
 */

/** Bytes in each side's nonce. */
const NONCE_BYTES = 32;
/** Bytes in an HMAC-SHA-256. */
const MAC_BYTES = 32;
/** Fewest characters a job secret may have. */
export const MIN_TOKEN_CHARS = 16;

const encoder = new TextEncoder();
const CHALLENGE_MAGIC = encoder.encode("paratrc2");
const HELLO_MAGIC = encoder.encode("paratrn2");
const WELCOME_MAGIC = encoder.encode("paratrok");
const REFUSAL_MAGIC = encoder.encode("paratrno");
/** Longest reason a refusal carries, bytes. */
const MAX_REASON_BYTES = 512;
/** How {@linkcode clientHandshake} words a refusal the server explained: `refused: <why>`. */
const REFUSED = "refused: ";
const CLIENT_LABEL = encoder.encode("client");
const SERVER_LABEL = encoder.encode("server");
const CHALLENGE_BYTES = CHALLENGE_MAGIC.length + NONCE_BYTES + 12;
const HELLO_BODY_BYTES = HELLO_MAGIC.length + NONCE_BYTES + 12;
const HELLO_BYTES = HELLO_BODY_BYTES + MAC_BYTES;
const WELCOME_BYTES = WELCOME_MAGIC.length + MAC_BYTES;

/**
 * What a connection is for: a ring link, registering at the rendezvous, or a host's launcher
 * joining node 0's (`node_group.ts`).
 */
export type Purpose = "ring" | "store" | "node";
const PURPOSE_CODES: Record<Purpose, number> = { ring: 1, store: 2, node: 3 };

/** Who one side of a handshake is. */
export interface Party {
  /** Its rank. */
  rank: number;
  /** The world size it belongs to. */
  worldSize: number;
  /** What the connection is for. */
  purpose: Purpose;
}

/**
 * Turns a job secret into an HMAC key.
 *
 * @param token The secret, at least {@linkcode MIN_TOKEN_CHARS} characters.
 * @returns A WebCrypto HMAC-SHA-256 key that can only sign.
 * @throws {Error} If the secret is too short.
 * @example
 * ```ts
 * const key = await importTokenKey("a".repeat(64));
 * ```
 */
export async function importTokenKey(token: string): Promise<CryptoKey> {
  checkToken(token);
  return await crypto.subtle.importKey(
    "raw",
    encoder.encode(token),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
}

/**
 * Checks a job secret's length.
 *
 * @param token The secret.
 * @throws {Error} If it has fewer than {@linkcode MIN_TOKEN_CHARS} characters.
 * @example
 * ```ts
 * checkToken("0123456789abcdef0123"); // fine
 * ```
 */
export function checkToken(token: string): void {
  if (token.length < MIN_TOKEN_CHARS) {
    throw new Error(
      `Invalid job token: expected at least ${MIN_TOKEN_CHARS} characters (e.g. from ` +
        `\`openssl rand -hex 32\`), got ${token.length}`,
    );
  }
}

/**
 * Server side: sends a challenge, checks the client's hello, welcomes it.
 *
 * @param conn A freshly accepted connection.
 * @param key The job key.
 * @param me This server.
 * @param check Judges the authenticated client; returns null to accept, else why not.
 * @returns The client (rank, world size, purpose), or a string saying why it was refused.
 */
export async function serverHandshake(
  conn: Deno.Conn,
  key: CryptoKey,
  me: Party,
  check: (client: Party) => string | null,
): Promise<Party | string> {
  const challenge = new Uint8Array(CHALLENGE_BYTES);
  challenge.set(CHALLENGE_MAGIC, 0);
  challenge.set(crypto.getRandomValues(new Uint8Array(NONCE_BYTES)), CHALLENGE_MAGIC.length);
  writeParty(challenge, CHALLENGE_MAGIC.length + NONCE_BYTES, me);
  await writeFrame(conn, challenge);
  const hello = await readFrame(conn, HELLO_BYTES);
  if (!hello) return "no valid hello";
  if (!bytesEqual(hello.subarray(0, HELLO_MAGIC.length), HELLO_MAGIC)) {
    return await refuse(conn, "not a paratrain hello");
  }
  const body = hello.subarray(0, HELLO_BODY_BYTES);
  const expected = await mac(key, CLIENT_LABEL, challenge, body);
  if (!bytesEqual(hello.subarray(HELLO_BODY_BYTES), expected)) {
    return await refuse(conn, "wrong token (its proof does not match this job's secret)");
  }
  const client = readParty(hello, HELLO_MAGIC.length + NONCE_BYTES);
  if (client === null) return await refuse(conn, "unknown purpose");
  const problem = check(client);
  if (problem !== null) return await refuse(conn, problem);
  const welcome = new Uint8Array(WELCOME_BYTES);
  welcome.set(WELCOME_MAGIC, 0);
  welcome.set(await mac(key, SERVER_LABEL, challenge, body), WELCOME_MAGIC.length);
  await writeFrame(conn, welcome);
  return client;
}

/**
 * Client side: answers the server's challenge and checks that the server knows the secret too.
 *
 * @param conn A fresh connection to the server.
 * @param key The job key.
 * @param me This client.
 * @param check Judges the server's announced identity; null to go on, else why not.
 * @returns Null when both sides proved themselves, else why not.
 */
export async function clientHandshake(
  conn: Deno.Conn,
  key: CryptoKey,
  me: Party,
  check: (server: Party) => string | null,
): Promise<string | null> {
  const challenge = await readFrame(conn, CHALLENGE_BYTES);
  if (!challenge || !bytesEqual(challenge.subarray(0, CHALLENGE_MAGIC.length), CHALLENGE_MAGIC)) {
    return "no paratrain challenge";
  }
  const server = readParty(challenge, CHALLENGE_MAGIC.length + NONCE_BYTES);
  const problem = server === null ? "unknown purpose" : check(server);
  if (problem !== null) return problem;
  const hello = new Uint8Array(HELLO_BYTES);
  hello.set(HELLO_MAGIC, 0);
  hello.set(crypto.getRandomValues(new Uint8Array(NONCE_BYTES)), HELLO_MAGIC.length);
  writeParty(hello, HELLO_MAGIC.length + NONCE_BYTES, me);
  const body = hello.subarray(0, HELLO_BODY_BYTES);
  hello.set(await mac(key, CLIENT_LABEL, challenge, body), HELLO_BODY_BYTES);
  await writeFrame(conn, hello);
  const welcome = await readFrame(conn, REFUSAL_MAGIC.length + MAX_REASON_BYTES, true);
  if (welcome && bytesEqual(welcome.subarray(0, REFUSAL_MAGIC.length), REFUSAL_MAGIC)) {
    const why = new TextDecoder().decode(welcome.subarray(REFUSAL_MAGIC.length));
    // deno-lint-ignore no-control-regex
    return `${REFUSED}${why.replace(/[\u0000-\u001f\u007f-\u009f]/g, " ")}`;
  }
  if (
    !welcome || welcome.length !== WELCOME_BYTES ||
    !bytesEqual(welcome.subarray(0, WELCOME_MAGIC.length), WELCOME_MAGIC)
  ) {
    return `${REFUSED}wrong token, rank or world size`;
  }
  const expected = await mac(key, SERVER_LABEL, challenge, body);
  if (!bytesEqual(welcome.subarray(WELCOME_MAGIC.length), expected)) {
    return "its proof does not match this job's secret";
  }
  return null;
}

/**
 * Whether a {@linkcode clientHandshake} problem is the server's refusal (it answered, and
 * said no), rather than a connection that dropped or never spoke paratrain.
 *
 * @param problem what `clientHandshake` returned
 * @returns true for a refusal
 * @example
 * ```ts
 * isRefusal("refused: rank 1 is already in the job"); // true
 * ```
 */
export function isRefusal(problem: string): boolean {
  return problem.startsWith(REFUSED);
}

/**
 * The reason of a refusal, without the `refused: ` prefix.
 *
 * @param problem a refusal from `clientHandshake`
 * @returns why the server said no
 */
export function refusalReason(problem: string): string {
  return isRefusal(problem) ? problem.slice(REFUSED.length) : problem;
}

/** Tells the client why it is refused (best effort: it may be gone), and returns the reason. */
async function refuse(conn: Deno.Conn, reason: string): Promise<string> {
  let bytes = encoder.encode(reason);
  if (bytes.length > MAX_REASON_BYTES) bytes = bytes.subarray(0, MAX_REASON_BYTES);
  const frame = new Uint8Array(REFUSAL_MAGIC.length + bytes.length);
  frame.set(REFUSAL_MAGIC, 0);
  frame.set(bytes, REFUSAL_MAGIC.length);
  await writeFrame(conn, frame).catch(() => {});
  return reason;
}

async function mac(
  key: CryptoKey,
  label: Uint8Array,
  challenge: Uint8Array,
  body: Uint8Array,
): Promise<Uint8Array> {
  const message = new Uint8Array(label.length + challenge.length + body.length);
  message.set(label, 0);
  message.set(challenge, label.length);
  message.set(body, label.length + challenge.length);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, message));
}

function writeParty(bytes: Uint8Array, at: number, party: Party): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  view.setUint32(at, party.rank, true);
  view.setUint32(at + 4, party.worldSize, true);
  view.setUint32(at + 8, PURPOSE_CODES[party.purpose], true);
}

function readParty(bytes: Uint8Array, at: number): Party | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const code = view.getUint32(at + 8, true);
  const purpose = (Object.keys(PURPOSE_CODES) as Purpose[]).find((p) => PURPOSE_CODES[p] === code);
  if (!purpose) return null;
  return { rank: view.getUint32(at, true), worldSize: view.getUint32(at + 4, true), purpose };
}

/**
 * Compares in time independent of where the bytes differ (MACs are secrets' shadows).
 *
 * @param a Some bytes.
 * @param b Other bytes.
 * @returns Whether they are equal.
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

/**
 * Writes one frame: a u32 little-endian length, then the payload.
 *
 * @param conn Where.
 * @param payload What.
 * @returns True once written.
 */
export async function writeFrame(conn: Deno.Conn, payload: Uint8Array): Promise<true> {
  const frame = new Uint8Array(4 + payload.length);
  new DataView(frame.buffer).setUint32(0, payload.length, true);
  frame.set(payload, 4);
  for (let written = 0; written < frame.length;) {
    written += await conn.write(frame.subarray(written));
  }
  return true;
}

/**
 * Reads one frame whose payload must be `expected` bytes (or, with `upTo`, at most that many).
 *
 * @param conn Where from.
 * @param expected The payload size (or the largest allowed, with `upTo`).
 * @param upTo Accept any payload from 1 to `expected` bytes.
 * @returns The payload; null on EOF or a size out of bounds.
 */
export async function readFrame(
  conn: Deno.Conn,
  expected: number,
  upTo = false,
): Promise<Uint8Array | null> {
  const header = await readExactly(conn, 4);
  if (!header) return null;
  const length = new DataView(header.buffer).getUint32(0, true);
  if (upTo ? length < 1 || length > expected : length !== expected) return null;
  return await readExactly(conn, length);
}

async function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array | null> {
  const bytes = new Uint8Array(length);
  for (let filled = 0; filled < length;) {
    const n = await conn.read(bytes.subarray(filled));
    if (n === null) return null;
    filled += n;
  }
  return bytes;
}
