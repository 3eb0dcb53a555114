import assert from "node:assert/strict";
import { initBackend } from "../backends/backend.ts";
import { UsageError } from "../core/errors.ts";
import {
  chooseTfjsNode,
  CUDA_LIBRARIES,
  loadTensorflowBackend,
  type ProbeFs,
  probeTfjsNode,
  type TfjsNodePackage,
} from "../backends/tensorflow.ts";

/** A fake file system: folders and their names, and the libraries that load. */
function fakeFs(tree: Record<string, string[]>, loading: string[] = []): ProbeFs {
  return { list: (dir) => tree[dir] ?? [], loads: (lib) => loading.includes(lib) };
}

const DIR = "/p";
const COMPLETE = {
  [DIR]: ["package.json", "lib", "deps"],
  [`${DIR}/lib`]: ["napi-v8"],
  [`${DIR}/lib/napi-v8`]: ["tfjs_binding.node", "libtensorflow.so.2"],
};

function probe(name: TfjsNodePackage, tree: Record<string, string[]>, loading: string[] = []) {
  return probeTfjsNode(name, fakeFs(tree, loading), tree[DIR] ? DIR : null);
}

const GPU = "@tensorflow/tfjs-node-gpu";
const CPU = "@tensorflow/tfjs-node";

/** The reason given when both packages are in the same state `tree`. */
function reason(tree: Record<string, string[]>, loading: string[] = []): string {
  const choice = chooseTfjsNode(probe(GPU, tree, loading), probe(CPU, tree, loading));
  assert.ok(!choice.ok);
  return choice.reason;
}

Deno.test("each missing piece of tfjs-node is named with its fix, in one line", () => {
  const fix = /Install with `deno install --allow-scripts=npm:@tensorflow\/tfjs-node`/;
  const cases: [Record<string, string[]>, RegExp][] = [
    [
      {},
      /^tfjs-node is not installed \(run `deno task deps`\); tfjs-node-gpu: tfjs-node-gpu is not installed\. /,
    ],
    [
      { [DIR]: ["package.json"] },
      /^libtensorflow 2\.9\.1 is missing \(no libtensorflow\.so\* in \/p\/deps\/lib or \/p\/lib\/napi-v\*\); tfjs-node-gpu: libtensorflow 2\.9\.1 is missing\. /,
    ],
    [
      { [DIR]: ["package.json", "deps"], [`${DIR}/deps/lib`]: ["libtensorflow.so.2.9.1"] },
      /^the tfjs-node binding is missing \(no \/p\/lib\/napi-v\*\/tfjs_binding\.node\); tfjs-node-gpu: the tfjs-node-gpu binding is missing\. /,
    ],
  ];
  for (const [tree, expected] of cases) {
    const line = reason(tree);
    assert.match(line, expected);
    assert.match(line, fix);
    assert.ok(!line.includes("\n"), line);
  }
});

Deno.test("tfjs-node-gpu wins where complete; without CUDA tfjs-node is used, saying why", () => {
  const all = [...CUDA_LIBRARIES];
  const withCuda = chooseTfjsNode(probe(GPU, COMPLETE, all), probe(CPU, COMPLETE, all));
  assert.deepEqual(withCuda, { ok: true, package: GPU, note: "tfjs-node-gpu (CUDA)" });
  const noCudnn = chooseTfjsNode(
    probe(GPU, COMPLETE, ["libcudart.so.11.0"]),
    probe(CPU, COMPLETE),
  );
  assert.deepEqual(noCudnn, {
    ok: true,
    package: CPU,
    note: "tfjs-node (CPU; tfjs-node-gpu: CUDA is missing)",
  });
  // The CPU package is never asked for CUDA.
  assert.equal(probe(CPU, COMPLETE).cudaMissing, null);
  // Only the GPU package missing CUDA, the CPU one missing libtensorflow: the CPU's piece first.
  const mixed = chooseTfjsNode(probe(GPU, COMPLETE), probe(CPU, { [DIR]: ["package.json"] }));
  assert.ok(!mixed.ok);
  assert.match(
    mixed.reason,
    /^libtensorflow 2\.9\.1 is missing .*; tfjs-node-gpu: CUDA is missing\. /,
  );
});

Deno.test("the real loading path: where libtensorflow is missing, UsageError naming it and the fix", async () => {
  const real = chooseTfjsNode(probeTfjsNode(GPU), probeTfjsNode(CPU));
  if (real.ok) {
    // A machine with libtensorflow installed: the backend loads and computes.
    const info = await initBackend("tensorflow");
    assert.equal(info.backend, "tensorflow");
    await initBackend("cpu");
    return;
  }
  await assert.rejects(loadTensorflowBackend(), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /^Cannot use --backend tensorflow: /);
    assert.match(e.message, /libtensorflow|tfjs-node|binding|CUDA/);
    assert.match(e.message, /deno install --allow-scripts=npm:@tensorflow\/tfjs-node/);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
});
