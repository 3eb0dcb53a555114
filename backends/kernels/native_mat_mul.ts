/**
 * Matrix products on the `native` backend: `BatchMatMul` and `_FusedMatMul` as one
 * `cblas_sgemm` per batch entry, straight on the wasm heap (the transpose flags go to sgemm,
 * nothing is copied). The fused bias is added and the activation applied in place afterwards.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import type { OpenBlas } from "./_openblas.ts";
import { gemmBatch } from "./_split_blas.ts";

/** Activations `_FusedMatMul` applies here; others go to the stock kernel. */
const ACTIVATIONS: Record<string, ((v: number, alpha: number) => number) | null> = {
  linear: null,
  relu: (v) => (v > 0 ? v : 0),
  relu6: (v) => Math.min(Math.max(v, 0), 6),
  leakyrelu: (v, alpha) => (v > 0 ? v : alpha * v),
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  elu: (v) => (v > 0 ? v : Math.expm1(v)),
};

/** The shapes of one product: batch entries (with broadcasting) and the matrix sizes. */
interface Product {
  batchA: number;
  batchB: number;
  batch: number;
  m: number;
  n: number;
  k: number;
  outShape: number[];
}

function plan(a: tf.TensorInfo, b: tf.TensorInfo, transA: boolean, transB: boolean): Product {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb) {
    throw new Error(
      `Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${transA} and transposeB=${transB} must match.`,
    );
  }
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = outerA.reduce((x, y) => x * y, 1);
  const batchB = outerB.reduce((x, y) => x * y, 1);
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  return { batchA, batchB, batch: Math.max(batchA, batchB), m, n, k, outShape: [...outer, m, n] };
}

/**
 * The product of `a` and `b` (each optionally transposed) into a new tensor on the heap.
 * Batch dimensions broadcast where one side has a single entry.
 */
function product(
  blas: OpenBlas,
  wasm: BackendWasm,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transA: boolean,
  transB: boolean,
): tf.TensorInfo {
  const p = plan(a, b, transA, transB);
  const out = wasm.makeOutput(p.outShape, "float32");
  // Views are taken after the allocation above: a heap growth detaches older views.
  const av = wasm.typedArrayFromHeap(a) as Float32Array;
  const bv = wasm.typedArrayFromHeap(b) as Float32Array;
  const cv = wasm.typedArrayFromHeap(out) as Float32Array;
  const { m, n, k } = p;
  if (m * n === 0) return out;
  if (k === 0) {
    cv.fill(0);
    return out;
  }
  if (p.batch === 1) {
    blas.sgemm(transA, transB, m, n, k, av, bv, cv);
    return out;
  }
  // The batch's products split over the compute threads where they exist.
  gemmBatch(blas, {
    transA,
    transB,
    m,
    n,
    k,
    lda: transA ? m : k,
    ldb: transB ? k : n,
    ldc: n,
    beta: 0,
    count: p.batch,
    strideA: p.batchA === 1 ? 0 : m * k,
    strideB: p.batchB === 1 ? 0 : k * n,
    strideC: m * n,
  }, { a: av, b: bv, c: cv });
  return out;
}

/**
 * `BatchMatMul` on OpenBLAS.
 *
 * @param blas the loaded library
 * @returns the kernel function
 * @example
 * ```ts
 * import { loadOpenBlas } from "./_openblas.ts";
 * const load = loadOpenBlas();
 * if (load.ok) makeNativeBatchMatMul(load.blas);
 * ```
 */
export function makeNativeBatchMatMul(blas: OpenBlas): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA = false, transposeB = false } = attrs as unknown as tf.BatchMatMulAttrs;
    return product(blas, backend as BackendWasm, a, b, transposeA, transposeB);
  };
}

/**
 * `_FusedMatMul` on OpenBLAS: the product, then the bias (along the last dimension, or a
 * scalar) and the activation, in place. Anything else (a bias of another shape, prelu) goes
 * to `stock`.
 *
 * @param blas the loaded library
 * @param stock the kernel to use where this one does not apply
 * @returns the kernel function
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { loadOpenBlas } from "./_openblas.ts";
 * const load = loadOpenBlas();
 * const stock = tf.getKernel("_FusedMatMul", "wasm")!.kernelFunc;
 * if (load.ok) makeNativeFusedMatMul(load.blas, stock);
 * ```
 */
export function makeNativeFusedMatMul(blas: OpenBlas, stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { a, b, bias } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const attrs = args.attrs as unknown as tf._FusedMatMulAttrs;
    const activation = ACTIVATIONS[attrs.activation ?? "linear"];
    const n = attrs.transposeB ? b!.shape[b!.shape.length - 2] : b!.shape[b!.shape.length - 1];
    const biasSize = bias ? bias.shape.reduce((x, y) => x * y, 1) : 0;
    const biasFits = !bias || biasSize === 1 || (biasSize === n && bias.shape.at(-1) === n);
    if (activation === undefined || !biasFits) return stock(args);
    const wasm = args.backend as BackendWasm;
    const out = product(blas, wasm, a!, b!, attrs.transposeA, attrs.transposeB);
    if (!bias && activation === null) return out;
    const values = wasm.typedArrayFromHeap(out) as Float32Array;
    const biasValues = bias ? (wasm.typedArrayFromHeap(bias) as Float32Array) : null;
    const alpha = attrs.leakyreluAlpha ?? 0.2;
    for (let i = 0; i < values.length; i++) {
      let v = values[i];
      if (biasValues) v += biasSize === 1 ? biasValues[0] : biasValues[i % n];
      values[i] = activation ? activation(v, alpha) : v;
    }
    return out;
  };
}
