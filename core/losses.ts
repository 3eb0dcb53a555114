/**
 * The losses a model brought from outside may name (a TensorFlow.js Layers model's compile
 * configuration, or `--loss`), computed as tfjs-layers' `losses.ts` computes them, from the
 * class labels every dataset holds. The built-in workloads keep the trainer's softmax
 * cross-entropy on logits; a model that declares a {@linkcode ModelLoss} gets one of these.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** The losses paratrain computes, by their `--loss` names. */
export const LOSS_NAMES = [
  "sparse-categorical-crossentropy",
  "categorical-crossentropy",
  "binary-crossentropy",
  "mean-squared-error",
] as const;

/** One of {@linkcode LOSS_NAMES}. */
export type LossName = typeof LOSS_NAMES[number];

/**
 * What a model's output is, as its loss reads it: `logits` (a last layer without activation),
 * `probabilities` (softmax, or sigmoid for the binary cross-entropy), or `values` (MSE takes
 * the output as it is).
 */
export type OutputKind = "logits" | "probabilities" | "values";

/** A model's loss: which one, what its output is, and how many outputs a label covers. */
export interface ModelLoss {
  name: LossName;
  output: OutputKind;
  /**
   * Outputs per label (the output's last axis): the classes, or 1 for a binary or scalar
   * output, whose target is the label itself (0 or 1).
   */
  units: number;
}

/**
 * What tfjs-layers clips probabilities to, [ε, 1 − ε], before taking their logarithm (Keras's
 * backend epsilon).
 */
export const PROBABILITY_EPSILON = 1e-7;

/** Keras's and tfjs's spellings of each loss, lower case without separators. */
const ALIASES: Record<string, LossName> = {
  sparsecategoricalcrossentropy: "sparse-categorical-crossentropy",
  categoricalcrossentropy: "categorical-crossentropy",
  binarycrossentropy: "binary-crossentropy",
  meansquarederror: "mean-squared-error",
  mse: "mean-squared-error",
};

/**
 * A loss by any of its usual spellings: `--loss` names, Keras's snake case
 * (`categorical_crossentropy`), tfjs's camel case (`categoricalCrossentropy`), `mse`.
 *
 * @param text the name
 * @returns the loss, or undefined for one paratrain does not compute
 * @example
 * ```ts
 * lossByName("categorical_crossentropy"); // "categorical-crossentropy"
 * lossByName("hinge"); // undefined
 * ```
 */
export function lossByName(text: string): LossName | undefined {
  return ALIASES[text.toLowerCase().replace(/[-_\s]/g, "")];
}

/**
 * The classes a dataset for this loss has: the outputs, or 2 where one output's target is
 * the label itself.
 *
 * @param loss the model's loss
 * @returns the class count
 * @example
 * ```ts
 * lossClasses({ name: "binary-crossentropy", output: "probabilities", units: 1 }); // 2
 * ```
 */
export function lossClasses(loss: ModelLoss): number {
  return loss.units === 1 ? 2 : loss.units;
}

/**
 * The targets of `labels` as the loss takes them: one-hot rows of `units`, or, for one
 * output, the label (0 or 1) as a float column.
 *
 * @param loss the model's loss
 * @param labels int32 class labels, one per row of the output
 * @returns `[labels, units]` float32
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * const loss = { name: "mean-squared-error", output: "values", units: 3 } as const;
 * lossTargets(loss, tf.tensor1d([2, 0], "int32")); // [[0, 0, 1], [1, 0, 0]]
 * ```
 */
export function lossTargets(loss: ModelLoss, labels: tf.Tensor1D): tf.Tensor {
  if (loss.units === 1) return tf.reshape(tf.cast(labels, "float32"), [-1, 1]);
  return tf.oneHot(labels, loss.units);
}

/**
 * The mean loss over every row of `output` against `targets` (from {@linkcode lossTargets}).
 * Cross-entropies on probabilities clip them to {@linkcode PROBABILITY_EPSILON} as
 * tfjs-layers does (the categorical one first divides each row by its sum); on logits they
 * are the log-softmax / log-sigmoid forms.
 *
 * @param loss the model's loss
 * @param output `[rows, units]`
 * @param targets `[rows, units]`
 * @returns the scalar mean
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * const loss = { name: "mean-squared-error", output: "values", units: 1 } as const;
 * lossValue(loss, tf.tensor2d([[0.5]]), tf.tensor2d([[1]])); // 0.25
 * ```
 */
export function lossValue(loss: ModelLoss, output: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  const eps = PROBABILITY_EPSILON;
  switch (loss.name) {
    case "mean-squared-error":
      return tf.mean(tf.squaredDifference(output, targets));
    case "binary-crossentropy": {
      if (loss.output === "logits") {
        // max(z, 0) − z·t + log(1 + e^−|z|): the stable form of the sigmoid's cross-entropy.
        const z = output;
        return tf.mean(
          tf.add(tf.sub(tf.relu(z), tf.mul(z, targets)), tf.log1p(tf.exp(tf.neg(tf.abs(z))))),
        );
      }
      const p = tf.clipByValue(output, eps, 1 - eps);
      const terms = tf.add(
        tf.mul(targets, tf.log(p)),
        tf.mul(tf.sub(1, targets), tf.log(tf.sub(1, p))),
      );
      return tf.neg(tf.mean(terms));
    }
    default: {
      // Sparse or not, the labels are class indices made one-hot: the same sum.
      const logP = loss.output === "logits"
        ? tf.logSoftmax(output)
        : tf.log(tf.clipByValue(tf.div(output, tf.sum(output, -1, true)), eps, 1 - eps));
      return tf.neg(tf.mean(tf.sum(tf.mul(targets, logP), -1)));
    }
  }
}

/**
 * The class each row of `output` predicts: the largest output, or, for one output, whether
 * it passes the middle (0 for logits, 0.5 otherwise).
 *
 * @param loss the model's loss
 * @param output `[..., units]`
 * @returns int32 classes, one per row
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * const loss = { name: "binary-crossentropy", output: "logits", units: 1 } as const;
 * predictedClasses(loss, tf.tensor2d([[-1], [2]])); // [0, 1]
 * ```
 */
export function predictedClasses(loss: ModelLoss, output: tf.Tensor): tf.Tensor {
  if (loss.units > 1) return tf.argMax(output, -1);
  const middle = loss.output === "logits" ? 0 : 0.5;
  return tf.cast(tf.greater(tf.reshape(output, [-1]), middle), "int32");
}

/**
 * The loss in words, for reports: which, and what it reads.
 *
 * @param loss the model's loss
 * @returns e.g. `categorical cross-entropy on the softmax's probabilities (clipped to [1e-7, 1 − 1e-7])`
 * @example
 * ```ts
 * describeLoss({ name: "mean-squared-error", output: "values", units: 10 });
 * ```
 */
export function describeLoss(loss: ModelLoss): string {
  const target = loss.units === 1 ? "the label (0 or 1)" : `one-hot labels of ${loss.units}`;
  const clipped = `clipped to [${PROBABILITY_EPSILON}, 1 − ${PROBABILITY_EPSILON}]`;
  switch (loss.name) {
    case "mean-squared-error":
      return `${loss.name} of the output against ${target}`;
    case "binary-crossentropy":
      return loss.output === "logits"
        ? `${loss.name} on logits (no sigmoid in the model) against ${target}`
        : `${loss.name} on the sigmoid's probabilities (${clipped}) against ${target}`;
    default:
      return loss.output === "logits"
        ? `${loss.name} on logits (log-softmax; no softmax in the model)`
        : `${loss.name} on the softmax's probabilities (${clipped})`;
  }
}
