/**
 * Byte counts for people: the one formatter that messages and reports share.
 *
 * @module
 */

/** Units, each 1024 of the one before. */
const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/**
 * A byte count in the largest binary unit that keeps it at least 1, one decimal.
 *
 * @param n bytes
 * @returns e.g. `1.2 MiB`, `512 B`
 * @example
 * ```ts
 * formatBytes(1234567); // "1.2 MiB"
 * ```
 */
export function formatBytes(n: number): string {
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${UNITS[unit]}`;
}
