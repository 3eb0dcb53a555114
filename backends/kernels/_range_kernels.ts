/**
 * The `native` backend's kernels over a range of examples, on addresses in the heap: what the
 * main thread runs for its part of a batch and what each compute thread runs for its own
 * (`_compute_pool.ts`), the same code on the same (shared) heap, so nothing is copied between
 * threads. A job is plain numbers: addresses are byte offsets in the heap, −1 means "none".
 *
 * @module
 */
import type { GemmBatch, GemmBlock, OpenBlas } from "./_openblas.ts";
import type { Geometry, Pointer, SimdKernels } from "./_simd.ts";
import { sumRows } from "./native_sum.ts";

/** What a thread runs jobs with: its OpenBLAS, its SIMD module and the heap both work on. */
export interface RangeKernels {
  blas: OpenBlas;
  simd: SimdKernels;
  memory: WebAssembly.Memory;
}

/** A convolution's geometry and chunking, as a job carries it. */
export interface ConvShape {
  geometry: Geometry;
  outChannels: number;
  /** Output positions per example. */
  rowsPerExample: number;
  /** Floats per patch. */
  patchSize: number;
  /** Examples per chunk of patches. */
  chunk: number;
  /** Whether patches are gathered transposed (a patch element's run over columns is contiguous). */
  contiguousRuns: boolean;
}

/** Examples `[from, to)` of a convolution `y = x ∗ W` (then `+ bias` and ReLU where given). */
export interface ConvolveJob extends ConvShape {
  from: number;
  to: number;
  x: Pointer;
  filter: Pointer;
  y: Pointer;
  /** Room for one chunk's patches, this thread's own. */
  cols: Pointer;
  /** The bias to add, or −1. */
  bias: Pointer;
  relu: boolean;
}

/**
 * Examples `[from, to)` of a filter gradient, added into `dw` (and the bias gradient into
 * `db`): where `y` is given, `dy` is first masked by ReLU's output `y` into `dz`.
 */
export interface FilterGradientJob extends ConvShape {
  from: number;
  to: number;
  x: Pointer;
  dy: Pointer;
  /** The ReLU output to mask `dy` with, or −1 (then `dz` is `dy`). */
  y: Pointer;
  dz: Pointer;
  dw: Pointer;
  /** The bias gradient to add to, or −1. */
  db: Pointer;
  cols: Pointer;
}

/** Examples `[from, to)` of a 2×2, stride-2 max-pool (`y`) or its gradient (`dx` from `dy`). */
export interface Pool2Job {
  from: number;
  to: number;
  height: number;
  width: number;
  channels: number;
  x: Pointer;
  /** The pooled output (forward) or its gradient (backward). */
  y: Pointer;
  /** The input's gradient (backward), or −1 for the forward. */
  dx: Pointer;
}

function floats(memory: WebAssembly.Memory, at: Pointer, length: number): Float32Array {
  return new Float32Array(memory.buffer, at, length);
}

/**
 * Runs a {@linkcode ConvolveJob}: per chunk, the patches gathered, one sgemm into its rows of
 * `y`, then the bias and activation while those rows are in cache.
 *
 * @param k this thread's kernels
 * @param j the job
 * @example
 * ```ts
 * declare const k: RangeKernels;
 * declare const job: ConvolveJob;
 * convolveRange(k, job);
 * ```
 */
export function convolveRange(k: RangeKernels, j: ConvolveJob): void {
  const { outChannels: o, rowsPerExample, patchSize, chunk } = j;
  const perExample = rowsPerExample * o * 4;
  const gather = j.contiguousRuns ? k.simd.im2colT : k.simd.im2col;
  for (let first = j.from; first < j.to; first += chunk) {
    const examples = Math.min(chunk, j.to - first);
    const rows = examples * rowsPerExample;
    const y = j.y + first * perExample;
    gather(j.x, j.cols, first, examples, j.geometry);
    k.blas.sgemm(
      j.contiguousRuns,
      false,
      rows,
      o,
      patchSize,
      floats(k.memory, j.cols, rows * patchSize),
      floats(k.memory, j.filter, patchSize * o),
      floats(k.memory, y, rows * o),
    );
    if (j.bias >= 0) k.simd.biasAct(y, j.bias, rows, o, j.relu);
  }
}

/**
 * Runs a {@linkcode FilterGradientJob}: per chunk, while its rows are in cache, ReLU's mask,
 * the bias sum, then `dW += patchesᵀ · dz`.
 *
 * @param k this thread's kernels
 * @param j the job
 * @example
 * ```ts
 * declare const k: RangeKernels;
 * declare const job: FilterGradientJob;
 * filterGradientRange(k, job);
 * ```
 */
export function filterGradientRange(k: RangeKernels, j: FilterGradientJob): void {
  const { outChannels: o, rowsPerExample, patchSize, chunk } = j;
  const perExample = rowsPerExample * o * 4;
  const gather = j.contiguousRuns ? k.simd.im2colT : k.simd.im2col;
  for (let first = j.from; first < j.to; first += chunk) {
    const examples = Math.min(chunk, j.to - first);
    const rows = examples * rowsPerExample;
    const dz = j.dz + first * perExample;
    if (j.y >= 0) {
      k.simd.reluMask(j.dy + first * perExample, j.y + first * perExample, dz, rows * o);
    }
    const dzRows = floats(k.memory, dz, rows * o);
    if (j.db >= 0) sumRows(k.blas, rows, o, dzRows, floats(k.memory, j.db, o), 1);
    if (patchSize === 0) continue;
    gather(j.x, j.cols, first, examples, j.geometry);
    k.blas.sgemm(
      !j.contiguousRuns,
      false,
      patchSize,
      o,
      rows,
      floats(k.memory, j.cols, rows * patchSize),
      dzRows,
      floats(k.memory, j.dw, patchSize * o),
      1,
    );
  }
}

/**
 * Runs a {@linkcode Pool2Job}: the forward where `dx` is −1, else the gradient.
 *
 * @param k this thread's kernels
 * @param j the job
 * @example
 * ```ts
 * declare const k: RangeKernels;
 * declare const job: Pool2Job;
 * pool2Range(k, job);
 * ```
 */
export function pool2Range(k: RangeKernels, j: Pool2Job): void {
  const { height: h, width: w, channels: c } = j;
  const inPer = h * w * c * 4;
  const outPer = (h >> 1) * (w >> 1) * c * 4;
  const n = j.to - j.from;
  if (n <= 0) return;
  const x = j.x + j.from * inPer;
  const y = j.y + j.from * outPer;
  if (j.dx < 0) k.simd.maxPool2(x, y, n, h, w, c);
  else k.simd.maxPool2Grad(x, y, j.dx + j.from * inPer, n, h, w, c);
}

/** A job for a compute thread, by kind. */
export type RangeJob =
  | { kind: "convolve"; job: ConvolveJob }
  | { kind: "filterGradient"; job: FilterGradientJob }
  | { kind: "pool2"; job: Pool2Job }
  | { kind: "gemm"; job: GemmBlock }
  | { kind: "gemmBatch"; job: GemmBatch };

const KINDS = ["convolve", "filterGradient", "pool2", "gemm", "gemmBatch"] as const;
const GEOMETRY = [
  "inHeight",
  "inWidth",
  "inChannels",
  "outHeight",
  "outWidth",
  "filterHeight",
  "filterWidth",
  "strideHeight",
  "strideWidth",
] as const;
const SHAPE = ["outChannels", "rowsPerExample", "patchSize", "chunk", "contiguousRuns"] as const;
const GEMM = [
  "transA",
  "transB",
  "m",
  "n",
  "k",
  "a",
  "lda",
  "b",
  "ldb",
  "c",
  "ldc",
  "beta",
] as const;
/** Each kind's fields after the geometry (for the convolutions), in slot order. */
const FIELDS = {
  convolve: [...SHAPE, "from", "to", "x", "filter", "y", "cols", "bias", "relu"],
  filterGradient: [...SHAPE, "from", "to", "x", "dy", "y", "dz", "dw", "db", "cols"],
  pool2: ["from", "to", "height", "width", "channels", "x", "y", "dx"],
  gemm: GEMM,
  gemmBatch: [...GEMM, "count", "strideA", "strideB", "strideC"],
} as const;
/** The kinds whose jobs carry a convolution's geometry before their fields. */
const WITH_GEOMETRY: ReadonlySet<string> = new Set(["convolve", "filterGradient"]);
/** Slots a kind's geometry takes: its nine numbers and the padding's top and left. */
const GEOMETRY_SLOTS = GEOMETRY.length + 2;
/** Fields that are booleans, carried as 0 or 1. */
const BOOLEANS: ReadonlySet<string> = new Set(["relu", "contiguousRuns", "transA", "transB"]);
/** Slots the largest job takes: the kind, the geometry where it has one, the fields. */
export const JOB_SLOTS = 1 + Math.max(
  ...KINDS.map((kind) => (WITH_GEOMETRY.has(kind) ? GEOMETRY_SLOTS : 0) + FIELDS[kind].length),
);

/**
 * Writes a job into a thread's parameter slots.
 *
 * @param slots the thread's slots ({@linkcode JOB_SLOTS} long)
 * @param job the job
 * @example
 * ```ts
 * declare const job: RangeJob;
 * encodeJob(new Float64Array(JOB_SLOTS), job);
 * ```
 */
export function encodeJob(slots: Float64Array, { kind, job }: RangeJob): void {
  if (!KINDS.includes(kind)) throw new Error(`Unknown compute job ${kind}`);
  slots[0] = KINDS.indexOf(kind) + 1;
  let at = 1;
  const values = job as unknown as Record<string, number | boolean>;
  if (WITH_GEOMETRY.has(kind)) {
    const g = (job as ConvShape).geometry;
    for (const name of GEOMETRY) slots[at++] = g[name];
    slots[at++] = g.padInfo.top;
    slots[at++] = g.padInfo.left;
  }
  for (const name of FIELDS[kind]) slots[at++] = Number(values[name]);
}

/**
 * Reads the job {@linkcode encodeJob} wrote.
 *
 * @param slots the thread's slots
 * @returns the job
 * @example
 * ```ts
 * declare const slots: Float64Array;
 * decodeJob(slots).kind;
 * ```
 */
export function decodeJob(slots: Float64Array): RangeJob {
  const kind = KINDS[slots[0] - 1];
  if (kind === undefined) throw new Error(`Unknown compute job ${slots[0]}`);
  let at = 1;
  const job: Record<string, unknown> = {};
  if (WITH_GEOMETRY.has(kind)) {
    const g: Record<string, unknown> = {};
    for (const name of GEOMETRY) g[name] = slots[at++];
    g.padInfo = { top: slots[at++], left: slots[at++] };
    job.geometry = g;
  }
  for (const name of FIELDS[kind]) {
    const value = slots[at++];
    job[name] = BOOLEANS.has(name) ? value === 1 : value;
  }
  return { kind, job } as unknown as RangeJob;
}

/**
 * Runs a job on this thread.
 *
 * @param k this thread's kernels
 * @param job the job
 * @example
 * ```ts
 * declare const k: RangeKernels;
 * declare const slots: Float64Array;
 * runJob(k, decodeJob(slots));
 * ```
 */
export function runJob(k: RangeKernels, job: RangeJob): void {
  if (job.kind === "convolve") convolveRange(k, job.job);
  else if (job.kind === "filterGradient") filterGradientRange(k, job.job);
  else if (job.kind === "pool2") pool2Range(k, job.job);
  else if (job.kind === "gemm") k.blas.sgemmAt(job.job);
  else gemmBatchRange(k.blas, job.job);
}

/**
 * Runs a {@linkcode GemmBatch}: its products one after the other.
 *
 * @param blas this thread's OpenBLAS
 * @param g the products
 * @example
 * ```ts
 * import type { GemmBatch, OpenBlas } from "./_openblas.ts";
 * declare const blas: OpenBlas;
 * declare const g: GemmBatch;
 * gemmBatchRange(blas, g);
 * ```
 */
export function gemmBatchRange(blas: OpenBlas, g: GemmBatch): void {
  for (let i = 0; i < g.count; i++) {
    blas.sgemmAt({
      ...g,
      a: g.a + i * g.strideA * 4,
      b: g.b + i * g.strideB * 4,
      c: g.c + i * g.strideC * 4,
    });
  }
}
