import assert from "node:assert/strict";
import { trainTwoMoons, twoMoons } from "../examples/custom_workload.ts";

Deno.test("the custom-workload example trains a user's model through the public API", async () => {
  const m = await trainTwoMoons();
  assert.equal(m.spec.workload, twoMoons.name);
  assert.ok(m.accuracy > 0.85, `two-moons holdout accuracy ${m.accuracy}`);
  assert.ok(m.samplesPerSec > 0);
});
