/**
 * Layers models on the command line: `bench` takes `model:PATH/model.json` and
 * `MODULE#export` (and writes what it measured of them: the model, its data, its FLOPs, and
 * GFLOP/s); every broken input — a file that is not a Layers model, a missing weights file, a
 * layer the backend cannot run, a loss it does not know, data that does not fit, an export
 * that is neither a Workload nor a model — exits 2 with one line, and nothing is written.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadOpenBlas } from "../backends/kernels/_openblas.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
const MODELS = new URL("../examples/models/", import.meta.url).pathname;
const FIXTURES = new URL("./_layers_fixtures.ts", import.meta.url).pathname;
const BACKEND = loadOpenBlas().ok ? "native" : "wasm";

async function cli(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Broken saved models, written into `dir`. */
async function brokenModels(dir: string): Promise<void> {
  const json = await Deno.readTextFile(join(MODELS, "mlp/model.json"));
  const weights = await Deno.readFile(join(MODELS, "mlp/weights.bin"));
  await Deno.writeTextFile(join(dir, "broken.json"), "{ not json");
  await Deno.writeTextFile(join(dir, "other.json"), JSON.stringify({ results: [] }));
  await Deno.writeTextFile(
    join(dir, "graph.json"),
    JSON.stringify({ format: "graph-model", modelTopology: {} }),
  );
  for (const sub of ["noweights", "short", "hinge", "unknownlayer"]) {
    await Deno.mkdir(join(dir, sub));
  }
  await Deno.writeTextFile(join(dir, "noweights/model.json"), json);
  await Deno.writeTextFile(join(dir, "short/model.json"), json);
  await Deno.writeFile(join(dir, "short/weights.bin"), weights.subarray(0, 1000));
  const hinge = JSON.parse(json);
  hinge.trainingConfig.loss = "hinge";
  await Deno.writeTextFile(join(dir, "hinge/model.json"), JSON.stringify(hinge));
  await Deno.writeFile(join(dir, "hinge/weights.bin"), weights);
  await Deno.writeTextFile(
    join(dir, "unknownlayer/model.json"),
    json.replaceAll('"class_name":"Dense"', '"class_name":"Densest"'),
  );
  await Deno.writeFile(join(dir, "unknownlayer/weights.bin"), weights);
}

/** (arguments after `bench --backend …`, with DIR for the broken models' folder; message). */
const BAD: [string[], RegExp][] = [
  [
    ["--workloads", "model:DIR/broken.json"],
    /Cannot read Layers model \S+broken\.json: not JSON .*; give the model\.json that model\.save wrote/,
  ],
  [
    ["--workloads", "model:DIR/other.json"],
    /Cannot train \S+other\.json: it is not a TensorFlow\.js Layers model \(no modelTopology\); save one with model\.save/,
  ],
  [
    ["--workloads", "model:DIR/graph.json"],
    /it is a graph model \(tf\.loadGraphModel, inference only\); paratrain trains Layers models/,
  ],
  [
    ["--workloads", "model:DIR/missing.json"],
    /Cannot read Layers model \S+missing\.json: No such file/,
  ],
  [
    ["--workloads", "model:DIR/noweights/model.json"],
    /its weights file weights\.bin is missing \(looked for \S+\); put the files model\.save wrote beside model\.json/,
  ],
  [
    ["--workloads", "model:DIR/short/model.json"],
    /its weights files hold 1000 bytes, its manifest declares 210604; save the model again/,
  ],
  [
    ["--workloads", "model:DIR/hinge/model.json"],
    /paratrain does not compute the loss "hinge"; give --loss sparse-categorical-crossentropy\|/,
  ],
  [
    ["--workloads", "model:DIR/unknownlayer/model.json"],
    /Cannot build the Layers model in \S+: .*Densest.*; paratrain builds what tfjs-layers 4\.22 can load/,
  ],
  [
    ["--workloads", `model:${MODELS}cnn/model.json`, "--data", "iris"],
    /Cannot train \S+ on --data iris: its samples are \[4\] \(4 values\), the model's input is \[28, 28, 1\]/,
  ],
  [
    ["--workloads", `model:${MODELS}mlp/model.json`, "--loss", "hinge"],
    /Unknown --loss "hinge": choose from sparse-categorical-crossentropy, categorical-crossentropy/,
  ],
  [
    ["--workloads", `${FIXTURES}#notAModel`],
    /has no export "notAModel" that is a Workload or a function returning a tf\.LayersModel/,
  ],
  [
    ["--workloads", `${FIXTURES}#noKernelModel`],
    /Cannot train \S+#noKernelModel on \w+: layer mystery \(NoKernel\): .*; try --backend cpu/,
  ],
  [
    ["--workloads", "mnist-mlp", "--data", "mnist"],
    /--data applies to TensorFlow\.js Layers models/,
  ],
  [
    ["--workloads", `model:${MODELS}bn-cnn/model.json`, "--batchnorm", "sync"],
    /--batchnorm sync cannot run \S+: tfjs-layers' BatchNormalization computes each replica's own statistics/,
  ],
];

for (const [args, message] of BAD) {
  Deno.test(`a broken Layers input exits 2 with one line: ${args.join(" ").slice(0, 70)}`, async () => {
    const dir = await Deno.makeTempDir();
    await brokenModels(dir);
    const out = join(dir, "out");
    const r = await cli(
      "bench",
      "--backend",
      BACKEND,
      ...args.map((a) => a.replace("DIR", dir)),
      "--out",
      out,
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line expected, got: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
    await assert.rejects(Deno.stat(out), "nothing written");
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("train refuses --data for a built-in, and a Layers model without a loss asks for --loss", async () => {
  const r = await cli("train", "--workload", "iris-logreg", "--data", "iris");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--data applies to TensorFlow\.js Layers models .*not iris-logreg/);
  const s = await cli("train", "--workload", `${FIXTURES}#uncompiledDropout`);
  assert.equal(s.code, 2);
  assert.match(s.stderr, /the model has no loss .*; give --loss/);
});

Deno.test("bench runs a saved model and a module function; results and report say what they are", async () => {
  const dir = await Deno.makeTempDir();
  const out = join(dir, "out");
  const r = await cli(
    "bench",
    "--backend",
    BACKEND,
    "--workloads",
    `model:${MODELS}mlp/model.json,${FIXTURES}#uncompiledDropout`,
    "--loss",
    "sparse-categorical-crossentropy",
    "--strategies",
    "single,ddp",
    "--steps",
    "4",
    "--warmup",
    "0",
    "--repeats",
    "1",
    "--threads",
    "1",
    "--quiet",
    "--out",
    out,
  );
  assert.equal(r.code, 0, r.stderr);
  const results = JSON.parse(await Deno.readTextFile(join(out, "results.json")));
  const mlp = results.runs.filter((x: { workload: string }) =>
    x.workload.endsWith("mlp/model.json")
  );
  assert.ok(mlp.length >= 2);
  for (const run of mlp) {
    assert.ok(run.compute.gflops > 0, "GFLOP/s of a fully counted model");
    assert.match(run.model.source, /^saved model \S+mlp\/model\.json$/);
    assert.equal(run.model.lossName, "sparse-categorical-crossentropy", "--loss overrides");
    assert.match(run.model.data, /^synthetic: /);
  }
  const report = await Deno.readTextFile(join(out, "report.md"));
  assert.match(report, /- Model: a TensorFlow\.js Layers model, saved model /);
  // (Markdown escapes the closing bracket.)
  assert.match(report, /- Data: synthetic: 2048 samples of inputs \[784\\\]: a Gaussian cluster/);
  assert.match(
    report,
    /- FLOPs: \d+\.\d+ MFLOP per sample per training step, counted from every layer/,
  );
  assert.match(report, /- Note: randomness off: Dropout ×1 ran as identity/);
  const html = await Deno.readTextFile(join(out, "report.html"));
  assert.match(html, /<li>Model: a TensorFlow\.js Layers model/);
  await Deno.remove(dir, { recursive: true });
});
