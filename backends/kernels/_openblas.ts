/**
 * OpenBLAS through Deno FFI: found once per process (and per Web Worker) among the usual
 * library paths, or at `PARATRAIN_OPENBLAS`. The pthread build is preferred: it is correct
 * with several threads calling it at once (DP's Web Workers do), where the OpenMP build
 * crashed at process exit when called from Deno.
 *
 * Matrices are passed as `Float32Array` views straight onto the wasm heap, so nothing is
 * copied: `cblas_sgemm` reads and writes the tensors where the wasm backend keeps them.
 *
 * @module
 */

/** Environment variable naming a `libopenblas.so` to use instead of the usual paths. */
export const OPENBLAS_ENV = "PARATRAIN_OPENBLAS";

/** How to get OpenBLAS on Debian/Ubuntu, for error messages. */
export const OPENBLAS_INSTALL = "apt-get install libopenblas0-pthread";

/** Where OpenBLAS usually lives, the pthread build first. */
const SEARCH_PATHS = [
  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
  "/usr/lib64/libopenblas.so.0",
  "/usr/local/lib/libopenblas.so.0",
  "/usr/local/lib/libopenblas.so",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
  "libopenblas.so.0",
];

/** CBLAS enumerations. */
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

/** `openblas_get_parallel()`: how the library was built. */
const PARALLEL_KINDS = ["sequential", "pthread", "openmp"] as const;

/** `cblas_sgemm`'s parameters, its three matrices passed as `matrix` (views or addresses). */
function sgemmParameters<M extends "buffer" | "usize">(matrix: M) {
  return [
    "i32",
    "i32",
    "i32",
    "i32",
    "i32",
    "i32",
    "f32",
    matrix,
    "i32",
    matrix,
    "i32",
    "f32",
    matrix,
    "i32",
  ] as const;
}

const SYMBOLS = {
  cblas_sgemm: { parameters: sgemmParameters("buffer"), result: "void" },
  /** The same function on addresses, for a compute thread's part of a product. */
  sgemm_at: { name: "cblas_sgemm", parameters: sgemmParameters("usize"), result: "void" },
  openblas_set_num_threads: { parameters: ["i32"], result: "void" },
  openblas_get_num_threads: { parameters: [], result: "i32" },
  openblas_get_parallel: { parameters: [], result: "i32" },
  openblas_get_config: { parameters: [], result: "pointer" },
  openblas_get_corename: { parameters: [], result: "pointer" },
} as const;

/** A loaded OpenBLAS. */
export interface OpenBlas {
  /** The file it was loaded from. */
  path: string;
  /** `openblas_get_config()`, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64". */
  config: string;
  /** The kernel family picked for this CPU, e.g. "Zen" or "SkylakeX". */
  coreName: string;
  /** How it was built to use threads. */
  parallel: typeof PARALLEL_KINDS[number] | "unknown";
  /**
   * `C = alpha · op(A) · op(B) + beta · C`, row-major: op(A) is `m × k`, op(B) `k × n`, C
   * `m × n`; with `transA` A is stored `k × m` (likewise B), leading dimensions packed.
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    beta?: number,
  ): void;
  /**
   * {@linkcode OpenBlas.sgemm} on addresses with leading dimensions: what a compute thread runs
   * for its block of a product split between threads.
   */
  sgemmAt(g: GemmBlock): void;
  /** Sets the threads every later call may use (process-wide). */
  setThreads(threads: number): void;
  /** The threads calls may use. */
  threads(): number;
}

/** A product `C = op(A) · op(B) + beta · C` on addresses, row-major, leading dimensions given. */
export interface GemmBlock {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  a: number;
  lda: number;
  b: number;
  ldb: number;
  c: number;
  ldc: number;
  beta: number;
}

/** `count` products of the same shape, operand `i` at `a + i · strideA` floats (likewise b, c). */
export interface GemmBatch extends GemmBlock {
  count: number;
  strideA: number;
  strideB: number;
  strideC: number;
}

/** What results and reports record of the library: where it is and how it was built. */
export type BlasInfo = Pick<OpenBlas, "path" | "config" | "coreName" | "parallel">;

/**
 * The library's {@linkcode BlasInfo}, as plain data.
 *
 * @param blas the loaded library
 * @returns its path, configuration, kernel family and threading build
 * @example
 * ```ts
 * const load = loadOpenBlas();
 * if (load.ok) console.log(blasInfo(load.blas).coreName);
 * ```
 */
export function blasInfo(blas: OpenBlas): BlasInfo {
  const { path, config, coreName, parallel } = blas;
  return { path, config, coreName, parallel };
}

/** OpenBLAS kernel families written for AVX2 at most (its `openblas_get_corename()`). */
const AVX2_CORES = new Set(["haswell", "zen", "excavator", "sandybridge"]);

/** The CPU features OpenBLAS's AVX-512 kernels (SkylakeX) need. */
const AVX512_FLAGS = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"];

/**
 * The AVX-512 kernel family to suggest where the CPU has AVX-512 but OpenBLAS picked AVX2
 * kernels (an OpenBLAS older than the CPU picks by family): the products run on half-width
 * vectors then. Measured here on mnist-cnn's convolution products: the Haswell kernels ran at
 * 69–70 GFLOP/s where SkylakeX and Cooperlake ran at 112.
 *
 * @param coreName the family OpenBLAS picked
 * @param cpuFlags the CPU's feature flags (`/proc/cpuinfo`)
 * @returns `SkylakeX` (or `Cooperlake` where the CPU also has bfloat16) to suggest, or null
 * @example
 * ```ts
 * betterCore("Haswell", new Set(["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"])); // "SkylakeX"
 * ```
 */
export function betterCore(coreName: string, cpuFlags: ReadonlySet<string>): string | null {
  if (!AVX2_CORES.has(coreName.toLowerCase())) return null;
  if (!AVX512_FLAGS.every((flag) => cpuFlags.has(flag))) return null;
  return cpuFlags.has("avx512_bf16") ? "Cooperlake" : "SkylakeX";
}

/**
 * This CPU's feature flags, from `/proc/cpuinfo` (empty where it cannot be read).
 *
 * @returns the flags of the first processor
 * @example
 * ```ts
 * cpuFlags().has("avx2");
 * ```
 */
export function cpuFlags(): Set<string> {
  try {
    const line = Deno.readTextFileSync("/proc/cpuinfo").split("\n").find((l) =>
      l.startsWith("flags")
    );
    return new Set(line ? line.slice(line.indexOf(":") + 1).trim().split(/\s+/) : []);
  } catch {
    return new Set();
  }
}

/** Why OpenBLAS could not be loaded, or the library. */
export type OpenBlasLoad = { ok: true; blas: OpenBlas } | { ok: false; reason: string };

let loaded: OpenBlasLoad | undefined;

/**
 * Loads OpenBLAS once per process or worker: `$PARATRAIN_OPENBLAS` if set, else the first of
 * the usual paths that opens. The OpenMP build is refused.
 *
 * @returns the library, or why it is not available
 * @example
 * ```ts
 * const load = loadOpenBlas();
 * console.log(load.ok ? load.blas.config : load.reason);
 * ```
 */
export function loadOpenBlas(): OpenBlasLoad {
  loaded ??= tryLoad();
  return loaded;
}

function tryLoad(): OpenBlasLoad {
  const named = Deno.env.get(OPENBLAS_ENV);
  const candidates = named ? [named] : SEARCH_PATHS;
  const failures: string[] = [];
  for (const path of candidates) {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (error) {
      // Deno repeats its prefix ("Could not open library: Could not open library: …").
      const why = (error as Error).message.split("\n")[0].replace(
        /^(Could not open library: )+/,
        "",
      );
      failures.push(`${path}: ${why}`);
      continue;
    }
    const parallel = PARALLEL_KINDS[lib.symbols.openblas_get_parallel()] ?? "unknown";
    if (parallel === "openmp") {
      lib.close();
      failures.push(`${path}: the OpenMP build (it crashed at exit when called from Deno)`);
      continue;
    }
    return { ok: true, blas: wrap(path, lib, parallel) };
  }
  const where = named ? `${OPENBLAS_ENV}=${named}` : "the usual library paths";
  const detail = failures.find((f) => f.includes("OpenMP")) ??
    (named ? failures[0] : "no libopenblas found");
  return {
    ok: false,
    reason:
      `OpenBLAS could not be loaded from ${where} (${detail}); install it with \`${OPENBLAS_INSTALL}\` or set ${OPENBLAS_ENV} to a libopenblas.so`,
  };
}

function wrap(
  path: string,
  lib: Deno.DynamicLibrary<typeof SYMBOLS>,
  parallel: OpenBlas["parallel"],
): OpenBlas {
  const text = (pointer: Deno.PointerValue) =>
    pointer === null ? "" : new Deno.UnsafePointerView(pointer).getCString().trim();
  const s = lib.symbols;
  return {
    path,
    config: text(s.openblas_get_config()),
    coreName: text(s.openblas_get_corename()),
    parallel,
    sgemm(transA, transB, m, n, k, a, b, c, beta = 0) {
      s.cblas_sgemm(
        ROW_MAJOR,
        transA ? TRANS : NO_TRANS,
        transB ? TRANS : NO_TRANS,
        m,
        n,
        k,
        1,
        a as Float32Array<ArrayBuffer>,
        transA ? m : k,
        b as Float32Array<ArrayBuffer>,
        transB ? k : n,
        beta,
        c as Float32Array<ArrayBuffer>,
        n,
      );
    },
    sgemmAt(g) {
      s.sgemm_at(
        ROW_MAJOR,
        g.transA ? TRANS : NO_TRANS,
        g.transB ? TRANS : NO_TRANS,
        g.m,
        g.n,
        g.k,
        1,
        BigInt(g.a),
        g.lda,
        BigInt(g.b),
        g.ldb,
        g.beta,
        BigInt(g.c),
        g.ldc,
      );
    },
    setThreads(threads) {
      s.openblas_set_num_threads(threads);
    },
    threads: () => s.openblas_get_num_threads(),
  };
}
