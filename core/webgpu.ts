/**
 * The `webgpu` backend (`@tensorflow/tfjs-backend-webgpu` on Deno's WebGPU): adapters, the
 * one a process uses, its description for the environment record, and set-up.
 *
 * WebGPU has no call that lists adapters; the distinct adapters are those the two power
 * preferences return (a machine with an integrated and a discrete GPU gives two). A DDP rank
 * takes adapter `LOCAL_RANK mod n` (the seed's `torch.cuda.set_device(local_rank)`); with one
 * adapter every rank shares it, and the note says so. A DP Web Worker opens its own device.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { UsageError } from "./errors.ts";

/** The adapter a run used, as `results.json`'s environment records it. */
export interface AdapterRecord {
  vendor: string;
  architecture: string;
  description: string;
  /** Whether it is a software fallback adapter (e.g. llvmpipe): figures are not a GPU's. */
  fallback: boolean;
}

/** The part of `GPUAdapterInfo` paratrain reads (`isFallbackAdapter` is recent). */
interface AdapterInfoLike {
  vendor: string;
  architecture: string;
  device?: string;
  description: string;
  isFallbackAdapter?: boolean;
}

/**
 * The record of an adapter's info.
 *
 * @param info `adapter.info`
 * @param isFallback `adapter.isFallbackAdapter` where the runtime has the older attribute
 * @returns the record
 * @example
 * ```ts
 * adapterRecord({ vendor: "65541", architecture: "", description: "llvmpipe", isFallbackAdapter: true });
 * ```
 */
export function adapterRecord(info: AdapterInfoLike, isFallback?: boolean): AdapterRecord {
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    description: info.description,
    fallback: Boolean(info.isFallbackAdapter ?? isFallback ?? false),
  };
}

/**
 * One line describing an adapter, for reports and notes.
 *
 * @param a the record
 * @returns e.g. `llvmpipe (LLVM 15.0.6, 256 bits), vendor 65541 — software fallback`
 * @example
 * ```ts
 * describeAdapter({ vendor: "v", architecture: "", description: "d", fallback: true });
 * ```
 */
export function describeAdapter(a: AdapterRecord): string {
  const arch = a.architecture ? `, ${a.architecture}` : "";
  const kind = a.fallback ? " — software fallback adapter, not a GPU" : "";
  return `${a.description || "unnamed adapter"} (vendor ${a.vendor || "?"}${arch})${kind}`;
}

/**
 * The distinct adapters this process can open (by the two power preferences).
 *
 * @returns the adapters, empty where WebGPU has none
 * @example
 * ```ts
 * const adapters = await listAdapters();
 * ```
 */
export async function listAdapters(): Promise<GPUAdapter[]> {
  if (typeof navigator === "undefined" || !("gpu" in navigator)) return [];
  const found: GPUAdapter[] = [];
  const keys = new Set<string>();
  for (const powerPreference of ["high-performance", "low-power"] as const) {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference });
    if (adapter == null) continue;
    const i = adapter.info as unknown as AdapterInfoLike;
    const key = JSON.stringify([i.vendor, i.architecture, i.device, i.description]);
    if (keys.has(key)) continue;
    keys.add(key);
    found.push(adapter);
  }
  return found;
}

/**
 * Which of `count` adapters local rank `localRank` takes.
 *
 * @param localRank `LOCAL_RANK` (0 outside DDP)
 * @param count adapters found
 * @returns the index and, where ranks share an adapter, a note
 * @example
 * ```ts
 * pickAdapter(1, 2); // { index: 1, note: null }
 * ```
 */
export function pickAdapter(
  localRank: number,
  count: number,
): { index: number; note: string | null } {
  if (count < 1) throw new UsageError("Cannot use --backend webgpu: no WebGPU adapter here");
  if (count === 1) {
    return {
      index: 0,
      note: localRank > 0 ? `local rank ${localRank} shares the one WebGPU adapter` : null,
    };
  }
  const index = localRank % count;
  return {
    index,
    note: localRank >= count
      ? `local rank ${localRank} shares adapter ${index} (${count} adapters)`
      : null,
  };
}

/** The local rank of this process (`LOCAL_RANK`, as DDP's launcher sets it; 0 otherwise). */
export function localRank(): number {
  let value: string | undefined;
  try {
    value = Deno.env.get("LOCAL_RANK");
  } catch {
    return 0;
  }
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

/** What {@linkcode initWebGpu} opened. */
export interface WebGpuInfo {
  adapter: AdapterRecord;
  /** Index among {@linkcode listAdapters}'s, and how many there were. */
  index: number;
  count: number;
  note: string | null;
}

let opened: WebGpuInfo | null = null;

/**
 * Register and activate the webgpu backend on this process's adapter (see the module doc).
 *
 * @param rank the local rank choosing the adapter (default `LOCAL_RANK`)
 * @returns the adapter opened
 * @throws UsageError where WebGPU has no adapter
 * @example
 * ```ts
 * const { adapter } = await initWebGpu();
 * ```
 */
export async function initWebGpu(rank = localRank()): Promise<WebGpuInfo> {
  if (opened != null && tf.getBackend() === "webgpu") return opened;
  if (opened == null) {
    const adapters = await listAdapters();
    const { index, note } = pickAdapter(rank, adapters.length);
    const adapter = adapters[index];
    // Importing the package registers its own factory (first adapter of the default power
    // preference); replace it with one on the chosen adapter.
    const { WebGPUBackend } = await import("@tensorflow/tfjs-backend-webgpu");
    if (tf.findBackendFactory("webgpu") != null) tf.removeBackend("webgpu");
    tf.registerBackend("webgpu", async () => {
      const limits = adapter.limits;
      const device = await adapter.requestDevice({
        requiredFeatures: adapter.features.has("timestamp-query") ? ["timestamp-query"] : [],
        requiredLimits: {
          maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
          maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
          maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
          maxBufferSize: limits.maxBufferSize,
          maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
          maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
        },
      });
      // deno-lint-ignore no-explicit-any
      return new WebGPUBackend(device, adapter.info as any);
    }, 0);
    const info = adapter.info as unknown as AdapterInfoLike;
    const legacy = (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
    opened = { adapter: adapterRecord(info, legacy), index, count: adapters.length, note };
  }
  if (!(await tf.setBackend("webgpu"))) {
    throw new UsageError("Cannot use --backend webgpu: the WebGPU device did not open");
  }
  await tf.ready();
  return opened;
}

/**
 * Why paratrain cannot train on webgpu in this runtime, or null where it can.
 *
 * The trainer reads parameters and gradients synchronously (`dataSync`, as DDP's backward
 * hooks must); tfjs-backend-webgpu's synchronous read-back draws the buffer through an
 * `OffscreenCanvas` 2d context, which Deno does not provide, so every read of a tensor the
 * GPU computed fails. Asynchronous reads (`await t.data()`) work.
 *
 * @returns the reason, one clause, or null
 * @example
 * ```ts
 * webgpuTrainingBlocker();
 * ```
 */
export function webgpuTrainingBlocker(): string | null {
  if (typeof navigator === "undefined" || !("gpu" in navigator)) {
    return "this runtime has no WebGPU (navigator.gpu)";
  }
  const canvas = (globalThis as { OffscreenCanvas?: new (w: number, h: number) => unknown })
    .OffscreenCanvas;
  let has2d = false;
  try {
    has2d = canvas != null &&
      (new canvas(1, 1) as { getContext(k: string): unknown }).getContext("2d") != null;
  } catch {
    has2d = false;
  }
  return has2d
    ? null
    : "its synchronous GPU read-back needs OffscreenCanvas 2d, which Deno lacks, " +
      "and paratrain's trainer reads tensors synchronously (asynchronous reads work: tensor ops, " +
      "tf.memory() and the equivalence test run)";
}
