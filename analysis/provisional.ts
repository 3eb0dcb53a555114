/**
 * Provisional answers: on a fallback backend whose compute is far slower than this machine's
 * native BLAS, communication weighs less against compute than it would natively, so parallel
 * runs look better than they would on `native`. Their verdicts are stored and shown as
 * provisional, with the reason in a few words and how to get `native`.
 *
 * @module
 */
import type { Environment } from "../bench/environment.ts";

/**
 * The fallback backends whose verdicts are provisional, each with the few words the answer
 * table prints. `native`, `webgpu` and `tensorflow` compute at their machine's speed.
 */
export const PROVISIONAL_BACKENDS: Readonly<Record<string, string>> = {
  wasm:
    "wasm: compute several times slower than a native BLAS on this CPU; parallel looks better than it would natively",
  cpu:
    "cpu: plain JavaScript compute, far slower than a native BLAS; parallel looks better than it would natively",
};

/**
 * Why verdicts on `backend` are provisional, or null when they are not.
 *
 * @param backend the results' backend (`env.backend`)
 * @returns the few words, or null
 * @example
 * ```ts
 * provisionalWhy("wasm"); // "wasm: compute several times slower than a native BLAS …"
 * provisionalWhy("native"); // null
 * ```
 */
export function provisionalWhy(backend: string): string | null {
  return Object.hasOwn(PROVISIONAL_BACKENDS, backend) ? PROVISIONAL_BACKENDS[backend] : null;
}

/**
 * How to get the `native` backend, from what the bench recorded about it.
 *
 * @param env the results' environment (`nativeUnavailable`, when recorded)
 * @returns one sentence (Markdown inline code in backticks)
 * @example
 * ```ts
 * gettingNative({ nativeUnavailable: null }); // "`native` loads on this machine: …"
 * ```
 */
export function gettingNative(env: Pick<Environment, "nativeUnavailable">): string {
  if (env.nativeUnavailable === null) {
    return "`native` loads on this machine: run `bench` without `--backend` for its answer.";
  }
  if (env.nativeUnavailable === undefined) {
    return "To get `native`, install OpenBLAS (see the README's Backends section), then run `bench` again.";
  }
  return `To get \`native\`: ${env.nativeUnavailable}; then run \`bench\` again.`;
}

/**
 * The line a report or `bench` puts first when its verdicts are provisional: why, and how to
 * get `native`; null on a backend whose verdicts are not provisional.
 *
 * @param env the results' environment
 * @param who which results, where a page shows several (`B`)
 * @returns one paragraph (Markdown: backticks and **bold**), or null
 * @example
 * ```ts
 * provisionalNote({ backend: "wasm", nativeUnavailable: null });
 * // "**Provisional verdicts** — wasm: compute several times slower … `native` loads …"
 * ```
 */
export function provisionalNote(
  env: Pick<Environment, "backend" | "nativeUnavailable">,
  who = "",
): string | null {
  const why = provisionalWhy(env.backend);
  return why === null
    ? null
    : `**Provisional verdicts${who ? ` on ${who}` : ""}** — ${why}. ${gettingNative(env)}`;
}

/**
 * Whether stored results carry provisional verdicts (files written before the flag do not).
 *
 * @param results `results.json`'s matrix
 * @returns true when a recommendation is flagged
 * @example
 * ```ts
 * hasProvisionalVerdicts({ matrix: [{ aspect: "recommendation", provisional: true }] }); // true
 * ```
 */
export function hasProvisionalVerdicts(results: { matrix: unknown[] }): boolean {
  return results.matrix.some((e) =>
    (e as { aspect?: unknown }).aspect === "recommendation" &&
    (e as { provisional?: unknown }).provisional === true
  );
}
