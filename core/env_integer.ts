/**
 * Integers read from environment variables, strictly: decimal digits and nothing else. A
 * scheduler or a script writes these; `Number()` would take `0x1`, `1e1`, ` 1` and `+1` for
 * numbers, so a typo would silently name another rank. Every variable paratrain reads as an
 * integer goes through {@linkcode readEnvInteger}.
 *
 * @module
 */
import { quote, UsageError } from "./errors.ts";

/** Digits only: no sign, no spaces, no exponent, no hexadecimal. */
const DIGITS = /^[0-9]+$/;

/**
 * Parses `text` as a non-negative decimal integer, strictly.
 *
 * @param text the variable's value
 * @returns the integer, or null when `text` is anything but digits (or too large to be exact)
 * @example
 * ```ts
 * parseDigits("12"); // 12
 * parseDigits("0x1"); // null
 * parseDigits(" 1"); // null
 * ```
 */
export function parseDigits(text: string): number | null {
  if (!DIGITS.test(text)) return null;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : null;
}

/** Options for {@linkcode readEnvInteger}. */
export interface EnvIntegerOptions {
  /** Smallest value allowed (default 0). */
  min?: number;
  /** Largest value allowed (default `Number.MAX_SAFE_INTEGER`). */
  max?: number;
}

/**
 * Reads the integer variable `name` of `env`, strictly (digits only, within bounds).
 *
 * @param env the environment
 * @param name the variable
 * @param options `min` and `max`
 * @returns the integer, or undefined when the variable is not set
 * @throws UsageError naming the variable, the range and the value, in one line
 * @example
 * ```ts
 * readEnvInteger({ RANK: "3" }, "RANK"); // 3
 * readEnvInteger({ RANK: "0x1" }, "RANK"); // throws: expected an integer ≥ 0 …
 * ```
 */
export function readEnvInteger(
  env: Record<string, string | undefined>,
  name: string,
  options: EnvIntegerOptions = {},
): number | undefined {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = options;
  const text = env[name];
  if (text === undefined) return undefined;
  const value = parseDigits(text);
  if (value === null || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    const why = value === null ? " (decimal digits only: no sign, space, exponent or 0x)" : "";
    throw new UsageError(
      `Invalid environment variable ${name}: expected an integer ${range}, got ${
        quote(text)
      }${why}`,
    );
  }
  return value;
}
