/**
 * A Layers model's initializers, drawn from the run's seed: TensorFlow.js draws unseeded
 * initializers from `Math.random`, so two processes building the same model start from
 * different weights and DP/DDP could never match single. Each initializer class is mapped to
 * the same distribution drawn from paratrain's seeded generator (`core/rng.ts`), with the
 * configuration the layer holds (scale, mode, distribution, bounds, gain) — identical in
 * every process, worker and backend.
 *
 * @module
 */
import { UsageError } from "../core/errors.ts";
import { normal, type Rng } from "../core/rng.ts";
import type { ParamDef } from "../core/workload.ts";

/** What is read of a tfjs initializer. */
export interface InitializerLike {
  getClassName(): string;
  getConfig(): Record<string, unknown>;
}

/** tfjs's truncated normal redraws values beyond this many standard deviations. */
const TRUNCATE_AT = 2;

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** tfjs-layers' `computeFans` (channels last): fan-in and fan-out of a weight's shape. */
function fans(shape: number[]): [number, number] {
  if (shape.length === 2) return [shape[0], shape[1]];
  if (shape.length >= 3 && shape.length <= 5) {
    const receptive = size(shape.slice(0, -2));
    return [shape[shape.length - 2] * receptive, shape[shape.length - 1] * receptive];
  }
  const root = Math.sqrt(size(shape));
  return [root, root];
}

function fill(shape: number[], draw: () => number): Float32Array {
  const out = new Float32Array(size(shape));
  for (let i = 0; i < out.length; i++) out[i] = draw();
  return out;
}

function truncatedNormal(rng: Rng, mean: number, std: number): number {
  let z = normal(rng);
  while (Math.abs(z) > TRUNCATE_AT) z = normal(rng);
  return mean + std * z;
}

/** tfjs-layers' VarianceScaling (Glorot, He and LeCun are its presets). */
function varianceScaling(config: Record<string, unknown>): ParamDef["init"] {
  const { scale = 1, mode = "fanIn", distribution = "normal" } = config as {
    scale?: number;
    mode?: string;
    distribution?: string;
  };
  return (rng, shape) => {
    const [fanIn, fanOut] = fans(shape);
    const fan = mode === "fanIn" ? fanIn : mode === "fanOut" ? fanOut : (fanIn + fanOut) / 2;
    const s = scale / Math.max(1, fan);
    if (distribution === "normal") {
      // As tfjs-layers: a normal truncated at 2σ, σ = √scale (no correction for the cut).
      return fill(shape, () => truncatedNormal(rng, 0, Math.sqrt(s)));
    }
    const limit = Math.sqrt(3 * s);
    return fill(shape, () => (2 * rng() - 1) * limit);
  };
}

/**
 * tfjs-layers' Orthogonal: the Q of a random normal matrix's QR (here by Gram–Schmidt in
 * float64, R's diagonal positive as tfjs makes it), transposed when there are fewer rows
 * than columns, times the gain.
 */
function orthogonal(gain: number): ParamDef["init"] {
  return (rng, shape) => {
    if (shape.length < 2) throw new Error("Orthogonal needs a weight of at least 2 axes");
    const rows = size(shape.slice(0, -1));
    const cols = shape[shape.length - 1];
    const [m, n] = [Math.max(rows, cols), Math.min(rows, cols)];
    // Column j of the m × n matrix in q[j].
    const q = Array.from({ length: n }, () => Float64Array.from({ length: m }, () => normal(rng)));
    for (let j = 0; j < n; j++) {
      for (let k = 0; k < j; k++) {
        let dot = 0;
        for (let i = 0; i < m; i++) dot += q[k][i] * q[j][i];
        for (let i = 0; i < m; i++) q[j][i] -= dot * q[k][i];
      }
      const norm = Math.hypot(...q[j]);
      for (let i = 0; i < m; i++) q[j][i] /= norm;
    }
    const out = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        // rows ≥ cols: out[r][c] = Q[r][c]; else out = Qᵀ, out[r][c] = Q[c][r].
        out[r * cols + c] = gain * (rows >= cols ? q[c][r] : q[r][c]);
      }
    }
    return out;
  };
}

/**
 * The seeded counterpart of a tfjs initializer.
 *
 * @param initializer the layer's initializer (its class and configuration are read)
 * @param weight the weight it initialises, for the message
 * @returns an initialiser drawing from the run's generator
 * @throws UsageError for an initializer class it does not know
 * @example
 * ```ts
 * import { createRng } from "../core/rng.ts";
 * const init = seededInitializer({
 *   getClassName: () => "VarianceScaling",
 *   getConfig: () => ({ scale: 1, mode: "fanAvg", distribution: "uniform" }),
 * }, "dense/kernel");
 * init(createRng(0), [4, 2]); // Glorot-uniform values
 * ```
 */
export function seededInitializer(
  initializer: InitializerLike,
  weight: string,
): ParamDef["init"] {
  const name = initializer.getClassName();
  const config = initializer.getConfig();
  const num = (key: string, fallback: number) => (config[key] as number | undefined) ?? fallback;
  switch (name) {
    case "Zeros":
      return (_rng, shape) => new Float32Array(size(shape));
    case "Ones":
      return (_rng, shape) => new Float32Array(size(shape)).fill(1);
    case "Constant":
      return (_rng, shape) => new Float32Array(size(shape)).fill(num("value", 0));
    case "Identity":
      return (_rng, shape) => {
        const out = new Float32Array(size(shape));
        for (let i = 0; i < shape[0]; i++) out[i * shape[0] + i] = num("gain", 1);
        return out;
      };
    case "RandomUniform": {
      const [lo, hi] = [num("minval", -0.05), num("maxval", 0.05)];
      return (rng, shape) => fill(shape, () => lo + (hi - lo) * rng());
    }
    case "RandomNormal": {
      const [mean, std] = [num("mean", 0), num("stddev", 0.05)];
      return (rng, shape) => fill(shape, () => mean + std * normal(rng));
    }
    case "TruncatedNormal": {
      const [mean, std] = [num("mean", 0), num("stddev", 0.05)];
      return (rng, shape) => fill(shape, () => truncatedNormal(rng, mean, std));
    }
    case "VarianceScaling":
    case "GlorotUniform":
    case "GlorotNormal":
    case "HeNormal":
    case "HeUniform":
    case "LeCunNormal":
    case "LeCunUniform":
      return varianceScaling(config);
    case "Orthogonal":
      return orthogonal(num("gain", 1));
    default:
      throw new UsageError(
        `Cannot initialise ${weight} from the run's seed: its initializer ${name} is not one paratrain can seed; give the layer a built-in initializer, or save the model and run it as model:PATH/model.json (its saved weights are the start)`,
      );
  }
}

/**
 * LSTM's bias with `unitForgetBias` (tfjs's default): the bias initializer for the input
 * gate, ones for the forget gate, the initializer again for the cell and output gates.
 *
 * @param bias the seeded bias initializer
 * @param units the cell's units
 * @returns the initialiser of the `[4 · units]` bias
 * @example
 * ```ts
 * import { createRng } from "../core/rng.ts";
 * forgetBiasInit((_rng, shape) => new Float32Array(shape[0]), 2)(createRng(0), [8]);
 * // [0, 0, 1, 1, 0, 0, 0, 0]
 * ```
 */
export function forgetBiasInit(bias: ParamDef["init"], units: number): ParamDef["init"] {
  return (rng, shape) => {
    const out = new Float32Array(size(shape));
    out.set(bias(rng, [units]), 0);
    out.fill(1, units, 2 * units);
    out.set(bias(rng, [2 * units]), 2 * units);
    return out;
  };
}
