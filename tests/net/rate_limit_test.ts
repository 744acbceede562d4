import assert from "node:assert/strict";
import { ErrorBudget } from "../../lib/net/rate_limit.ts";

Deno.test("ErrorBudget allows a burst, then the configured rate", () => {
  const b = new ErrorBudget({ rate: 10, burst: 5 });
  let allowed = 0;
  for (let i = 0; i < 20; i++) {
    if (b.available("a", 0)) {
      b.take("a", 0);
      allowed++;
    }
  }
  assert.equal(allowed, 5);
  assert.equal(b.available("a", 50), false, "half a token after 50 ms");
  assert.equal(b.available("a", 100), true, "one token after 100 ms");
  b.take("a", 100);
  assert.equal(b.available("a", 100), false);
  assert.equal(b.available("a", 10_000), true);
});

Deno.test("ErrorBudget keeps sources apart", () => {
  const b = new ErrorBudget({ rate: 1, burst: 1 });
  b.take("a", 0);
  assert.equal(b.available("a", 0), false);
  assert.equal(b.available("b", 0), true);
});

Deno.test("ErrorBudget forgets the least recently used source past its bound", () => {
  const b = new ErrorBudget({ rate: 1, burst: 1, maxSources: 3 });
  for (const s of ["a", "b", "c"]) b.take(s, 0);
  b.take("a", 0); // a is now the most recently used
  b.take("d", 0); // evicts b
  assert.equal(b.size, 3);
  assert.equal(b.available("b", 0), true, "b was forgotten: full bucket");
  assert.equal(b.available("a", 0), false);
  assert.equal(b.available("c", 0), false);
});
