/**
 * The call exchange: before any data moves, every rank learns what every other rank is
 * calling (collective, call number, length, root, reduce op) by passing these small records
 * around the ring (an all-gather of N−1 steps). It doubles as the barrier whose duration is
 * a collective's `waitMs`: when it ends, every rank has entered the call. If a rank never
 * arrives, each waiting rank knows exactly whose record is missing and names it.
 *
 * @module
 */
import { CallMismatchError, CommError, type Ring } from "./_ring.ts";

/** What one rank is calling; every field must match across ranks. */
export interface CallRecord {
  /** Collective name, e.g. "all-reduce". */
  op: string;
  /** How many collectives this rank called before this one. */
  seq: number;
  /** Elements in the buffer (0 for a barrier). */
  length: number;
  /** Root rank of a broadcast (0 otherwise). */
  root: number;
  /** Reduce op of an all-reduce ("" otherwise). */
  reduce: string;
}

/** Collective names on the wire, by code. */
const OP_CODES = ["barrier", "all-reduce", "broadcast", "reduce-scatter", "all-gather"];
/** Reduce ops on the wire, by code: plain, then cast to 16 bits (`avg/fp16`). */
const REDUCE_CODES = ["", "sum", "avg", "max", "min"].flatMap((op) =>
  op ? [op, `${op}/fp16`, `${op}/bf16`] : [op]
);
/** Fields of a record on the wire: rank, op, seq, length, root, reduce (float64 each). */
const RECORD_FIELDS = 6;

/**
 * Gathers every rank's record and checks they agree.
 *
 * @param ring This rank's ring.
 * @param call This rank's call.
 * @throws {CallMismatchError} On every rank, when any two records differ.
 */
export async function exchangeCalls(ring: Ring, call: CallRecord): Promise<void> {
  const n = ring.size;
  const records: CallRecord[] = new Array(n);
  records[ring.rank] = call;
  let outgoing = encode(ring.rank, call);
  for (let step = 0; step < n - 1; step++) {
    const origin = (ring.rank - step - 1 + n) % n;
    const incoming = new Float64Array(RECORD_FIELDS);
    ring.waitingFor = origin;
    await Promise.all([ring.send(asBytes(outgoing)), ring.recv(asBytes(incoming))]);
    records[origin] = decode(incoming, origin);
    outgoing = incoming;
  }
  ring.waitingFor = null;
  checkRecords(records, ring.rank);
}

/** Throws a {@linkcode CallMismatchError} naming the first rank that differs from rank 0. */
function checkRecords(records: CallRecord[], self: number): void {
  const first = records[0];
  for (let rank = 1; rank < records.length; rank++) {
    const other = records[rank];
    const peer = rank === self ? 0 : rank;
    if (other.op !== first.op || other.seq !== first.seq) {
      throw new CallMismatchError(
        `Collective mismatch: rank 0 called ${first.op} (call #${first.seq}) while rank ` +
          `${rank} called ${other.op} (call #${other.seq}); every rank must make the same ` +
          `calls in the same order`,
        peer,
      );
    }
    if (other.length !== first.length) {
      throw new CallMismatchError(
        `Length mismatch in ${first.op}: rank 0 has ${first.length} elements and rank ` +
          `${rank} has ${other.length}; every rank must pass a buffer of the same length`,
        peer,
      );
    }
    if (other.root !== first.root) {
      throw new CallMismatchError(
        `Root mismatch in ${first.op}: rank 0 uses root ${first.root} and rank ${rank} ` +
          `uses root ${other.root}`,
        peer,
      );
    }
    if (other.reduce !== first.reduce) {
      throw new CallMismatchError(
        `Reduce op mismatch in ${first.op}: rank 0 uses "${first.reduce}" and rank ${rank} ` +
          `uses "${other.reduce}"`,
        peer,
      );
    }
  }
}

function encode(rank: number, call: CallRecord): Float64Array {
  return Float64Array.of(
    rank,
    OP_CODES.indexOf(call.op),
    call.seq,
    call.length,
    call.root,
    REDUCE_CODES.indexOf(call.reduce),
  );
}

function decode(fields: Float64Array, origin: number): CallRecord {
  if (fields[0] !== origin) {
    throw new CommError(
      `Ring out of order: expected the call record of rank ${origin}, got rank ${fields[0]}`,
      origin,
    );
  }
  return {
    op: OP_CODES[fields[1]] ?? `unknown collective ${fields[1]}`,
    seq: fields[2],
    length: fields[3],
    root: fields[4],
    reduce: REDUCE_CODES[fields[5]] ?? `unknown op ${fields[5]}`,
  };
}

function asBytes(fields: Float64Array): Uint8Array {
  return new Uint8Array(fields.buffer, fields.byteOffset, fields.byteLength);
}
