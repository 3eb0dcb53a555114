/**
 * paratrain: train small TensorFlow.js models under single-device, DataParallel and
 * DistributedDataParallel strategies, and measure what each really costs.
 *
 * The public API is the workload interface (bring your own model and dataset — or a
 * TensorFlow.js Layers model: `layersWorkload`, `resolveWorkload("model:…")`), the training
 * core's flat-buffer seam, the strategies and the bench.
 *
 * @example Train your own workload on one device
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { denseParams, dense, denseFlops, registerWorkload, runSingle } from "./mod.ts";
 *
 * // The four points of XOR, as train and test split alike.
 * const xor = { x: new Float32Array([0, 0, 0, 1, 1, 0, 1, 1]), y: new Int32Array([0, 1, 1, 0]), size: 4 };
 * const myXorDataset = { featureShape: [2], numClasses: 2, train: xor, test: xor };
 *
 * registerWorkload({
 *   name: "xor",
 *   description: "XOR with a tiny MLP",
 *   defaults: { batchSize: 4, steps: 200, optimizer: { kind: "adam", learningRate: 0.05 } },
 *   loadData: () => Promise.resolve(myXorDataset),
 *   createModel: () => ({
 *     params: [...denseParams("h", 2, 8), ...denseParams("out", 8, 2)],
 *     forward: (p, x) => dense(p, "out", tf.relu(dense(p, "h", x))),
 *     trainFlopsPerSample: denseFlops(2, 8) + denseFlops(8, 2),
 *   }),
 * });
 * const result = await runSingle({
 *   workload: "xor", strategy: "single", worldSize: 1, backend: "wasm", fastKernels: true,
 *   seed: 0, steps: 200, warmup: 0, globalBatch: 4, snapshotStep: 20,
 * });
 * console.log(result.accuracy);
 * ```
 *
 * @module
 */
export type {
  BufferDef,
  CrossReplicaSum,
  Dataset,
  ForwardContext,
  Hyperparameters,
  ModelDef,
  ModelReport,
  OptimizerSpec,
  ParamDef,
  Split,
  UncountedLayers,
  Workload,
  WorkloadFamily,
} from "./core/workload.ts";
export {
  describeLoss,
  LOSS_NAMES,
  lossByName,
  type LossName,
  type ModelLoss,
  type OutputKind,
} from "./core/losses.ts";
export { type BackendName, BACKENDS, initBackend } from "./backends/backend.ts";
export { ExpectedError, UsageError } from "./core/errors.ts";
export { createLayout, type FlatLayout, flatten, unflatten } from "./core/flat_layout.ts";
export { type Batch, type GradientResult, initialParams, Trainer } from "./core/trainer.ts";
export { conv, convFlops, convParams, dense, denseFlops, denseParams } from "./core/layers.ts";
export { glorotUniform, heNormal, zeros } from "./core/init.ts";
export {
  batchNorm,
  batchNormBuffers,
  convKernelParams,
  convNoBias,
  embed,
  layerNormLayer,
  normalInit,
  normParams,
  ones,
} from "./core/nn_layers.ts";
export {
  causalSoftmax,
  embedding,
  gelu,
  layerNorm,
  NN_KERNELS,
  softmaxCrossEntropy,
} from "./core/nn_ops.ts";
export { createRng, normal, permutation } from "./core/rng.ts";
export { trainLoop } from "./core/train_loop.ts";
export { createFlatOptimizer, type FlatOptimizer } from "./core/flat_optimizer.ts";
export { type Checkpoint, readCheckpoint, writeCheckpoint } from "./core/checkpoint.ts";
export type { RunMeasurement, RunSpec, StrategyName } from "./core/run_types.ts";
export {
  builtinWorkloadNames,
  getWorkload,
  registerWorkload,
  WORKLOAD_FAMILIES,
  WORKLOADS,
} from "./workloads/registry.ts";
export { splitDataset } from "./workloads/split_dataset.ts";
export {
  DATA_SOURCES,
  isLayersModel,
  LAYERS_BATCH,
  LAYERS_STEPS,
  layersWorkload,
  type LayersWorkloadOptions,
} from "./workloads/layers_workload.ts";
export {
  ACTIVATION_FLOPS,
  countLayersFlops,
  type LayersFlops,
  NORMALIZATION_FLOPS,
  TRAIN_PER_FORWARD,
} from "./workloads/layers_flops.ts";
export { loadLayersModelFile } from "./workloads/load_layers_model.ts";
export {
  canonicalReference,
  type ResolveOptions,
  resolveWorkload,
} from "./workloads/resolve_workload.ts";
export { runSingle } from "./strategies/single.ts";
export { measureDpCeiling, runDp } from "./strategies/dp.ts";
export { runDdp } from "./strategies/ddp.ts";
export { initProcessGroup, initProcessGroupFromEnv } from "./comm/init_process_group.ts";
export { ProcessGroup } from "./comm/process_group.ts";
export { launch, LaunchError } from "./comm/launcher.ts";
export { reportResult } from "./comm/report_result.ts";
export { STRATEGIES } from "./strategies/registry.ts";
export { DistributedSampler } from "./strategies/distributed_sampler.ts";
export { runBench } from "./bench/run_bench.ts";
export { runAllreduceBench } from "./bench/allreduce.ts";
export { gate } from "./analysis/gate.ts";
export { compareResults } from "./analysis/compare.ts";
export { buildMatrix } from "./analysis/matrix.ts";
export { buildCrossover, type CrossoverEntry } from "./analysis/crossover.ts";
export { writeReports } from "./reports/write_reports.ts";
export { readResults, validateResults } from "./analysis/validate_results.ts";
