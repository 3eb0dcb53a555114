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
}

async function cpuModel(): Promise<string> {
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    return info.match(/^model name\s*:\s*(.+)$/m)?.[1].trim() ?? "unknown";
  } catch {
    return "unknown";
  }
}

async function gitCommit(): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "HEAD"],
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
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
  const load = backend === "native" ? loadOpenBlas() : null;
  const blas = load?.ok ? blasInfo(load.blas) : null;
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
    gitCommit: await gitCommit(),
  };
}
