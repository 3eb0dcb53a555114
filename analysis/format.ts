/** Number formatting shared by the renderers: fixed precision, so reports diff cleanly. */

/** `1234567` → `1.18 MiB`. */
export function bytes(n: number | null): string {
  if (n === null) return "n/a";
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
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
