/**
 * webgpu's `Conv2DBackpropFilter`, with the batch cut into chunks.
 *
 * tfjs-backend-webgpu 4.22.0's filter gradient gives each output element one loop over
 * batch × output height × output width. Measured on Deno 2.9.6's llvmpipe adapter, mnist-cnn's
 * first convolution (1 input channel, 28 × 28 outputs) came out wrong at batch 128 (100,352
 * terms a loop: relative error 0.48 against the cpu backend) and right at batch 64 (50,176
 * terms: 9.6e-7). Chunks of at most {@linkcode WEBGPU_FILTER_GRAD_MAX_TERMS} terms, whose
 * gradients are added, keep every loop in the range measured right.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Most batch × output-pixel terms one filter-gradient loop sums (half the largest measured right). */
export const WEBGPU_FILTER_GRAD_MAX_TERMS = 1 << 15;

/**
 * Wrap webgpu's filter gradient so that each call sums at most
 * {@linkcode WEBGPU_FILTER_GRAD_MAX_TERMS} terms per output element.
 *
 * @param base the stock webgpu kernel
 * @returns the chunked kernel (the stock one where the batch fits in one chunk)
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * const base = tf.getKernel("Conv2DBackpropFilter", "webgpu");
 * if (base) makeChunkedConv2dBackpropFilter(base.kernelFunc);
 * ```
 */
export function makeChunkedConv2dBackpropFilter(base: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { inputs, attrs } = args;
    const backend = args.backend as tf.KernelBackend;
    const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const nchw = (attrs as { dataFormat?: string }).dataFormat === "NCHW";
    const [batch] = x.shape;
    const pixels = nchw ? dy.shape[2] * dy.shape[3] : dy.shape[1] * dy.shape[2];
    const chunk = Math.max(1, Math.floor(WEBGPU_FILTER_GRAD_MAX_TERMS / pixels));
    if (batch <= chunk) return base(args);
    const slice = tf.getKernel("Slice", "webgpu")!.kernelFunc;
    const add = tf.getKernel("Add", "webgpu")!.kernelFunc;
    const part = (t: tf.TensorInfo, start: number, n: number) =>
      slice({
        inputs: { x: t },
        backend,
        attrs: { begin: [start, 0, 0, 0], size: [n, t.shape[1], t.shape[2], t.shape[3]] },
      }) as tf.TensorInfo;
    let acc: tf.TensorInfo | null = null;
    for (let start = 0; start < batch; start += chunk) {
      const n = Math.min(chunk, batch - start);
      const xs = part(x, start, n);
      const dys = part(dy, start, n);
      const grad = base({ inputs: { x: xs, dy: dys }, backend, attrs }) as tf.TensorInfo;
      backend.disposeData(xs.dataId);
      backend.disposeData(dys.dataId);
      if (acc == null) acc = grad;
      else {
        const sum = add({ inputs: { a: acc, b: grad }, backend, attrs: {} }) as tf.TensorInfo;
        backend.disposeData(acc.dataId);
        backend.disposeData(grad.dataId);
        acc = sum;
      }
    }
    return acc!;
  };
}
