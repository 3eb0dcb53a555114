/**
 * The `native` backend's memory-bound kernels in WebAssembly SIMD: im2col, col2im, the
 * max-pool gradient and Adam's update, working in place on the wasm backend's heap (the module imports that
 * heap's `WebAssembly.Memory`, so tensors are addressed by their byte offset and nothing is
 * copied). The same loops in JavaScript ran at 3–9 ns per element here (bounds checks and
 * mispredicted branches); four floats per instruction and a branch-free select for the
 * running maxima make them a few times faster.
 *
 * The module is written below in the WebAssembly text format and assembled once per process
 * or Web Worker with `wabt` (about 25 ms). Layouts are NHWC; a patch row is ordered
 * (filter row, filter column, channel), the order of a `[fh, fw, c, o]` filter's rows.
 *
 * @module
 */
import { assembleForHeap } from "../../core/assemble_wat.ts";
import type { AdamKernel, AdamRule } from "../../core/backend_seam.ts";

/** One tensor's place in the heap: a byte offset (a `Float32Array` view's `byteOffset`). */
export type Pointer = number;

/** The window geometry the kernels take, as tfjs's `Conv2DInfo` has it. */
export interface Geometry {
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padInfo: { top: number; left: number };
}

/** The assembled kernels, bound to one heap. */
export interface SimdKernels {
  /**
   * The patches of examples `[first, first + examples)` of `x`, one row per output position
   * (`outHeight · outWidth` rows per example), zeros where a patch leaves the image.
   */
  im2col(x: Pointer, cols: Pointer, first: number, examples: number, g: Geometry): void;
  /**
   * {@linkcode SimdKernels.im2col}'s patches transposed: one row per patch element, one
   * column per output position of the examples (`examples · outHeight · outWidth` columns).
   */
  im2colT(x: Pointer, cols: Pointer, first: number, examples: number, g: Geometry): void;
  /** Adds each row of the patches back onto where {@linkcode SimdKernels.im2col} gathered it. */
  col2im(cols: Pointer, dx: Pointer, first: number, examples: number, g: Geometry): void;
  /** Adds each column of the transposed patches back onto where it was gathered from. */
  col2imT(cols: Pointer, dx: Pointer, first: number, examples: number, g: Geometry): void;
  /**
   * For every output position and channel, adds `dy` to the first maximum of its window in
   * `x` (row-major window order, strict `>`: NaN never wins), into `dx` (zeroed by the caller).
   */
  maxPoolGrad(x: Pointer, dy: Pointer, dx: Pointer, batch: number, g: Geometry): void;
  /** `y[r, j] += b[j]` over `rows` rows of `channels`, then ReLU where `relu`, in place. */
  biasAct(y: Pointer, b: Pointer, rows: number, channels: number, relu: boolean): void;
  /** `dz = y > 0 ? dy : 0` over `n` floats: the ReLU's gradient, from its output. */
  reluMask(dy: Pointer, y: Pointer, dz: Pointer, n: number): void;
  /**
   * Max-pool of a 2×2 window with stride 2 and no padding over `n` NHWC examples of
   * `h × w × c` into `y`: each window's first maximum (row-major, strict `>`).
   */
  maxPool2(x: Pointer, y: Pointer, n: number, h: number, w: number, c: number): void;
  /**
   * `MaxPoolGrad` of a 2×2 window with stride 2 and no padding over `n` NHWC examples of
   * `h × w × c`: each `dy` to its window's first maximum in `x` (row-major, strict `>`), zero
   * to every other pixel; each pixel of `dx` written once.
   */
  maxPool2Grad(
    x: Pointer,
    dy: Pointer,
    dx: Pointer,
    n: number,
    h: number,
    w: number,
    c: number,
  ): void;
}

/** The module: see the functions' comments. Addresses are bytes; counts are floats. */
const WAT = `
(module
  (import "env" "memory" (memory 1))

  ;; dst[0..n) = src[0..n), sixteen floats at a time, then four, then one at a time.
  (func $copy (param $dst i32) (param $src i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $dst) (i32.shl (i32.and (local.get $n) (i32.const -16)) (i32.const 2))))
    (block $done (loop $wide
      (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
      (v128.store offset=0 (local.get $dst) (v128.load offset=0 (local.get $src)))
      (v128.store offset=16 (local.get $dst) (v128.load offset=16 (local.get $src)))
      (v128.store offset=32 (local.get $dst) (v128.load offset=32 (local.get $src)))
      (v128.store offset=48 (local.get $dst) (v128.load offset=48 (local.get $src)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 64)))
      (local.set $src (i32.add (local.get $src) (i32.const 64)))
      (br $wide)))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 12)) (i32.const 2))))
    (block $done (loop $vec
      (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
      (v128.store (local.get $dst) (v128.load (local.get $src)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
      (local.set $src (i32.add (local.get $src) (i32.const 16)))
      (br $vec)))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $done (loop $one
      (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
      (f32.store (local.get $dst) (f32.load (local.get $src)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
      (local.set $src (i32.add (local.get $src) (i32.const 4)))
      (br $one))))

  ;; dst[0..n) += src[0..n).
  (func $accumulate (param $dst i32) (param $src i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $dst) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done (loop $vec
      (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
      (v128.store (local.get $dst) (f32x4.add (v128.load (local.get $dst)) (v128.load (local.get $src))))
      (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
      (local.set $src (i32.add (local.get $src) (i32.const 16)))
      (br $vec)))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $done (loop $one
      (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
      (f32.store (local.get $dst) (f32.add (f32.load (local.get $dst)) (f32.load (local.get $src))))
      (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
      (local.set $src (i32.add (local.get $src) (i32.const 4)))
      (br $one))))

  ;; One patch row per output position: for every (example, output row, output column,
  ;; filter row), the filter row's fW pixels are one contiguous run of fW·inC floats of the
  ;; input and of the patch row. $mode 0 copies the run's in-image part into the patch row
  ;; at $cols and zeros the rest (im2col); $mode 1 adds the in-image part back onto the
  ;; input (col2im). Only the in-image pixels [fwStart, fwEnd) of a run touch the input.
  (func $patches
    (param $mode i32) (param $x i32) (param $cols i32) (param $first i32) (param $examples i32)
    (param $inH i32) (param $inW i32) (param $inC i32) (param $outH i32) (param $outW i32)
    (param $fH i32) (param $fW i32) (param $sH i32) (param $sW i32) (param $top i32) (param $left i32)
    (local $n i32) (local $last i32) (local $oh i32) (local $ow i32) (local $fh i32)
    (local $ih i32) (local $iw i32) (local $pixel i32) (local $fwStart i32) (local $fwEnd i32)
    (local $pixelBytes i32) (local $runBytes i32) (local $in i32)
    (local.set $pixelBytes (i32.shl (local.get $inC) (i32.const 2)))
    (local.set $runBytes (i32.mul (local.get $pixelBytes) (local.get $fW)))
    (local.set $n (local.get $first))
    (local.set $last (i32.add (local.get $first) (local.get $examples)))
    (block $nDone (loop $nLoop
      (br_if $nDone (i32.ge_s (local.get $n) (local.get $last)))
      (local.set $oh (i32.const 0))
      (block $ohDone (loop $ohLoop
        (br_if $ohDone (i32.ge_s (local.get $oh) (local.get $outH)))
        (local.set $ow (i32.const 0))
        (block $owDone (loop $owLoop
          (br_if $owDone (i32.ge_s (local.get $ow) (local.get $outW)))
          ;; the run's in-image pixels: iw = ow·sW − left + fw ∈ [0, inW)
          (local.set $iw (i32.sub (i32.mul (local.get $ow) (local.get $sW)) (local.get $left)))
          (local.set $fwStart (select (i32.sub (i32.const 0) (local.get $iw)) (i32.const 0)
            (i32.lt_s (local.get $iw) (i32.const 0))))
          (local.set $fwEnd (i32.sub (local.get $inW) (local.get $iw)))
          (if (i32.gt_s (local.get $fwEnd) (local.get $fW)) (then (local.set $fwEnd (local.get $fW))))
          (if (i32.lt_s (local.get $fwEnd) (local.get $fwStart)) (then (local.set $fwEnd (local.get $fwStart))))
          (local.set $fh (i32.const 0))
          (block $fhDone (loop $fhLoop
            (br_if $fhDone (i32.ge_s (local.get $fh) (local.get $fH)))
            (local.set $ih (i32.sub (i32.add (i32.mul (local.get $oh) (local.get $sH)) (local.get $fh)) (local.get $top)))
            (local.set $in (i32.and (i32.lt_u (local.get $ih) (local.get $inH))
              (i32.gt_s (local.get $fwEnd) (local.get $fwStart))))
            (if (local.get $in)
              (then
                ;; the input at (n, ih, iw + fwStart)
                (local.set $pixel (i32.add (local.get $x) (i32.mul (local.get $pixelBytes)
                  (i32.add (i32.mul (i32.add (i32.mul (local.get $n) (local.get $inH)) (local.get $ih)) (local.get $inW))
                    (i32.add (local.get $iw) (local.get $fwStart))))))
                (if (i32.eqz (local.get $mode))
                  (then
                    ;; (memory.fill is a call into the runtime: only where the run leaves the image)
                    (if (local.get $fwStart)
                      (then (memory.fill (local.get $cols) (i32.const 0) (i32.mul (local.get $fwStart) (local.get $pixelBytes)))))
                    (call $copy
                      (i32.add (local.get $cols) (i32.mul (local.get $fwStart) (local.get $pixelBytes)))
                      (local.get $pixel)
                      (i32.mul (i32.sub (local.get $fwEnd) (local.get $fwStart)) (local.get $inC)))
                    (if (i32.lt_s (local.get $fwEnd) (local.get $fW))
                      (then (memory.fill (i32.add (local.get $cols) (i32.mul (local.get $fwEnd) (local.get $pixelBytes)))
                        (i32.const 0) (i32.mul (i32.sub (local.get $fW) (local.get $fwEnd)) (local.get $pixelBytes))))))
                  (else
                    (call $accumulate
                      (local.get $pixel)
                      (i32.add (local.get $cols) (i32.mul (local.get $fwStart) (local.get $pixelBytes)))
                      (i32.mul (i32.sub (local.get $fwEnd) (local.get $fwStart)) (local.get $inC))))))
              (else
                (if (i32.eqz (local.get $mode))
                  (then (memory.fill (local.get $cols) (i32.const 0) (local.get $runBytes))))))
            (local.set $cols (i32.add (local.get $cols) (local.get $runBytes)))
            (local.set $fh (i32.add (local.get $fh) (i32.const 1)))
            (br $fhLoop)))
          (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
          (br $owLoop)))
        (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
        (br $ohLoop)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $nLoop))))


  ;; The transposed layout, one row per patch element (filter row, filter column, channel)
  ;; and one column per output position (example, output row, output column), $rows columns
  ;; in all: for each patch element and output row, the output columns form one contiguous
  ;; run of the patch buffer, read from (or added to) the input at a stride of sW·inC floats,
  ;; or contiguously (SIMD) where that stride is 1. Only the in-image part [owStart, owEnd)
  ;; of a run touches the input; $mode 0 copies (zeros elsewhere), $mode 1 adds back.
  (func $patchesT
    (param $mode i32) (param $x i32) (param $cols i32) (param $first i32) (param $examples i32)
    (param $inH i32) (param $inW i32) (param $inC i32) (param $outH i32) (param $outW i32)
    (param $fH i32) (param $fW i32) (param $sH i32) (param $sW i32) (param $top i32) (param $left i32)
    (local $fh i32) (local $fw i32) (local $c i32) (local $n i32) (local $last i32) (local $oh i32)
    (local $ih i32) (local $owStart i32) (local $owEnd i32) (local $t i32) (local $ow i32)
    (local $src i32) (local $dst i32) (local $step i32) (local $runBytes i32)
    (local.set $step (i32.shl (i32.mul (local.get $sW) (local.get $inC)) (i32.const 2)))
    (local.set $runBytes (i32.shl (local.get $outW) (i32.const 2)))
    (local.set $last (i32.add (local.get $first) (local.get $examples)))
    (local.set $fh (i32.const 0))
    (block $fhDone (loop $fhLoop
      (br_if $fhDone (i32.ge_s (local.get $fh) (local.get $fH)))
      (local.set $fw (i32.const 0))
      (block $fwDone (loop $fwLoop
        (br_if $fwDone (i32.ge_s (local.get $fw) (local.get $fW)))
        ;; owStart = max(0, ceil((left - fw) / sW)); owEnd = min(outW, ceil((inW + left - fw) / sW))
        (local.set $t (i32.sub (local.get $left) (local.get $fw)))
        (local.set $owStart (select
          (i32.div_s (i32.sub (i32.add (local.get $t) (local.get $sW)) (i32.const 1)) (local.get $sW))
          (i32.const 0)
          (i32.gt_s (local.get $t) (i32.const 0))))
        (local.set $t (i32.add (local.get $inW) (local.get $t)))
        (local.set $owEnd (select
          (i32.div_s (i32.sub (i32.add (local.get $t) (local.get $sW)) (i32.const 1)) (local.get $sW))
          (i32.const 0)
          (i32.gt_s (local.get $t) (i32.const 0))))
        (if (i32.gt_s (local.get $owEnd) (local.get $outW)) (then (local.set $owEnd (local.get $outW))))
        (if (i32.gt_s (local.get $owStart) (local.get $owEnd)) (then (local.set $owStart (local.get $owEnd))))
        (local.set $c (i32.const 0))
        (block $cDone (loop $cLoop
          (br_if $cDone (i32.ge_s (local.get $c) (local.get $inC)))
          (local.set $n (local.get $first))
          (block $nDone (loop $nLoop
            (br_if $nDone (i32.ge_s (local.get $n) (local.get $last)))
            (local.set $oh (i32.const 0))
            (block $ohDone (loop $ohLoop
              (br_if $ohDone (i32.ge_s (local.get $oh) (local.get $outH)))
              (local.set $ih (i32.sub (i32.add (i32.mul (local.get $oh) (local.get $sH)) (local.get $fh)) (local.get $top)))
              (if (i32.lt_u (local.get $ih) (local.get $inH))
                (then
                  ;; src: the input at (n, ih, owStart·sW + fw − left, c)
                  (local.set $src (i32.add (local.get $x) (i32.shl (i32.add (i32.mul
                    (i32.add (i32.mul (i32.add (i32.mul (local.get $n) (local.get $inH)) (local.get $ih)) (local.get $inW))
                      (i32.sub (i32.add (i32.mul (local.get $owStart) (local.get $sW)) (local.get $fw)) (local.get $left)))
                    (local.get $inC)) (local.get $c)) (i32.const 2))))
                  (local.set $dst (i32.add (local.get $cols) (i32.shl (local.get $owStart) (i32.const 2))))
                  (if (i32.eqz (local.get $mode))
                    (then
                      (memory.fill (local.get $cols) (i32.const 0) (i32.shl (local.get $owStart) (i32.const 2)))
                      (local.set $t (i32.add (local.get $cols) (i32.shl (local.get $owEnd) (i32.const 2))))
                      (memory.fill (local.get $t) (i32.const 0) (i32.sub (local.get $runBytes) (i32.shl (local.get $owEnd) (i32.const 2))))))
                  (if (i32.eq (local.get $step) (i32.const 4))
                    (then
                      (if (i32.eqz (local.get $mode))
                        (then (call $copy (local.get $dst) (local.get $src) (i32.sub (local.get $owEnd) (local.get $owStart))))
                        (else (call $accumulate (local.get $src) (local.get $dst) (i32.sub (local.get $owEnd) (local.get $owStart))))))
                    (else
                      (local.set $ow (local.get $owStart))
                      (block $owDone (loop $owLoop
                        (br_if $owDone (i32.ge_s (local.get $ow) (local.get $owEnd)))
                        (if (i32.eqz (local.get $mode))
                          (then (f32.store (local.get $dst) (f32.load (local.get $src))))
                          (else (f32.store (local.get $src) (f32.add (f32.load (local.get $src)) (f32.load (local.get $dst))))))
                        (local.set $src (i32.add (local.get $src) (local.get $step)))
                        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
                        (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
                        (br $owLoop))))))
                (else
                  (if (i32.eqz (local.get $mode))
                    (then (memory.fill (local.get $cols) (i32.const 0) (local.get $runBytes))))))
              (local.set $cols (i32.add (local.get $cols) (local.get $runBytes)))
              (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
              (br $ohLoop)))
            (local.set $n (i32.add (local.get $n) (i32.const 1)))
            (br $nLoop)))
          (local.set $c (i32.add (local.get $c) (i32.const 1)))
          (br $cLoop)))
        (local.set $fw (i32.add (local.get $fw) (i32.const 1)))
        (br $fwLoop)))
      (local.set $fh (i32.add (local.get $fh) (i32.const 1)))
      (br $fhLoop))))

  (func (export "im2col")
    (param $x i32) (param $cols i32) (param $first i32) (param $examples i32)
    (param $inH i32) (param $inW i32) (param $inC i32) (param $outH i32) (param $outW i32)
    (param $fH i32) (param $fW i32) (param $sH i32) (param $sW i32) (param $top i32) (param $left i32)
    (call $patches (i32.const 0) (local.get $x) (local.get $cols) (local.get $first) (local.get $examples)
      (local.get $inH) (local.get $inW) (local.get $inC) (local.get $outH) (local.get $outW)
      (local.get $fH) (local.get $fW) (local.get $sH) (local.get $sW) (local.get $top) (local.get $left)))

  (func (export "col2im")
    (param $cols i32) (param $dx i32) (param $first i32) (param $examples i32)
    (param $inH i32) (param $inW i32) (param $inC i32) (param $outH i32) (param $outW i32)
    (param $fH i32) (param $fW i32) (param $sH i32) (param $sW i32) (param $top i32) (param $left i32)
    (call $patches (i32.const 1) (local.get $dx) (local.get $cols) (local.get $first) (local.get $examples)
      (local.get $inH) (local.get $inW) (local.get $inC) (local.get $outH) (local.get $outW)
      (local.get $fH) (local.get $fW) (local.get $sH) (local.get $sW) (local.get $top) (local.get $left)))

  (func (export "im2colT")
    (param $x i32) (param $cols i32) (param $first i32) (param $examples i32)
    (param $inH i32) (param $inW i32) (param $inC i32) (param $outH i32) (param $outW i32)
    (param $fH i32) (param $fW i32) (param $sH i32) (param $sW i32) (param $top i32) (param $left i32)
    (call $patchesT (i32.const 0) (local.get $x) (local.get $cols) (local.get $first) (local.get $examples)
      (local.get $inH) (local.get $inW) (local.get $inC) (local.get $outH) (local.get $outW)
      (local.get $fH) (local.get $fW) (local.get $sH) (local.get $sW) (local.get $top) (local.get $left)))

  (func (export "col2imT")
    (param $cols i32) (param $dx i32) (param $first i32) (param $examples i32)
    (param $inH i32) (param $inW i32) (param $inC i32) (param $outH i32) (param $outW i32)
    (param $fH i32) (param $fW i32) (param $sH i32) (param $sW i32) (param $top i32) (param $left i32)
    (call $patchesT (i32.const 1) (local.get $dx) (local.get $cols) (local.get $first) (local.get $examples)
      (local.get $inH) (local.get $inW) (local.get $inC) (local.get $outH) (local.get $outW)
      (local.get $fH) (local.get $fW) (local.get $sH) (local.get $sW) (local.get $top) (local.get $left)))

  ;; One Adam step over n parameters, four at a time then one at a time, in float32:
  ;; m = b1·m + (1−b1)·g; v = b2·v + (1−b2)·g²; p −= stepSize·m / (√(v·secondScale) + eps).
  (func (export "adam")
    (param $p i32) (param $g i32) (param $m i32) (param $v i32) (param $n i32)
    (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32)
    (param $stepSize f32) (param $secondScale f32) (param $eps f32)
    (local $end i32) (local $gi v128) (local $mi v128) (local $vi v128)
    (local $gOne f32) (local $mOne f32) (local $vOne f32)
    (local.set $end (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done (loop $vec
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $gi (v128.load (local.get $g)))
      (local.set $mi (f32x4.add
        (f32x4.mul (f32x4.splat (local.get $b1)) (v128.load (local.get $m)))
        (f32x4.mul (f32x4.splat (local.get $c1)) (local.get $gi))))
      (local.set $vi (f32x4.add
        (f32x4.mul (f32x4.splat (local.get $b2)) (v128.load (local.get $v)))
        (f32x4.mul (f32x4.splat (local.get $c2)) (f32x4.mul (local.get $gi) (local.get $gi)))))
      (v128.store (local.get $m) (local.get $mi))
      (v128.store (local.get $v) (local.get $vi))
      (v128.store (local.get $p) (f32x4.sub (v128.load (local.get $p))
        (f32x4.div
          (f32x4.mul (f32x4.splat (local.get $stepSize)) (local.get $mi))
          (f32x4.add
            (f32x4.sqrt (f32x4.mul (local.get $vi) (f32x4.splat (local.get $secondScale))))
            (f32x4.splat (local.get $eps))))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (local.set $g (i32.add (local.get $g) (i32.const 16)))
      (local.set $m (i32.add (local.get $m) (i32.const 16)))
      (local.set $v (i32.add (local.get $v) (i32.const 16)))
      (br $vec)))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $done (loop $one
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $gOne (f32.load (local.get $g)))
      (local.set $mOne (f32.add (f32.mul (local.get $b1) (f32.load (local.get $m))) (f32.mul (local.get $c1) (local.get $gOne))))
      (local.set $vOne (f32.add (f32.mul (local.get $b2) (f32.load (local.get $v)))
        (f32.mul (local.get $c2) (f32.mul (local.get $gOne) (local.get $gOne)))))
      (f32.store (local.get $m) (local.get $mOne))
      (f32.store (local.get $v) (local.get $vOne))
      (f32.store (local.get $p) (f32.sub (f32.load (local.get $p))
        (f32.div (f32.mul (local.get $stepSize) (local.get $mOne))
          (f32.add (f32.sqrt (f32.mul (local.get $vOne) (local.get $secondScale))) (local.get $eps)))))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (local.set $g (i32.add (local.get $g) (i32.const 4)))
      (local.set $m (i32.add (local.get $m) (i32.const 4)))
      (local.set $v (i32.add (local.get $v) (i32.const 4)))
      (br $one))))

  ;; dx[at] += g where at >= 0 (a float index).
  (func $scatter (param $dx i32) (param $at i32) (param $g f32)
    (local $address i32)
    (if (i32.ge_s (local.get $at) (i32.const 0))
      (then
        (local.set $address (i32.add (local.get $dx) (i32.shl (local.get $at) (i32.const 2))))
        (f32.store (local.get $address) (f32.add (f32.load (local.get $address)) (local.get $g))))))

  (func (export "maxPoolGrad")
    (param $x i32) (param $dy i32) (param $dx i32) (param $batch i32)
    (param $inH i32) (param $inW i32) (param $inC i32) (param $outH i32) (param $outW i32)
    (param $fH i32) (param $fW i32) (param $sH i32) (param $sW i32) (param $top i32) (param $left i32)
    (local $b i32) (local $oh i32) (local $ow i32) (local $r i32) (local $c i32) (local $d i32)
    (local $rMin i32) (local $rMax i32) (local $cMin i32) (local $cMax i32)
    (local $vecC i32) (local $p i32) (local $best v128) (local $at v128) (local $v v128) (local $gt v128)
    (local $bestOne f32) (local $atOne i32) (local $vOne f32)
    (local.set $vecC (i32.and (local.get $inC) (i32.const -4)))
    (local.set $b (i32.const 0))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_s (local.get $b) (local.get $batch)))
      (local.set $oh (i32.const 0))
      (block $ohDone (loop $ohLoop
        (br_if $ohDone (i32.ge_s (local.get $oh) (local.get $outH)))
        (local.set $rMin (i32.sub (i32.mul (local.get $oh) (local.get $sH)) (local.get $top)))
        (local.set $rMax (i32.add (local.get $rMin) (local.get $fH)))
        (if (i32.lt_s (local.get $rMin) (i32.const 0)) (then (local.set $rMin (i32.const 0))))
        (if (i32.gt_s (local.get $rMax) (local.get $inH)) (then (local.set $rMax (local.get $inH))))
        (local.set $ow (i32.const 0))
        (block $owDone (loop $owLoop
          (br_if $owDone (i32.ge_s (local.get $ow) (local.get $outW)))
          (local.set $cMin (i32.sub (i32.mul (local.get $ow) (local.get $sW)) (local.get $left)))
          (local.set $cMax (i32.add (local.get $cMin) (local.get $fW)))
          (if (i32.lt_s (local.get $cMin) (i32.const 0)) (then (local.set $cMin (i32.const 0))))
          (if (i32.gt_s (local.get $cMax) (local.get $inW)) (then (local.set $cMax (local.get $inW))))
          ;; Four channels at a time: the running maximum and where it is, selected per lane.
          (local.set $d (i32.const 0))
          (block $dDone (loop $dLoop
            (br_if $dDone (i32.ge_s (local.get $d) (local.get $vecC)))
            (local.set $best (f32x4.splat (f32.const -inf)))
            (local.set $at (i32x4.splat (i32.const -1)))
            (local.set $r (local.get $rMin))
            (block $rDone (loop $rLoop
              (br_if $rDone (i32.ge_s (local.get $r) (local.get $rMax)))
              (local.set $c (local.get $cMin))
              (block $cDone (loop $cLoop
                (br_if $cDone (i32.ge_s (local.get $c) (local.get $cMax)))
                (local.set $p (i32.add (i32.mul (local.get $inC)
                  (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $inH)) (local.get $r)) (local.get $inW)) (local.get $c)))
                  (local.get $d)))
                (local.set $v (v128.load (i32.add (local.get $x) (i32.shl (local.get $p) (i32.const 2)))))
                (local.set $gt (f32x4.gt (local.get $v) (local.get $best)))
                (local.set $best (v128.bitselect (local.get $v) (local.get $best) (local.get $gt)))
                (local.set $at (v128.bitselect
                  (i32x4.add (i32x4.splat (local.get $p)) (v128.const i32x4 0 1 2 3))
                  (local.get $at) (local.get $gt)))
                (local.set $c (i32.add (local.get $c) (i32.const 1)))
                (br $cLoop)))
              (local.set $r (i32.add (local.get $r) (i32.const 1)))
              (br $rLoop)))
            (call $scatter (local.get $dx) (i32x4.extract_lane 0 (local.get $at)) (f32.load offset=0 (local.get $dy)))
            (call $scatter (local.get $dx) (i32x4.extract_lane 1 (local.get $at)) (f32.load offset=4 (local.get $dy)))
            (call $scatter (local.get $dx) (i32x4.extract_lane 2 (local.get $at)) (f32.load offset=8 (local.get $dy)))
            (call $scatter (local.get $dx) (i32x4.extract_lane 3 (local.get $at)) (f32.load offset=12 (local.get $dy)))
            (local.set $dy (i32.add (local.get $dy) (i32.const 16)))
            (local.set $d (i32.add (local.get $d) (i32.const 4)))
            (br $dLoop)))
          ;; The last 0-3 channels one at a time.
          (block $tDone (loop $tLoop
            (br_if $tDone (i32.ge_s (local.get $d) (local.get $inC)))
            (local.set $bestOne (f32.const -inf))
            (local.set $atOne (i32.const -1))
            (local.set $r (local.get $rMin))
            (block $rDone (loop $rLoop
              (br_if $rDone (i32.ge_s (local.get $r) (local.get $rMax)))
              (local.set $c (local.get $cMin))
              (block $cDone (loop $cLoop
                (br_if $cDone (i32.ge_s (local.get $c) (local.get $cMax)))
                (local.set $p (i32.add (i32.mul (local.get $inC)
                  (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $inH)) (local.get $r)) (local.get $inW)) (local.get $c)))
                  (local.get $d)))
                (local.set $vOne (f32.load (i32.add (local.get $x) (i32.shl (local.get $p) (i32.const 2)))))
                (if (f32.gt (local.get $vOne) (local.get $bestOne))
                  (then (local.set $bestOne (local.get $vOne)) (local.set $atOne (local.get $p))))
                (local.set $c (i32.add (local.get $c) (i32.const 1)))
                (br $cLoop)))
              (local.set $r (i32.add (local.get $r) (i32.const 1)))
              (br $rLoop)))
            (call $scatter (local.get $dx) (local.get $atOne) (f32.load (local.get $dy)))
            (local.set $dy (i32.add (local.get $dy) (i32.const 4)))
            (local.set $d (i32.add (local.get $d) (i32.const 1)))
            (br $tLoop)))
          (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
          (br $owLoop)))
        (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
        (br $ohLoop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bLoop))))
  ;; The fused layers' elementwise passes (native_fused.ts).

  ;; y[r, j] += b[j] for $rows rows of $c channels, then y = max(y, 0) where $relu, in place.
  (func (export "biasAct") (param $y i32) (param $b i32) (param $rows i32) (param $c i32) (param $relu i32)
    (local $r i32) (local $bp i32) (local $bEnd i32) (local $bVecEnd i32) (local $v v128) (local $one f32)
    (local.set $bEnd (i32.add (local.get $b) (i32.shl (local.get $c) (i32.const 2))))
    (local.set $bVecEnd (i32.add (local.get $b) (i32.shl (i32.and (local.get $c) (i32.const -4)) (i32.const 2))))
    (block $rDone (loop $rLoop
      (br_if $rDone (i32.ge_s (local.get $r) (local.get $rows)))
      (local.set $bp (local.get $b))
      (block $done (loop $vec
        (br_if $done (i32.ge_u (local.get $bp) (local.get $bVecEnd)))
        (local.set $v (f32x4.add (v128.load (local.get $y)) (v128.load (local.get $bp))))
        (if (local.get $relu) (then (local.set $v (f32x4.max (local.get $v) (v128.const f32x4 0 0 0 0)))))
        (v128.store (local.get $y) (local.get $v))
        (local.set $y (i32.add (local.get $y) (i32.const 16)))
        (local.set $bp (i32.add (local.get $bp) (i32.const 16)))
        (br $vec)))
      (block $done (loop $one
        (br_if $done (i32.ge_u (local.get $bp) (local.get $bEnd)))
        (local.set $one (f32.add (f32.load (local.get $y)) (f32.load (local.get $bp))))
        (if (local.get $relu) (then (local.set $one (f32.max (local.get $one) (f32.const 0)))))
        (f32.store (local.get $y) (local.get $one))
        (local.set $y (i32.add (local.get $y) (i32.const 4)))
        (local.set $bp (i32.add (local.get $bp) (i32.const 4)))
        (br $one)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rLoop))))

  ;; dz[i] = y[i] > 0 ? dy[i] : 0 for $n floats (the ReLU's gradient, from its output).
  (func (export "reluMask") (param $dy i32) (param $y i32) (param $dz i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $dz) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done (loop $vec
      (br_if $done (i32.ge_u (local.get $dz) (local.get $end)))
      (v128.store (local.get $dz) (v128.and (v128.load (local.get $dy))
        (f32x4.gt (v128.load (local.get $y)) (v128.const f32x4 0 0 0 0))))
      (local.set $dy (i32.add (local.get $dy) (i32.const 16)))
      (local.set $y (i32.add (local.get $y) (i32.const 16)))
      (local.set $dz (i32.add (local.get $dz) (i32.const 16)))
      (br $vec)))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $done (loop $one
      (br_if $done (i32.ge_u (local.get $dz) (local.get $end)))
      (f32.store (local.get $dz) (select (f32.load (local.get $dy)) (f32.const 0)
        (f32.gt (f32.load (local.get $y)) (f32.const 0))))
      (local.set $dy (i32.add (local.get $dy) (i32.const 4)))
      (local.set $y (i32.add (local.get $y) (i32.const 4)))
      (local.set $dz (i32.add (local.get $dz) (i32.const 4)))
      (br $one))))

  ;; MaxPool of a 2×2 window, stride 2, no padding, over $n NHWC examples of x[h, w, c] into
  ;; y[h/2, w/2, c]: each window's first maximum (row-major order, strict >, as maxPool2Grad
  ;; picks it), four channels at a time.
  (func (export "maxPool2") (param $x i32) (param $y i32)
    (param $n i32) (param $h i32) (param $w i32) (param $c i32)
    (local $b i32) (local $i i32) (local $j i32) (local $d i32) (local $vecC i32)
    (local $p i32) (local $row i32) (local $pixel i32) (local $ph i32) (local $pw i32)
    (local $best v128) (local $v v128) (local $bestOne f32) (local $vOne f32)
    (local.set $vecC (i32.and (local.get $c) (i32.const -4)))
    (local.set $pixel (i32.shl (local.get $c) (i32.const 2)))
    (local.set $row (i32.mul (local.get $w) (local.get $pixel)))
    (local.set $ph (i32.shr_u (local.get $h) (i32.const 1)))
    (local.set $pw (i32.shr_u (local.get $w) (i32.const 1)))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_s (local.get $b) (local.get $n)))
      (local.set $i (i32.const 0))
      (block $iDone (loop $iLoop
        (br_if $iDone (i32.ge_s (local.get $i) (local.get $ph)))
        (local.set $j (i32.const 0))
        (block $jDone (loop $jLoop
          (br_if $jDone (i32.ge_s (local.get $j) (local.get $pw)))
          (local.set $p (i32.add (local.get $x) (i32.shl (i32.mul (local.get $c)
            (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (i32.shl (local.get $i) (i32.const 1))) (local.get $w))
              (i32.shl (local.get $j) (i32.const 1)))) (i32.const 2))))
          (local.set $d (i32.const 0))
          (block $dDone (loop $dLoop
            (br_if $dDone (i32.ge_s (local.get $d) (local.get $vecC)))
            (local.set $best (v128.load (local.get $p)))
            (local.set $v (v128.load (i32.add (local.get $p) (local.get $pixel))))
            (local.set $best (v128.bitselect (local.get $v) (local.get $best) (f32x4.gt (local.get $v) (local.get $best))))
            (local.set $v (v128.load (i32.add (local.get $p) (local.get $row))))
            (local.set $best (v128.bitselect (local.get $v) (local.get $best) (f32x4.gt (local.get $v) (local.get $best))))
            (local.set $v (v128.load (i32.add (i32.add (local.get $p) (local.get $row)) (local.get $pixel))))
            (local.set $best (v128.bitselect (local.get $v) (local.get $best) (f32x4.gt (local.get $v) (local.get $best))))
            (v128.store (local.get $y) (local.get $best))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (local.set $y (i32.add (local.get $y) (i32.const 16)))
            (local.set $d (i32.add (local.get $d) (i32.const 4)))
            (br $dLoop)))
          (block $dDone (loop $dLoop
            (br_if $dDone (i32.ge_s (local.get $d) (local.get $c)))
            (local.set $bestOne (f32.load (local.get $p)))
            (local.set $vOne (f32.load (i32.add (local.get $p) (local.get $pixel))))
            (if (f32.gt (local.get $vOne) (local.get $bestOne)) (then (local.set $bestOne (local.get $vOne))))
            (local.set $vOne (f32.load (i32.add (local.get $p) (local.get $row))))
            (if (f32.gt (local.get $vOne) (local.get $bestOne)) (then (local.set $bestOne (local.get $vOne))))
            (local.set $vOne (f32.load (i32.add (i32.add (local.get $p) (local.get $row)) (local.get $pixel))))
            (if (f32.gt (local.get $vOne) (local.get $bestOne)) (then (local.set $bestOne (local.get $vOne))))
            (f32.store (local.get $y) (local.get $bestOne))
            (local.set $p (i32.add (local.get $p) (i32.const 4)))
            (local.set $y (i32.add (local.get $y) (i32.const 4)))
            (local.set $d (i32.add (local.get $d) (i32.const 1)))
            (br $dLoop)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $iLoop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bLoop))))

  ;; MaxPoolGrad of a 2×2 window, stride 2, no padding, over $n NHWC examples of x[h, w, c]:
  ;; each window's dy goes to its first maximum in x (row-major order, strict >), four
  ;; channels at a time, and every other pixel of the window gets zero, so each pixel of dx is
  ;; written once (the last row and column of an odd size, outside every window, are zeroed).
  (func (export "maxPool2Grad") (param $x i32) (param $dy i32) (param $dx i32)
    (param $n i32) (param $h i32) (param $w i32) (param $c i32)
    (local $b i32) (local $i i32) (local $j i32) (local $d i32) (local $vecC i32)
    (local $p i32) (local $q i32) (local $row i32) (local $pixel i32) (local $ph i32) (local $pw i32)
    (local $best v128) (local $at v128) (local $v v128) (local $gt v128) (local $g v128)
    (local $bestOne f32) (local $atOne i32) (local $vOne f32) (local $gOne f32)
    (if (i32.or (i32.and (local.get $h) (i32.const 1)) (i32.and (local.get $w) (i32.const 1)))
      (then (memory.fill (local.get $dx) (i32.const 0)
        (i32.shl (i32.mul (i32.mul (local.get $n) (local.get $h)) (i32.mul (local.get $w) (local.get $c))) (i32.const 2)))))
    (local.set $vecC (i32.and (local.get $c) (i32.const -4)))
    (local.set $pixel (i32.shl (local.get $c) (i32.const 2)))
    (local.set $row (i32.mul (local.get $w) (local.get $pixel)))
    (local.set $ph (i32.shr_u (local.get $h) (i32.const 1)))
    (local.set $pw (i32.shr_u (local.get $w) (i32.const 1)))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_s (local.get $b) (local.get $n)))
      (local.set $i (i32.const 0))
      (block $iDone (loop $iLoop
        (br_if $iDone (i32.ge_s (local.get $i) (local.get $ph)))
        (local.set $j (i32.const 0))
        (block $jDone (loop $jLoop
          (br_if $jDone (i32.ge_s (local.get $j) (local.get $pw)))
          ;; p: the window's top-left pixel (b, 2i, 2j, 0) in x, q: the same in dx, in bytes
          (local.set $p (i32.shl (i32.mul (local.get $c)
            (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (i32.shl (local.get $i) (i32.const 1))) (local.get $w))
              (i32.shl (local.get $j) (i32.const 1)))) (i32.const 2)))
          (local.set $q (i32.add (local.get $dx) (local.get $p)))
          (local.set $p (i32.add (local.get $x) (local.get $p)))
          (local.set $d (i32.const 0))
          (block $dDone (loop $dLoop
            (br_if $dDone (i32.ge_s (local.get $d) (local.get $vecC)))
            (local.set $best (v128.load (local.get $p)))
            (local.set $at (v128.const i32x4 0 0 0 0))
            (local.set $v (v128.load (i32.add (local.get $p) (local.get $pixel))))
            (local.set $gt (f32x4.gt (local.get $v) (local.get $best)))
            (local.set $best (v128.bitselect (local.get $v) (local.get $best) (local.get $gt)))
            (local.set $at (v128.bitselect (v128.const i32x4 1 1 1 1) (local.get $at) (local.get $gt)))
            (local.set $v (v128.load (i32.add (local.get $p) (local.get $row))))
            (local.set $gt (f32x4.gt (local.get $v) (local.get $best)))
            (local.set $best (v128.bitselect (local.get $v) (local.get $best) (local.get $gt)))
            (local.set $at (v128.bitselect (v128.const i32x4 2 2 2 2) (local.get $at) (local.get $gt)))
            (local.set $v (v128.load (i32.add (i32.add (local.get $p) (local.get $row)) (local.get $pixel))))
            (local.set $gt (f32x4.gt (local.get $v) (local.get $best)))
            (local.set $at (v128.bitselect (v128.const i32x4 3 3 3 3) (local.get $at) (local.get $gt)))
            (local.set $g (v128.load (local.get $dy)))
            (v128.store (local.get $q)
              (v128.and (local.get $g) (i32x4.eq (local.get $at) (v128.const i32x4 0 0 0 0))))
            (v128.store (i32.add (local.get $q) (local.get $pixel))
              (v128.and (local.get $g) (i32x4.eq (local.get $at) (v128.const i32x4 1 1 1 1))))
            (v128.store (i32.add (local.get $q) (local.get $row))
              (v128.and (local.get $g) (i32x4.eq (local.get $at) (v128.const i32x4 2 2 2 2))))
            (v128.store (i32.add (i32.add (local.get $q) (local.get $row)) (local.get $pixel))
              (v128.and (local.get $g) (i32x4.eq (local.get $at) (v128.const i32x4 3 3 3 3))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (local.set $q (i32.add (local.get $q) (i32.const 16)))
            (local.set $dy (i32.add (local.get $dy) (i32.const 16)))
            (local.set $d (i32.add (local.get $d) (i32.const 4)))
            (br $dLoop)))
          (block $dDone (loop $dLoop
            (br_if $dDone (i32.ge_s (local.get $d) (local.get $c)))
            (local.set $bestOne (f32.load (local.get $p)))
            (local.set $atOne (i32.const 0))
            (local.set $vOne (f32.load (i32.add (local.get $p) (local.get $pixel))))
            (if (f32.gt (local.get $vOne) (local.get $bestOne)) (then (local.set $bestOne (local.get $vOne)) (local.set $atOne (i32.const 1))))
            (local.set $vOne (f32.load (i32.add (local.get $p) (local.get $row))))
            (if (f32.gt (local.get $vOne) (local.get $bestOne)) (then (local.set $bestOne (local.get $vOne)) (local.set $atOne (i32.const 2))))
            (local.set $vOne (f32.load (i32.add (i32.add (local.get $p) (local.get $row)) (local.get $pixel))))
            (if (f32.gt (local.get $vOne) (local.get $bestOne)) (then (local.set $atOne (i32.const 3))))
            (local.set $gOne (f32.load (local.get $dy)))
            (f32.store (local.get $q) (select (local.get $gOne) (f32.const 0) (i32.eq (local.get $atOne) (i32.const 0))))
            (f32.store (i32.add (local.get $q) (local.get $pixel))
              (select (local.get $gOne) (f32.const 0) (i32.eq (local.get $atOne) (i32.const 1))))
            (f32.store (i32.add (local.get $q) (local.get $row))
              (select (local.get $gOne) (f32.const 0) (i32.eq (local.get $atOne) (i32.const 2))))
            (f32.store (i32.add (i32.add (local.get $q) (local.get $row)) (local.get $pixel))
              (select (local.get $gOne) (f32.const 0) (i32.eq (local.get $atOne) (i32.const 3))))
            (local.set $p (i32.add (local.get $p) (i32.const 4)))
            (local.set $q (i32.add (local.get $q) (i32.const 4)))
            (local.set $dy (i32.add (local.get $dy) (i32.const 4)))
            (local.set $d (i32.add (local.get $d) (i32.const 1)))
            (br $dLoop)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $iLoop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bLoop))))
)
`;

type GeometryArgs = [
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
];

function geometryArgs(g: Geometry): GeometryArgs {
  return [
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.outHeight,
    g.outWidth,
    g.filterHeight,
    g.filterWidth,
    g.strideHeight,
    g.strideWidth,
    g.padInfo.top,
    g.padInfo.left,
  ];
}

/** The module for a memory of its own, once assembled: Adam's. */
let ready: WebAssembly.Module | undefined;

/** Assembles the module once per process or worker, for `memory`'s kind of heap. */
function compile(memory: WebAssembly.Memory): Promise<WebAssembly.Module> {
  // Assembled on first use: only the native backend's processes pay for loading the assembler.
  return assembleForHeap("native_simd.wat", WAT, memory);
}

/**
 * The kernels, working on `memory` (the wasm backend's heap).
 *
 * @param memory the heap the tensors live in
 * @returns the kernels
 * @example
 * ```ts
 * const kernels = await loadSimdKernels(new WebAssembly.Memory({ initial: 1 }));
 * ```
 */
export async function loadSimdKernels(memory: WebAssembly.Memory): Promise<SimdKernels> {
  const instance = new WebAssembly.Instance(await compile(memory), { env: { memory } });
  // Adam's memory is its own, never shared.
  ready ??= await compile(new WebAssembly.Memory({ initial: 1 }));
  type Patches = (
    a: Pointer,
    b: Pointer,
    first: number,
    examples: number,
    ...g: GeometryArgs
  ) => void;
  type PoolGrad = (x: Pointer, dy: Pointer, dx: Pointer, batch: number, ...g: GeometryArgs) => void;
  const exports = instance.exports as unknown as {
    im2col: Patches;
    im2colT: Patches;
    col2im: Patches;
    col2imT: Patches;
    maxPoolGrad: PoolGrad;
    biasAct: (y: Pointer, b: Pointer, rows: number, c: number, relu: number) => void;
    reluMask: SimdKernels["reluMask"];
    maxPool2Grad: SimdKernels["maxPool2Grad"];
    maxPool2: SimdKernels["maxPool2"];
  };
  return {
    im2col: (x, cols, first, examples, g) =>
      exports.im2col(x, cols, first, examples, ...geometryArgs(g)),
    im2colT: (x, cols, first, examples, g) =>
      exports.im2colT(x, cols, first, examples, ...geometryArgs(g)),
    col2im: (cols, dx, first, examples, g) =>
      exports.col2im(cols, dx, first, examples, ...geometryArgs(g)),
    col2imT: (cols, dx, first, examples, g) =>
      exports.col2imT(cols, dx, first, examples, ...geometryArgs(g)),
    maxPoolGrad: (x, dy, dx, batch, g) => exports.maxPoolGrad(x, dy, dx, batch, ...geometryArgs(g)),
    biasAct: (y, b, rows, c, relu) => exports.biasAct(y, b, rows, c, relu ? 1 : 0),
    reluMask: exports.reluMask,
    maxPool2Grad: exports.maxPool2Grad,
    maxPool2: exports.maxPool2,
  };
}

/** WebAssembly page size in bytes. */
const PAGE_BYTES = 65_536;

/**
 * An Adam optimizer for `size` parameters whose update runs in SIMD, or null until the module
 * has been assembled in this process or worker (by {@linkcode loadSimdKernels}: the `native`
 * backend's set-up). Its moments live in its own memory, beside room for one step's
 * parameters and gradients; parameters kept in that room (`params`) are updated where they lie,
 * others are copied in and out.
 *
 * @param size parameters
 * @param rule Adam's constants
 * @returns the optimizer, or null
 * @example
 * ```ts
 * const adam = createSimdAdam(10, { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });
 * adam?.step(new Float32Array(10), new Float32Array(10).fill(0.1), 1e-2, 1e3);
 * ```
 */
export function createSimdAdam(size: number, rule: AdamRule): AdamKernel | null {
  if (!ready) return null;
  const bytes = size * 4;
  const memory = new WebAssembly.Memory({
    initial: Math.max(1, Math.ceil((4 * bytes) / PAGE_BYTES)),
  });
  const instance = new WebAssembly.Instance(ready, { env: { memory } });
  const adam = instance.exports.adam as (...args: number[]) => void;
  const [p, g, m, v] = [0, 1, 2, 3].map((i) => i * bytes);
  const params = new Float32Array(memory.buffer, p, size);
  const grads = new Float32Array(memory.buffer, g, size);
  const { beta1, beta2, epsilon } = rule;
  return {
    params,
    step(target, gradient, stepSize, secondScale) {
      if (target !== params) params.set(target);
      grads.set(gradient);
      adam(p, g, m, v, size, beta1, 1 - beta1, beta2, 1 - beta2, stepSize, secondScale, epsilon);
      if (target !== params) target.set(params);
    },
  };
}
