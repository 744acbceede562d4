import assert from "node:assert/strict";
import { ReplayCache, type ReplayEntry } from "../../lib/state/replay.ts";

function entry(i: number, expiresAt = 1000): ReplayEntry {
  return {
    token: `token-${i}`,
    group: "G",
    jti: `jti-${i}`,
    reply: new Uint8Array([i & 0xff]),
    expiresAt,
  };
}

Deno.test("ReplayCache finds an answered token until it expires", () => {
  const c = new ReplayCache();
  c.add(entry(1, 100));
  assert.deepEqual(c.lookup("token-1", 100)?.reply, new Uint8Array([1]));
  assert.equal(c.hasJti("G", "jti-1", 50), true);
  assert.equal(c.hasJti("H", "jti-1", 50), false, "jti is per group");
  assert.equal(c.lookup("token-1", 101), undefined);
  assert.equal(c.hasJti("G", "jti-1", 101), false);
  assert.equal(c.size, 0);
});

Deno.test("ReplayCache stays within its cap, evicting the oldest", () => {
  const c = new ReplayCache({ maxEntries: 1000 });
  for (let i = 0; i < 100_000; i++) c.add(entry(i), 0);
  assert.equal(c.size, 1000);
  assert.equal(c.evicted, 99_000);
  assert.equal(c.lookup("token-0", 0), undefined);
  assert.ok(c.lookup("token-99999", 0));
  assert.equal(c.hasJti("G", "jti-5", 0), false);
  assert.equal(c.hasJti("G", "jti-99000", 0), true);
});

Deno.test("ReplayCache sweeps expired entries as new ones arrive", () => {
  const c = new ReplayCache();
  for (let i = 0; i < 50; i++) c.add(entry(i, 10), 0);
  c.add(entry(99, 100), 20);
  assert.equal(c.size, 1);
  assert.deepEqual(c.entries(20).map((e) => e.token), ["token-99"]);
});
