/**
 * OpenBLAS as the `native` kernels call it on the main thread: a product large enough to pay
 * for waking the compute threads (`_compute_pool.ts`) is cut into blocks of rows (or of columns,
 * where it has more of those), one a thread, each an sgemm on one OpenBLAS thread. This is
 * `--threads N` for matrix products: while compute threads exist OpenBLAS keeps to one thread of
 * its own, whose spinning workers would otherwise take the cores the compute threads run on.
 *
 * @module
 */
import { computePool } from "./_compute_pool.ts";
import type { GemmBatch, GemmBlock, OpenBlas } from "./_openblas.ts";
import { gemmBatchRange } from "./_range_kernels.ts";
import { evenSplit } from "../../core/even_split.ts";

/** Below this many FLOPs a product runs on the calling thread alone (about 0.1 ms). */
export const GEMM_SPLIT_MIN_FLOPS = 8e6;

function address(view: Float32Array): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(view)));
}

/**
 * The blocks a product is cut into: `parts` ranges of C's rows where it has at least as many
 * rows as columns, else of its columns.
 *
 * @param g the whole product
 * @param parts how many blocks
 * @returns the blocks, in order
 * @example
 * ```ts
 * const g = { transA: false, transB: false, m: 4, n: 2, k: 3, a: 0, lda: 3, b: 48, ldb: 2, c: 72, ldc: 2, beta: 0 };
 * gemmBlocks(g, 2).map((b) => b.m); // [2, 2]
 * ```
 */
export function gemmBlocks(g: GemmBlock, parts: number): GemmBlock[] {
  const byRows = g.m >= g.n;
  const size = byRows ? g.m : g.n;
  return evenSplit(size, Math.max(1, Math.min(parts, size))).map(({ offset: from, length }) => {
    if (byRows) {
      return {
        ...g,
        m: length,
        a: g.a + (g.transA ? from : from * g.lda) * 4,
        c: g.c + from * g.ldc * 4,
      };
    }
    return {
      ...g,
      n: length,
      b: g.b + (g.transB ? from * g.ldb : from) * 4,
      c: g.c + from * 4,
    };
  });
}

/**
 * `blas` with its products split over the compute threads where they exist.
 *
 * @param blas the loaded library
 * @returns the same library, `sgemm` splitting
 * @example
 * ```ts
 * import { loadOpenBlas } from "./_openblas.ts";
 * const load = loadOpenBlas();
 * if (load.ok) splittingBlas(load.blas);
 * ```
 */
export function splittingBlas(blas: OpenBlas): OpenBlas {
  return {
    ...blas,
    sgemm(transA, transB, m, n, k, a, b, c, beta = 0) {
      const pool = computePool();
      if (!pool || pool.busy || 2 * m * n * k < GEMM_SPLIT_MIN_FLOPS) {
        blas.sgemm(transA, transB, m, n, k, a, b, c, beta);
        return;
      }
      const whole: GemmBlock = {
        transA,
        transB,
        m,
        n,
        k,
        a: address(a),
        lda: transA ? m : k,
        b: address(b),
        ldb: transB ? k : n,
        c: address(c),
        ldc: n,
        beta,
      };
      const [own, ...rest] = gemmBlocks(whole, pool.helpers + 1);
      pool.run(rest.map((job) => ({ kind: "gemm", job })), () => blas.sgemmAt(own));
    },
  };
}

/**
 * A batch of same-shaped products (`BatchMatMul`'s), split by products over the compute
 * threads where they exist and the batch is large enough to pay, else one after the other here.
 *
 * @param blas the loaded library (unsplit)
 * @param g the products; operands given as views whose addresses are taken here
 * @param views the whole operands, `a`, `b` and `c`
 * @example
 * ```ts
 * import { loadOpenBlas } from "./_openblas.ts";
 * const load = loadOpenBlas();
 * const [a, b, c] = [new Float32Array(8), new Float32Array(8), new Float32Array(8)];
 * const g = { transA: false, transB: false, m: 2, n: 2, k: 2, lda: 2, ldb: 2, ldc: 2, beta: 0, count: 2, strideA: 4, strideB: 4, strideC: 4 };
 * if (load.ok) gemmBatch(load.blas, g, { a, b, c });
 * ```
 */
export function gemmBatch(
  blas: OpenBlas,
  g: Omit<GemmBatch, "a" | "b" | "c">,
  views: { a: Float32Array; b: Float32Array; c: Float32Array },
): void {
  const whole: GemmBatch = { ...g, a: address(views.a), b: address(views.b), c: address(views.c) };
  const pool = computePool();
  const flops = 2 * g.m * g.n * g.k * g.count;
  if (!pool || pool.busy || g.count < 2 || flops < GEMM_SPLIT_MIN_FLOPS) {
    gemmBatchRange(blas, whole);
    return;
  }
  const ranges = evenSplit(g.count, Math.min(pool.helpers + 1, g.count)).map((
    { offset: from, length },
  ) => ({
    ...whole,
    count: length,
    a: whole.a + from * g.strideA * 4,
    b: whole.b + from * g.strideB * 4,
    c: whole.c + from * g.strideC * 4,
  }));
  const [own, ...rest] = ranges;
  pool.run(rest.map((job) => ({ kind: "gemmBatch", job })), () => gemmBatchRange(blas, own));
}
