/**
 * A compute thread of the `native` backend (`--threads N` starts N − 1, `_compute_pool.ts`):
 * it runs its range of a kernel's examples with the same SIMD kernels, instantiated on the
 * wasm backend's shared heap, and OpenBLAS through FFI, straight on the tensors. Jobs arrive in
 * shared parameter slots, woken through `Atomics`; the thread blocks in `Atomics.wait` between
 * jobs and never returns to its event loop.
 *
 * @module
 */
import { parentPort, workerData } from "node:worker_threads";
import { loadOpenBlas } from "./_openblas.ts";
import { loadSimdKernels } from "./_simd.ts";
import { CONTROL, ERROR_BYTES, type PoolShared, SPIN_MS } from "./_compute_pool.ts";
import { waitUntilReached } from "../../core/wait_until.ts";
import { decodeJob, JOB_SLOTS, type RangeKernels, runJob } from "./_range_kernels.ts";

const shared = workerData as PoolShared & { index: number };
const control = new Int32Array(shared.control, shared.index * CONTROL.stride * 4, CONTROL.stride);
const slots = new Float64Array(shared.params, shared.index * JOB_SLOTS * 8, JOB_SLOTS);
const errorText = new Uint8Array(shared.errors, shared.index * ERROR_BYTES, ERROR_BYTES);

const load = loadOpenBlas();
if (!load.ok) throw new Error(load.reason);
const kernels: RangeKernels = {
  blas: load.blas,
  simd: await loadSimdKernels(shared.memory),
  memory: shared.memory,
};
parentPort!.postMessage("ready");

// Jobs are numbered from 1: the first may be posted the moment "ready" arrives, before this
// line runs, so the wait starts from 0 rather than from what the slot holds by then.
let seen = 0;
for (;;) {
  // Job numbers only grow; one may be skipped (a split that needed fewer threads).
  waitUntilReached(control, CONTROL.seq, seen + 1, Infinity, { spinMs: SPIN_MS });
  seen = Atomics.load(control, CONTROL.seq);
  if (slots[0] === 0) break;
  let failed = 0;
  try {
    runJob(kernels, decodeJob(slots));
  } catch (error) {
    failed = 1;
    const text = new TextEncoder().encode(String((error as Error)?.stack ?? error));
    errorText.fill(0);
    errorText.set(text.subarray(0, ERROR_BYTES - 1));
  }
  Atomics.store(control, CONTROL.failed, failed);
  Atomics.store(control, CONTROL.done, seen);
  Atomics.notify(control, CONTROL.done);
}
