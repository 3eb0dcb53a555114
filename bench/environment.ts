/**
 * The environment a benchmark ran in, recorded with its results.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BackendName } from "../backends/backend.ts";
import { type BlasInfo, blasInfo, loadOpenBlas } from "../backends/kernels/_openblas.ts";
import {
  type AdapterRecord,
  adapterRecord,
  listAdapters,
  pickAdapter,
} from "../backends/webgpu.ts";

/** Environment fields of `results.json`. */
export interface Environment {
  deno: string;
  v8: string;
  typescript: string;
  tfjs: string;
  backend: BackendName;
  fastKernels: boolean;
  /** Compute threads per worker (absent in files written before `--threads`: 1). */
  threads?: number;
  /** The OpenBLAS behind `native` (null on other backends; absent in older files). */
  blas?: BlasInfo | null;
  /** The WebGPU adapter behind `webgpu` (rank 0's; null on other backends; absent in older files). */
  adapter?: AdapterRecord | null;
  os: string;
  cpuModel: string;
  logicalCpus: number;
  startedAt: string;
  gitCommit: string | null;
  /**
   * When `gitCommit` was committed (committer date, ISO 8601): what `report --history` orders
   * by. Null outside a git checkout; absent in older files.
   */
  gitCommitDate?: string | null;
  /**
   * Why `native` could not run here (OpenBLAS did not load, with how to install it); null
   * where it loads. Recorded on every backend but `native`, so that a fallback's report can
   * say how to get it; absent on `native` and in older files.
   */
  nativeUnavailable?: string | null;
}

async function cpuModel(): Promise<string> {
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    return info.match(/^model name\s*:\s*(.+)$/m)?.[1].trim() ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** The checked-out commit and its committer date, or nulls outside a git checkout. */
async function gitHead(): Promise<{ gitCommit: string | null; gitCommitDate: string | null }> {
  const none = { gitCommit: null, gitCommitDate: null };
  try {
    const out = await new Deno.Command("git", {
      args: ["log", "-1", "--format=%H%n%cI"],
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return none;
    const [commit, date] = new TextDecoder().decode(out.stdout).trim().split("\n");
    return commit ? { gitCommit: commit, gitCommitDate: date || null } : none;
  } catch {
    return none;
  }
}

/**
 * Describe this machine and runtime.
 *
 * @param backend the backend the runs use
 * @param fastKernels whether the fast kernels are on
 * @param threads compute threads per worker
 * @returns the environment record
 * @example
 * ```ts
 * const env = await describeEnvironment("wasm", true);
 * ```
 */
export async function describeEnvironment(
  backend: BackendName,
  fastKernels: boolean,
  threads = 1,
): Promise<Environment> {
  // Loaded on every backend (once per process): a fallback's results say why native is not used.
  const load = loadOpenBlas();
  const blas = backend === "native" && load.ok ? blasInfo(load.blas) : null;
  let adapter: AdapterRecord | null = null;
  if (backend === "webgpu") {
    const adapters = await listAdapters();
    if (adapters.length > 0) {
      const chosen = adapters[pickAdapter(0, adapters.length).index];
      adapter = {
        ...adapterRecord(chosen.info as unknown as Parameters<typeof adapterRecord>[0]),
        count: adapters.length,
      };
    }
  }
  return {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    tfjs: tf.version_core,
    backend,
    fastKernels: (backend === "wasm" || backend === "native") && fastKernels,
    threads,
    blas,
    adapter,
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    cpuModel: await cpuModel(),
    logicalCpus: navigator.hardwareConcurrency,
    startedAt: new Date().toISOString(),
    ...await gitHead(),
    ...(backend === "native" ? {} : { nativeUnavailable: load.ok ? null : load.reason }),
  };
}
