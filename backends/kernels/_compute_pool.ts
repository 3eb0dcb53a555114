/**
 * The `native` backend's compute threads: with `--threads N`, N − 1 threads that each take a
 * range of a kernel's examples (convolutions, their filter gradients, 2×2 max-pools and their
 * gradients) while the main thread computes the first range, the way PyTorch's intra-op
 * threads split a convolution by batch. They run the same SIMD kernels and OpenBLAS on the same
 * heap (the wasm backend's shared memory, `../shared_heap.ts`), so nothing is copied.
 *
 * OpenBLAS's own threads do not serve here: its second thread slowed the narrow, cache-sized
 * products a chunked convolution makes (measured alone: 784×16×288 went from 2.8 to 4.6 ms), and
 * its spinning workers took the cores these threads need, so while they exist OpenBLAS keeps to
 * one thread (`../backend.ts`) and each thread calls it for its own part.
 *
 * The threads are `node:worker_threads` workers, unreferenced so a program ends without
 * closing them; jobs pass through shared memory and `Atomics` (the main thread is inside a
 * synchronous kernel and cannot await). One pool per process or Web Worker.
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import { encodeJob, JOB_SLOTS, type RangeJob } from "./_range_kernels.ts";
import { waitUntilReached } from "../../core/wait_until.ts";

/** How long the main thread waits for a thread's part before failing the kernel. */
const THREAD_TIMEOUT_MS = 60_000;

/** A thread's control slots (`Int32Array`): the job's number, the last done, whether it failed. */
export const CONTROL = { seq: 0, done: 1, failed: 2, stride: 4 } as const;

/**
 * How long a thread polls its slot before it sleeps in `Atomics.wait`: a wake-up from the
 * kernel took tens of microseconds here, against a split of one product that may take a
 * hundred.
 */
export const SPIN_MS = 2;

/** Bytes of a thread's error text. */
export const ERROR_BYTES = 4096;

/** What the threads receive. */
export interface PoolShared {
  control: SharedArrayBuffer;
  params: SharedArrayBuffer;
  errors: SharedArrayBuffer;
  /** The heap, shared. */
  memory: WebAssembly.Memory;
}

/** The compute threads of this process or worker. */
export interface ComputePool {
  /** How many there are besides the main thread. */
  readonly helpers: number;
  /** Whether a split is running (a kernel inside it runs its own part alone). */
  readonly busy: boolean;
  /**
   * Gives thread `i` job `jobs[i]`, runs `own` on this thread meanwhile, then waits for them.
   *
   * @throws Error naming a thread that failed (with its error) or did not answer
   */
  run(jobs: RangeJob[], own: () => void): void;
  /** Ends the threads. */
  close(): void;
}

let active: ComputePool | null = null;
/** Splits the threads of this process have run (what tests check that a split happened). */
let runs = 0;

/**
 * How many splits have run on compute threads in this process.
 *
 * @returns the count
 * @example
 * ```ts
 * computePoolRuns();
 * ```
 */
export function computePoolRuns(): number {
  return runs;
}

/**
 * The running pool, or null (one compute thread).
 *
 * @returns the pool
 * @example
 * ```ts
 * computePool()?.helpers;
 * ```
 */
export function computePool(): ComputePool | null {
  return active;
}

/**
 * Starts `helpers` threads on the shared heap `memory` (closing a pool of another size first);
 * 0 closes the pool.
 *
 * @param helpers threads besides this one
 * @param memory the wasm backend's heap; must be shared
 * @throws Error when the heap is not shared or a thread cannot start (its error)
 * @example
 * ```ts
 * declare const heap: WebAssembly.Memory;
 * await startComputePool(1, heap); // --threads 2
 * ```
 */
export async function startComputePool(helpers: number, memory: WebAssembly.Memory): Promise<void> {
  if ((active?.helpers ?? 0) === helpers) return;
  active?.close();
  active = null;
  if (helpers <= 0) return;
  if (!(memory.buffer instanceof SharedArrayBuffer)) {
    throw new Error("Compute threads need the wasm backend's heap to be shared (its SIMD build)");
  }
  const shared: PoolShared = {
    control: new SharedArrayBuffer(helpers * CONTROL.stride * 4),
    params: new SharedArrayBuffer(helpers * JOB_SLOTS * 8),
    errors: new SharedArrayBuffer(helpers * ERROR_BYTES),
    memory,
  };
  const workers = Array.from(
    { length: helpers },
    (_, index) =>
      new Worker(new URL("./_compute_worker.ts", import.meta.url), {
        workerData: { ...shared, index },
      }),
  );
  try {
    await Promise.all(workers.map((worker, index) =>
      new Promise<void>((resolve, reject) => {
        worker.once("message", () => resolve());
        worker.once("error", (error) =>
          reject(new Error(`Compute thread ${index + 1} failed to start: ${error}`)));
        worker.once("exit", (code) =>
          reject(new Error(`Compute thread ${index + 1} exited (${code}) as it started`)));
      })
    ));
  } catch (error) {
    for (const worker of workers) worker.terminate();
    throw error;
  }
  for (const worker of workers) {
    worker.removeAllListeners();
    worker.unref();
  }
  active = makePool(workers, shared);
}

function makePool(workers: Worker[], shared: PoolShared): ComputePool {
  const helpers = workers.length;
  const control = workers.map((_, i) =>
    new Int32Array(shared.control, i * CONTROL.stride * 4, CONTROL.stride)
  );
  const params = workers.map((_, i) =>
    new Float64Array(shared.params, i * JOB_SLOTS * 8, JOB_SLOTS)
  );
  let seq = 0;
  let closed = false;
  let busy = false;
  function runSplit(jobs: RangeJob[], own: () => void): void {
    if (jobs.length > helpers) {
      throw new Error(`${jobs.length} jobs for ${helpers} compute threads`);
    }
    seq++;
    for (let i = 0; i < jobs.length; i++) {
      encodeJob(params[i], jobs[i]);
      Atomics.store(control[i], CONTROL.seq, seq);
      Atomics.notify(control[i], CONTROL.seq);
    }
    let ownError: unknown = null;
    try {
      own();
    } catch (error) {
      ownError = error;
    }
    // Wait for every thread, even after this one failed: they write into the heap.
    for (let i = 0; i < jobs.length; i++) {
      // A thread stores the job's number once it is done.
      if (
        !waitUntilReached(control[i], CONTROL.done, seq, THREAD_TIMEOUT_MS, { spinMs: SPIN_MS })
      ) {
        closed = true;
        throw new Error(
          `Compute thread ${i + 1} did not finish its part within ${THREAD_TIMEOUT_MS / 1000} s`,
        );
      }
      if (Atomics.load(control[i], CONTROL.failed) !== 0) {
        const bytes = new Uint8Array(shared.errors, i * ERROR_BYTES, ERROR_BYTES).slice();
        const text = new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(0)));
        throw new Error(`Compute thread ${i + 1} failed: ${text}`);
      }
    }
    runs++;
    if (ownError !== null) throw ownError;
  }

  return {
    helpers,
    get busy() {
      return busy;
    },
    run(jobs, own) {
      if (closed) throw new Error("The compute threads are closed");
      if (busy) throw new Error("The compute threads are already running a split");
      busy = true;
      try {
        runSplit(jobs, own);
      } finally {
        busy = false;
      }
    },
    close() {
      if (closed) return;
      closed = true;
      seq++;
      for (let i = 0; i < helpers; i++) {
        params[i][0] = 0;
        Atomics.store(control[i], CONTROL.seq, seq);
        Atomics.notify(control[i], CONTROL.seq);
      }
      for (const worker of workers) worker.terminate();
    },
  };
}
