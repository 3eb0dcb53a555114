import * as tf from "@tensorflow/tfjs-core";
import { convFlops, dense, denseFlops, denseParams } from "../core/layers.ts";
import {
  batchNorm,
  batchNormBuffers,
  convKernelParams,
  convNoBias,
  normParams,
} from "../core/nn_layers.ts";
import type {
  BufferDef,
  ForwardContext,
  ParamDef,
  Workload,
  WorkloadFamily,
} from "../core/workload.ts";
import { loadMnist } from "./_mnist_data.ts";

/** A size: blocks per stage (ResNet-{6n+2}, as He et al.'s CIFAR nets) and the first width. */
interface Preset {
  /** BasicBlocks per stage: 1 is ResNet-8, 3 is ResNet-20. */
  blocks: number;
  /** Channels of the first stage; each later stage doubles them. */
  width: number;
  batch: number;
  steps: number;
}

/** The sizes, smallest first. */
const PRESETS: Record<string, Preset> = {
  tiny: { blocks: 1, width: 8, batch: 128, steps: 20 },
  small: { blocks: 1, width: 16, batch: 128, steps: 20 },
  medium: { blocks: 3, width: 16, batch: 128, steps: 20 },
};

/** The bare name's size. */
const DEFAULT_SIZE = "tiny";
/**
 * SGD with momentum 0.9, as He et al., torchvision's reference and mlbench train ResNets:
 * Adam's normalised step turns BatchNorm's near-zero, rounding-level gradients (the
 * scale-invariant directions of the convolutions before it) into learning-rate-sized steps.
 */
const LEARNING_RATE = 0.05;
/**
 * Steps after which DP's and DDP's parameters are compared with single's: one, the first
 * update, which is the learning rate times the gradient — so the check is of the gradient
 * each strategy computes. BatchNorm networks amplify float rounding: one ulp of a batch mean,
 * divided by a channel's small standard deviation, grows 2–3x a step here, so that after 20
 * steps a 1-ulp change of single's own starting parameters moves them by ~1e-3 (measured),
 * and later comparisons would measure that, not the strategy. After one step SyncBatchNorm is
 * within 1e-5 of single at every size, local statistics ~1e-3 away.
 */
const EQUIVALENCE_STEPS = 1;
/** Side of an MNIST digit, and of the first stage's maps. */
const SIDE = 28;
/** Stages, each halving the map (after the first) and doubling the channels. */
const STAGES = 3;
const CLASSES = 10;

/** One layer of the model: its parameters, buffers and training FLOPs per sample. */
interface Parts {
  params: ParamDef[];
  buffers: BufferDef[];
  flops: number;
}

/** conv (no bias) + BatchNorm, on an output map of side `side`. */
function convBn(name: string, size: number, cin: number, cout: number, side: number): Parts {
  return {
    params: [
      ...convKernelParams(`${name}/conv`, size, cin, cout),
      ...normParams(`${name}/bn`, cout),
    ],
    buffers: batchNormBuffers(`${name}/bn`, cout),
    flops: convFlops(side, side, size, cin, cout),
  };
}

function join(parts: Parts[]): Parts {
  return {
    params: parts.flatMap((p) => p.params),
    buffers: parts.flatMap((p) => p.buffers),
    flops: parts.reduce((s, p) => s + p.flops, 0),
  };
}

/** One BasicBlock's layout, as torchvision's: the shortcut is a 1×1 conv + BN when the shape changes. */
interface Block {
  name: string;
  stride: number;
  downsample: boolean;
}

/** torchvision's `_make_layer`: `blocks` BasicBlocks, the first at `stride`, as a list. */
function makeLayer(stage: number, blocks: number, cin: number, cout: number): Block[] {
  const stride = stage === 0 ? 1 : 2;
  return Array.from({ length: blocks }, (_, i) => ({
    name: `layer${stage + 1}.${i}`,
    stride: i === 0 ? stride : 1,
    downsample: i === 0 && (stride !== 1 || cin !== cout),
  }));
}

type P = Record<string, tf.Tensor>;

function convBnApply(p: P, name: string, x: tf.Tensor, stride: number, ctx: ForwardContext) {
  return batchNorm(p, `${name}/bn`, convNoBias(p, `${name}/conv`, x, stride), ctx);
}

/** BasicBlock: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)). */
function basicBlock(p: P, block: Block, x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
  const h = tf.relu(convBnApply(p, `${block.name}/1`, x, block.stride, ctx));
  const out = convBnApply(p, `${block.name}/2`, h, 1, ctx);
  const shortcut = block.downsample
    ? convBnApply(p, `${block.name}/down`, x, block.stride, ctx)
    : x;
  return tf.relu(tf.add(out, shortcut));
}

function sized(size: string, preset: Preset): Workload {
  const { blocks, width } = preset;
  const widths = Array.from({ length: STAGES }, (_, s) => width * 2 ** s);
  const layers = widths.map((w, s) => makeLayer(s, blocks, s === 0 ? width : widths[s - 1], w));
  const depth = 6 * blocks + 2;
  return {
    name: `resnet-cnn:${size}`,
    description: `ResNet-${depth} (BasicBlocks ${blocks}-${blocks}-${blocks}, widths ${
      widths.join("-")
    }, BatchNorm) on MNIST, batch ${preset.batch}`,
    defaults: {
      batchSize: preset.batch,
      steps: preset.steps,
      optimizer: { kind: "momentum", learningRate: LEARNING_RATE },
      equivalenceSteps: EQUIVALENCE_STEPS,
    },
    loadData: (seed) => loadMnist(seed, true),
    createModel: () => {
      const parts: Parts[] = [convBn("stem", 3, 1, width, SIDE)];
      layers.forEach((stage, s) => {
        const side = SIDE / 2 ** s; // 28, 14, 7
        const cout = widths[s];
        stage.forEach((b, i) => {
          const cin = i === 0 ? (s === 0 ? width : widths[s - 1]) : cout;
          parts.push(
            convBn(`${b.name}/1`, 3, cin, cout, side),
            convBn(`${b.name}/2`, 3, cout, cout, side),
          );
          if (b.downsample) parts.push(convBn(`${b.name}/down`, 1, cin, cout, side));
        });
      });
      const head = widths[STAGES - 1];
      const body = join(parts);
      return {
        params: [...body.params, ...denseParams("fc", head, CLASSES)],
        buffers: body.buffers,
        forward: (p, x, ctx) => {
          let h = tf.relu(convBnApply(p, "stem", x, 1, ctx));
          for (const stage of layers) for (const block of stage) h = basicBlock(p, block, h, ctx);
          return dense(p, "fc", tf.mean(h, [1, 2])); // global average pool, then the classifier
        },
        trainFlopsPerSample: body.flops + denseFlops(head, CLASSES),
      };
    },
  };
}

/**
 * A residual CNN with BatchNorm on MNIST, torchvision's BasicBlock stacked by `_make_layer`
 * into He et al.'s three-stage CIFAR layout: ResNet-8 (narrow and wider) and ResNet-20.
 */
export const resnetCnn: WorkloadFamily = {
  name: "resnet-cnn",
  description:
    "residual CNN with BatchNorm (torchvision's BasicBlock, three stages) on the 10,000 real MNIST digits; --batchnorm local|sync under dp/ddp",
  sizes: Object.fromEntries(Object.entries(PRESETS).map(([size, p]) => [size, sized(size, p)])),
  defaultSize: DEFAULT_SIZE,
};
