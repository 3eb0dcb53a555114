/** Number formatting shared by the renderers: fixed precision, so reports diff cleanly. */
import { formatBytes } from "../core/format_bytes.ts";

/** `1234567` → `1.2 MiB`. */
export function bytes(n: number | null): string {
  return n === null ? "n/a" : formatBytes(n);
}

/** A number with `digits` decimals, or `n/a`. */
export function fixed(n: number | null | undefined, digits: number): string {
  return n === null || n === undefined || !Number.isFinite(n) ? "n/a" : n.toFixed(digits);
}

/** A ratio as a percentage. */
export function percent(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? "n/a" : `${(100 * n).toFixed(0)}%`;
}

/** A small number in scientific notation (equivalence diffs). */
export function sci(n: number | null): string {
  return n === null ? "n/a" : n === 0 ? "0" : n.toExponential(1);
}
