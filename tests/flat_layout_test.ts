import assert from "node:assert/strict";
import fc from "fast-check";
import { createLayout, flatten, unflatten } from "../core/flat_layout.ts";

const shapes = fc.array(
  fc.record({ name: fc.uuid(), shape: fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 3 }) }),
  { minLength: 1, maxLength: 6 },
);

Deno.test("flatten then unflatten returns every named array unchanged", () => {
  fc.assert(fc.property(shapes, fc.integer(), (named, seed) => {
    const layout = createLayout(named);
    const values: Record<string, Float32Array> = {};
    layout.entries.forEach((e, i) => {
      values[e.name] = Float32Array.from({ length: e.size }, (_, j) => seed + 1000 * i + j);
    });
    const flat = flatten(layout, values);
    assert.equal(flat.length, layout.totalSize);
    const back = unflatten(layout, flat);
    for (const e of layout.entries) assert.deepEqual(back[e.name], values[e.name]);
  }));
});

Deno.test("layout entries are contiguous and in order", () => {
  const layout = createLayout([{ name: "w", shape: [2, 3] }, { name: "b", shape: [3] }, {
    name: "s",
    shape: [],
  }]);
  assert.deepEqual(layout.entries.map((e) => [e.offset, e.size]), [[0, 6], [6, 3], [9, 1]]);
  assert.equal(layout.totalSize, 10);
});

Deno.test("flatten and unflatten reject wrong sizes with a message naming the entry", () => {
  const layout = createLayout([{ name: "w", shape: [2, 2] }]);
  assert.throws(() => flatten(layout, { w: new Float32Array(3) }), /"w": expected 4 values, got 3/);
  assert.throws(() => flatten(layout, {}), /no values for "w"/);
  assert.throws(() => unflatten(layout, new Float32Array(5)), /expected 4 floats, got 5/);
});
