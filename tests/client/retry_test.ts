/**
 * Tests of lib/client/retry.ts: the backoff of the reference client and its
 * seeded random generator.
 *
 * @module
 */

import assert from "node:assert/strict";
import { backoffDelay, seededRandom } from "../../lib/client/retry.ts";

Deno.test("backoffDelay() doubles from the first timeout up to the cap, with jitter", async (t) => {
  await t.step("without jitter (random 0.5)", () => {
    const waits = [0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, () => 0.5));
    assert.deepEqual(waits, [500, 1000, 2000, 4000, 4000, 4000]);
  });
  await t.step("jitter scales by [1 - j, 1 + j)", () => {
    assert.equal(backoffDelay(0, () => 0), 375);
    assert.equal(backoffDelay(2, () => 0), 1500);
    assert.ok(backoffDelay(0, () => 0.999999) < 625);
    assert.ok(backoffDelay(0, () => 0.999999) > 624);
    assert.equal(backoffDelay(1, () => 0, { jitter: 0.5 }), 500);
  });
  await t.step("custom timeouts; jitter 0", () => {
    const o = { initialTimeoutMs: 100, maxTimeoutMs: 350, jitter: 0 };
    const waits = [0, 1, 2, 3].map((a) => backoffDelay(a, Math.random, o));
    assert.deepEqual(waits, [100, 200, 350, 350]);
  });
});

Deno.test("seededRandom() repeats per seed and is uniform enough", () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const xs = Array.from({ length: 10_000 }, () => a());
  assert.deepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => b()));
  assert.notEqual(seededRandom(43)(), xs[0]);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
  const below = xs.filter((x) => x < 0.3).length / xs.length;
  assert.ok(Math.abs(below - 0.3) < 0.02, `P(x < 0.3) = ${below}`);
});
