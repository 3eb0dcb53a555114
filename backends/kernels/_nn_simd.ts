/**
 * The exponentials of the fused nn kernels in WebAssembly SIMD, on the wasm backend's heap:
 * GELU and its derivative, and `exp(scale · x − shift)` over a run of floats (the softmaxes).
 * `Math.exp` costs about 9 ns and `Math.tanh` 19 ns a float here; four floats per instruction
 * with Cephes' `expf` polynomial (range reduction by ln 2, degree-6 minimax, then scaling by
 * 2ⁿ through the exponent bits; about 1 ulp) cost a fraction of a nanosecond.
 *
 * The module imports the heap's `WebAssembly.Memory`, so tensors are addressed by their byte
 * offset; it is assembled with `wabt` once per process or Web Worker when the `native` backend
 * is set up ({@linkcode loadNnSimd}). Until then (or elsewhere) the kernels run in JavaScript.
 *
 * @module
 */
import { assembleForHeap } from "../../core/assemble_wat.ts";

/** The kernels, bound to one heap. Addresses are bytes; counts are floats. */
export interface NnSimd {
  /** `y[i] = GELU(x[i])` (tanh form), `n` floats. */
  gelu(x: number, y: number, n: number): void;
  /** `dx[i] = dy[i] · GELU'(x[i])`, `n` floats. */
  geluGrad(dy: number, x: number, dx: number, n: number): void;
  /** `y[j] = exp(scale · x[j] − shift)` for `n` floats; returns their sum. */
  expShift(x: number, y: number, n: number, scale: number, shift: number): number;
  /** `Σ exp(scale · x[j] − shift)` over `n` floats, nothing stored. */
  expSum(x: number, n: number, scale: number, shift: number): number;
}

/** The module. `$exp` is Cephes' expf on four lanes; `$exp1` the same on one float. */
const WAT = `
(module
  (import "env" "memory" (memory 1))

  ;; e^x for four floats: x clamped to [-87.3, 88.7], n = round(x·log2 e),
  ;; r = x − n·ln2 (in two parts), e^r by Cephes' polynomial, times 2^n from the bits.
  (func $exp (param $x v128) (result v128)
    (local $n v128) (local $r v128) (local $p v128)
    (local.set $x (f32x4.min (f32x4.max (local.get $x) (f32x4.splat (f32.const -87.3))) (f32x4.splat (f32.const 88.7))))
    (local.set $n (f32x4.nearest (f32x4.mul (local.get $x) (f32x4.splat (f32.const 1.44269504088896341)))))
    (local.set $r (f32x4.sub (local.get $x) (f32x4.mul (local.get $n) (f32x4.splat (f32.const 0.693359375)))))
    (local.set $r (f32x4.add (local.get $r) (f32x4.mul (local.get $n) (f32x4.splat (f32.const 2.12194440e-4)))))
    (local.set $p (f32x4.splat (f32.const 1.9875691500e-4)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 1.3981999507e-3))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 8.3334519073e-3))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 4.1665795894e-2))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 1.6666665459e-1))))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (f32x4.splat (f32.const 5.0000001201e-1))))
    (local.set $p (f32x4.add
      (f32x4.add (f32x4.mul (f32x4.mul (local.get $p) (local.get $r)) (local.get $r)) (local.get $r))
      (f32x4.splat (f32.const 1))))
    ;; 2^n: (n + 127) << 23 as a float's bits.
    (f32x4.mul (local.get $p)
      (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $n)) (i32x4.splat (i32.const 127))) (i32.const 23))))

  (func $exp1 (param $x f32) (result f32)
    (f32x4.extract_lane 0 (call $exp (f32x4.splat (local.get $x)))))

  ;; σ(2u) for u = √(2/π)·(x + 0.044715·x³): GELU(x) = x·σ(2u).
  (func $sig (param $x v128) (result v128)
    (local $u v128)
    (local.set $u (f32x4.mul (f32x4.splat (f32.const 0.7978845608028654))
      (f32x4.add (local.get $x)
        (f32x4.mul (f32x4.splat (f32.const 0.044715)) (f32x4.mul (local.get $x) (f32x4.mul (local.get $x) (local.get $x)))))))
    (f32x4.div (f32x4.splat (f32.const 1))
      (f32x4.add (f32x4.splat (f32.const 1)) (call $exp (f32x4.mul (f32x4.splat (f32.const -2)) (local.get $u))))))

  ;; GELU'(x) = s + 2x·s·(1 − s)·√(2/π)·(1 + 3·0.044715·x²), s = σ(2u).
  (func $dgelu (param $x v128) (result v128)
    (local $s v128)
    (local.set $s (call $sig (local.get $x)))
    (f32x4.add (local.get $s)
      (f32x4.mul
        (f32x4.mul (f32x4.mul (f32x4.splat (f32.const 2)) (local.get $x))
          (f32x4.mul (local.get $s) (f32x4.sub (f32x4.splat (f32.const 1)) (local.get $s))))
        (f32x4.mul (f32x4.splat (f32.const 0.7978845608028654))
          (f32x4.add (f32x4.splat (f32.const 1))
            (f32x4.mul (f32x4.splat (f32.const 0.134145)) (f32x4.mul (local.get $x) (local.get $x))))))))

  ;; The last 0–3 floats of a run, lane by lane: nothing is read or written past its end.
  (func $load (param $p i32) (param $k i32) (result v128)
    (local $v v128)
    (local.set $v (f32x4.splat (f32.const 0)))
    (if (i32.gt_s (local.get $k) (i32.const 0)) (then (local.set $v (f32x4.replace_lane 0 (local.get $v) (f32.load (local.get $p))))))
    (if (i32.gt_s (local.get $k) (i32.const 1)) (then (local.set $v (f32x4.replace_lane 1 (local.get $v) (f32.load offset=4 (local.get $p))))))
    (if (i32.gt_s (local.get $k) (i32.const 2)) (then (local.set $v (f32x4.replace_lane 2 (local.get $v) (f32.load offset=8 (local.get $p))))))
    (local.get $v))

  (func $store (param $p i32) (param $k i32) (param $v v128)
    (if (i32.gt_s (local.get $k) (i32.const 0)) (then (f32.store (local.get $p) (f32x4.extract_lane 0 (local.get $v)))))
    (if (i32.gt_s (local.get $k) (i32.const 1)) (then (f32.store offset=4 (local.get $p) (f32x4.extract_lane 1 (local.get $v)))))
    (if (i32.gt_s (local.get $k) (i32.const 2)) (then (f32.store offset=8 (local.get $p) (f32x4.extract_lane 2 (local.get $v))))))

  (func (export "gelu") (param $x i32) (param $y i32) (param $n i32)
    (local $v v128) (local $k i32)
    (block $done (loop $vec
      (br_if $done (i32.lt_s (local.get $n) (i32.const 4)))
      (local.set $v (v128.load (local.get $x)))
      (v128.store (local.get $y) (f32x4.mul (local.get $v) (call $sig (local.get $v))))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $y (i32.add (local.get $y) (i32.const 16)))
      (local.set $n (i32.sub (local.get $n) (i32.const 4)))
      (br $vec)))
    (local.set $v (call $load (local.get $x) (local.get $n)))
    (call $store (local.get $y) (local.get $n) (f32x4.mul (local.get $v) (call $sig (local.get $v)))))

  (func (export "geluGrad") (param $dy i32) (param $x i32) (param $dx i32) (param $n i32)
    (block $done (loop $vec
      (br_if $done (i32.lt_s (local.get $n) (i32.const 4)))
      (v128.store (local.get $dx) (f32x4.mul (v128.load (local.get $dy)) (call $dgelu (v128.load (local.get $x)))))
      (local.set $dy (i32.add (local.get $dy) (i32.const 16)))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $dx (i32.add (local.get $dx) (i32.const 16)))
      (local.set $n (i32.sub (local.get $n) (i32.const 4)))
      (br $vec)))
    (call $store (local.get $dx) (local.get $n)
      (f32x4.mul (call $load (local.get $dy) (local.get $n)) (call $dgelu (call $load (local.get $x) (local.get $n))))))

  ;; y[j] = exp(scale·x[j] − shift) when $y is not 0 (else nothing is stored); returns Σ.
  (func $expRun (param $x i32) (param $y i32) (param $n i32) (param $scale f32) (param $shift f32) (result f32)
    (local $acc v128) (local $e v128) (local $sum f32) (local $one f32)
    (local.set $acc (f32x4.splat (f32.const 0)))
    (block $done (loop $vec
      (br_if $done (i32.lt_s (local.get $n) (i32.const 4)))
      (local.set $e (call $exp (f32x4.sub
        (f32x4.mul (v128.load (local.get $x)) (f32x4.splat (local.get $scale)))
        (f32x4.splat (local.get $shift)))))
      (if (local.get $y) (then
        (v128.store (local.get $y) (local.get $e))
        (local.set $y (i32.add (local.get $y) (i32.const 16)))))
      (local.set $acc (f32x4.add (local.get $acc) (local.get $e)))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $n (i32.sub (local.get $n) (i32.const 4)))
      (br $vec)))
    (local.set $sum (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
      (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
    (block $done (loop $one
      (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
      (local.set $one (call $exp1 (f32.sub (f32.mul (f32.load (local.get $x)) (local.get $scale)) (local.get $shift))))
      (if (local.get $y) (then
        (f32.store (local.get $y) (local.get $one))
        (local.set $y (i32.add (local.get $y) (i32.const 4)))))
      (local.set $sum (f32.add (local.get $sum) (local.get $one)))
      (local.set $x (i32.add (local.get $x) (i32.const 4)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $one)))
    (local.get $sum))

  (func (export "expShift") (param $x i32) (param $y i32) (param $n i32) (param $scale f32) (param $shift f32) (result f32)
    (call $expRun (local.get $x) (local.get $y) (local.get $n) (local.get $scale) (local.get $shift)))

  (func (export "expSum") (param $x i32) (param $n i32) (param $scale f32) (param $shift f32) (result f32)
    (call $expRun (local.get $x) (i32.const 0) (local.get $n) (local.get $scale) (local.get $shift)))
)
`;

/** This process's (or worker's) kernels, once loaded. */
let loaded: NnSimd | null = null;

/** Assembles the module once per process or worker, for `memory`'s kind of heap. */
function compile(memory: WebAssembly.Memory): Promise<WebAssembly.Module> {
  return assembleForHeap("native_nn_simd.wat", WAT, memory);
}

/**
 * Assemble the kernels and bind them to `memory` (the wasm backend's heap); afterwards
 * {@linkcode nnSimd} returns them in this process or worker.
 *
 * @param memory the heap the tensors live in
 * @returns the kernels
 * @example
 * ```ts
 * const simd = await loadNnSimd(new WebAssembly.Memory({ initial: 1 }));
 * ```
 */
export async function loadNnSimd(memory: WebAssembly.Memory): Promise<NnSimd> {
  const instance = new WebAssembly.Instance(await compile(memory), { env: { memory } });
  loaded = instance.exports as unknown as NnSimd;
  return loaded;
}

/**
 * The kernels {@linkcode loadNnSimd} loaded in this process or worker, or null before.
 *
 * @returns the kernels, or null
 * @example
 * ```ts
 * const simd = nnSimd(); // null until the native backend is set up
 * ```
 */
export function nnSimd(): NnSimd | null {
  return loaded;
}
