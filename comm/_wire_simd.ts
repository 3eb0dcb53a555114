/**
 * The 16-bit wire casts of `--grad-compression` in WebAssembly SIMD: eight values per
 * iteration, branch-free, bit for bit what the JavaScript casts of `wire_codec.ts` give (round
 * to nearest even; NaN, infinities and subnormals included — `tests/wire_simd_test.ts` checks
 * every 16-bit pattern and the float32 edge cases).
 *
 * The JavaScript casts cost about 1.3–1.8 ns per value here (fp16 through the engine's
 * `Float16Array`, bf16 in a loop), and a ring all-reduce casts each rank's chunk six times, so
 * fp16 made mnist-mlp's all-reduce twice as slow as float32 over Unix sockets. A ring therefore
 * keeps its wire values in WebAssembly memory ({@linkcode WireBuffers}) and casts there, fused
 * with the add of the reduce: each cast costs one copy of the float32 values in or out, as the
 * float32 add already does.
 *
 * fp16 from float32, per lane (F. Giesen's `float_to_half_fast3_rtne`):
 *
 * ```
 * b = |x| as bits
 * b < 2⁻¹⁴ (subnormal half)   bits(f32(b) + 0.5) − bits(0.5): the float add rounds to nearest
 *                               even at the half's 10 mantissa bits
 * otherwise                    (b − (112 << 23) + 0xfff + odd) >> 13 (odd = bit 13: ties to
 *                               even; a carry rounds up into the exponent, up to Inf)
 * then min(·, 0x7c00)          every overflow, Inf and NaN is now Inf…
 * | 0x200 where b is a NaN     …and a NaN the quiet NaN 0x7e00
 * | the sign
 * ```
 *
 * float32 from fp16 (M. Dukhan's `fp16_ieee_to_fp32_value`): `m = h & 0x7fff`; a normal half
 * (and Inf, NaN) is `f32((m << 13) + (224 << 23)) · 2⁻¹¹²` (the multiply sets a NaN's quiet
 * bit, as the engine's cast does); a subnormal is `f32(m | bits(0.5)) − 0.5`; then the sign.
 *
 * bf16 is float32's top half: rounded by adding 0x7fff plus the kept half's lowest bit (ties to
 * even), NaN kept as a quiet NaN; back by a shift.
 *
 * @module
 */
import { assembleWat } from "../core/assemble_wat.ts";
import type { GradCompression } from "../core/run_types.ts";
import type { WireCodec } from "./wire_codec.ts";

/**
 * Values a {@linkcode simdCodec} casts per call into its memory: small enough that the copies in
 * and out stay in the core's cache, large enough that the call's own cost vanishes.
 */
const BLOCK_ELEMENTS = 16 * 1024;
/** Values a ring's wire buffers cast per call: 32 KiB of float32, within a core's L1 cache. */
const CACHE_BLOCK_ELEMENTS = 8 * 1024;
/** Values one SIMD iteration casts (two float32 vectors ↔ one vector of 16-bit values). */
const LANES = 8;
/** WebAssembly page size in bytes. */
const PAGE_BYTES = 65_536;

/**
 * The cast of one vector, written out where it is used: WebAssembly functions taking a vector
 * are not inlined, and a call per four values cost as much as the casts themselves. Each reads
 * the vector in local `$x` and leaves the result in local `$y`; `$a` and `$b` are scratch, and
 * the constants are locals set once per call (`CONSTANTS`). Compares are signed where both
 * sides are non-negative: x86 has no unsigned vector compare.
 */
const CAST = {
  /** float32 bits → fp16 bits in the low half of each lane. */
  toHalf: `
    (local.set $a (v128.and (local.get $x) (local.get $abs)))
    (local.set $y
      (v128.bitselect
        (i32x4.sub (f32x4.add (local.get $a) (local.get $half)) (local.get $half))
        (i32x4.shr_u
          (i32x4.add
            (i32x4.add (local.get $a) (local.get $rebias))
            (v128.and (i32x4.shr_u (local.get $a) (i32.const 13)) (local.get $one)))
          (i32.const 13))
        (i32x4.lt_s (local.get $a) (local.get $minNormal))))
    (local.set $y
      (v128.or
        (v128.or
          (i32x4.min_s (local.get $y) (local.get $halfInf))
          (v128.and (i32x4.gt_s (local.get $a) (local.get $inf)) (local.get $halfQuiet)))
        (i32x4.shr_u (v128.xor (local.get $x) (local.get $a)) (i32.const 16))))`,
  /** fp16 bits (zero-extended lanes) → float32 bits. */
  fromHalf: `
    (local.set $a (v128.and (local.get $x) (local.get $absHalf)))
    (local.set $y
      (v128.bitselect
        (f32x4.sub (v128.or (local.get $a) (local.get $half)) (local.get $half))
        (f32x4.mul
          (i32x4.add (i32x4.shl (local.get $a) (i32.const 13)) (local.get $expOffset))
          (local.get $expScale))
        (i32x4.lt_s (local.get $a) (local.get $halfMinNormal))))
    (local.set $y
      (v128.or (local.get $y)
        (i32x4.shl (v128.xor (local.get $x) (local.get $a)) (i32.const 16))))`,
  /** float32 bits → bf16 bits in the low half of each lane. */
  toBf16: `
    (local.set $y
      (v128.bitselect
        (v128.or (i32x4.shr_u (local.get $x) (i32.const 16)) (local.get $bfQuiet))
        (i32x4.shr_u
          (i32x4.add
            (i32x4.add (local.get $x) (local.get $bfRound))
            (v128.and (i32x4.shr_u (local.get $x) (i32.const 16)) (local.get $one)))
          (i32.const 16))
        (i32x4.gt_s (v128.and (local.get $x) (local.get $abs)) (local.get $inf))))`,
  /** bf16 bits (zero-extended lanes) → float32 bits. */
  fromBf16: `
    (local.set $y (i32x4.shl (local.get $x) (i32.const 16)))`,
};

/** The constants the casts use, by local name (each an i32 splat into every lane). */
const CONSTANTS: Record<string, number> = {
  abs: 0x7fff_ffff,
  inf: 0x7f80_0000,
  one: 1,
  half: 0x3f00_0000, // 0.5
  rebias: 0xc800_0fff, // −(112 << 23) + 0xfff
  minNormal: 0x3880_0000, // 2⁻¹⁴, fp16's smallest normal, as float32
  halfInf: 0x7c00,
  halfQuiet: 0x0200, // with Inf's bits: the quiet NaN 0x7e00
  absHalf: 0x7fff,
  halfMinNormal: 0x0400,
  expOffset: 0x7000_0000, // 224 << 23
  expScale: 0x0780_0000, // 2⁻¹¹²
  bfQuiet: 0x40,
  bfRound: 0x7fff,
};

const LOCALS = [
  "(local $end i32) (local $x v128) (local $y v128) (local $lo v128) (local $h v128)",
  "(local $a v128)",
  ...Object.keys(CONSTANTS).map((name) => `(local $${name} v128)`),
].join(" ");

const SET_CONSTANTS = Object.entries(CONSTANTS)
  .map(([name, value]) => `(local.set $${name} (i32x4.splat (i32.const ${value})))`)
  .join("\n    ");

/**
 * A function `(src, dst, n, divisor)` of byte addresses, eight values per iteration until the
 * 16-bit side (`wire`: `$src` or `$dst`) has passed `n` values (`divisor`: the rounder's).
 */
const loop = (name: string, wire: string, body: string, srcStep: number, dstStep: number) => `
  (func (export "${name}") (param $src i32) (param $dst i32) (param $n i32) (param $divisor f32)
    ${LOCALS}
    (local $d v128)
    ${SET_CONSTANTS}
    (local.set $d (f32x4.splat (local.get $divisor)))
    (local.set $end (i32.add (local.get ${wire}) (i32.shl (local.get $n) (i32.const 1))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get ${wire}) (local.get $end)))
      ${body}
      (local.set $src (i32.add (local.get $src) (i32.const ${srcStep})))
      (local.set $dst (i32.add (local.get $dst) (i32.const ${dstStep})))
      (br $next))))`;

/** float32 at `$src` → 16 bits at `$dst`: two vectors cast, narrowed into one. */
const encoder = (name: string, cast: string) =>
  loop(
    name,
    "$dst",
    `(local.set $x (v128.load (local.get $src)))
      ${cast}
      (local.set $lo (local.get $y))
      (local.set $x (v128.load offset=16 (local.get $src)))
      ${cast}
      (v128.store (local.get $dst) (i16x8.narrow_i32x4_u (local.get $lo) (local.get $y)))`,
    32,
    16,
  );

/**
 * 16 bits at `$src` → float32 at `$dst`: one vector widened into two, each cast, then stored
 * (`add`: added to what `$dst` holds).
 */
const decoder = (name: string, cast: string, add: boolean) => {
  const store = (offset: number) =>
    add
      ? `(v128.store offset=${offset} (local.get $dst)
          (f32x4.add (v128.load offset=${offset} (local.get $dst)) (local.get $y)))`
      : `(v128.store offset=${offset} (local.get $dst) (local.get $y))`;
  return loop(
    name,
    "$src",
    `(local.set $h (v128.load (local.get $src)))
      (local.set $x (i32x4.extend_low_i16x8_u (local.get $h)))
      ${cast}
      ${store(0)}
      (local.set $x (i32x4.extend_high_i16x8_u (local.get $h)))
      ${cast}
      ${store(16)}`,
    16,
    32,
  );
};

/**
 * float32 at `$src` divided by `divisor` (the average's N, or 1), cast to 16 bits at `$dst`,
 * and `$src` replaced by what the 16 bits decode to: a rank's own copy of a chunk, equal to
 * what its peers will decode. A float32 division is correctly rounded, as JavaScript's
 * `Math.fround(a / b)` is; dividing by 1 changes nothing (a NaN only gains its quiet bit,
 * which both casts set anyway).
 */
const rounder = (name: string, to: string, from: string) =>
  loop(
    name,
    "$dst",
    `(local.set $x (f32x4.div (v128.load (local.get $src)) (local.get $d)))
      ${to}
      (local.set $lo (local.get $y))
      (local.set $x (local.get $y))
      ${from}
      (v128.store (local.get $src) (local.get $y))
      (local.set $x (f32x4.div (v128.load offset=16 (local.get $src)) (local.get $d)))
      ${to}
      (v128.store (local.get $dst) (i16x8.narrow_i32x4_u (local.get $lo) (local.get $y)))
      (local.set $x (local.get $y))
      ${from}
      (v128.store offset=16 (local.get $src) (local.get $y))`,
    32,
    16,
  );

/**
 * The module: per format (`F16`, `Bf16`) `encode`, `decode`, `decodeAdd` and `round`, each
 * `(src, dst, n)` with byte addresses, casting `n` values rounded up to a multiple of eight
 * (the caller's memory has room for the extra ones).
 */
const WAT = `
(module
  (import "env" "memory" (memory 1))
  ${encoder("encodeF16", CAST.toHalf)}
  ${decoder("decodeF16", CAST.fromHalf, false)}
  ${decoder("decodeAddF16", CAST.fromHalf, true)}
  ${rounder("roundF16", CAST.toHalf, CAST.fromHalf)}
  ${encoder("encodeBf16", CAST.toBf16)}
  ${decoder("decodeBf16", CAST.fromBf16, false)}
  ${decoder("decodeAddBf16", CAST.fromBf16, true)}
  ${rounder("roundBf16", CAST.toBf16, CAST.fromBf16)}
)`;

type Cast = (src: number, dst: number, n: number, divisor?: number) => void;

/** One format's casts in one instance. */
interface Casts {
  encode: Cast;
  decode: Cast;
  decodeAdd: Cast;
  round: Cast;
}

let compiled: Promise<WebAssembly.Module | null> | undefined;

/** Assembles the module once per process or worker; null where WebAssembly SIMD is missing. */
function compile(): Promise<WebAssembly.Module | null> {
  compiled ??= assembleWat("wire_casts.wat", WAT).catch(() => null);
  return compiled;
}

/** Memory holding `floats` float32 and `halves` 16-bit values, each with slack for a vector. */
function instantiate(
  module: WebAssembly.Module,
  name: Exclude<GradCompression, "none">,
  regions: { floats: number; halves: number }[],
): { memory: WebAssembly.Memory; casts: Casts; offsets: number[] } {
  const offsets: number[] = [];
  let bytes = 0;
  for (const { floats, halves } of regions) {
    offsets.push(bytes);
    bytes += (floats + LANES) * Float32Array.BYTES_PER_ELEMENT;
    offsets.push(bytes);
    bytes += (halves + LANES) * Uint16Array.BYTES_PER_ELEMENT;
  }
  const pages = Math.max(1, Math.ceil(bytes / PAGE_BYTES));
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const suffix = name === "fp16" ? "F16" : "Bf16";
  const cast = (verb: string) => exports[`${verb}${suffix}`] as Cast;
  return {
    memory,
    casts: {
      encode: cast("encode"),
      decode: cast("decode"),
      decodeAdd: cast("decodeAdd"),
      round: cast("round"),
    },
    offsets,
  };
}

/**
 * A ring's wire values in WebAssembly memory, cast where they lie: the piece being sent and
 * the piece being received, each up to `capacity` values.
 */
export interface WireBuffers {
  /** The received piece's 16-bit values go here (`capacity` elements). */
  readonly received: Uint16Array;
  /**
   * Casts `src` into the send buffer.
   *
   * @returns the 16-bit values, a view of the send buffer
   */
  encode(src: Float32Array): Uint16Array;
  /** `dst[i] = float32(received[from + i])` for every element of `dst`. */
  decode(dst: Float32Array, from: number): void;
  /** `dst[i] += float32(received[from + i])` for every element of `dst`. */
  decodeAdd(dst: Float32Array, from: number): void;
  /**
   * Divides `values` by `divisor` and rounds them to what the wire carries, in place; their
   * 16-bit values are kept, and the next {@linkcode WireBuffers.encode} of these very values
   * sends them instead of casting again.
   */
  round(values: Float32Array, divisor?: number): void;
  /**
   * The kept 16-bit values of the last {@linkcode WireBuffers.round}, if `values` is what was
   * rounded (the same memory, which the caller has not changed since), in the send buffer as
   * {@linkcode WireBuffers.encode} leaves them; handed out once.
   */
  takeRounded(values: Float32Array): Uint16Array | null;
  /** Drops the kept values (a new collective begins). */
  forget(): void;
}

/** A {@linkcode WireCodec} that can also give a ring {@linkcode WireBuffers}. */
export interface SimdWireCodec extends WireCodec {
  /**
   * Wire buffers of `capacity` values each, in memory of their own.
   *
   * @param capacity the most values one piece holds
   * @returns the buffers
   */
  buffers(capacity: number): WireBuffers;
}

/**
 * The SIMD codec of a compression; null where WebAssembly SIMD is unavailable. Its `encode`
 * and `decode` take any arrays, copying through a block of its own memory; a ring uses its
 * {@linkcode SimdWireCodec.buffers} instead.
 *
 * @param name `fp16` or `bf16`
 * @returns the codec, or null
 * @example
 * ```ts
 * const codec = await simdCodec("fp16");
 * codec?.encode(Float32Array.of(0.1), new Uint16Array(1));
 * ```
 */
export async function simdCodec(
  name: Exclude<GradCompression, "none">,
): Promise<SimdWireCodec | null> {
  const module = await compile();
  if (!module) return null;
  const block = BLOCK_ELEMENTS;
  const { memory, casts, offsets: [floatsAt, wireAt] } = instantiate(module, name, [
    { floats: block, halves: block },
  ]);
  const floats = new Float32Array(memory.buffer, floatsAt, block);
  const wire = new Uint16Array(memory.buffer, wireAt, block);
  return {
    name,
    encode(src, dst) {
      for (let at = 0; at < src.length; at += block) {
        const n = Math.min(block, src.length - at);
        floats.set(src.subarray(at, at + n));
        casts.encode(floatsAt, wireAt, n);
        dst.set(wire.subarray(0, n), at);
      }
    },
    decode(src, dst) {
      for (let at = 0; at < dst.length; at += block) {
        const n = Math.min(block, dst.length - at);
        wire.set(src.subarray(at, at + n));
        casts.decode(wireAt, floatsAt, n);
        dst.set(floats.subarray(0, n), at);
      }
    },
    buffers: (capacity) => wireBuffers(module, name, capacity),
  };
}

function wireBuffers(
  module: WebAssembly.Module,
  name: Exclude<GradCompression, "none">,
  capacity: number,
): WireBuffers {
  // Layout: [ floats | sent ][ received ][ rounded ]: one float32 staging area, the 16-bit
  // piece being sent, the one being received, and the last rounded piece (sent on by the
  // all-gather). Sending and receiving interleave (each cast runs whole between two awaits),
  // so each has its own 16-bit piece.
  const { memory, casts, offsets: [floatsAt, sentAt, , receivedAt, , roundedAt] } = instantiate(
    module,
    name,
    [
      { floats: CACHE_BLOCK_ELEMENTS, halves: capacity },
      { floats: 0, halves: capacity },
      { floats: 0, halves: capacity },
    ],
  );
  let kept: { values: Float32Array; wire: Uint16Array } | null = null;
  // Typed-array copies to and from shared memory (DDP's gradient buffer, which the comm thread
  // shares) go a word at a time only where both sides are equally aligned to 8 bytes, else a
  // byte at a time, ten times slower: the staging area is entered one float in where the other
  // side starts at a 4-byte boundary. (Its slack of a vector covers the shift.)
  const stagings = [0, 4].map((shift) => ({
    at: floatsAt + shift,
    floats: new Float32Array(memory.buffer, floatsAt + shift, CACHE_BLOCK_ELEMENTS),
  }));
  const staging = (other: Float32Array) => stagings[(other.byteOffset & 7) === 0 ? 0 : 1];
  const sent = new Uint16Array(memory.buffer, sentAt, capacity);
  const halfBytes = Uint16Array.BYTES_PER_ELEMENT;
  // Block by block, so that each block's float32 values are still in the core's cache when
  // they are cast, and the staging area stays small.
  const blocks = (n: number, each: (at: number, length: number) => void) => {
    for (let at = 0; at < n; at += CACHE_BLOCK_ELEMENTS) {
      each(at, Math.min(CACHE_BLOCK_ELEMENTS, n - at));
    }
  };
  return {
    received: new Uint16Array(memory.buffer, receivedAt, capacity),
    encode(src) {
      blocks(src.length, (at, n) => {
        const part = src.subarray(at, at + n);
        const stage = staging(part);
        stage.floats.set(part);
        casts.encode(stage.at, sentAt + at * halfBytes, n);
      });
      return sent.subarray(0, src.length);
    },
    decode(dst, from) {
      blocks(dst.length, (at, n) => {
        const part = dst.subarray(at, at + n);
        const stage = staging(part);
        casts.decode(receivedAt + (from + at) * halfBytes, stage.at, n);
        part.set(stage.floats.subarray(0, n));
      });
    },
    decodeAdd(dst, from) {
      blocks(dst.length, (at, n) => {
        const part = dst.subarray(at, at + n);
        const stage = staging(part);
        stage.floats.set(part);
        casts.decodeAdd(receivedAt + (from + at) * halfBytes, stage.at, n);
        part.set(stage.floats.subarray(0, n));
      });
    },
    round(values, divisor = 1) {
      blocks(values.length, (at, n) => {
        const part = values.subarray(at, at + n);
        const stage = staging(part);
        stage.floats.set(part);
        casts.round(stage.at, roundedAt + at * halfBytes, n, divisor);
        part.set(stage.floats.subarray(0, n));
      });
      kept = { values, wire: new Uint16Array(memory.buffer, roundedAt, values.length) };
    },
    takeRounded(values) {
      const match = kept !== null && kept.values.buffer === values.buffer &&
        kept.values.byteOffset === values.byteOffset && kept.values.length === values.length;
      if (!match) return null;
      // Into the send buffer, which only the sender uses: the next round may reuse its own.
      sent.set(kept!.wire);
      kept = null;
      return sent.subarray(0, values.length);
    },
    forget() {
      kept = null;
    },
  };
}
