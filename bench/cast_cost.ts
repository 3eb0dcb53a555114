/**
 * What compression's casts cost per value on this machine, as a ring all-reduce does them: a
 * chunk cast as it is sent, cast and added as it arrives, rounded, sent on and received
 * (`comm/_wire_simd.ts`'s wire buffers), timed in this process.
 *
 * @module
 */
import { simdCodec } from "../comm/_wire_simd.ts";
import { wireCodec } from "../comm/wire_codec.ts";
import type { GradCompression } from "../core/run_types.ts";

/** Values per timed chunk: about one rank's chunk of a small model's gradient. */
const CHUNK_VALUES = 128 * 1024;
/** Untimed rounds (the engine compiles the kernels), then timed ones; the fastest counts. */
const WARMUP_ROUNDS = 20;
const TIMED_ROUNDS = 30;
/** Casts per value in one round: send, receive and add, round (two), send, receive. */
const CASTS_PER_ROUND = 6;

/**
 * ns per value cast, the fastest of several rounds (this machine's speed when not disturbed).
 *
 * @param compression `fp16` or `bf16`
 * @returns ns per value per cast
 * @example
 * ```ts
 * const ns = await measureCastNs("fp16"); // about 0.3–0.5 here
 * ```
 */
export async function measureCastNs(
  compression: Exclude<GradCompression, "none">,
): Promise<number> {
  const values = Float32Array.from({ length: CHUNK_VALUES }, (_, i) => Math.sin(i) * 1e-3);
  const out = new Float32Array(CHUNK_VALUES);
  const simd = await simdCodec(compression);
  const round = simd
    ? (() => {
      const buffers = simd.buffers(CHUNK_VALUES);
      return () => {
        buffers.received.set(buffers.encode(values));
        buffers.decodeAdd(out, 0);
        buffers.round(out);
        buffers.received.set(buffers.encode(out));
        buffers.decode(out, 0);
      };
    })()
    : (() => {
      const codec = wireCodec(compression)!;
      const wire = new Uint16Array(CHUNK_VALUES);
      return () => {
        for (let i = 0; i < 3; i++) {
          codec.encode(values, wire);
          codec.decode(wire, out);
        }
      };
    })();
  let best = Infinity;
  for (let r = 0; r < WARMUP_ROUNDS + TIMED_ROUNDS; r++) {
    const start = performance.now();
    round();
    if (r >= WARMUP_ROUNDS) best = Math.min(best, performance.now() - start);
  }
  return (best * 1e6) / (CASTS_PER_ROUND * CHUNK_VALUES);
}
