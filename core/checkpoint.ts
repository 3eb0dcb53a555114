/**
 * Checkpoints: a model's flat parameters with their layout, as one JSON file written
 * atomically. Strategy-independent by construction — a DDP rank 0, a DP main replica and a
 * single run all write (and read) the same flat buffer.
 *
 * @module
 */
import { decodeBase64, encodeBase64 } from "./_base64.ts";
import type { FlatLayout } from "./flat_layout.ts";
import { UsageError } from "./errors.ts";
import { readInputText } from "./read_input.ts";
import { writeAtomic } from "./write_atomic.ts";
import { firstNonFinite } from "./trainer.ts";

/** The checkpoint format identifier. */
export const CHECKPOINT_SCHEMA = "paratrain/checkpoint@1";

/** A checkpoint: what was trained, the layout, and the parameters (little-endian float32). */
export interface Checkpoint {
  schema: typeof CHECKPOINT_SCHEMA;
  workload: string;
  /** Training steps taken when it was written. */
  steps: number;
  layout: FlatLayout;
  params: Float32Array;
  /**
   * The model's buffers (BatchNorm's running statistics) where it has any, laid out as the
   * trainer's `bufferLayout`; absent otherwise and in older files.
   */
  buffers?: Float32Array;
}

/**
 * Write `checkpoint` to `path` atomically (temp file, then rename).
 *
 * @param path destination
 * @param checkpoint what to write
 * @example
 * ```ts
 * import { createLayout } from "./flat_layout.ts";
 * const layout = createLayout([{ name: "w", shape: [2, 2] }]);
 * const params = new Float32Array(4);
 * await writeCheckpoint("model.ckpt.json", { schema: CHECKPOINT_SCHEMA, workload: "w", steps: 1, layout, params });
 * ```
 */
export async function writeCheckpoint(path: string, checkpoint: Checkpoint): Promise<void> {
  const { params, buffers, ...rest } = checkpoint;
  const bad = firstNonFinite(params);
  if (bad >= 0) {
    throw new Error(
      `Refusing to write checkpoint ${path}: parameter ${bad} is ${params[bad]} (not finite)`,
    );
  }
  const base64 = (a: Float32Array) =>
    encodeBase64(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  const text = JSON.stringify({
    ...rest,
    params: base64(params),
    ...(buffers && buffers.length > 0 ? { buffers: base64(buffers) } : {}),
  });
  await writeAtomic(path, text);
}

/** Room beyond a checkpoint's own size that a readable one may take (formatting, a longer name). */
const CHECKPOINT_SLACK_BYTES = 1 << 20;

/**
 * The most bytes a checkpoint of `layout` may have: twice what one written by
 * {@linkcode writeCheckpoint} takes (its parameters in base64, its layout), plus 1 MiB.
 *
 * @param layout the model's layout
 * @returns the limit in bytes
 * @example
 * ```ts
 * import { createLayout } from "./flat_layout.ts";
 * checkpointLimitBytes(createLayout([{ name: "w", shape: [2, 2] }])); // about 1 MiB
 * ```
 */
export function checkpointLimitBytes(layout: FlatLayout): number {
  const params = 4 * Math.ceil((layout.totalSize * Float32Array.BYTES_PER_ELEMENT) / 3);
  return 2 * (params + JSON.stringify(layout).length) + CHECKPOINT_SLACK_BYTES;
}

/**
 * Read a checkpoint and check it fits `workload` and `layout`. It is read as any input is
 * (`read_input.ts`): a regular file of at most {@linkcode checkpointLimitBytes}.
 *
 * @param path the file
 * @param expected the workload name and layout it must match
 * @returns the checkpoint
 * @throws UsageError when the file is unreadable, malformed, or for another model
 * @example
 * ```ts
 * import { createLayout } from "./flat_layout.ts";
 * const layout = createLayout([{ name: "w", shape: [2, 2] }]);
 * const { params } = await readCheckpoint("model.ckpt.json", { workload: "mnist-mlp", layout });
 * ```
 */
export async function readCheckpoint(
  path: string,
  expected: { workload: string; layout: FlatLayout },
): Promise<Checkpoint> {
  const text = await readInputText(path, {
    what: "checkpoint",
    limitBytes: checkpointLimitBytes(expected.layout),
    limitName: "a checkpoint of this model",
  });
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new UsageError(`Cannot read checkpoint ${path}: not valid JSON`);
  }
  if (raw.schema !== CHECKPOINT_SCHEMA || typeof raw.params !== "string") {
    throw new UsageError(`Cannot read checkpoint ${path}: not a ${CHECKPOINT_SCHEMA} file`);
  }
  if (raw.workload !== expected.workload) {
    throw new UsageError(
      `Checkpoint ${path} is for workload "${raw.workload}", not "${expected.workload}"`,
    );
  }
  const layout = raw.layout as FlatLayout;
  if (JSON.stringify(layout) !== JSON.stringify(expected.layout)) {
    throw new UsageError(`Checkpoint ${path} has another parameter layout than this model`);
  }
  const bytes = decodeBase64(raw.params);
  if (bytes.byteLength !== layout.totalSize * Float32Array.BYTES_PER_ELEMENT) {
    throw new UsageError(`Checkpoint ${path} is truncated: expected ${layout.totalSize} floats`);
  }
  const params = new Float32Array(bytes.buffer, bytes.byteOffset, layout.totalSize).slice();
  const bad = firstNonFinite(params);
  if (bad >= 0) {
    throw new UsageError(
      `Checkpoint ${path} holds a non-finite parameter (index ${bad} is ${
        params[bad]
      }): refusing to resume from it`,
    );
  }
  let buffers: Float32Array | undefined;
  if (typeof raw.buffers === "string") {
    const b = decodeBase64(raw.buffers);
    buffers = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice();
  }
  return {
    schema: CHECKPOINT_SCHEMA,
    workload: expected.workload,
    steps: Number(raw.steps),
    layout,
    params,
    ...(buffers ? { buffers } : {}),
  };
}

/**
 * The buffers to start from: the checkpoint's (`spec.resumePath`) where it has them for this
 * model, else null (keep the trainer's own, freshly initialised).
 *
 * @param spec the run's workload and checkpoint to resume from
 * @param trainer the trainer (its layouts)
 * @returns the buffers, or null
 * @example
 * ```ts
 * import type { Trainer } from "./trainer.ts";
 * declare const trainer: Trainer;
 * const buffers = await startingBuffers({ workload: "resnet-cnn:tiny" }, trainer);
 * ```
 */
export async function startingBuffers(
  spec: { workload: string; resumePath?: string },
  trainer: { layout: FlatLayout; bufferLayout: FlatLayout },
): Promise<Float32Array | null> {
  if (!spec.resumePath || trainer.bufferLayout.totalSize === 0) return null;
  const expected = { workload: spec.workload, layout: trainer.layout };
  const { buffers } = await readCheckpoint(spec.resumePath, expected);
  return buffers?.length === trainer.bufferLayout.totalSize ? buffers : null;
}

/**
 * The parameters a run starts from: its `resumePath` checkpoint if it has one, else the
 * trainer's fresh initialisation.
 *
 * @param spec the run
 * @param trainer its trainer (for the layout and the fresh parameters)
 * @returns flat parameters
 * @example
 * ```ts
 * import type { RunSpec } from "./run_types.ts";
 * import type { Trainer } from "./trainer.ts";
 * declare const spec: RunSpec;
 * declare const trainer: Trainer;
 * trainer.setParams(await startingParams(spec, trainer));
 * ```
 */
export async function startingParams(
  spec: { workload: string; resumePath?: string },
  trainer: { layout: FlatLayout; getParams(): Float32Array },
): Promise<Float32Array> {
  if (!spec.resumePath) return trainer.getParams();
  const expected = { workload: spec.workload, layout: trainer.layout };
  return (await readCheckpoint(spec.resumePath, expected)).params;
}

/**
 * Write the trainer's parameters to the run's `checkpointPath`, if it has one. Call it on
 * the one replica that owns the result (rank 0, the DP main).
 *
 * @param spec the run
 * @param trainer its trainer
 * @param steps steps taken
 * @example
 * ```ts
 * import type { RunSpec } from "./run_types.ts";
 * import type { Trainer } from "./trainer.ts";
 * declare const spec: RunSpec;
 * declare const trainer: Trainer;
 * declare const rank: number;
 * if (rank === 0) await saveCheckpoint(spec, trainer, spec.warmup + spec.steps);
 * ```
 */
export async function saveCheckpoint(
  spec: { workload: string; checkpointPath?: string },
  trainer: { layout: FlatLayout; getParams(): Float32Array; getBuffers?(): Float32Array },
  steps: number,
): Promise<void> {
  if (!spec.checkpointPath) return;
  const buffers = trainer.getBuffers?.();
  await writeCheckpoint(spec.checkpointPath, {
    schema: CHECKPOINT_SCHEMA,
    workload: spec.workload,
    steps,
    layout: trainer.layout,
    params: trainer.getParams(),
    ...(buffers && buffers.length > 0 ? { buffers } : {}),
  });
}
