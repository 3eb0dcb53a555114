/**
 * What every HTML page shares: the inline style sheet, escaping, tables, lists, figures and
 * the page around them. Pages open offline: no script, no external URL.
 *
 * @module
 */
import type { TopLevelSpec } from "vega-lite";
import { renderSvg } from "./_svg.ts";
import type { Table } from "./_tables.ts";

/** The pages' whole style sheet, inline. */
export const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; vertical-align: top; }
th { background: #f3f3f3; }
td.r { text-align: right; font-variant-numeric: tabular-nums; }
table.matrix td { max-width: 26em; }
table.answer { font-size: 15px; }
table.answer td:nth-child(2) { font-weight: 600; }
figure { margin: 1em 0 2em; overflow-x: auto; }
code { background: #f3f3f3; padding: 0 3px; }
`;

/** Added to {@linkcode STYLE} by pages that show a provisional note or regressions. */
export const NOTE_STYLE = `
p.provisional { background: #fff4e0; border-left: 4px solid #f58518; padding: 6px 10px; }
td.regressed { background: #fde8e8; }
`;

/**
 * Escape text for HTML.
 *
 * @param text plain text
 * @returns the text with `& < > "` escaped
 * @example
 * ```ts
 * escapeHtml("a < b"); // "a &lt; b"
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/**
 * Escape, then the two inline Markdown forms the shared lines use: `code` and **bold**.
 *
 * @param text a line with Markdown inline code and bold
 * @returns HTML
 * @example
 * ```ts
 * inline("**x** `y`"); // "<strong>x</strong> <code>y</code>"
 * ```
 */
export function inline(text: string): string {
  return escapeHtml(text)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
}

/**
 * A table as HTML; `cellClass` may add a class to a body cell.
 *
 * @param table the rows (header first) and alignment
 * @param className the table's class, if any
 * @param cellClass a class for the body cell at (row, column), if any
 * @returns the `<table>`
 * @example
 * ```ts
 * htmlTable({ rows: [["a"], ["1"]], align: ["r"] });
 * ```
 */
export function htmlTable(
  table: Table,
  className = "",
  cellClass: (row: number, column: number) => string | null = () => null,
): string {
  const [header, ...body] = table.rows;
  const cls = className ? ` class="${className}"` : "";
  const row = (cells: string[], r: number) =>
    `<tr>${
      cells.map((c, i) => {
        const classes = [table.align[i] === "r" ? "r" : null, cellClass(r, i)].filter(Boolean);
        return `<td${classes.length ? ` class="${classes.join(" ")}"` : ""}>${inline(c)}</td>`;
      }).join("")
    }</tr>`;
  return [
    `<table${cls}>`,
    `<thead><tr>${header.map((h) => `<th>${inline(h)}</th>`).join("")}</tr></thead>`,
    `<tbody>`,
    ...body.map(row),
    `</tbody>`,
    `</table>`,
  ].join("\n");
}

/**
 * A list as HTML, each item's Markdown inline forms converted.
 *
 * @param items the items
 * @param tag `ul` or `ol`
 * @returns the list
 * @example
 * ```ts
 * list(["one", "two"], "ol");
 * ```
 */
export function list(items: string[], tag = "ul"): string {
  return [`<${tag}>`, ...items.map((i) => `<li>${inline(i)}</li>`), `</${tag}>`].join("\n");
}

/**
 * A chart as a `<figure>` holding its inline SVG.
 *
 * @param spec the Vega-Lite spec
 * @param id a page-unique id (`chart-…`)
 * @returns the figure
 * @example
 * ```ts
 * await figure({ data: { values: [] }, mark: "point" }, "chart-empty");
 * ```
 */
export async function figure(spec: TopLevelSpec, id: string): Promise<string> {
  return `<figure>\n${await renderSvg(spec, id)}\n</figure>`;
}

/**
 * A whole page around `body`: doctype, head with the title and the style sheet.
 *
 * @param title the page title (also its `<h1>`)
 * @param body the page's elements after the `<h1>`
 * @param options `lang` of the page (default `en`), `style` added to {@linkcode STYLE}
 * @returns the page, ending in a newline
 * @example
 * ```ts
 * page("paratrain: history", ["<p>…</p>"]);
 * ```
 */
export function page(
  title: string,
  body: string[],
  options: { lang?: string; style?: string } = {},
): string {
  const { lang = "en", style = "" } = options;
  return [
    "<!doctype html>",
    `<html lang="${lang}">`,
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${STYLE}${style}</style>`,
    "</head>",
    "<body>",
    `<h1>${escapeHtml(title)}</h1>`,
    ...body,
    "</body>",
    "</html>",
    "",
  ].join("\n");
}
