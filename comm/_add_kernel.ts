/**
 * The reduce step's `dst[i] += src[i]`, in WebAssembly SIMD (four floats per instruction).
 *
 * The all-reduce's adds run on the same thread as its socket reads and writes, so every
 * nanosecond per element shows in the bus bandwidth. A plain JavaScript loop costs a few ns
 * per float32 element; this kernel, counting the copy of `dst` into WebAssembly memory and
 * back, costs about a third of that. Results are bit-identical: a float32 add computed in
 * float64 and rounded (JavaScript) equals the float32 add (WebAssembly).
 *
 * The module, hand-assembled below, imports its memory and exports one function:
 *
 * ```wat
 * (module
 *   (import "env" "memory" (memory 1))
 *   (func (export "add") (param $dst i32) (param $src i32) (param $n i32)
 *     (local $end i32) (local $vectorEnd i32)
 *     ;; $end = $dst + 4n; $vectorEnd = $dst + 4(n & ~3)
 *     (loop   ;; while $dst < $vectorEnd: 4 floats at a time
 *       (v128.store $dst (f32x4.add (v128.load $dst) (v128.load $src)))
 *       $dst += 16; $src += 16)
 *     (loop   ;; while $dst < $end: the last 0-3 floats
 *       (f32.store $dst (f32.add (f32.load $dst) (f32.load $src)))
 *       $dst += 4; $src += 4)))
 * ```
 *
 * @module
 */

/** WebAssembly page size in bytes. */
const WASM_PAGE_BYTES = 65_536;

/** Adds received floats into a buffer; the received floats must be written to `source`. */
export interface AddKernel {
  /** Where received floats go before they are added (`capacity` elements). */
  readonly source: Float32Array;
  /**
   * `dst[i] += source[from + i]` for every element of `dst`.
   *
   * @param dst The elements to add into.
   * @param from Index in `source` of the float added to `dst[0]`.
   */
  add(dst: Float32Array, from: number): void;
}

/**
 * Makes an add kernel with room for `capacity` received floats: WebAssembly SIMD where
 * available, a JavaScript loop otherwise.
 *
 * @param capacity Floats received per frame at most.
 * @returns A kernel owning its own memory (kernels are not shared between rings).
 */
export function createAddKernel(capacity: number): AddKernel {
  return SIMD_MODULE ? wasmKernel(SIMD_MODULE, capacity) : jsKernel(capacity);
}

/** The plain JavaScript kernel: the reference, and the fallback. */
export function jsKernel(capacity: number): AddKernel {
  const source = new Float32Array(capacity);
  return {
    source,
    add(dst, from) {
      const length = dst.length;
      for (let i = 0; i < length; i++) dst[i] += source[from + i];
    },
  };
}

function wasmKernel(module: WebAssembly.Module, capacity: number): AddKernel {
  const regionBytes = Math.max(1, capacity) * Float32Array.BYTES_PER_ELEMENT;
  // The staging area has room to start one float in (see below), rounded up to a vector.
  const stagingBytes = Math.ceil((regionBytes + Float32Array.BYTES_PER_ELEMENT) / 16) * 16;
  const pages = Math.ceil((stagingBytes + regionBytes) / WASM_PAGE_BYTES);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const addInWasm = instance.exports.add as (dst: number, src: number, n: number) => void;
  // Layout: [ dst staging: stagingBytes ][ source: regionBytes ]. Copies to and from shared
  // memory (DDP's gradient buffer) go a word at a time only where both sides are equally aligned
  // to 8 bytes, else a byte at a time, ten times slower: the staging area is entered one float
  // in where `dst` starts at a 4-byte boundary.
  const stagings = [0, 4].map((at) => ({
    at,
    floats: new Float32Array(memory.buffer, at, capacity),
  }));
  const source = new Float32Array(memory.buffer, stagingBytes, capacity);
  return {
    source,
    add(dst, from) {
      const staging = stagings[(dst.byteOffset & 7) === 0 ? 0 : 1];
      staging.floats.set(dst);
      addInWasm(staging.at, stagingBytes + from * Float32Array.BYTES_PER_ELEMENT, dst.length);
      dst.set(staging.floats.subarray(0, dst.length));
    },
  };
}

/** The compiled module, or null where WebAssembly SIMD is unavailable. */
const SIMD_MODULE = compileSimdModule();

function compileSimdModule(): WebAssembly.Module | null {
  const bytes = new Uint8Array(assemble());
  return WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
}

/** The binary module described in this file's header. */
function assemble(): number[] {
  const i32 = 0x7f;
  const get = (local: number) => [0x20, local];
  const set = (local: number) => [0x21, local];
  const constant = (value: number) => [0x41, ...signedLeb128(value)];
  const [add, and, shiftLeft, atLeast] = [0x6a, 0x71, 0x74, 0x4f]; // i32.add, and, shl, ge_u
  const [block, loop, breakIf, repeat, end] = [[0x02, 0x40], [0x03, 0x40], 0x0d, 0x0c, 0x0b];
  const v128Load = [0xfd, 0x00, 0x00, 0x00]; // align 1, offset 0
  const v128Store = [0xfd, 0x0b, 0x00, 0x00];
  const f32x4Add = [0xfd, 0xe4, 0x01];
  const f32Load = [0x2a, 0x02, 0x00]; // align 4, offset 0
  const f32Store = [0x38, 0x02, 0x00];
  const f32Add = 0x92;
  const [dst, src, n, endAt, vectorEnd] = [0, 1, 2, 3, 4];
  const advance = (bytes: number) => [
    [...get(dst), ...constant(bytes), add, ...set(dst)],
    [...get(src), ...constant(bytes), add, ...set(src)],
  ];
  const body = [
    [0x01, 0x02, i32], // two i32 locals: endAt, vectorEnd
    [...get(dst), ...get(n), ...constant(2), shiftLeft, add, ...set(endAt)],
    [...get(dst), ...get(n), ...constant(-4), and], // n rounded down to a multiple of 4
    [...constant(2), shiftLeft, add, ...set(vectorEnd)],
    [...block, ...loop, ...get(dst), ...get(vectorEnd), atLeast, breakIf, 1],
    [...get(dst), ...get(dst), ...v128Load, ...get(src), ...v128Load, ...f32x4Add, ...v128Store],
    ...advance(16),
    [repeat, 0, end, end],
    [...block, ...loop, ...get(dst), ...get(endAt), atLeast, breakIf, 1],
    [...get(dst), ...get(dst), ...f32Load, ...get(src), ...f32Load, f32Add, ...f32Store],
    ...advance(4),
    [repeat, 0, end, end],
    [end],
  ].flat();
  const name = (text: string) => {
    const utf8 = [...new TextEncoder().encode(text)];
    return [utf8.length, ...utf8];
  };
  const section = (id: number, content: number[]) => {
    return [id, ...unsignedLeb128(content.length), ...content];
  };
  return [
    [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    section(1, [0x01, 0x60, 0x03, i32, i32, i32, 0x00]), // type 0: (i32 i32 i32) → ()
    section(2, [0x01, ...name("env"), ...name("memory"), 0x02, 0x00, 0x01]), // import memory
    section(3, [0x01, 0x00]), // function 0 has type 0
    section(7, [0x01, ...name("add"), 0x00, 0x00]), // export function 0 as "add"
    section(10, [0x01, ...unsignedLeb128(body.length), ...body]), // its code
  ].flat();
}

function unsignedLeb128(value: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    bytes.push(byte);
  } while (value !== 0);
  return bytes;
}

function signedLeb128(value: number): number[] {
  const bytes: number[] = [];
  while (true) {
    const byte = value & 0x7f;
    value >>= 7;
    const done = (value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0);
    bytes.push(done ? byte : byte | 0x80);
    if (done) return bytes;
  }
}
