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
import { UsageError } from "../core/errors.ts";
import { readEnvInteger } from "../core/env_integer.ts";
import { makeChunkedConv2dBackpropFilter } from "./kernels/webgpu_conv2d_backprop_filter.ts";

/** The adapter a run used, as `results.json`'s environment records it. */
export interface AdapterRecord {
  vendor: string;
  architecture: string;
  description: string;
  /** Whether it is a software fallback adapter (e.g. llvmpipe): figures are not a GPU's. */
  fallback: boolean;
  /**
   * Distinct adapters found (environment records only): where 1, every DDP rank and DP
   * worker shares it, as the report notes.
   */
  count?: number;
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

/**
 * The local rank of this process (`LOCAL_RANK`, as DDP's launcher sets it; 0 otherwise).
 *
 * @returns the local rank
 * @throws UsageError when `LOCAL_RANK` is set but not digits only
 */
export function localRank(): number {
  let value: string | undefined;
  try {
    value = Deno.env.get("LOCAL_RANK");
  } catch {
    return 0;
  }
  return readEnvInteger({ LOCAL_RANK: value }, "LOCAL_RANK") ?? 0;
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
    const stock = tf.getKernel("Conv2DBackpropFilter", "webgpu");
    if (stock) {
      tf.unregisterKernel("Conv2DBackpropFilter", "webgpu");
      tf.registerKernel({
        ...stock,
        kernelFunc: makeChunkedConv2dBackpropFilter(stock.kernelFunc),
      });
    }
  }
  if (!(await tf.setBackend("webgpu"))) {
    throw new UsageError("Cannot use --backend webgpu: the WebGPU device did not open");
  }
  await tf.ready();
  return opened;
}

let probed: { reason: string | null } | null = null;

/**
 * Whether WebGPU gives this process an adapter, asked of a short child process so that the
 * answer is synchronous (`bench --list`, argument checks); the answer is kept.
 *
 * @returns null where an adapter opens, else why not (one clause)
 * @example
 * ```ts
 * webgpuAvailability();
 * ```
 */
export function webgpuAvailability(): string | null {
  if (probed) return probed.reason;
  const code = "const a = await navigator.gpu?.requestAdapter();" +
    "console.log(JSON.stringify(a ? a.info.description || 'adapter' : null));";
  let reason: string | null;
  try {
    const out = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", code],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const text = new TextDecoder().decode(out.stdout).trim();
    reason = !out.success
      ? `WebGPU failed to start (${new TextDecoder().decode(out.stderr).trim().split("\n")[0]})`
      : text === "null"
      ? "WebGPU offers no adapter (no Vulkan/Metal/DX12 driver, not even a software one such as llvmpipe)"
      : null;
  } catch (e) {
    reason = `cannot ask WebGPU for an adapter (${(e as Error).message.split("\n")[0]})`;
  }
  probed = { reason };
  return reason;
}

/**
 * The cpu backend's kernels that tfjs-backend-webgpu 4.22.0 lacks, and why none falls back.
 * No workload uses one (tests/webgpu_test.ts checks both facts). A fallback as on wasm (run
 * the cpu kernel on copies) needs the inputs read synchronously, which Deno's WebGPU cannot do
 * for a tensor a GPU kernel wrote; so these are left unregistered and fail by name.
 */
export const WEBGPU_MISSING_KERNELS: Readonly<Record<string, string>> = {
  BitwiseAnd: "integer bit operations",
  NonMaxSuppressionV4: "object detection",
  RaggedGather: "ragged tensors",
  RaggedRange: "ragged tensors",
  RaggedTensorToTensor: "ragged tensors",
  SparseFillEmptyRows: "sparse tensors",
  SparseReshape: "sparse tensors",
  StaticRegexReplace: "strings",
  StringSplit: "strings",
  StringToHashBucketFast: "strings",
  Unique: "data-dependent output shape",
};

/**
 * Steps and batch size of the webgpu-vs-cpu equivalence test where not 20 at the workload's
 * default batch: mnist-cnn takes about 18 s a step at its batch of 128 on the cpu backend here
 * (3.2 s on the llvmpipe software adapter), so the test runs 3 steps of 128 rather than 20 —
 * at the full batch, where the filter gradient's long loops once went wrong (see
 * `backends/kernels/webgpu_conv2d_backprop_filter.ts`); the bound below was measured over 20 steps.
 */
export const WEBGPU_EQUIVALENCE_STEPS: Readonly<
  Record<string, { steps: number; batchSize: number }>
> = { "mnist-cnn": { steps: 3, batchSize: 128 } };

/**
 * How far webgpu's parameters may lie from the cpu backend's after the same training steps
 * from the same start: ‖θ_webgpu − θ_cpu‖₂ / ‖θ_cpu − θ₀‖₂, the difference relative to the
 * distance training moved the parameters.
 *
 * Measured after 20 steps on Deno 2.9.6's llvmpipe adapter (LLVM 15, a software Vulkan
 * driver), seed 1: synthetic-mlp 7.6e-7, mnist-mlp 8.4e-7, mnist-cnn (batch 16) 1.0e-5,
 * iris-logreg 5.6e-8 (max |Δparam| 1.8e-6, 2.0e-6, 1.0e-5, 6.0e-8); mnist-cnn at its batch of
 * 128, 3 steps: 2.2e-6 (before the chunked filter gradient: 3.3e-2 after 2 steps). The kernels sum in another
 * order than the cpu backend's (tiled matrix products, workgroup reductions), so each step
 * differs by float32 rounding (ε = 1.2e-7 relative), and Adam's division by √v amplifies
 * the differences of small gradients, most in the convolutions' long sums. 1e-4 is ten times
 * the largest measured: room for a real GPU's different tiling and fused multiply-adds, while a
 * wrong kernel (a transposed or mis-strided gradient, a dropped term) moves parameters by O(1)
 * of the distance travelled and fails it by four orders of magnitude.
 */
export const WEBGPU_EQUIVALENCE_BOUND = 1e-4;
