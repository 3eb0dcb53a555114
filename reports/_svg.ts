/**
 * Vega-Lite spec → inline SVG string, at report time, with no browser: compiled to Vega, run
 * headless (`renderer: "none"`) and serialised. Deterministic for the same spec, and safe to
 * put several into one HTML page (ids are prefixed per chart).
 *
 * @module
 */
import type { TopLevelSpec } from "vega-lite";

/** Namespace declarations that inline SVG in HTML does not need (the parser implies them). */
const NAMESPACE_ATTRS = / xmlns(:xlink)?="[^"]*"/g;

function prefixIds(svg: string, prefix: string): string {
  const ids = [...svg.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]);
  let out = svg;
  for (const id of new Set(ids)) {
    out = out
      .replaceAll(` id="${id}"`, ` id="${prefix}-${id}"`)
      .replaceAll(`url(#${id})`, `url(#${prefix}-${id})`)
      .replaceAll(`href="#${id}"`, `href="#${prefix}-${id}"`);
  }
  return out;
}

/**
 * Render a Vega-Lite spec to an SVG element's markup.
 *
 * @param spec the Vega-Lite spec, data inline
 * @param id a page-unique name, prefixed to the SVG's internal ids
 * @returns `<svg …>…</svg>` without namespace declarations
 * @example
 * ```ts
 * const svg = await renderSvg({ data: { values: [] }, mark: "point" }, "empty");
 * ```
 */
export async function renderSvg(spec: TopLevelSpec, id: string): Promise<string> {
  // Loaded on first use: the CLI's other commands should not pay for Vega at start-up.
  const [vega, { compile }] = await Promise.all([import("vega"), import("vega-lite")]);
  vega.resetSVGDefIds();
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    const svg = await view.toSVG();
    return prefixIds(svg.replace(NAMESPACE_ATTRS, ""), id)
      .replace("<svg ", `<svg id="${id}" role="img" `);
  } finally {
    view.finalize();
  }
}
