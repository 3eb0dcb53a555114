/**
 * The DDP knobs PyTorch users reach for — gradient accumulation, compressed gradients, bucket
 * sizes, overlap, weak scaling — each checked for what it must not change (the math) and what
 * it must (bytes, calls, batch).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { wireCodec } from "../comm/wire_codec.ts";
import { initBackend } from "../backends/backend.ts";
import { createLayout } from "../core/flat_layout.ts";
import { type Batch, Trainer } from "../core/trainer.ts";
import { runBench } from "../bench/run_bench.ts";
import { gradientBuckets, runDdp } from "../strategies/ddp.ts";
import { runDp } from "../strategies/dp.ts";
import { runSingle } from "../strategies/single.ts";
import { getWorkload } from "../workloads/registry.ts";
import { withGroups } from "./_comm_helpers.ts";
import { EQUIVALENCE_TOLERANCE, maxAbsDiff, testSpec as spec } from "./_run_spec.ts";

Deno.test("fp16 codec rounds as the engine's Float16Array does, and back exactly", () => {
  const codec = wireCodec("fp16")!;
  fc.assert(fc.property(fc.float32Array({ minLength: 1, maxLength: 64 }), (values) => {
    const wire = new Uint16Array(values.length);
    codec.encode(values, wire);
    const back = new Float32Array(values.length);
    codec.decode(wire, back);
    for (let i = 0; i < values.length; i++) {
      assert.ok(Object.is(back[i], Math.f16round(values[i])), `${values[i]} → ${back[i]}`);
    }
  }));
});

Deno.test("bf16 codec keeps float32's top 16 bits, rounded to nearest even", () => {
  const codec = wireCodec("bf16")!;
  const cases: [number, number][] = [
    [1, 1],
    [1 + 2 ** -8, 1], // a tie: rounds to the even neighbour (1)
    [1 + 3 * 2 ** -8, 1 + 2 ** -6], // a tie: rounds up to the even neighbour
    [1 + 2 ** -8 + 2 ** -20, 1 + 2 ** -7], // above the tie
    [-2.5, -2.5],
    [Infinity, Infinity],
    [3.4e38, Infinity], // rounds past the largest bf16
    [1e-40, 1e-40 - (1e-40 % 2 ** -133)], // subnormals keep their top bits
  ];
  const wire = new Uint16Array(1);
  const back = new Float32Array(1);
  for (const [value, expected] of cases) {
    codec.encode(Float32Array.of(value), wire);
    codec.decode(wire, back);
    assert.equal(back[0], Math.fround(expected), `bf16(${value})`);
  }
  codec.encode(Float32Array.of(NaN), wire);
  codec.decode(wire, back);
  assert.ok(Number.isNaN(back[0]), "NaN stays NaN");
  assert.throws(() => wireCodec("int8" as "fp16"), /Unknown gradient compression "int8"/);
});

Deno.test("compressed all-reduce: half the bytes, float32 sums, every rank bit-identical", async () => {
  const length = 300_001; // several sub-chunks per ring chunk
  for (const compression of ["fp16", "bf16"] as const) {
    await withGroups(3, async (groups) => {
      const inputs = groups.map((_, r) =>
        Float32Array.from({ length }, (_, i) => Math.sin(i * 0.001 + r) * (1 + r))
      );
      const exact = new Float64Array(length);
      for (const input of inputs) input.forEach((v, i) => exact[i] += v / 3);
      const plain = inputs.map((b) => b.slice());
      const plainStats = await Promise.all(
        groups.map((g, r) => g.allReduce(plain[r], { op: "avg" })),
      );
      const stats = await Promise.all(
        groups.map((g, r) => g.allReduce(inputs[r], { op: "avg", compression })),
      );
      assert.equal(stats[0].bytes * 2, plainStats[0].bytes, `${compression}: half the bytes`);
      for (const r of [1, 2]) assert.deepEqual(inputs[r], inputs[0], `rank ${r} equals rank 0`);
      // Each value is cast at most three times on the way (two hops, then the result).
      const unit = compression === "fp16" ? 2 ** -11 : 2 ** -8;
      for (let i = 0; i < length; i += 997) {
        const tolerance = 4 * unit * 3 * (1 + Math.abs(exact[i]));
        assert.ok(Math.abs(inputs[0][i] - exact[i]) <= tolerance, `${compression} element ${i}`);
      }
    });
  }
});

Deno.test("ranks that disagree on the compression fail the call before data moves", async () => {
  await withGroups(2, async ([a, b]) => {
    const results = await Promise.allSettled([
      a.allReduce(new Float32Array(8), { op: "avg", compression: "fp16" }),
      b.allReduce(new Float32Array(8), { op: "avg" }),
    ]);
    for (const r of results) {
      assert.equal(r.status, "rejected");
      assert.match(String((r as PromiseRejectedResult).reason), /Reduce op mismatch.*avg\/fp16/);
    }
  });
});

Deno.test("buckets hold whole parameters in reverse order, each within its cap", () => {
  fc.assert(fc.property(
    fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 12 }),
    fc.integer({ min: 1024, max: 40_000 }),
    fc.integer({ min: 1024, max: 40_000 }),
    (sizes, cap, firstCap) => {
      const layout = createLayout(sizes.map((n, i) => ({ name: `p${i}`, shape: [n] })));
      const buckets = gradientBuckets(layout, cap, firstCap);
      // Every parameter once, last first; buckets tile the buffer from its end.
      assert.deepEqual(buckets.flatMap((b) => b.entries), sizes.map((_, i) => i).reverse());
      let end = layout.totalSize;
      for (const b of buckets) {
        assert.equal(b.offset + b.length, end);
        end = b.offset;
        const floats = b.entries.reduce((s, e) => s + sizes[e], 0);
        assert.equal(b.length, floats);
        const limit = b === buckets[0] ? firstCap : cap;
        assert.ok(b.entries.length === 1 || floats * 4 <= limit, "over the cap only when alone");
      }
      assert.equal(end, 0);
    },
  ));
  // As PyTorch: the first bucket is capped at 1 MiB by default, the others at the cap.
  const mib = 262_144; // floats in 1 MiB
  const layout = createLayout(
    [600_000, mib / 2, mib / 2, 10].map((n, i) => ({ name: `p${i}`, shape: [n] })),
  );
  const sizes = gradientBuckets(layout, 25 * 2 ** 20).map((b) => b.entries);
  assert.deepEqual(sizes, [[3, 2], [1, 0]]); // 10 + ½ MiB fit the first 1 MiB; the rest the 25 MiB
});

Deno.test("accumulated gradients: the size-weighted mean, reported layer by layer in reverse", async () => {
  await initBackend("wasm");
  const workload = getWorkload("synthetic-mlp");
  const data = await workload.loadData(0);
  const trainer = new Trainer(workload.createModel(), data, workload.defaults.optimizer);
  const width = data.featureShape.reduce((a, b) => a * b, 1);
  const batch = (start: number, size: number): Batch => ({
    x: data.train.x.subarray(start * width, (start + size) * width),
    y: data.train.y.subarray(start, start + size),
    size,
  });
  const [a, b, c] = [batch(0, 8), batch(8, 8), batch(16, 5)];
  // One batch: computeGradients to the bit.
  const one = trainer.computeGradients(a);
  assert.deepEqual(trainer.accumulateGradients([a]).grads, one.grads);
  // Several: Σ nₖ gₖ / Σ nₖ.
  const parts = [a, b, c].map((x) => trainer.computeGradients(x));
  const expected = one.grads.map((_, j) =>
    (8 * parts[0].grads[j] + 8 * parts[1].grads[j] + 5 * parts[2].grads[j]) / 21
  );
  const order: number[] = [];
  const out = new Float32Array(trainer.layout.totalSize);
  const acc = trainer.accumulateGradients([a, b, c], {
    out,
    onReady: (entry) => {
      // At the call, that parameter's slice of `out` is final.
      const { offset, size } = trainer.layout.entries[entry];
      const got = out.subarray(offset, offset + size);
      const want = expected.subarray(offset, offset + size);
      assert.ok(maxAbsDiff(got, want) < 1e-6, `entry ${entry} final when reported`);
      order.push(entry);
    },
  });
  assert.equal(acc.grads, out);
  assert.equal(acc.size, 21);
  assert.ok(maxAbsDiff(acc.grads, expected) < 1e-6);
  assert.ok(
    Math.abs(acc.loss - (8 * parts[0].loss + 8 * parts[1].loss + 5 * parts[2].loss) / 21) < 1e-6,
  );
  // Every parameter once; the last layer's before the first layer's.
  assert.deepEqual([...order].sort((x, y) => x - y), trainer.layout.entries.map((_, i) => i));
  const last = trainer.layout.entries.length - 1;
  assert.ok(order.indexOf(last) < order.indexOf(0), `order ${order}`);
  trainer.dispose();
});

Deno.test("--accumulate 4: DDP equals single with the same K; bytes per step as K = 1, calls per micro-step ¼", async () => {
  const k4 = { accumulate: 4, globalBatch: 16 };
  const single = await runSingle(spec({ strategy: "single", worldSize: 1, ...k4 }));
  const ddp = await runDdp(spec(k4));
  const ddp1 = await runDdp(spec({ steps: 5, snapshotStep: 5, globalBatch: 16 }));
  assert.ok(maxAbsDiff(ddp.snapshot, single.snapshot) <= EQUIVALENCE_TOLERANCE);
  // Accumulating is not the same as one step of the larger batch's first micro-batch.
  const plain = await runSingle(spec({ strategy: "single", worldSize: 1, globalBatch: 16 }));
  assert.ok(maxAbsDiff(plain.snapshot, single.snapshot) > 1e-4, "K changes the math");
  assert.equal(ddp.comm.bytesPerStep, ddp1.comm.bytesPerStep);
  assert.equal(ddp.comm.messagesPerStep, ddp1.comm.messagesPerStep);
  assert.equal(ddp.comm.messagesPerStep / 4, ddp1.comm.messagesPerStep / 4);
  // Per optimizer step: 4 micro-batches of 16.
  assert.ok(Math.abs(ddp.samplesPerSec - 64 / (ddp.stepMs.p50 / 1000)) < 1e-6);
});

Deno.test("--accumulate with DP: one gather per step, the same math as single", async () => {
  const k3 = {
    accumulate: 3,
    globalBatch: 15,
    strategy: "dp" as const,
    steps: 10,
    snapshotStep: 10,
  };
  const single = await runSingle(spec({ ...k3, strategy: "single", worldSize: 1 }));
  const dp = await runDp(spec(k3));
  const dp1 = await runDp(spec({ ...k3, accumulate: 1 }));
  assert.ok(maxAbsDiff(dp.snapshot, single.snapshot) <= EQUIVALENCE_TOLERANCE);
  assert.equal(dp.comm.messagesPerStep, dp1.comm.messagesPerStep);
});

Deno.test("--grad-compression: DDP and DP move about half the bytes and stay near single", async () => {
  const short = { steps: 10, snapshotStep: 10 };
  const single = await runSingle(spec({ ...short, strategy: "single", worldSize: 1 }));
  for (const strategy of ["ddp", "dp"] as const) {
    const run = strategy === "ddp" ? runDdp : runDp;
    const plain = await run(spec({ ...short, strategy }));
    for (const gradCompression of ["fp16", "bf16"] as const) {
      const m = await run(spec({ ...short, strategy, gradCompression }));
      if (strategy === "ddp") {
        assert.ok(
          m.comm.bytesPerStep <= 0.55 * plain.comm.bytesPerStep,
          `${gradCompression} bytes`,
        );
      } else {
        assert.ok(m.comm.bytesPerStep < plain.comm.bytesPerStep, `${gradCompression} DP bytes`);
      }
      const diff = maxAbsDiff(m.snapshot, single.snapshot);
      assert.ok(diff > 0 && diff < 1e-2, `${strategy} ${gradCompression}: ${diff}`);
      assert.ok(Number.isFinite(m.finalLoss));
    }
  }
});

Deno.test("overlap off and small buckets: the same parameters, more calls", async () => {
  const short = { steps: 5, snapshotStep: 5 };
  const base = await runDdp(spec(short));
  const off = await runDdp(spec({ ...short, overlap: false }));
  const small = await runDdp(spec({ ...short, bucketBytes: 1024 }));
  assert.deepEqual(off.snapshot, base.snapshot);
  assert.deepEqual(small.snapshot, base.snapshot);
  assert.ok(small.comm.messagesPerStep > base.comm.messagesPerStep);
  for (const m of [base, off, small]) {
    assert.ok(m.comm.exposedMsPerStep <= m.comm.msPerStep + 1e-9);
    assert.ok(m.comm.exposedMsPerStep > 0);
  }
});

Deno.test("--scaling weak: DDP-2 trains on twice single's batch, and says so", async () => {
  const measured = await runBench({
    workloads: ["iris-logreg"],
    strategies: ["single", "ddp"],
    worldSizes: [2],
    backend: "wasm",
    steps: 2,
    warmup: 0,
    repeats: 1,
    scaling: "weak",
  });
  const single = measured.runs.find((m) => m.spec.strategy === "single")!;
  const ddp = measured.runs.find((m) => m.spec.strategy === "ddp")!;
  assert.equal(ddp.spec.globalBatch, 2 * single.spec.globalBatch);
  assert.equal(ddp.spec.scaling, "weak");
  assert.equal(measured.config.scaling, "weak");
});

Deno.test("overlap: a bucket's all-reduce runs on the communication thread during the backward", async () => {
  // mnist-mlp in 1 KiB buckets: the last layer's bucket is ready while the first layer's
  // large products are still to run, so its all-reduce can start before the compute ends.
  const traced = async (overlap: boolean) => {
    const m = await runDdp(spec({
      workload: "mnist-mlp",
      globalBatch: 64,
      steps: 6,
      snapshotStep: 6,
      bucketBytes: 1024,
      trace: true,
      overlap,
    }));
    const spans = m.trace!.filter((e) => e.ph === "X" && e.pid === 0);
    const computeEnds = spans.filter((e) => e.cat === "compute").map((e) => e.ts! + e.dur!);
    const firstBuckets = spans.filter((e) => e.cat === "allReduce" && e.name === "bucket 0");
    assert.equal(firstBuckets.length, computeEnds.length);
    return { m, startsBeforeEnd: firstBuckets.map((b, i) => b.ts! < computeEnds[i] - 1) };
  };
  const on = await traced(true);
  assert.ok(on.startsBeforeEnd.some((x) => x), "some step's first bucket started in the backward");
  assert.ok(on.m.comm.exposedMsPerStep <= on.m.comm.msPerStep);
  const off = await traced(false);
  assert.ok(off.startsBeforeEnd.every((x) => !x), "--no-overlap: every bucket after the backward");
  assert.deepEqual(off.m.snapshot, on.m.snapshot);
});
