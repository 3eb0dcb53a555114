/**
 * Markdown that user-provided text cannot break: every string a Markdown renderer takes from
 * its data (workload names, a CPU model, a transport read from a file, texts built from them) is
 * escaped once, at the renderer's entry ({@linkcode markdownSafe}); generated notes that carry
 * such names beside their own code spans go through {@linkcode escapeMarkdownText}; and table
 * cells get their pipes escaped ({@linkcode markdownTableText}). A workload named `a|b` stays in its cell,
 * `<script>` is text, `[x](url)` is no link, `**x**` is no emphasis, in headings, cells and
 * bullets alike. Text without Markdown's special characters comes out unchanged, so reports
 * of ordinary names read as before.
 *
 * @module
 */
import { markdownTable } from "markdown-table";
import { printable } from "../core/errors.ts";

/** Punctuation that Markdown (CommonMark, GitHub's extensions) may read as syntax anywhere. */
const SPECIAL = /[\\`*~$#|<>&]/g;
/** A `]` that would close a link, an image or a reference (`](`, `][`, `]:`). */
const LINK_CLOSE = /\](?=[([:])/g;
/** `_` emphasises only next to a non-word character: `x86_64` and `my_model` stay as they are. */
const EDGE_UNDERSCORE = /(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/gu;

/**
 * Escapes text for Markdown outside code spans: line breaks become spaces, control
 * characters are spelled out, and the characters Markdown could read as syntax are
 * backslash-escaped.
 *
 * @param text any text
 * @returns the same text, shown literally by any Markdown renderer
 * @example
 * ```ts
 * escapeMarkdown("a|b <script>"); // "a\\|b \\<script\\>"
 * escapeMarkdown("mnist-mlp"); // "mnist-mlp"
 * ```
 */
export function escapeMarkdown(text: string): string {
  return printable(text.replace(/\r\n|\r|\n/g, " "))
    .replace(SPECIAL, "\\$&")
    .replace(LINK_CLOSE, "\\]")
    .replace(EDGE_UNDERSCORE, "\\_");
}

/**
 * Escapes a text that may hold inline code spans (`` `--quick` ``): the spans are kept as they
 * are (their content is literal in Markdown anyway), everything else goes through
 * {@linkcode escapeMarkdown}; a backtick without its pair is escaped.
 *
 * @param text a text, with or without code spans
 * @returns the text with everything outside code spans escaped
 * @example
 * ```ts
 * escapeMarkdownText("use `--quick` on <b>"); // "use `--quick` on \\<b\\>"
 * ```
 */
export function escapeMarkdownText(text: string): string {
  const flat = text.replace(/\r\n|\r|\n/g, " ");
  let out = "";
  let at = 0;
  for (const match of flat.matchAll(/`[^`]+`/g)) {
    out += escapeMarkdown(flat.slice(at, match.index)) + match[0];
    at = match.index + match[0].length;
  }
  return out + escapeMarkdown(flat.slice(at));
}

/**
 * A copy of `data` with every string in it (at any depth; keys are kept) passed through
 * {@linkcode escapeMarkdown}: what a Markdown renderer works on, so that whatever it
 * interpolates — into a heading, a cell, a bullet — is already safe. Call it once per renderer,
 * on the data it was given.
 *
 * @param data results, an all-reduce table, compare or gate rows
 * @returns the escaped copy
 * @example
 * ```ts
 * markdownSafe({ workload: "a|b", steps: 3 }); // { workload: "a\\|b", steps: 3 }
 * ```
 */
export function markdownSafe<T>(data: T): T {
  if (typeof data === "string") return escapeMarkdown(data) as T;
  if (Array.isArray(data)) return data.map((item) => markdownSafe(item)) as T;
  if (data !== null && typeof data === "object" && !ArrayBuffer.isView(data)) {
    return Object.fromEntries(
      Object.entries(data).map(([key, value]) => [key, markdownSafe(value)]),
    ) as T;
  }
  return data;
}

/**
 * A Markdown table whose cells cannot split: every `|` not already escaped is escaped.
 * Cells hold generated text (figures, `max |Δparam|`) and data already passed through
 * {@linkcode markdownSafe}.
 *
 * @param rows header row, then body rows
 * @param align per column, `l` or `r`
 * @returns the table
 * @example
 * ```ts
 * markdownTableText([["a"], ["x|y"]], ["l"]);
 * ```
 */
export function markdownTableText(rows: string[][], align: ("l" | "r")[]): string {
  const cell = (text: string) => text.replace(/(?<!\\)((?:\\\\)*)\|/g, "$1\\|");
  return markdownTable(rows.map((row) => row.map(cell)), { align });
}

/**
 * {@linkcode escapeMarkdownText} where there is a text: for the program's own sentences stored
 * in the data (why `native` did not load, with its install command in a code span).
 *
 * @param text a stored sentence, or null/undefined where the file has none
 * @returns the escaped sentence with its code spans kept, or the same null/undefined
 * @example
 * ```ts
 * keepCodeSpans("install it with `apt-get install x`"); // unchanged
 * ```
 */
export function keepCodeSpans<T extends string | null | undefined>(text: T): T {
  return (typeof text === "string" ? escapeMarkdownText(text) : text) as T;
}
