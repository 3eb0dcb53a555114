/**
 * The ring: one rank's two connections, to its right neighbour (`sendTo`) and from its left
 * neighbour (`recvFrom`), with length-prefixed frames, a per-collective deadline and error
 * messages that name the peer.
 *
 * Wire format of a frame: a 4-byte little-endian payload length, then the payload. A frame
 * is never empty: callers skip empty ranges on both sides instead. A collective sends each
 * chunk as one frame, whose payload may be written and read in pieces.
 *
 * @module
 */

import { ExpectedError } from "../core/errors.ts";
import type { Range } from "../core/even_split.ts";
import { formatSeconds } from "../core/durations.ts";
import { type AddKernel, createAddKernel } from "./_add_kernel.ts";
import type { SimdWireCodec, WireBuffers } from "./_wire_simd.ts";
import { roundThrough, type WireCodec } from "./wire_codec.ts";
import { StallWatch } from "./_stall_watch.ts";

/** Bytes in a frame header (the payload length, u32 little-endian). */
const FRAME_HEADER_BYTES = 4;

/**
 * Collective data moves in pieces of at most this many bytes: a rank forwards a piece as soon
 * as it has arrived, and a reduce needs scratch space for one piece. Larger pieces delay the
 * forwarding; smaller ones add JavaScript work per byte.
 */
export const SUB_CHUNK_BYTES = 1 << 20;

/**
 * A peer's close after this share of the collective timeout is taken for the peer's own
 * timeout, waiting for the same missing rank.
 */
const DEADLINE_CASCADE = 0.9;

/** Largest frame payload the 4-byte header can describe. */
const MAX_FRAME_BYTES = 0xffff_ffff;

/**
 * A rank whose own thread did not run for this share of the collective timeout (paused by
 * SIGSTOP, a suspended host, a blocked thread) since its previous collective began is the cause
 * when a collective fails: its peers waited about that long for it and gave up.
 */
const SELF_STALL_SHARE = 0.9;

/** {@linkcode SUB_CHUNK_BYTES} in float32 elements. */
const SUB_CHUNK_ELEMENTS = SUB_CHUNK_BYTES / Float32Array.BYTES_PER_ELEMENT;

/** An error that names the peer rank a collective could not reach. */
export class CommError extends ExpectedError {
  /** The rank that stopped answering, closed its connection or disagreed. */
  readonly peer: number | null;

  /**
   * Creates the error.
   *
   * @param message Sentence-case description naming the peer and the problem.
   * @param peer The peer rank at fault, or null when no single peer is.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, peer: number | null, options?: ErrorOptions) {
    super(message, options);
    this.name = "CommError";
    this.peer = peer;
  }
}

/** How a received chunk combines with the one in the buffer. */
export type Combine = "sum" | "max" | "min";

/** What a ring knows of its links, for messages and records. */
export interface RingLinks {
  /** Hosts of the right and left neighbours, named in errors; null on one machine. */
  hosts?: [string, string] | null;
  /** `tcp` when either link is TCP, else `unix`. */
  transport?: "unix" | "tcp";
  /** Called once when the ring is closed (rank 0 closes its rendezvous with it). */
  onClose?: () => void;
  /** This rank's own address across hosts, named when it is the one to blame; null on one host. */
  self?: string | null;
}

/** One rank's place in a ring of `size` ranks, with its two live connections. */
export class Ring {
  readonly rank: number;
  readonly size: number;
  /** Right neighbour: every frame this rank sends goes there. */
  readonly sendTo: number;
  /** Left neighbour: every frame this rank receives comes from there. */
  readonly recvFrom: number;
  /**
   * The rank whose data the current step is waiting for, when a phase knows it better than
   * "the left neighbour" (the call exchange does); named if the deadline passes.
   */
  waitingFor: number | null = null;
  /** `tcp` when either link is TCP, else `unix`. */
  readonly transport: "unix" | "tcp";

  #hosts: [string, string] | null;
  #self: string | null;
  #onClose: (() => void) | null;
  #stalls = new StallWatch();
  /**
   * When the previous collective began (or the ring formed): stalls that ended since then count.
   * Its start, not its end: a pause in its last moments (its data moved, its promise not yet
   * settled) ends before the collective does once the process resumes, and its peers may already
   * have given up on the next one.
   */
  #idleSince = performance.now();
  #right: Deno.Conn;
  #left: Deno.Conn;
  #timeoutMs: number;
  #op = "set-up";
  #readsPending = 0;
  #timedOut: CommError | null = null;
  /** When the current collective began (`performance.now()`). */
  #startedAt = 0;
  #failure: Error | null = null;
  #closed = false;
  #sendHeader = new Uint8Array(FRAME_HEADER_BYTES);
  #recvHeader = new Uint8Array(FRAME_HEADER_BYTES);
  #adder: AddKernel = createAddKernel(SUB_CHUNK_ELEMENTS);
  /** 16-bit wire values (`--grad-compression`): one piece being sent, one being received. */
  #sendWire: Uint16Array | null = null;
  #recvWire: Uint16Array | null = null;
  /** A SIMD codec's wire values in WebAssembly memory, cast in place, per codec. */
  #wireBuffers = new Map<string, WireBuffers>();

  /**
   * @param rank This rank.
   * @param size Ranks in the ring.
   * @param right Connection to `(rank + 1) % size`, already authenticated.
   * @param left Connection from `(rank - 1 + size) % size`, already authenticated.
   * @param timeoutMs Deadline for one whole collective.
   * @param links The neighbours' hosts and the transport (default: one machine, Unix sockets).
   */
  constructor(
    rank: number,
    size: number,
    right: Deno.Conn,
    left: Deno.Conn,
    timeoutMs: number,
    links: RingLinks = {},
  ) {
    this.transport = links.transport ?? "unix";
    this.#hosts = links.hosts ?? null;
    this.#onClose = links.onClose ?? null;
    this.#self = links.self ?? null;
    this.rank = rank;
    this.size = size;
    this.sendTo = (rank + 1) % size;
    this.recvFrom = (rank - 1 + size) % size;
    this.#right = right;
    this.#left = left;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Runs one collective under the deadline. If the deadline passes, both connections are
   * closed and the collective rejects with an error naming the rank it was waiting for.
   * Any transport failure leaves the ring unusable; later calls reject at once.
   *
   * @param op Collective name for messages, e.g. "all-reduce".
   * @param body The collective's steps.
   * @returns What `body` returns.
   */
  async run<T>(op: string, body: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new CommError(`Cannot run ${op}: the process group is closed`, null);
    if (this.#failure) {
      throw new CommError(
        `Cannot run ${op}: the process group failed earlier (${this.#failure.message})`,
        null,
        { cause: this.#failure },
      );
    }
    this.#op = op;
    this.#timedOut = null;
    for (const buffers of this.#wireBuffers.values()) buffers.forget();
    this.#startedAt = performance.now();
    const timer = setTimeout(() => this.#expire(), this.#timeoutMs);
    try {
      return await body();
    } catch (error) {
      if (!(error instanceof CallMismatchError)) {
        this.#failure = error as Error;
        this.#closeConnections();
      }
      throw error;
    } finally {
      clearTimeout(timer);
      this.waitingFor = null;
      this.#idleSince = this.#startedAt;
    }
  }

  /**
   * Sends one whole frame to the right neighbour.
   *
   * @param payload Non-empty bytes to send.
   */
  async send(payload: Uint8Array): Promise<void> {
    await this.sendHeader(payload.length);
    await this.#writeAll(payload);
  }

  /**
   * Receives one whole frame from the left neighbour into `target`, which must be exactly the
   * frame's size.
   *
   * @param target Where the payload goes; its length is the expected frame size.
   */
  async recv(target: Uint8Array): Promise<void> {
    await this.recvHeader(target.length);
    await this.#readExact(target);
  }

  /**
   * Starts a frame whose payload follows in pieces ({@linkcode sendElements}).
   *
   * @param bytes Payload size, at least 1 byte: an empty range sends no frame at all.
   */
  async sendHeader(bytes: number): Promise<void> {
    if (bytes < 1 || bytes > MAX_FRAME_BYTES) {
      throw new RangeError(
        `Cannot send a frame of ${bytes} bytes: expected 1 to ${MAX_FRAME_BYTES}`,
      );
    }
    new DataView(this.#sendHeader.buffer).setUint32(0, bytes, true);
    await this.#writeAll(this.#sendHeader);
  }

  /**
   * Reads a frame header from the left neighbour and checks the payload size.
   *
   * @param bytes The payload size this rank expects.
   */
  async recvHeader(bytes: number): Promise<void> {
    await this.#readExact(this.#recvHeader);
    const length = new DataView(this.#recvHeader.buffer).getUint32(0, true);
    if (length !== bytes) {
      throw new CommError(
        `Rank ${this.recvFrom} sent a frame of ${length} bytes during ${this.#op} where ` +
          `${bytes} were expected; are all ranks running the same code?`,
        this.recvFrom,
      );
    }
  }

  /**
   * Sends `buf[range]` as (part of) the current frame's payload.
   *
   * @param buf The flat buffer.
   * @param range Elements to send (with a codec: at most {@linkcode SUB_CHUNK_BYTES} worth).
   * @param codec Cast to 16 bits on the wire, or null to send float32.
   */
  async sendElements(
    buf: Float32Array,
    range: Range,
    codec: WireCodec | null = null,
  ): Promise<void> {
    if (!codec) return await this.#writeAll(bytesOf(buf, range));
    const values = buf.subarray(range.offset, range.offset + range.length);
    const buffers = this.#buffersOf(codec);
    if (buffers) {
      // The all-gather's first piece is the one this rank just rounded: cast once, not twice.
      const wire = buffers.takeRounded(values) ?? buffers.encode(values);
      return await this.#writeAll(new Uint8Array(wire.buffer, wire.byteOffset, wire.byteLength));
    }
    const wire = this.#sendWire ??= new Uint16Array(SUB_CHUNK_ELEMENTS);
    codec.encode(values, wire);
    await this.#writeAll(new Uint8Array(wire.buffer, 0, range.length * wire.BYTES_PER_ELEMENT));
  }

  /**
   * Receives (part of) the current frame's payload straight into `buf[range]`.
   *
   * @param buf The flat buffer.
   * @param range Elements to overwrite (with a codec: at most {@linkcode SUB_CHUNK_BYTES} worth).
   * @param codec The payload is 16-bit values to cast back, or null for float32.
   */
  async recvElements(
    buf: Float32Array,
    range: Range,
    codec: WireCodec | null = null,
  ): Promise<void> {
    if (!codec) return await this.#readExact(bytesOf(buf, range));
    const values = buf.subarray(range.offset, range.offset + range.length);
    const buffers = this.#buffersOf(codec);
    const wire = buffers?.received ?? (this.#recvWire ??= new Uint16Array(SUB_CHUNK_ELEMENTS));
    await this.#readExact(
      new Uint8Array(wire.buffer, wire.byteOffset, range.length * wire.BYTES_PER_ELEMENT),
    );
    if (buffers) buffers.decode(values, 0);
    else codec.decode(wire, values);
  }

  /**
   * Receives (part of) the current frame's payload and adds it into `buf[range]` as the
   * bytes land, so the adds overlap the peer's sending.
   *
   * @param buf The flat buffer.
   * @param range At most {@linkcode SUB_CHUNK_BYTES} worth of elements to add into.
   */
  async recvElementsAndAdd(buf: Float32Array, range: Range): Promise<void> {
    await this.recvElementsAndReduce(buf, range, "sum");
  }

  /**
   * Receives (part of) the current frame's payload and combines it into `buf[range]` as the
   * bytes land: `sum` adds (WebAssembly SIMD), `max` and `min` keep the larger or smaller.
   *
   * @param buf The flat buffer.
   * @param range At most {@linkcode SUB_CHUNK_BYTES} worth of elements to combine into.
   * @param combine How.
   * @param codec The payload is 16-bit values, cast back to float32 before combining; null
   *   for float32.
   */
  async recvElementsAndReduce(
    buf: Float32Array,
    range: Range,
    combine: Combine,
    codec: WireCodec | null = null,
  ): Promise<void> {
    const kernel = this.#adder;
    const buffers = codec ? this.#buffersOf(codec) : null;
    const wire = codec
      ? buffers?.received ?? (this.#recvWire ??= new Uint16Array(SUB_CHUNK_ELEMENTS))
      : null;
    const bytesPerElement = wire ? wire.BYTES_PER_ELEMENT : Float32Array.BYTES_PER_ELEMENT;
    let done = 0;
    const combineArrived = (filled: number) => {
      const ready = Math.floor(filled / bytesPerElement);
      const dst = buf.subarray(range.offset + done, range.offset + ready);
      if (buffers && combine === "sum") {
        // Cast and add in one pass, in WebAssembly memory.
        buffers.decodeAdd(dst, done);
        done = ready;
        return;
      }
      if (buffers) buffers.decode(kernel.source.subarray(done, ready), done);
      else if (codec && wire) {
        codec.decode(wire.subarray(done, ready), kernel.source.subarray(done, ready));
      }
      if (combine === "sum") kernel.add(dst, done);
      else {
        const src = kernel.source;
        for (let i = 0; i < dst.length; i++) {
          const v = src[done + i];
          if (combine === "max" ? v > dst[i] : v < dst[i]) dst[i] = v;
        }
      }
      done = ready;
    };
    const target = wire
      ? new Uint8Array(wire.buffer, wire.byteOffset, range.length * bytesPerElement)
      : bytesOf(kernel.source, { offset: 0, length: range.length });
    await this.#readExact(target, combineArrived);
  }

  /**
   * Divides `buf[range]` by `divisor` (an average's N) and rounds it to what the codec carries,
   * in place, so that this rank keeps exactly what its peers will decode; with a SIMD codec the
   * 16-bit values are kept for sending these values on.
   *
   * @param buf The flat buffer.
   * @param range At most {@linkcode SUB_CHUNK_BYTES} worth of elements.
   * @param codec The wire's codec.
   * @param divisor 1 for none.
   */
  round(buf: Float32Array, range: Range, codec: WireCodec, divisor = 1): void {
    const values = buf.subarray(range.offset, range.offset + range.length);
    const buffers = this.#buffersOf(codec);
    if (buffers) return buffers.round(values, divisor);
    if (divisor !== 1) { for (let i = 0; i < values.length; i++) values[i] /= divisor; }
    const scratch = this.#recvWire ??= new Uint16Array(SUB_CHUNK_ELEMENTS);
    roundThrough(codec, values, scratch);
  }

  /** The codec's wire buffers for this ring, where it has them (the SIMD codecs). */
  #buffersOf(codec: WireCodec): WireBuffers | null {
    if (!("buffers" in codec)) return null;
    let buffers = this.#wireBuffers.get(codec.name);
    if (!buffers) {
      buffers = (codec as SimdWireCodec).buffers(SUB_CHUNK_ELEMENTS);
      this.#wireBuffers.set(codec.name, buffers);
    }
    return buffers;
  }

  /** Closes both connections for good; collectives called afterwards reject. */
  close(): void {
    this.#closed = true;
    this.#stalls.stop();
    this.#closeConnections();
    const onClose = this.#onClose;
    this.#onClose = null;
    onClose?.();
  }

  /** Closes both connections; pending reads and writes reject. Safe to call twice. */
  #closeConnections(): void {
    for (const conn of [this.#right, this.#left]) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  }

  #expire(): void {
    const culprit = this.waitingFor ?? (this.#readsPending > 0 ? this.recvFrom : this.sendTo);
    this.#timedOut = this.#stalledItself() ?? this.#stoppedAnswering(culprit);
    this.#closeConnections();
  }

  /**
   * This rank as the cause, when its own thread stopped running long enough since its previous
   * collective for its peers to give up on it (a resumed SIGSTOP: its own timer fires late and
   * its peers have closed); else null.
   */
  #stalledItself(): CommError | null {
    const stalledMs = this.#stalls.longestSince(this.#idleSince);
    if (stalledMs < SELF_STALL_SHARE * this.#timeoutMs) return null;
    const where = this.#self ? ` on ${this.#self}` : "";
    return new CommError(
      `Rank ${this.rank}${where} (this rank) was stopped for ${formatSeconds(stalledMs)} ` +
        `during ${this.#op}: its process was paused (SIGSTOP, a suspended host) or its thread ` +
        `blocked, and the other ranks stopped waiting for it (timeout ` +
        `${formatSeconds(this.#timeoutMs)})`,
      this.rank,
    );
  }

  #stoppedAnswering(culprit: number): CommError {
    return new CommError(
      `Rank ${culprit}${this.#where(culprit)} stopped answering during ${this.#op} ` +
        `(timeout ${formatSeconds(this.#timeoutMs)})`,
      culprit,
    );
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.length) {
      try {
        written += await this.#right.write(bytes.subarray(written));
      } catch (error) {
        throw this.#explain(error, this.sendTo);
      }
    }
  }

  async #readExact(target: Uint8Array, onData?: (filled: number) => void): Promise<void> {
    let filled = 0;
    while (filled < target.length) {
      let n: number | null;
      this.#readsPending++;
      try {
        n = await this.#left.read(target.subarray(filled));
      } catch (error) {
        throw this.#explain(error, this.recvFrom);
      } finally {
        this.#readsPending--;
      }
      if (n === null) throw this.#explain(null, this.recvFrom);
      filled += n;
      onData?.(filled);
    }
  }

  /** ` on <host>` for a neighbour on a known host, else nothing. */
  #where(peer: number): string {
    if (!this.#hosts) return "";
    if (peer === this.sendTo) return ` on ${this.#hosts[0]}`;
    if (peer === this.recvFrom) return ` on ${this.#hosts[1]}`;
    return "";
  }

  /** Turns a transport failure (or EOF, `error === null`) into an error naming `peer`. */
  #explain(error: unknown, peer: number): CommError {
    if (this.#timedOut) return this.#timedOut;
    const stalled = this.#stalledItself();
    if (stalled) return stalled;
    const closed = error === null || error instanceof Deno.errors.BrokenPipe ||
      error instanceof Deno.errors.ConnectionReset ||
      error instanceof Deno.errors.UnexpectedEof ||
      error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted;
    // A neighbour that closes as this collective's own deadline comes due hit the same deadline
    // waiting for the same missing rank (timers of ranks a few ms apart): name that rank.
    const nearDeadline = performance.now() - this.#startedAt >= DEADLINE_CASCADE * this.#timeoutMs;
    if (closed && this.waitingFor !== null && this.waitingFor !== peer && nearDeadline) {
      return this.#stoppedAnswering(this.waitingFor);
    }
    if (closed) {
      return new CommError(
        `Rank ${peer}${this.#where(peer)} closed its connection during ${this.#op}`,
        peer,
        {
          cause: error ?? undefined,
        },
      );
    }
    const detail = error instanceof Error ? error.message : String(error);
    return new CommError(
      `Connection to rank ${peer}${this.#where(peer)} failed during ${this.#op}: ${detail}`,
      peer,
      {
        cause: error,
      },
    );
  }
}

/**
 * Ranks disagree about the call itself (collective, length, root or reduce op). Raised on
 * every rank before any data moves, so the ring stays usable.
 */
export class CallMismatchError extends CommError {
  /**
   * Creates the error.
   *
   * @param message What differs, naming the ranks.
   * @param peer A rank that disagrees with this one, or null.
   */
  constructor(message: string, peer: number | null) {
    super(message, peer);
    this.name = "CallMismatchError";
  }
}

/** The bytes of `buf[range]`, without copying. */
function bytesOf(buf: Float32Array, range: Range): Uint8Array {
  const bytesPerElement = Float32Array.BYTES_PER_ELEMENT;
  return new Uint8Array(
    buf.buffer,
    buf.byteOffset + range.offset * bytesPerElement,
    range.length * bytesPerElement,
  );
}

/**
 * Splits a range into consecutive pieces of at most {@linkcode SUB_CHUNK_BYTES}.
 *
 * @param range Elements to split.
 * @returns The pieces in order; none for an empty range.
 */
export function* subChunks(range: Range): Generator<Range> {
  for (let done = 0; done < range.length; done += SUB_CHUNK_ELEMENTS) {
    yield {
      offset: range.offset + done,
      length: Math.min(SUB_CHUNK_ELEMENTS, range.length - done),
    };
  }
}
