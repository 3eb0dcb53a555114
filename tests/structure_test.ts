/**
 * The layers point one way (docs/architecture.md): a folder imports only folders on lower
 * layers, so no two folders import each other. Imports are read as text, doc examples
 * included, as a reader (and `../shared/tools/folder_cycles.py`) would read them.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Each top folder's layer: a folder may import folders of lower layers only. */
const LAYERS: Record<string, number> = {
  core: 1,
  backends: 2,
  workloads: 2,
  comm: 2,
  strategies: 3,
  bench: 4,
  analysis: 5,
  reports: 6,
  cli: 7,
};

const IMPORT = /(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g;

/** Every (importing folder, imported folder, file) edge between top folders. */
function folderImports(): { from: string; to: string; file: string }[] {
  const edges: { from: string; to: string; file: string }[] = [];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(join(ROOT, dir))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) walk(path);
      else if (entry.name.endsWith(".ts")) {
        const text = Deno.readTextFileSync(join(ROOT, path));
        for (const [, spec] of text.matchAll(IMPORT)) {
          const target = relative(ROOT, normalize(join(ROOT, dirname(path), spec)));
          const to = target.split("/")[0];
          const from = path.split("/")[0];
          if (to !== from && to in LAYERS) edges.push({ from, to, file: path });
        }
      }
    }
  };
  for (const folder of Object.keys(LAYERS)) walk(folder);
  return edges;
}

Deno.test("every folder imports only folders on lower layers: no import cycle", () => {
  const upward = folderImports().filter(({ from, to }) => LAYERS[to] >= LAYERS[from]);
  assert.deepEqual(
    upward.map(({ from, to, file }) =>
      `${file} (${from}, layer ${LAYERS[from]}) imports ${to} (layer ${LAYERS[to]})`
    ),
    [],
  );
});

Deno.test("every top folder of the source has a layer", () => {
  const folders = [...Deno.readDirSync(ROOT)]
    .filter((e) => e.isDirectory && !e.name.startsWith(".") && !e.name.startsWith("_"))
    .map((e) => e.name)
    .filter((name) => !["tests", "docs", "examples", "node_modules", "results"].includes(name));
  assert.deepEqual(folders.filter((f) => !(f in LAYERS)).sort(), []);
});
