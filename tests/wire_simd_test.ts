/**
 * The WebAssembly SIMD wire casts against the JavaScript ones, bit for bit: every 16-bit pattern
 * back to float32, and float32 values covering every exponent, each rounding boundary of fp16
 * and bf16 (ties included), subnormals, infinities, NaNs of every sign and payload; lengths that
 * are not a multiple of the vector width or of the codec's block; and their speed.
 */
import assert from "node:assert/strict";
import { simdCodec } from "../comm/_wire_simd.ts";
import { fastWireCodec, type WireCodec, wireCodec } from "../comm/wire_codec.ts";

const NAMES = ["fp16", "bf16"] as const;

async function codecs(name: typeof NAMES[number]): Promise<[WireCodec, WireCodec]> {
  const fast = (await fastWireCodec(name))!;
  const reference = wireCodec(name)!;
  assert.notEqual(fast, reference, "WebAssembly SIMD is available, so the fast codec is its own");
  return [fast, reference];
}

/** float32 bit patterns: edge cases, both sides of every fp16/bf16 rounding point, random ones. */
function float32Patterns(): Uint32Array {
  const bits: number[] = [
    0,
    0x8000_0000,
    1,
    0x8000_0001,
    0x007f_ffff,
    0x0080_0000,
    0x7f7f_ffff,
    0xff7f_ffff,
    0x7f80_0000,
    0xff80_0000,
    0x7f80_0001,
    0x7fc0_0000,
    0xffc0_0000,
    0x7fff_ffff,
    0xffff_ffff,
    0x7fa0_1234,
    0xff81_2345,
    0x477f_efff,
    0x477f_f000,
    0x477f_f001,
    0x4780_0000, // near 65504
    0x3380_0000,
    0x3300_0000,
    0x3300_0001,
    0x3880_0000,
    0x387f_ffff, // fp16's subnormal range
  ];
  // Both neighbours of every value halfway between two 16-bit values, of both formats, and the
  // halfway value itself (a tie), for every 16-bit pattern's upper neighbour.
  for (let h = 0; h < 0x1_0000; h++) {
    const bf = (h << 16) >>> 0;
    bits.push(bf | 0x7fff, bf | 0x8000, bf | 0x8001);
    const f = Math.f16round(new Float16Array(Uint16Array.of(h).buffer)[0]);
    const next = new Float16Array(Uint16Array.of(h + 1).buffer)[0];
    if (Number.isFinite(f) && Number.isFinite(next)) {
      const mid = new Uint32Array(Float32Array.of((f + next) / 2).buffer)[0];
      bits.push(mid - 1, mid, mid + 1);
    }
  }
  // And every exponent with random mantissas and signs (xorshift: reproducible).
  let state = 0x9e37_79b9;
  for (let i = 0; i < 1 << 18; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bits.push(state >>> 0);
  }
  return Uint32Array.from(bits);
}

for (const name of NAMES) {
  Deno.test(`${name}: the SIMD cast to 16 bits equals the JavaScript cast, bit for bit`, async () => {
    const [fast, reference] = await codecs(name);
    const values = new Float32Array(float32Patterns().buffer);
    const expected = new Uint16Array(values.length);
    const actual = new Uint16Array(values.length);
    reference.encode(values, expected);
    fast.encode(values, actual);
    const bits = new Uint32Array(values.buffer);
    for (let i = 0; i < values.length; i++) {
      if (actual[i] !== expected[i]) {
        assert.fail(
          `${name}(0x${bits[i].toString(16)}): SIMD 0x${actual[i].toString(16)}, JavaScript ` +
            `0x${expected[i].toString(16)}`,
        );
      }
    }
  });

  Deno.test(`${name}: the SIMD cast back to float32 equals the JavaScript cast for all 65536 patterns`, async () => {
    const [fast, reference] = await codecs(name);
    const wire = Uint16Array.from({ length: 0x1_0000 }, (_, h) => h);
    const expected = new Float32Array(wire.length);
    const actual = new Float32Array(wire.length);
    reference.decode(wire, expected);
    fast.decode(wire, actual);
    const [e, a] = [new Uint32Array(expected.buffer), new Uint32Array(actual.buffer)];
    for (let h = 0; h < wire.length; h++) {
      if (a[h] !== e[h]) {
        assert.fail(
          `${name} 0x${h.toString(16)} → SIMD 0x${a[h].toString(16)}, JavaScript 0x${
            e[h].toString(16)
          }`,
        );
      }
    }
  });
}

Deno.test("SIMD casts of any length touch exactly the elements asked for", async () => {
  for (const name of NAMES) {
    const [fast, reference] = await codecs(name);
    for (const length of [1, 7, 8, 9, 16 * 1024 - 1, 16 * 1024 + 5, 50_001]) {
      const values = Float32Array.from({ length }, (_, i) => Math.sin(i) * 100);
      const wire = new Uint16Array(length + 3).fill(0xabcd);
      const expected = new Uint16Array(length);
      fast.encode(values, wire);
      reference.encode(values, expected);
      assert.deepEqual(wire.subarray(0, length), expected, `${name} encode, ${length}`);
      assert.deepEqual([...wire.subarray(length)], [0xabcd, 0xabcd, 0xabcd]);
      const back = new Float32Array(length + 2).fill(42);
      fast.decode(wire, back.subarray(0, length));
      const want = new Float32Array(length);
      reference.decode(expected, want);
      assert.deepEqual(back.subarray(0, length), want, `${name} decode, ${length}`);
      assert.deepEqual([...back.subarray(length)], [42, 42]);
    }
  }
});

Deno.test("SIMD casts are faster than the JavaScript casts", async () => {
  const n = 117_000; // one rank's chunk of mnist-mlp's gradient in DDP-2
  const values = Float32Array.from({ length: n }, () => Math.random() - 0.5);
  const wire = new Uint16Array(n);
  const back = new Float32Array(n);
  const nsPerValue = (codec: WireCodec) => {
    const once = () => {
      codec.encode(values, wire);
      codec.decode(wire, back);
    };
    for (let i = 0; i < 10; i++) once();
    const times = Array.from({ length: 15 }, () => {
      const start = performance.now();
      once();
      return performance.now() - start;
    }).sort((a, b) => a - b);
    return (times[7] * 1e6) / (2 * n);
  };
  for (const name of NAMES) {
    const [fast, reference] = await codecs(name);
    const [simd, js] = [nsPerValue(fast), nsPerValue(reference)];
    // Typically 3-5x here; a busy machine moves both.
    assert.ok(
      simd < js,
      `${name}: SIMD ${simd.toFixed(2)} ns per value, JavaScript ${js.toFixed(2)}`,
    );
  }
});

Deno.test("a ring's wire buffers cast in WebAssembly memory exactly as the JavaScript casts", async () => {
  for (const name of NAMES) {
    const reference = wireCodec(name)!;
    const buffers = (await simdCodec(name))!.buffers(50_000);
    for (const length of [1, 9, 8 * 1024 + 3, 50_000]) {
      const values = Float32Array.from({ length }, (_, i) => Math.cos(i) * 3 + 1e-6 * i);
      const wire = new Uint16Array(length);
      reference.encode(values, wire);
      assert.deepEqual(buffers.encode(values), wire, `${name} encode, ${length}`);
      const decoded = new Float32Array(length);
      reference.decode(wire, decoded);
      // What arrives is in `received`, from an offset on.
      const from = 5;
      buffers.received.set(wire.subarray(0, Math.min(length, 50_000 - from)), from);
      const n = Math.min(length, 50_000 - from);
      const out = new Float32Array(n);
      buffers.decode(out, from);
      assert.deepEqual(out, decoded.subarray(0, n), `${name} decode, ${length}`);
      const sum = values.slice(0, n);
      buffers.decodeAdd(sum, from);
      const expected = values.slice(0, n).map((v, i) => Math.fround(v + decoded[i]));
      assert.deepEqual(sum, expected, `${name} decode and add, ${length}`);
      const rounded = values.slice();
      buffers.round(rounded);
      assert.deepEqual(rounded, decoded, `${name} round, ${length}`);
      // Divided (an average) and rounded in one pass, its 16 bits kept for sending on, once.
      const halved = values.map((v) => Math.fround(v / 3));
      const halvedWire = new Uint16Array(length);
      reference.encode(halved, halvedWire);
      const averaged = values.slice();
      buffers.round(averaged, 3);
      const expectedAverage = new Float32Array(length);
      reference.decode(halvedWire, expectedAverage);
      assert.deepEqual(averaged, expectedAverage, `${name} divide and round, ${length}`);
      assert.equal(buffers.takeRounded(averaged.subarray(1)), null, "other values: not kept");
      assert.deepEqual(buffers.takeRounded(averaged), halvedWire, `${name} kept, ${length}`);
      assert.equal(buffers.takeRounded(averaged), null, "handed out once");
      buffers.round(averaged);
      buffers.forget();
      assert.equal(buffers.takeRounded(averaged), null, "forgotten");
    }
  }
});
