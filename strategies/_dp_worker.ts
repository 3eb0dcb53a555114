/**
 * A DP worker replica: a Web Worker with its own TensorFlow.js engine. It builds its model
 * once, then per step loads the parameters the main thread replicates to it and computes the
 * gradient of its slice; it never updates (the main thread holds the only optimizer). For the
 * ceiling it instead computes the gradient of its own slice, kept from before the first step,
 * and keeps it.
 *
 * @module
 */
import { initBackend } from "../backends/backend.ts";
import { PeakMemory } from "../core/memory.ts";
import { type Batch, Trainer } from "../core/trainer.ts";
import { fastWireCodec } from "../comm/wire_codec.ts";
import { SharedMemorySum } from "../comm/shared_memory_sum.ts";
import { resolveWorkload } from "../workloads/resolve_workload.ts";
import type { FromReplica, ReplicaInit, ToReplica } from "./_dp_messages.ts";

/** The part of the worker global scope used here (the file is checked with the window lib). */
interface WorkerScope {
  postMessage(message: FromReplica, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<ToReplica>) => void) | null;
}

const scope = self as unknown as WorkerScope;
const memory = new PeakMemory();
let init: ReplicaInit | undefined;
let trainer: Trainer | undefined;
let ownBatch: Batch | undefined;
/** Step of the message being handled (0 during set-up), for error reports. */
let currentStep = 0;

function ready(): Trainer {
  if (!trainer) throw new Error("Replica is not initialised: no init message received");
  return trainer;
}

async function setUp(message: ReplicaInit): Promise<void> {
  init = message;
  await initBackend(message.backend, {
    fastKernels: message.fastKernels,
    threads: message.threads,
  });
  const workload = await resolveWorkload(message.workload, {
    data: message.data,
    loss: message.loss,
  });
  trainer = new Trainer(
    workload.createModel(),
    { featureShape: message.featureShape, numClasses: message.numClasses },
    workload.defaults.optimizer,
    { seed: message.seed },
  );
  const sync = message.syncStatistics;
  if (sync) {
    trainer.synchronizeStatistics(
      new SharedMemorySum(sync.buffer, sync.parties, message.index, sync.timeoutMs),
    );
  }
  memory.sample();
  scope.postMessage({ kind: "ready", peakBytes: memory.bytes });
}

async function handle(message: ToReplica): Promise<void> {
  switch (message.kind) {
    case "init":
      return await setUp(message.init);
    case "params":
      ready().setParams(message.params);
      if (message.buffers) ready().setBuffers(message.buffers);
      memory.sample();
      return;
    case "compute": {
      const startedAt = performance.timeOrigin + performance.now();
      const { loss, grads: full } = await ready().accumulateGradientsAsync(message.batches);
      // Cast for the wire where asked, as DDP's compression hooks do before their all-reduce.
      const codec = await fastWireCodec(init?.gradCompression);
      const grads = codec ? new Uint16Array(full.length) : full;
      if (codec) codec.encode(full, grads as Uint16Array);
      const doneAt = performance.timeOrigin + performance.now();
      memory.sample();
      const reply: FromReplica = {
        kind: "grads",
        step: message.step,
        loss,
        grads,
        startedAt,
        doneAt,
        peakBytes: memory.bytes,
      };
      return scope.postMessage(reply, [grads.buffer as ArrayBuffer]);
    }
    case "data":
      ownBatch = message.batch;
      return;
    case "computeOwn": {
      if (!ownBatch) throw new Error("Replica has no data: no data message received");
      for (let k = 0; k < message.times; k++) await ready().accumulateGradientsAsync([ownBatch]);
      memory.sample();
      return scope.postMessage({ kind: "computed", step: message.step, peakBytes: memory.bytes });
    }
  }
}

/** True when the test-only fault is due on this message (only `compute` messages fail). */
function faultDue(message: ToReplica): boolean {
  return message.kind === "compute" && init?.fault?.step === message.step;
}

scope.onmessage = (event) => {
  const message = event.data;
  currentStep = "step" in message ? message.step : 0;
  if (faultDue(message)) {
    const fault = init!.fault!;
    const text = `injected fault at step ${fault.step}`;
    if (fault.mode === "hang") return; // never answer
    if (fault.mode === "crash") throw new Error(text); // uncaught: the worker's error event
    return scope.postMessage({ kind: "error", step: currentStep, message: text });
  }
  handle(message).catch((error) => {
    const text = error instanceof Error ? error.message : String(error);
    scope.postMessage({ kind: "error", step: currentStep, message: text });
  });
};
