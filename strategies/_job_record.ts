/**
 * What a DDP rank says its job is, for the TCP rendezvous to compare across hosts
 * (`comm/_tcp_rendezvous.ts`): every setting that must be the same on every rank for the run
 * to be one run, by the flag that sets it, plus the checkpoint it resumes from (by content) and
 * the code's version. Two hosts started with a different `--batch`, `--seed`, `--steps`, or
 * `--resume` on one of them only, fail together before training, naming the setting and the
 * hosts.
 *
 * Settings that are each host's own are left out: `--threads` (its cores), `--bind`,
 * `--checkpoint` (rank 0 writes it), `--trace`, the timeouts.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { JobRecord } from "../comm/init_process_group.ts";
import { checkpointLimitBytes } from "../core/checkpoint.ts";
import { createLayout } from "../core/flat_layout.ts";
import { readInputFile } from "../core/read_input.ts";
import { DEFAULT_BUCKET_BYTES, type RunSpec } from "../core/run_types.ts";
import { resolveWorkload } from "../workloads/resolve_workload.ts";

/** The source a rank runs: these folders' modules, and the pinned dependencies. */
const SOURCE_FOLDERS = [
  "core",
  "backends",
  "workloads",
  "comm",
  "strategies",
  "bench",
  "analysis",
  "reports",
  "cli",
];
const SOURCE_FILES = ["deno.json", "deno.lock"];
/** Hex digits of a hash shown (and compared). */
const HASH_DIGITS = 16;

/**
 * The job `spec` describes, as every rank of it must agree.
 *
 * @param spec the run
 * @returns the record the rendezvous compares
 * @example
 * ```ts
 * declare const spec: import("../core/run_types.ts").RunSpec;
 * const job = await jobRecord(spec); // { "--batch": 48, "--seed": 4, …, "code version": "…" }
 * ```
 */
export async function jobRecord(spec: RunSpec): Promise<JobRecord> {
  return {
    "--workload": spec.workload,
    "--data": spec.data ?? "default",
    "--loss": spec.loss ?? "default",
    "--batch (global)": spec.globalBatch,
    "--steps": spec.steps,
    "--warmup": spec.warmup,
    "--seed": spec.seed,
    "--accumulate": spec.accumulate ?? 1,
    "--scaling": spec.scaling ?? "strong",
    "--grad-compression": spec.gradCompression ?? "none",
    "--bucket-mb": (spec.bucketBytes ?? DEFAULT_BUCKET_BYTES) / 2 ** 20,
    "--no-overlap": spec.overlap === false,
    "--backend": spec.backend,
    "--no-fast-kernels": !spec.fastKernels,
    "--transport": spec.transport ?? "unix",
    "--batchnorm": spec.batchNorm ?? "local",
    "--resume": spec.resumePath ? await resumeHash(spec) : "none",
    "code version": await codeVersion(),
  };
}

/** `sha256:<hex>` of the checkpoint's bytes, read as every input is (bounded, regular). */
async function resumeHash(spec: RunSpec): Promise<string> {
  const workload = await resolveWorkload(spec.workload, { data: spec.data, loss: spec.loss });
  const bytes = await readInputFile(spec.resumePath!, {
    what: "checkpoint",
    limitBytes: checkpointLimitBytes(createLayout(workload.createModel().params)),
    limitName: "a checkpoint of this model",
  });
  return `sha256:${await sha256(bytes)}`;
}

let version: Promise<string> | null = null;

/**
 * A hash of the code this process runs: every module of the source folders and the pinned
 * dependencies, by path and content; `unknown` where the code is not on a file system.
 *
 * @returns the version, the same on every host that runs the same checkout
 * @example
 * ```ts
 * await codeVersion(); // "3f0c…"
 * ```
 */
export function codeVersion(): Promise<string> {
  return version ??= (async () => {
    const root = new URL("../", import.meta.url);
    if (root.protocol !== "file:") return "unknown";
    const dir = fileURLToPath(root);
    const files: string[] = [...SOURCE_FILES];
    const walk = (folder: string) => {
      for (const entry of Deno.readDirSync(join(dir, folder))) {
        const path = `${folder}/${entry.name}`;
        if (entry.isDirectory) walk(path);
        else if (/\.(ts|json)$/.test(entry.name)) files.push(path);
      }
    };
    try {
      SOURCE_FOLDERS.forEach(walk);
      const parts: Uint8Array[] = [];
      const encoder = new TextEncoder();
      for (const file of files.sort()) {
        parts.push(encoder.encode(`${file}\0`), await Deno.readFile(join(dir, file)));
      }
      const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const part of parts) {
        all.set(part, at);
        at += part.length;
      }
      return await sha256(all);
    } catch {
      return "unknown";
    }
  })();
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("").slice(
    0,
    HASH_DIGITS,
  );
}
