/**
 * The flat-buffer seam: every parameter and gradient of a model packed into one
 * Float32Array, in a recorded layout. This is all that DP and DDP move between workers.
 *
 * @module
 */

/** Where one named tensor lives inside the flat buffer. */
export interface FlatEntry {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

/** The layout of a flat buffer: entries in order and the total length. */
export interface FlatLayout {
  entries: FlatEntry[];
  totalSize: number;
}

/**
 * Lay out named shapes back to back.
 *
 * @param shapes names and shapes, in order
 * @returns the layout
 * @example
 * ```ts
 * createLayout([{ name: "w", shape: [2, 3] }, { name: "b", shape: [3] }]).totalSize; // 9
 * ```
 */
export function createLayout(shapes: { name: string; shape: number[] }[]): FlatLayout {
  let offset = 0;
  const entries = shapes.map(({ name, shape }) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const entry = { name, shape: [...shape], offset, size };
    offset += size;
    return entry;
  });
  return { entries, totalSize: offset };
}

/**
 * Pack named arrays into one flat buffer.
 *
 * @param layout the layout
 * @param values one array per entry name, each of the entry's size
 * @returns a new flat buffer
 * @example
 * ```ts
 * const layout = createLayout([{ name: "w", shape: [2, 3] }, { name: "b", shape: [3] }]);
 * flatten(layout, { w: new Float32Array(6), b: new Float32Array(3) });
 * ```
 */
export function flatten(
  layout: FlatLayout,
  values: Record<string, ArrayLike<number>>,
): Float32Array {
  const flat = new Float32Array(layout.totalSize);
  for (const e of layout.entries) {
    const v = values[e.name];
    if (!v) throw new Error(`Cannot flatten: no values for "${e.name}"`);
    if (v.length !== e.size) {
      throw new Error(`Cannot flatten "${e.name}": expected ${e.size} values, got ${v.length}`);
    }
    flat.set(v, e.offset);
  }
  return flat;
}

/**
 * Split a flat buffer into named views (no copy).
 *
 * @param layout the layout
 * @param flat a buffer of `layout.totalSize` floats
 * @returns a view per entry name
 * @example
 * ```ts
 * const layout = createLayout([{ name: "w", shape: [2, 3] }, { name: "b", shape: [3] }]);
 * const flat = new Float32Array(layout.totalSize);
 * unflatten(layout, flat).w; // Float32Array view of 6 floats
 * ```
 */
export function unflatten(layout: FlatLayout, flat: Float32Array): Record<string, Float32Array> {
  if (flat.length !== layout.totalSize) {
    throw new Error(`Cannot unflatten: expected ${layout.totalSize} floats, got ${flat.length}`);
  }
  const out: Record<string, Float32Array> = {};
  for (const e of layout.entries) out[e.name] = flat.subarray(e.offset, e.offset + e.size);
  return out;
}
