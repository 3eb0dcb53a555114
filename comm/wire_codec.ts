/**
 * Gradients on the wire in 16 bits: the codecs behind `--grad-compression fp16|bf16`, as
 * PyTorch DDP's fp16/bf16 compression hooks and Horovod's `Compression.fp16`. Values are cast
 * to 16 bits before they are sent and cast back to float32 on arrival; every reduction is
 * computed in float32 (see `_ring_schedule.ts`).
 *
 * - fp16 (IEEE half): 11 significant bits, range ±65504; smaller magnitudes than 6e-8 flush
 *   to zero. Cast with the engine's own `Float16Array` (round to nearest even).
 * - bf16 (bfloat16): float32's 8-bit exponent (same range) with 8 significant bits; cast by
 *   keeping the top 16 bits of the float32, rounded to nearest even.
 *
 * {@linkcode wireCodec} gives these casts in JavaScript (the reference); the collectives use
 * {@linkcode fastWireCodec}'s, the same casts bit for bit in WebAssembly SIMD (`_wire_simd.ts`).
 *
 * @module
 */
import type { GradCompression } from "../core/run_types.ts";
import { simdCodec } from "./_wire_simd.ts";

/** A 16-bit wire format for float32 values. */
export interface WireCodec {
  /** Its name, as `--grad-compression` spells it. */
  readonly name: Exclude<GradCompression, "none">;
  /** `dst[i] = cast(src[i])` for every element of `src` (`dst` at least as long). */
  encode(src: Float32Array, dst: Uint16Array): void;
  /** `dst[i] = float32(src[i])` for every element of `dst` (`src` at least as long). */
  decode(src: Uint16Array, dst: Float32Array): void;
}

/** Bytes per element on the wire with a codec. */
export const CODEC_BYTES_PER_ELEMENT = 2;

const fp16: WireCodec = {
  name: "fp16",
  encode(src, dst) {
    new Float16Array(dst.buffer, dst.byteOffset, src.length).set(src);
  },
  decode(src, dst) {
    dst.set(new Float16Array(src.buffer, src.byteOffset, dst.length));
  },
};

const bf16: WireCodec = {
  name: "bf16",
  encode(src, dst) {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < bits.length; i++) {
      const b = bits[i];
      // NaN stays a (quiet) NaN; everything else rounds to nearest, ties to even.
      dst[i] = (b & 0x7fff_ffff) > 0x7f80_0000
        ? (b >>> 16) | 0x40
        : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
    }
  },
  decode(src, dst) {
    const bits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
    for (let i = 0; i < bits.length; i++) bits[i] = src[i] << 16;
  },
};

/**
 * The codec of a compression setting.
 *
 * @param compression `none`, `fp16` or `bf16`
 * @returns the codec, or null for `none` (float32 as it is)
 * @example
 * ```ts
 * const codec = wireCodec("bf16")!;
 * const wire = new Uint16Array(1);
 * codec.encode(Float32Array.of(1.00390625), wire);
 * ```
 */
export function wireCodec(compression: GradCompression | undefined): WireCodec | null {
  switch (compression ?? "none") {
    case "none":
      return null;
    case "fp16":
      return fp16;
    case "bf16":
      return bf16;
    default:
      throw new Error(`Unknown gradient compression "${compression}": expected none, fp16, bf16`);
  }
}

const fast = new Map<string, Promise<WireCodec | null>>();

/**
 * The fastest codec of a compression setting here: the WebAssembly SIMD casts (bit for bit the
 * casts of {@linkcode wireCodec}, several times faster), or {@linkcode wireCodec}'s JavaScript
 * ones where WebAssembly SIMD is unavailable. The first call in a process or worker assembles
 * the SIMD module (about 0.1 s); later calls return the same codec.
 *
 * @param compression `none`, `fp16` or `bf16`
 * @returns the codec, or null for `none`
 * @example
 * ```ts
 * const codec = await fastWireCodec("fp16");
 * codec?.encode(Float32Array.of(0.1), new Uint16Array(1));
 * ```
 */
export function fastWireCodec(compression: GradCompression | undefined): Promise<WireCodec | null> {
  const reference = wireCodec(compression);
  if (!reference) return Promise.resolve(null);
  let codec = fast.get(reference.name);
  if (!codec) {
    codec = simdCodec(reference.name).then((simd) => simd ?? reference);
    fast.set(reference.name, codec);
  }
  return codec;
}

/**
 * Rounds `values` to what the codec carries, in place (cast and back), so that a rank's own
 * copy equals what its peers decode.
 *
 * @param codec the codec
 * @param values the values to round
 * @param scratch at least `values.length` elements of scratch space
 * @example
 * ```ts
 * const v = Float32Array.of(0.1);
 * roundThrough(wireCodec("fp16")!, v, new Uint16Array(1)); // v[0] is now 0.0999755859375
 * ```
 */
export function roundThrough(codec: WireCodec, values: Float32Array, scratch: Uint16Array): void {
  codec.encode(values, scratch);
  codec.decode(scratch, values);
}
